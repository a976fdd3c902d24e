/**
 * The scheduled fleet check: (when enabled) every hour a small state machine asks Athena how many
 * vehicles are silent out of how many report at all (one statement with the views inlined, so it needs no
 * views created in the catalog), publishes both as metrics, and writes the list of silent vehicles as a
 * CSV report. An alarm fires when the silent share passes a threshold. Athena is called through SDK
 * integrations with explicit resources (the workgroup), not the optimized tasks, which grant S3 on `*`.
 * Each run scans the raw lake (the workgroup's per-query cap applies).
 */
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../lambda/contract';
import type { Catalog } from './catalog';
import { athenaDialect, FLEET_CHECK_SELECT, SILENT_REPORT_SELECT, withViews } from './queries';
import { checkInteger } from './validation';

/** What a user of {@link SmartcarWebhooks} can set about the fleet check. */
export interface FleetCheckOptions {
  /**
   * Run the check on its schedule (it is synthesized either way, DISABLED until this is true). On, it also
   * brings the SilentVehicles alarm and the failed-runs alarm ($0.10 a month each, plus the SilentVehicles
   * and FleetSize metrics it publishes every interval: $0.30 a month each at the hourly default).
   * @default false
   */
  readonly enabled?: boolean;
  /** How often it runs. @default Duration.hours(1) */
  readonly interval?: Duration;
  /** Percent of the fleet silent at which the SilentVehicles alarm fires. @default 10 */
  readonly silentThresholdPercent?: number;
}

export interface FleetCheckProps extends FleetCheckOptions {
  /** The catalog and workgroup the check queries. */
  readonly catalog: Catalog;
  /** The `service` dimension of the metrics. */
  readonly serviceName: string;
  /** Retention of the state machine's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

export class FleetCheck extends Construct {
  /** The check's state machine. */
  public readonly stateMachine: sfn.StateMachine;
  /** Starts the check every `interval`. */
  public readonly schedule: scheduler.Schedule;
  /** Fires when more than `silentThresholdPercent` of the fleet is silent; only when `enabled`. */
  public readonly silentAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: FleetCheckProps) {
    super(scope, id);
    checkInteger('fleetCheck.silentThresholdPercent', props.silentThresholdPercent, 1, 100);
    const { catalog } = props;
    const d = athenaDialect(catalog.databaseName);
    const workGroupArn = Stack.of(this).formatArn({
      service: 'athena',
      resource: 'workgroup',
      resourceName: catalog.workGroup.ref,
    });
    const athena = (name: string, action: string, parameters: Record<string, unknown>, resultPath: string) =>
      new tasks.CallAwsService(this, name, {
        service: 'athena',
        action,
        parameters,
        iamResources: [workGroupArn],
        iamAction: `athena:${action.charAt(0).toUpperCase()}${action.slice(1)}`,
        resultPath,
      });
    const start = (name: string, select: string, folder: string, resultPath: string) =>
      athena(
        name,
        'startQueryExecution',
        {
          QueryString: withViews(d, select),
          WorkGroup: catalog.workGroup.ref,
          QueryExecutionContext: { Database: catalog.databaseName },
          ResultConfiguration: { OutputLocation: `s3://${catalog.resultsBucket.bucketName}/${folder}/` },
        },
        resultPath,
      );
    const count = start('Count silent vehicles', FLEET_CHECK_SELECT, 'fleet-check', '$.count');
    const wait = new sfn.Wait(this, 'Wait for the count', { time: sfn.WaitTime.duration(Duration.seconds(10)) });
    const poll = athena(
      'Is the count done?',
      'getQueryExecution',
      { 'QueryExecutionId.$': '$.count.QueryExecutionId' },
      '$.status',
    );
    const results = new tasks.CallAwsService(this, 'Read the counts', {
      service: 'athena',
      action: 'getQueryResults',
      parameters: { 'QueryExecutionId.$': '$.count.QueryExecutionId' },
      iamResources: [workGroupArn],
      iamAction: 'athena:GetQueryResults',
      resultSelector: {
        'silent.$': 'States.StringToJson($.ResultSet.Rows[1].Data[0].VarCharValue)',
        'fleet.$': 'States.StringToJson($.ResultSet.Rows[1].Data[1].VarCharValue)',
      },
      resultPath: '$.counts',
    });
    const dimensions = [{ Name: 'service', Value: props.serviceName }];
    const publish = new tasks.CallAwsService(this, 'Publish the counts', {
      service: 'cloudwatch',
      action: 'putMetricData',
      parameters: {
        Namespace: METRICS_NAMESPACE,
        MetricData: [
          { MetricName: 'SilentVehicles', Dimensions: dimensions, 'Value.$': '$.counts.silent', Unit: 'Count' },
          { MetricName: 'FleetSize', Dimensions: dimensions, 'Value.$': '$.counts.fleet', Unit: 'Count' },
        ],
      },
      // PutMetricData has no resource-level permissions.
      iamResources: ['*'],
      iamAction: 'cloudwatch:PutMetricData',
      resultPath: sfn.JsonPath.DISCARD,
    });
    const report = start(
      'Write the silent vehicles report',
      SILENT_REPORT_SELECT,
      'reports/silent-vehicles',
      '$.report',
    );
    const failed = new sfn.Fail(this, 'The count failed', {
      error: 'Athena.QueryFailed',
      cause: 'See the query in the Athena console',
    });
    const done = new sfn.Choice(this, 'Count done?')
      .when(
        sfn.Condition.stringEquals('$.status.QueryExecution.Status.State', 'SUCCEEDED'),
        results.next(publish).next(report),
      )
      .when(
        sfn.Condition.or(
          sfn.Condition.stringEquals('$.status.QueryExecution.Status.State', 'FAILED'),
          sfn.Condition.stringEquals('$.status.QueryExecution.Status.State', 'CANCELLED'),
        ),
        failed,
      )
      .otherwise(wait);
    wait.next(poll).next(done);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(count.next(wait)),
      timeout: Duration.minutes(30),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
      comment: 'Counts silent vehicles (Athena), publishes SilentVehicles and FleetSize, writes the silent report',
    });
    // Athena runs the queries as this role: Glue, the raw zone, the results (the catalog's own grant).
    catalog.grantQuery(this.stateMachine);
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Counts silent vehicles and publishes the SilentVehicles metric',
      schedule: scheduler.ScheduleExpression.rate(props.interval ?? Duration.hours(1)),
      target: new targets.StepFunctionsStartExecution(this.stateMachine, { retryAttempts: 1 }),
      enabled: props.enabled ?? false,
    });

    const metric = (name: string) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: name,
        dimensionsMap: { service: props.serviceName },
        statistic: 'Maximum',
        period: Duration.hours(1),
      });
    // A check that does not run publishes nothing to alarm on: no alarm to pay for.
    if (!props.enabled) return;
    this.silentAlarm = new cloudwatch.Alarm(this, 'SilentVehicles', {
      alarmDescription:
        'More vehicles than usual stopped reporting (silent past 3 of their own typical gaps). The list is the latest CSV ' +
        'under reports/silent-vehicles/ in the Athena results bucket (or query silent_vehicles); check open_vehicle_errors ' +
        '(e.g. REAUTHENTICATE) and lapsed subscriptions (run the reconcile workflow).',
      metric: new cloudwatch.MathExpression({
        expression: 'IF(fleet > 0, 100 * silent / fleet, 0)',
        usingMetrics: { silent: metric('SilentVehicles'), fleet: metric('FleetSize') },
        label: 'silent vehicles (% of fleet)',
        period: Duration.hours(1),
      }),
      threshold: props.silentThresholdPercent ?? 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
