/**
 * The scheduled compaction: a state machine that runs the Athena statements of
 * `athenaCompactionStatements` (claim the raw objects of closed hours, curate their events once each as
 * Parquet, extract their signals, commit), one after the other, each polled to completion, then counts the
 * late raw objects (see below). Athena reads and writes the data; no code of ours does. A run that fails
 * part way never commits, so it counts for nothing and the next run claims the same objects again. Raw
 * objects keep their own lifecycle.
 *
 * One run at a time: the statements leave out only what *committed* runs claimed, so two runs at once
 * would both claim and curate the same objects and every event would count twice. A run therefore takes a
 * lease in a DynamoDB item first (a conditional write) and gives it back at the end, failed or not; a run
 * that finds the lease held fails at once with `Compaction.AlreadyRunning`, having done nothing. The lease
 * outlives the state machine's timeout, so a run that is stopped or times out (and cannot give it back)
 * blocks the next ones for at most 15 minutes past that.
 *
 * Each run has its own id: the execution name (safe characters only) and a hash of the execution's ARN
 * and start time, so names that sanitize alike (`run.1`, `run_1`) or a name reused after 90 days never
 * share one.
 *
 * Late raw objects (a dead-letter redrive or a recovery writes deliveries into the hour they were
 * received; a compaction that failed for longer than its lookback leaves hours behind) are never lost:
 * the views read them from the raw zone. A run does not widen its claim to find them, which would scan
 * every day of the raw zone on every run; it counts those of the `lateObjectWindowDays` before its lookback
 * and publishes the count as the `LateRawObjects` metric (and in its output). To compact them, start an
 * execution with input `{"lookbackDays": N}` covering the oldest day reported: its scan is the operator's
 * choice, bounded by the workgroup's per-query cap.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../lambda/contract';
import type { Catalog } from './catalog';
import { serviceNameOf } from './function';
import { athenaCompactionStatements, athenaLateObjectsSelect } from './queries';
import { checkInteger } from './validation';

/** What a user of {@link SmartcarWebhooks} can set about the curated layer's compaction. */
export interface CompactionOptions {
  /**
   * Run the compaction on its schedule (it is synthesized either way, DISABLED when false). On, it brings
   * its failed-runs and late-objects alarms ($0.10 a month each); off, neither is created.
   * @default true
   */
  readonly enabled?: boolean;
  /** How often it runs (each run scans the raw objects of the lookback window). @default Duration.days(1) */
  readonly interval?: Duration;
  /**
   * Days of raw objects a run considers: a run missed for less than this is caught up. An execution's
   * input `{"lookbackDays": N}` overrides it for that run. @default 2
   */
  readonly lookbackDays?: number;
  /** Minutes after an hour ends before it is compacted (objects that arrive later wait for a later run). @default 60 */
  readonly settleMinutes?: number;
  /**
   * Days before the lookback window in which each run counts the raw objects no run compacted (the
   * `LateRawObjects` metric); 0 counts none. Each run scans those days of the raw zone once. The default
   * is the dead-letter queue's retention: the latest a delivery can still be written to the lake.
   * @default 14
   */
  readonly lateObjectWindowDays?: number;
}

export interface CompactionProps extends CompactionOptions {
  /**
   * Create its own failed-runs alarm (three metrics, $0.30 a month). `SmartcarWebhooks` turns it off and
   * notifies each failed run through its alarm topic instead (Monitoring.notifyOnFailedRuns, free).
   * @default true
   */
  readonly failedRunsAlarm?: boolean;
  /** The catalog whose tables it reads and writes. */
  readonly catalog: Catalog;
  /** The lake bucket. */
  readonly bucket: s3.IBucket;
  /** Retention of the state machine's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
  /**
   * The `service` dimension of its metric (as the functions' metrics).
   * @default - the service name of the SmartcarWebhooks instance it belongs to, else the stack name
   */
  readonly serviceName?: string;
}

/** The placeholders the statements are built with; each run replaces them with its own values. */
const RUN = 'RUNIDPLACEHOLDER';
const LOOKBACK = 'LOOKBACKPLACEHOLDER';
/** The metric each run publishes: raw objects in the late window that no committed run claimed. */
export const LATE_RAW_OBJECTS_METRIC = 'LateRawObjects';
/** The state machine's timeout; the lease outlives it by {@link LEASE_MARGIN}. */
const RUN_TIMEOUT = Duration.hours(2);
const LEASE_MARGIN = Duration.minutes(15);
/** The lock's one item. */
const LOCK_KEY = 'compaction';

