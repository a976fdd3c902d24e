/**
 * The scheduled compaction: a state machine that runs the four Athena statements of
 * `athenaCompactionStatements` (claim the raw objects of closed hours, curate their events once each as
 * Parquet, extract their signals, commit), one after the other, each polled to completion. Athena reads
 * and writes the data; no code of ours does. A run that fails part way never commits, so it counts for
 * nothing and the next run claims the same objects again. Raw objects keep their own lifecycle.
 */
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { Catalog } from './catalog';
import { athenaCompactionStatements } from './queries';
import { checkInteger } from './validation';

/** What a user of {@link SmartcarWebhooks} can set about the curated layer's compaction. */
export interface CompactionOptions {
  /** Run the compaction on its schedule (it is synthesized either way, DISABLED when false). @default true */
  readonly enabled?: boolean;
  /** How often it runs (each run scans the raw objects of the lookback window). @default Duration.days(1) */
  readonly interval?: Duration;
  /** Days of raw objects a run considers: a run missed for less than this is caught up. @default 2 */
  readonly lookbackDays?: number;
  /** Minutes after an hour ends before it is compacted (objects that arrive later wait for a later run). @default 60 */
  readonly settleMinutes?: number;
}

export interface CompactionProps extends CompactionOptions {
  /** The catalog whose tables it reads and writes. */
  readonly catalog: Catalog;
  /** The lake bucket. */
  readonly bucket: s3.IBucket;
  /** Retention of the state machine's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

/** The placeholder the statements are built with; each run replaces it with its own (sanitized) name. */
const RUN = 'RUNIDPLACEHOLDER';

export class Compaction extends Construct {
  /** The compaction's state machine: start it from the console to compact now. */
  public readonly stateMachine: sfn.StateMachine;
  /** Starts it every `interval`. */
  public readonly schedule: scheduler.Schedule;
  /** Fires when a run fails (the raw layer keeps serving the views meanwhile). */
  public readonly failedAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: CompactionProps) {
    super(scope, id);
    checkInteger('compaction.lookbackDays', props.lookbackDays, 1, 30);
    checkInteger('compaction.settleMinutes', props.settleMinutes, 0, 1440);
    const { catalog } = props;
    const statements = athenaCompactionStatements(
      catalog.databaseName,
      { lookbackDays: props.lookbackDays ?? 2, settleMinutes: props.settleMinutes ?? 60 },
      RUN,
    );
    const stack = Stack.of(this);
    const workGroupArn = stack.formatArn({
      service: 'athena',
      resource: 'workgroup',
      resourceName: catalog.workGroup.ref,
    });
    const names = ['Claim closed hours', 'Curate their events', 'Extract their signals', 'Commit the run'];
    const failed = sfn.Fail.jsonata(this, 'A statement failed', {
      error: 'Athena.QueryFailed',
      cause: '{% "Statement " & $statement & " ended " & $state & ": see its query in the Athena console" %}',
    });
    const done = new sfn.Succeed(this, 'Compacted');
    let next: sfn.IChainable = done;
    // Built back to front: each statement's success leads to the next one.
    for (let i = statements.length - 1; i >= 0; i--) {
      const parts = statements[i].split(RUN);
      const start = tasks.CallAwsService.jsonata(this, names[i], {
        service: 'athena',
        action: 'startQueryExecution',
        parameters: {
          QueryString: `{% ${parts.map((p) => JSON.stringify(p)).join(' & $run & ')} %}`,
          WorkGroup: catalog.workGroup.ref,
          QueryExecutionContext: { Database: catalog.databaseName },
          ResultConfiguration: { OutputLocation: `s3://${catalog.resultsBucket.bucketName}/compaction/` },
        },
        iamResources: [workGroupArn],
        iamAction: 'athena:StartQueryExecution',
        assign: { queryId: '{% $states.result.QueryExecutionId %}', statement: names[i] },
      });
      const wait = sfn.Wait.jsonata(this, `${names[i]}: wait`, { time: sfn.WaitTime.duration(Duration.seconds(10)) });
      const poll = tasks.CallAwsService.jsonata(this, `${names[i]}: done?`, {
        service: 'athena',
        action: 'getQueryExecution',
        parameters: { QueryExecutionId: '{% $queryId %}' },
        iamResources: [workGroupArn],
        iamAction: 'athena:GetQueryExecution',
        assign: { state: '{% $states.result.QueryExecution.Status.State %}' },
      });
      const choice = sfn.Choice.jsonata(this, `${names[i]}: finished?`)
        .when(sfn.Condition.jsonata("{% $state = 'SUCCEEDED' %}"), next)
        .when(sfn.Condition.jsonata("{% $state in ['FAILED', 'CANCELLED'] %}"), failed)
        .otherwise(wait);
      start.next(wait);
      wait.next(poll).next(choice);
      next = start;
    }
    // Execution names allow characters SQL strings do not; the run id keeps only the safe ones.
    const begin = sfn.Pass.jsonata(this, 'Name the run', {
      assign: { run: "{% $replace($states.context.Execution.Name, /[^A-Za-z0-9_-]/, '_') %}" },
    }).next(next);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      queryLanguage: sfn.QueryLanguage.JSONATA,
      definitionBody: sfn.DefinitionBody.fromChainable(begin),
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
      comment: 'Compacts closed hours of the raw zone into the curated Parquet layer (one row per eventId) with Athena',
    });
    // Athena runs the statements as this role: query the lake, write the curated layer, add its partitions.
    catalog.grantQuery(this.stateMachine);
    props.bucket.grantPut(this.stateMachine, `${catalog.curatedPrefix}/*`);
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [props.bucket.arnForObjects(`${catalog.curatedPrefix}/*`)],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'glue:BatchCreatePartition',
          'glue:CreatePartition',
          'glue:UpdatePartition',
          'glue:BatchGetPartition',
          'glue:GetPartition',
          'glue:GetPartitions',
        ],
        resources: [
          stack.formatArn({ service: 'glue', resource: 'catalog' }),
          stack.formatArn({ service: 'glue', resource: 'database', resourceName: catalog.databaseName }),
          ...Object.keys(catalog.curatedTables).map((name) =>
            stack.formatArn({ service: 'glue', resource: 'table', resourceName: `${catalog.databaseName}/${name}` }),
          ),
        ],
      }),
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Compacts closed hours of the raw zone into the curated layer',
      schedule: scheduler.ScheduleExpression.rate(props.interval ?? Duration.days(1)),
      target: new targets.StepFunctionsStartExecution(this.stateMachine, { retryAttempts: 1 }),
      enabled: props.enabled ?? true,
    });
    this.failedAlarm = new cloudwatch.Alarm(this, 'Failed', {
      alarmDescription:
        'A compaction run failed; the views keep reading those hours from the raw zone. Open the failed execution ' +
        'for the statement and its Athena query id; the next run retries the same objects.',
      metric: this.stateMachine.metricFailed({ period: Duration.hours(1), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