/** A JSONata expression that evaluates to `sql` with this run's id and lookback in place of the placeholders. */
function sqlExpression(sql: string): string {
  const parts = sql.split(new RegExp(`(${RUN}|${LOOKBACK})`));
  const terms = parts
    .filter((p) => p !== '')
    .map((p) => (p === RUN ? '$run' : p === LOOKBACK ? '$string($lookback)' : JSON.stringify(p)));
  return `{% ${terms.join(' & ')} %}`;
}

export class Compaction extends Construct {
  /** The compaction's state machine: start it from the console to compact now. */
  public readonly stateMachine: sfn.StateMachine;
  /** Starts it every `interval`. */
  public readonly schedule: scheduler.Schedule;
  /** Fires when a run fails (the raw layer keeps serving the views meanwhile); only when `enabled`. */
  public readonly failedAlarm?: cloudwatch.Alarm;
  /**
   * Raises when raw objects older than the lookback were never compacted (only when `enabled`, and unless
   * lateObjectWindowDays is 0).
   */
  public readonly lateAlarm?: cloudwatch.Alarm;
  /** Holds the lease of the run in progress (one item). */
  public readonly lockTable: dynamodb.Table;
  private readonly serviceName: string;

  constructor(scope: Construct, id: string, props: CompactionProps) {
    super(scope, id);
    checkInteger('compaction.lookbackDays', props.lookbackDays, 1, 30);
    checkInteger('compaction.settleMinutes', props.settleMinutes, 0, 1440);
    checkInteger('compaction.lateObjectWindowDays', props.lateObjectWindowDays, 0, 365);
    const { catalog } = props;
    const lookbackDays = props.lookbackDays ?? 2;
    const lateDays = props.lateObjectWindowDays ?? 14;
    this.serviceName = props.serviceName ?? serviceNameOf(this);
    const window = { lookbackDays: LOOKBACK, settleMinutes: props.settleMinutes ?? 60, lateObjectWindowDays: lateDays };
    const statements = athenaCompactionStatements(catalog.databaseName, window, RUN);
    const stack = Stack.of(this);
    const workGroupArn = stack.formatArn({
      service: 'athena',
      resource: 'workgroup',
      resourceName: catalog.workGroup.ref,
    });

    /** Start a statement, poll it every 10 s, and go on to `next` once it succeeded. */
    const statement = (name: string, sql: string, next: sfn.IChainable): sfn.IChainable => {
      const start = tasks.CallAwsService.jsonata(this, name, {
        service: 'athena',
        action: 'startQueryExecution',
        parameters: {
          QueryString: sqlExpression(sql),
          WorkGroup: catalog.workGroup.ref,
          QueryExecutionContext: { Database: catalog.databaseName },
          ResultConfiguration: { OutputLocation: `s3://${catalog.resultsBucket.bucketName}/compaction/` },
        },
        iamResources: [workGroupArn],
        iamAction: 'athena:StartQueryExecution',
        assign: { queryId: '{% $states.result.QueryExecutionId %}', statement: name },
      });
      const wait = sfn.Wait.jsonata(this, `${name}: wait`, { time: sfn.WaitTime.duration(Duration.seconds(10)) });
      const poll = tasks.CallAwsService.jsonata(this, `${name}: done?`, {
        service: 'athena',
        action: 'getQueryExecution',
        parameters: { QueryExecutionId: '{% $queryId %}' },
        iamResources: [workGroupArn],
        iamAction: 'athena:GetQueryExecution',
        assign: { state: '{% $states.result.QueryExecution.Status.State %}' },
      });
      const choice = sfn.Choice.jsonata(this, `${name}: finished?`)
        .when(sfn.Condition.jsonata("{% $state = 'SUCCEEDED' %}"), next)
        .when(sfn.Condition.jsonata("{% $state in ['FAILED', 'CANCELLED'] %}"), failed)
        .otherwise(wait);
      start.next(wait);
      wait.next(poll).next(choice);
      return start;
    };
    const failed = sfn.Fail.jsonata(this, 'A statement failed', {
      error: 'Athena.QueryFailed',
      cause: '{% "Statement " & $statement & " ended " & $state & ": see its query in the Athena console" %}',
    });
    const report = "{% {'run': $run, 'lookbackDays': $lookback, 'lateRawObjects': $late, 'oldestLateDay': $oldest} %}";
    let tail: sfn.IChainable;
    if (lateDays > 0) {
      const results = tasks.CallAwsService.jsonata(this, 'Read the count', {
        service: 'athena',
        action: 'getQueryResults',
        parameters: { QueryExecutionId: '{% $queryId %}' },
        iamResources: [workGroupArn],
        iamAction: 'athena:GetQueryResults',
        assign: {
          late: '{% $number($states.result.ResultSet.Rows[1].Data[0].VarCharValue) %}',
          oldest:
            '{% $exists($states.result.ResultSet.Rows[1].Data[1].VarCharValue) ? $states.result.ResultSet.Rows[1].Data[1].VarCharValue : null %}',
        },
      });
      const publish = tasks.CallAwsService.jsonata(this, 'Publish the count', {
        service: 'cloudwatch',
        action: 'putMetricData',
        parameters: {
          Namespace: METRICS_NAMESPACE,
          MetricData: [
            {
              MetricName: LATE_RAW_OBJECTS_METRIC,
              Dimensions: [{ Name: 'service', Value: this.serviceName }],
              Value: '{% $late %}',
              Unit: 'Count',
            },
          ],
        },
        // PutMetricData has no resource-level permissions.
        iamResources: ['*'],
        iamAction: 'cloudwatch:PutMetricData',
        outputs: report,
      });
      results.next(publish);
      tail = statement('Count late raw objects', athenaLateObjectsSelect(catalog.databaseName, window), results);
    } else {
      tail = sfn.Pass.jsonata(this, 'Nothing to count', {
        outputs: report.replace('$late', 'null').replace('$oldest', 'null'),
      });
    }
    const names = ['Claim closed hours', 'Curate their events', 'Extract their signals', 'Commit the run'];
    let next: sfn.IChainable = tail;
    // Built back to front: each statement's success leads to the next one.
    for (let i = statements.length - 1; i >= 0; i--) next = statement(names[i], statements[i], next);
    const compact = sfn.Parallel.jsonata(this, 'Compact', { outputs: '{% $states.result[0] %}' }).branch(next);

    // The lease: one item, taken only when absent or expired, given back only by its holder.
    this.lockTable = new dynamodb.Table(this, 'Lock', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // It holds one lease at most, never data.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const key = { pk: tasks.DynamoAttributeValue.fromString(LOCK_KEY) };
    const now = '$toMillis($states.context.State.EnteredTime)';
    const leaseMs = RUN_TIMEOUT.plus(LEASE_MARGIN).toMilliseconds();
    const lock = tasks.DynamoPutItem.jsonata(this, 'Take the lock', {
      table: this.lockTable,
      item: {
        ...key,
        owner: tasks.DynamoAttributeValue.fromString('{% $run %}'),
        execution: tasks.DynamoAttributeValue.fromString('{% $states.context.Execution.Id %}'),
        expiresAt: tasks.DynamoAttributeValue.numberFromString(`{% $string(${now} + ${leaseMs}) %}`),
      },
      conditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
      expressionAttributeValues: { ':now': tasks.DynamoAttributeValue.numberFromString(`{% $string(${now}) %}`) },
      outputs: '{% $states.input %}',
    });
    const holder = tasks.DynamoGetItem.jsonata(this, 'Who holds the lock?', {
      table: this.lockTable,
      key,
      consistentRead: true,
      assign: {
        holder: "{% $exists($states.result.Item) ? $states.result.Item.execution.S : 'a run that has just ended' %}",
        until: "{% $exists($states.result.Item) ? $fromMillis($number($states.result.Item.expiresAt.N)) : 'now' %}",
      },
    });
    const busy = sfn.Fail.jsonata(this, 'Another run holds the lock', {
      error: 'Compaction.AlreadyRunning',
      cause:
        "{% 'Another compaction run holds the lock (' & $holder & ') until it ends, at the latest ' & $until & '; this run did nothing.' %}",
    });
    lock.addCatch(holder.next(busy), { errors: ['DynamoDB.ConditionalCheckFailedException'] });
    const release = (id: string) =>
      tasks.DynamoDeleteItem.jsonata(this, id, {
        table: this.lockTable,
        key,
        conditionExpression: '#owner = :run',
        expressionAttributeNames: { '#owner': 'owner' },
        expressionAttributeValues: { ':run': tasks.DynamoAttributeValue.fromString('{% $run %}') },
        outputs: '{% $states.input %}',
      });
    // A failed run gives the lease back too, then fails with the error that stopped it.
    const rethrow = sfn.Fail.jsonata(this, 'Compaction failed', { error: '{% $error %}', cause: '{% $cause %}' });
    const releaseAfterFailure = release('Give the lock back after a failure');
    releaseAfterFailure.addCatch(rethrow, { errors: ['States.ALL'] });
    releaseAfterFailure.next(rethrow);
    compact.addCatch(releaseAfterFailure, {
      errors: ['States.ALL'],
      assign: {
        error: '{% $states.errorOutput.Error %}',
        cause: "{% $exists($states.errorOutput.Cause) ? $states.errorOutput.Cause : '' %}",
      },
    });
    const done = new sfn.Succeed(this, 'Compacted');

    const badInput = sfn.Fail.jsonata(this, 'Bad input', {
      error: 'Compaction.BadInput',
      cause: '{% "lookbackDays must be a whole number of days from 1 to 3650; this run did nothing." %}',
    });
    // Execution names allow characters SQL strings do not: the run id keeps only the safe ones, and a hash
    // of the execution (its ARN and start time) keeps ids apart that the sanitizing or a reused name folds.
    const begin = sfn.Pass.jsonata(this, 'Name the run', {
      assign: {
        run: "{% $replace($substring($states.context.Execution.Name, 0, 40), /[^A-Za-z0-9_-]/, '_') & '-' & $substring($hash($states.context.Execution.Id & ' ' & $states.context.Execution.StartTime, 'SHA-256'), 0, 16) %}",
        lookback: `{% $exists($states.input.lookbackDays) ? $states.input.lookbackDays : ${lookbackDays} %}`,
      },
    });
    const definition = begin.next(
      sfn.Choice.jsonata(this, 'Is the input sane?')
        .when(
          sfn.Condition.jsonata(
            "{% $type($lookback) = 'number' and $lookback = $floor($lookback) and $lookback >= 1 and $lookback <= 3650 %}",
          ),
          lock.next(compact).next(release('Give the lock back')).next(done),
        )
        .otherwise(badInput),
    );

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      queryLanguage: sfn.QueryLanguage.JSONATA,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: RUN_TIMEOUT,
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
    // Unscheduled, a run is started by someone who watches it: no alarms to pay for.
    if (!(props.enabled ?? true)) return;
    if (props.failedRunsAlarm ?? true)
      this.failedAlarm = new cloudwatch.Alarm(this, 'Failed', {
        alarmDescription:
          'A compaction run failed; the views keep reading those hours from the raw zone. Open the failed execution: ' +
          'Athena.QueryFailed names the statement and its Athena query id (the next run retries the same objects); ' +
          'Compaction.AlreadyRunning means another run held the lock (start this one again after it ends). A run ' +
          'that timed out or was aborted gives its lease back at most 15 minutes after the 2-hour timeout.',
        // Failed, timed out or aborted: no run ends unseen.
        metric: new cloudwatch.MathExpression({
          expression: 'FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)',
          usingMetrics: {
            failed: this.stateMachine.metricFailed({ period: Duration.hours(1), statistic: 'Sum' }),
            timedOut: this.stateMachine.metricTimedOut({ period: Duration.hours(1), statistic: 'Sum' }),
            aborted: this.stateMachine.metricAborted({ period: Duration.hours(1), statistic: 'Sum' }),
          },
          label: 'failed, timed-out and aborted runs',
          period: Duration.hours(1),
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    if (lateDays > 0) {
      this.lateAlarm = new cloudwatch.Alarm(this, 'LateRawObjects', {
        alarmDescription:
          'Raw objects older than the compaction lookback were never compacted (the views still read them from the ' +
          'raw zone). Start the Compaction state machine with {"lookbackDays": N} reaching the oldestLateDay in the ' +
          "last run's output.",
        metric: this.metricLateRawObjects({ period: Duration.days(1), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
  }

  /**
   * Raw objects of the late window before the lookback that no committed run claimed, as each run counted
   * them (Maximum over the period: the latest count is what is left). Above 0, start an execution with
   * `{"lookbackDays": N}` reaching the oldest day in its output.
   */
  public metricLateRawObjects(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: LATE_RAW_OBJECTS_METRIC,
      dimensionsMap: { service: this.serviceName },
      statistic: 'Maximum',
      period: Duration.days(1),
      ...props,
    });
  }
}
