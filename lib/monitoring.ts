/**
 * Alarms, an SNS topic for them, and a dashboard: everything an operator needs to know that deliveries
 * are being lost, forged, delayed or stuck, or that subscription runs fail.
 */
import { Annotations, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE, type MetricName } from '../lambda/contract';
import type { Landing } from './landing';
import type { OperatorCommands } from './operations';
import type { Receiver } from './receiver';
import { ConfigurationError } from './validation';

/** What the construct user can tune. */
export interface MonitoringOptions {
  /**
   * Email address subscribed to the alarm topic (confirm the subscription from the email).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Topic the alarms notify instead of a new one. The failed-run notifications are published to it by
   * EventBridge: its resource policy must allow `events.amazonaws.com` to `sns:Publish` (and, encrypted with
   * a customer key, that key's policy must let EventBridge use it); synthesis says so in a warning.
   * @default - a new topic
   */
  readonly existingAlarmTopic?: sns.ITopic;
  /** p99 latency of the callback above which to alarm (Smartcar gives up at 15 s). @default Duration.seconds(5) */
  readonly latencyThreshold?: Duration;
  /** Rejected signatures in 5 minutes that raise an alarm. @default 10 */
  readonly signatureFailureThreshold?: number;
  /**
   * VERIFY requests (answered or refused) in 5 minutes that raise an alarm. Smartcar sends VERIFY only when
   * a webhook is created, its URL changes or someone presses Verify, so a stream of them is a probe.
   * @default 10
   */
  readonly verifyVolumeThreshold?: number;
  /**
   * Smartcar-shaped deliveries with a wrong signature in 5 minutes that raise the TokenMismatch alarm (the
   * secret likely does not hold the token Smartcar signs with). @default 3
   */
  readonly tokenMismatchThreshold?: number;
  /**
   * Age of the oldest queued delivery that raises an alarm. It counts deliveries being processed too, and
   * one that failed once waits out the queue's visibility timeout (six ingest timeouts plus the 5-minute
   * batching window: 11 minutes) before its retry, so less than that pages on every single retry.
   * @default Duration.minutes(20)
   */
  readonly oldestMessageAgeThreshold?: Duration;
  /**
   * Create a CloudWatch dashboard: $3.00 a month (us-east-1 list price). It charts the front door, the
   * queue, the rejections and the lake; the lake's and the deliveries' graphs need `detailedMetrics`.
   * @default false
   */
  readonly dashboard?: boolean;
  /**
   * Have the ingest function publish its figures with every batch: Deliveries (dimensions service,
   * EventType, Mode), RecordsWritten, ObjectsWritten, DuplicatesDropped, IngestFailures and IngestLag
   * (dimension service). Each name and dimension set is a custom metric at $0.30 a month once batches
   * arrive every hour: $1.50 a month plus $0.30 per event type and mode delivered. No alarm reads them (the
   * alarms watch AWS's own queue, function and front-door metrics, and counts published only when a
   * delivery is rejected or a batch fails); without them the ingest function publishes IngestFailures only
   * when a batch fails, and its log line `ingested batch` carries the same figures.
   * @default - the same as `dashboard`
   */
  readonly detailedMetrics?: boolean;
}

export interface MonitoringProps extends MonitoringOptions {
  /** The front door and verification function (either endpoint). */
  readonly receiver: Receiver;
  /** The verification function. */
  readonly verifyFunction: lambda.IFunction;
  /** The ingest function. */
  readonly ingestFunction: lambda.IFunction;
  /** The recovery function, when the quarantine is on. @default - none */
  readonly recoverFunction?: lambda.IFunction;
  /** The quarantine's writer function, queue and dead-letter queue, when the quarantine is on. @default - none */
  readonly quarantine?: MonitoredQuarantine;
  /** The subscription workflow's task functions. */
  readonly workflowFunctions: lambda.IFunction[];
  /** The delivery queue. */
  readonly queue: sqs.IQueue;
  /** The dead-letter queue of the delivery queue. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The Firehose stream and landing zone, with the Firehose buffer. @default - none (the queue buffer) */
  readonly landing?: Landing;
  /** Lake objects the vehicle-state function failed on, when the state table is on. @default - none */
  readonly stateDeadLetterQueue?: sqs.IQueue;
  /** The subscription workflow's state machine. */
  readonly stateMachine: sfn.IStateMachine;
  /** The Powertools service name the functions publish their metrics under. */
  readonly serviceName: string;
  /**
   * The command lines the alarm texts give (they must work in the stack the construct is deployed in).
   * @default - the operations CLI, finding the instance from `--stack <this stack's name>`
   */
  readonly commands?: OperatorCommands;
}

/** What {@link Monitoring} watches of the quarantine. */
export interface MonitoredQuarantine {
  /** Writes rejected deliveries to the quarantine bucket in batches. */
  readonly writerFunction: lambda.IFunction;
  /** Rejected deliveries waiting to be written. */
  readonly queue: sqs.IQueue;
  /** Rejected deliveries the writer failed on. */
  readonly deadLetterQueue: sqs.IQueue;
}

const FIVE_MINUTES = Duration.minutes(5);

export class Monitoring extends Construct {
  /** The failed-run notifications, by key (`Workflow`, `Erase`, …): EventBridge rules to the alarm topic. */
  public readonly runNotifications: Record<string, events.Rule> = {};
  /** The topic every alarm notifies (on alarm and on recovery), and every failed run. */
  public readonly alarmTopic: sns.ITopic;
  /** Every alarm, by a short name. */
  public readonly alarms: Record<string, cloudwatch.Alarm> = {};
  /** The dashboard, when `dashboard` is on. */
  public readonly dashboard?: cloudwatch.Dashboard;
  /** Whether the ingest function publishes its per-batch figures (see {@link MonitoringOptions.detailedMetrics}). */
  public readonly detailedMetrics: boolean;
  /** The `service` dimension the functions publish their metrics under. */
  public readonly serviceName: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarmTopic =
      props.existingAlarmTopic ??
      new sns.Topic(this, 'AlarmTopic', {
        displayName: `${Stack.of(this).stackName} Smartcar webhook alarms`,
        enforceSSL: true,
      });
    if (props.existingAlarmTopic)
      Annotations.of(this).addWarningV2(
        'smartcar-webhooks:alarmTopicPolicy',
        "Failed-run notifications reach existingAlarmTopic through EventBridge: allow events.amazonaws.com to sns:Publish in the topic's policy (and to use its KMS key, if it has one).",
      );
    if (props.alarmEmail) {
      if (props.existingAlarmTopic)
        throw new ConfigurationError(
          'alarmEmail subscribes to a topic this construct creates; subscribe existingAlarmTopic yourself.',
        );
      (this.alarmTopic as sns.Topic).addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    this.serviceName = props.serviceName;
    this.detailedMetrics = props.detailedMetrics ?? props.dashboard ?? false;
    // Used on its own, Monitoring cannot know whether the construct's outputs are on (then --stack finds
    // everything) or which resources to name: the texts say both ways.
    const either = (command: string, flags: string) =>
      `npx smartcar-webhooks ${command} --stack ${Stack.of(this).stackName} (with the construct's outputs on; else ${flags})`;
    const commands: OperatorCommands = props.commands ?? {
      rotateToken: either('rotate-token', '--secret-id <secret ARN>'),
      recoverRejected: either('recover-rejected', '--bucket <quarantine bucket> --secret-id <ARN> --queue-url <URL>'),
      redrive: either('redrive', '--dlq-url <URL> --queue-url <URL>'),
      redriveState: either('redrive', '--dlq-url <URL> --queue-url <URL>').replace(' (with', ' --queue state (with'),
      rebuildState: either('rebuild-state', '--bucket <lake bucket> --table <state table>'),
    };
    const custom = (name: MetricName, statistic = 'Sum') => this.metric(name, { statistic });

    const alarm = this.addAlarm.bind(this);

    const frontDoor = props.receiver;
    alarm(
      'Api5xx',
      frontDoor.metricServerErrors({ period: FIVE_MINUTES }),
      1,
      'The callback answered 5xx: Smartcar retries 3 times within about 3 minutes, then drops the event. Check the verification function logs (token unreadable or not set, queue unavailable).',
    );
    alarm(
      'ApiLatency',
      frontDoor.metricLatency({ period: FIVE_MINUTES, statistic: 'p99' }),
      (props.latencyThreshold ?? Duration.seconds(5)).toMilliseconds(),
      'p99 latency of the callback is above the threshold; Smartcar counts an answer after 15 s as a failure.',
      cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    );
    alarm(
      'FrontDoorThrottled',
      frontDoor.metricThrottled({ period: FIVE_MINUTES }),
      1,
      'The front door answered 429 for want of capacity: Smartcar retries 3 times within about 3 minutes, then drops ' +
        'the event. Raise expectedPeakDeliveriesPerSecond (or the throttle / reserved concurrency it sizes).',
    );
    alarm(
      'SignatureFailures',
      custom(METRIC.signatureFailures),
      props.signatureFailureThreshold ?? 10,
      'Many deliveries with a missing or wrong SC-Signature: forged requests, or the management token in the secret is not the one Smartcar signs with (after a rotation?).',
    );
    alarm(
      'VerifyVolume',
      // One metric (an alarm is billed per metric it reads): every VERIFY, answered or refused.
      custom(METRIC.verifyRequests),
      props.verifyVolumeThreshold ?? 10,
      'Unusually many VERIFY requests: Smartcar sends VERIFY only when a webhook is created or re-verified. Refused ones (challenge outside the answerable format) are attempts to use VERIFY as a signing oracle; they get nothing, but watch the source in the API access log.',
    );
    alarm(
      'TokenMismatch',
      custom(METRIC.signatureMismatches),
      props.tokenMismatchThreshold ?? 3,
      "Deliveries shaped like Smartcar's are failing their signature: most likely the management token in the secret " +
        'is not the one Smartcar signs with (rotated in the Dashboard, secret not updated, or a typo). They are answered ' +
        (props.quarantine
          ? '401 and kept in the quarantine. Fix: pipe the Dashboard token into ' +
            `\`${commands.rotateToken}\`: it puts the token in the secret, then re-ingests what was rejected in the ` +
            'last 24 hours (add --since <ISO time> to reach further back).'
          : '401; with the quarantine off they are not kept, and Smartcar gives up on them after its retries. Fix now: ' +
            `pipe the Dashboard token into \`${commands.rotateToken}\`.`),
    );
    alarm(
      'TokenUnavailable',
      custom(METRIC.tokenUnavailable),
      1,
      'The verification function could not use the management token (secret unreadable or still the placeholder): deliveries are answered 5xx.',
    );
    alarm(
      'DeadLetters',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: 'Maximum' }),
      1,
      'Deliveries the ingest function could not store are in the dead-letter queue: fix the cause (ingest function ' +
        `log), then move them back: \`${commands.redrive}\`.`,
    );
    if (props.stateDeadLetterQueue) {
      alarm(
        'StateUpdatesFailed',
        props.stateDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: FIVE_MINUTES,
          statistic: 'Maximum',
        }),
        1,
        'The vehicle state table missed lake objects (the lake has them): fix the cause (state function logs), then ' +
          `move them back: \`${commands.redriveState}\`, or rebuild the table: \`${commands.rebuildState}\`.`,
      );
    }
    alarm(
      'QueueAge',
      props.queue.metricApproximateAgeOfOldestMessage({ period: FIVE_MINUTES, statistic: 'Maximum' }),
      (props.oldestMessageAgeThreshold ?? Duration.minutes(20)).toSeconds(),
      'Deliveries are waiting in the queue longer than expected: the ingest function is failing or throttled.',
    );
    if (props.landing) {
      alarm(
        'LandingFreshness',
        props.landing.metricDataFreshness(),
        3600,
        'The Firehose stream has held deliveries for over an hour without writing them to the lake bucket (a bucket policy, a key, or S3): it retries for 24 hours and then drops them. Look at its DeliveryErrors log group.',
      );
      // A burst above the stream's quota falls back for minutes; a whole hour of fallbacks means the stream
      // refuses everything (deleted, a permission, a quota far too small): stored all the same, at the queue's price.
      this.addAlarm(
        'DeliveryStreamRefusing',
        this.metric(METRIC.deliveryStreamFallbacks, { statistic: 'Sum' }),
        1,
        'For an hour the Firehose stream has refused deliveries and the verification function sent them to the delivery queue instead (nothing is lost; each costs the queue price). Its log line names the error: a missing stream or permission, or a Direct PUT quota too small for the traffic (ask AWS to raise it).',
        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        12,
      );
    }
    alarm(
      'IngestErrors',
      props.ingestFunction.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
      1,
      'The ingest function failed (crashed or timed out): its batch will be retried.',
    );
    alarm(
      'VerifyErrors',
      props.verifyFunction.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
      1,
      'The verification function crashed or timed out: the front door answered 5xx (Smartcar retries, then drops the event).',
    );
    this.notifyOnFailedRuns(
      'Workflow',
      props.stateMachine,
      'A subscription workflow execution failed, timed out or was aborted (bad input, bad token, or an error): open it in the Step Functions console.',
    );
    if (props.quarantine) {
      const q = props.quarantine;
      alarm(
        'QuarantineDropped',
        custom(METRIC.quarantineDropped),
        1,
        'The quarantine turned deliveries rejected for their signature away: its hourly budget is used up, by a ' +
          'flood of forged requests or a token mistake above expectedPeakDeliveriesPerSecond. Genuine ones among ' +
          'them are lost once Smartcar gives up; fix the token first (TokenMismatch), then raise the budget ' +
          '(quarantine.maxPerHour) if the peak was understated.',
      );
      alarm(
        'QuarantineWriterFailing',
        new cloudwatch.MathExpression({
          expression: 'FILL(errors, 0) + FILL(dead, 0) + IF(FILL(age, 0) > 600, 1, 0)',
          usingMetrics: {
            errors: q.writerFunction.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
            dead: q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: FIVE_MINUTES,
              statistic: 'Maximum',
            }),
            age: q.queue.metricApproximateAgeOfOldestMessage({ period: FIVE_MINUTES, statistic: 'Maximum' }),
          },
          label: 'quarantine writer errors, dead letters, or a backlog older than 10 minutes',
          period: FIVE_MINUTES,
        }),
        1,
        'The quarantine function is failing (errors, messages in its dead-letter queue, or rejected deliveries ' +
          'waiting more than 10 minutes): they are safe in the queue for 14 days; see the function log, then ' +
          "redrive the quarantine's dead-letter queue (SQS console: Start DLQ redrive).",
      );
    }
    if (props.recoverFunction) {
      alarm(
        'RecoveryErrors',
        props.recoverFunction.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        1,
        'The recovery function failed or timed out while re-verifying quarantined deliveries: nothing it had not ' +
          `delivered is lost (the quarantine keeps it); see its log, then run \`${commands.recoverRejected}\`.`,
      );
    }
    alarm(
      'WorkflowThrottled',
      props.stateMachine.metricThrottled({ period: FIVE_MINUTES, statistic: 'Sum' }),
      1,
      'Step Functions throttled the subscription workflow.',
    );

    if (props.dashboard ?? false) {
      const d = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(6) });
      const search = (metric: MetricName, label: string) =>
        new cloudwatch.MathExpression({
          expression: `SEARCH('{${METRICS_NAMESPACE},EventType,Mode,service} MetricName="${metric}" service="${props.serviceName}"', 'Sum', 300)`,
          label,
          period: FIVE_MINUTES,
        });
      d.addWidgets(
        new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24, height: 3 }),
      );
      d.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Callback requests',
          left: [
            frontDoor.metricRequests({ period: FIVE_MINUTES, label: 'requests' }),
            frontDoor.metricClientErrors({ period: FIVE_MINUTES, label: '4xx' }),
            frontDoor.metricServerErrors({ period: FIVE_MINUTES, label: '5xx' }),
            frontDoor.metricThrottled({ period: FIVE_MINUTES, label: '429 (throttled)' }),
          ],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Callback latency (ms)',
          left: [
            frontDoor.metricLatency({ period: FIVE_MINUTES, statistic: 'p50', label: 'p50' }),
            frontDoor.metricLatency({ period: FIVE_MINUTES, statistic: 'p99', label: 'p99' }),
          ],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Deliveries by event type and mode',
          left: [search(METRIC.deliveries, '')],
          width: 8,
        }),
      );
      d.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Rejections',
          left: [
            custom(METRIC.signatureFailures).with({ label: 'bad signature' }),
            custom(METRIC.rejectedRequests).with({ label: 'malformed / too large' }),
            custom(METRIC.tokenUnavailable).with({ label: 'token unavailable' }),
            custom(METRIC.handOffFailures).with({ label: 'hand-off failed' }),
            custom(METRIC.verifyChallengesAnswered).with({ label: 'VERIFY answered' }),
            custom(METRIC.verifyChallengesRejected).with({ label: 'VERIFY refused' }),
            custom(METRIC.signatureMismatches).with({ label: 'token mismatch' }),
            custom(METRIC.quarantined).with({ label: 'quarantined' }),
            custom(METRIC.quarantineDropped).with({ label: 'quarantine full' }),
            custom(METRIC.acceptedWithPreviousToken).with({ label: 'previous token' }),
          ],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Queue',
          left: [
            props.queue.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, label: 'queued' }),
            props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: FIVE_MINUTES,
              label: 'dead letters',
            }),
          ],
          right: [props.queue.metricApproximateAgeOfOldestMessage({ period: FIVE_MINUTES, label: 'oldest (s)' })],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Lake',
          left: [
            custom(METRIC.recordsWritten).with({ label: 'records' }),
            custom(METRIC.objectsWritten).with({ label: 'objects' }),
            custom(METRIC.duplicatesDropped).with({ label: 'duplicates' }),
            custom(METRIC.ingestFailures).with({ label: 'failed' }),
          ],
          right: [custom(METRIC.ingestLag, 'Maximum').with({ label: 'ingest lag (ms)' })],
          width: 8,
        }),
      );
      d.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Subscription workflow executions',
          left: [
            props.stateMachine.metricStarted({ period: FIVE_MINUTES, statistic: 'Sum', label: 'started' }),
            props.stateMachine.metricSucceeded({ period: FIVE_MINUTES, statistic: 'Sum', label: 'succeeded' }),
            props.stateMachine.metricFailed({ period: FIVE_MINUTES, statistic: 'Sum', label: 'failed' }),
          ],
          width: 12,
        }),
        new cloudwatch.GraphWidget({
          title: 'Function errors',
          left: [
            props.verifyFunction,
            props.ingestFunction,
            ...(props.recoverFunction ? [props.recoverFunction] : []),
            ...(props.quarantine ? [props.quarantine.writerFunction] : []),
            ...props.workflowFunctions,
          ].map((fn) => fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' })),
          width: 12,
        }),
      );
      this.dashboard = d;
    }
  }

  /** An alarm on the alarm topic (for alarm and OK), kept in {@link alarms} under `key`. */
  private addAlarm(
    key: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    description: string,
    comparison = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods = 1,
  ): cloudwatch.Alarm {
    const a = new cloudwatch.Alarm(this, key, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: comparison,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    a.addAlarmAction(new actions.SnsAction(this.alarmTopic));
    a.addOkAction(new actions.SnsAction(this.alarmTopic));
    this.alarms[key] = a;
    return a;
  }

  /**
   * A notification on the alarm topic for every execution of `stateMachine` that fails, times out or is
   * aborted: `<key>RunsFailed: <execution> <status> …` with what to do. Every state machine that runs
   * unattended has one, so no run ends unseen. It is an EventBridge rule on Step Functions' own status
   * events, which cost nothing, not an alarm: an alarm over failed, timed-out and aborted executions reads
   * three metrics and is billed $0.30 a month, and says less (no execution name).
   */
  public notifyOnFailedRuns(key: string, stateMachine: sfn.IStateMachine, description: string): events.Rule {
    const rule = new events.Rule(this, `${key}RunsFailed`, {
      description: `${key}RunsFailed: an execution failed, timed out or was aborted`,
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: [stateMachine.stateMachineArn] },
      },
    });
    rule.addTarget(
      new eventTargets.SnsTopic(this.alarmTopic, {
        message: events.RuleTargetInput.fromText(
          `${key}RunsFailed: execution ${events.EventField.fromPath('$.detail.name')} ended ` +
            `${events.EventField.fromPath('$.detail.status')} (${events.EventField.fromPath('$.detail.executionArn')}). ${description}`,
        ),
      }),
    );
    this.runNotifications[key] = rule;
    return rule;
  }

  /**
   * `WebhookUnhealthy`: the scheduled webhook check published WebhookHealthy 0 (Minimum over one check
   * interval, so a disabled webhook alarms within one interval). Missing data is not breaching: every check
   * that can read the webhook publishes, and one that cannot (401, 403, 404) publishes 0, so no data means
   * the schedule is off or a transient error skipped one check, not a sick webhook.
   */
  public alarmOnWebhookHealth(interval: Duration, checkCommand?: string): cloudwatch.Alarm {
    return this.addAlarm(
      'WebhookUnhealthy',
      this.metric(METRIC.webhookHealthy, { statistic: 'Minimum', period: interval }),
      1,
      'The Smartcar webhook cannot deliver here: it is disabled, its callback URI is unverified, or it points at ' +
        "a callback URL that is not this stack's, or the application cannot read it (401/403/404). If the whole " +
        'fleet went silent at once, this is the first thing to check. In the Dashboard → Webhooks: enable it, ' +
        "press Verify, and set the callback URI to the stack's CallbackUrl output; the reconcile function's log " +
        `line "webhook health" names the problem${checkCommand ? `; check again with ${checkCommand}` : ''}.`,
      cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    );
  }

  /**
   * One of the functions' own metrics (namespace `SmartcarWebhooks`, dimension `service`), e.g.
   * `SignatureFailures`, `RecordsWritten`, `DuplicatesDropped`, `IngestLag`; see METRIC in
   * lambda/contract.ts for the list. `Deliveries` carries EventType and Mode dimensions too: use
   * {@link metricDeliveries} for the total. The ingest function's figures are published only with
   * `detailedMetrics` (IngestFailures without it only when a batch fails).
   * @default - Sum over 5 minutes
   */
  public metric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    if (!(Object.values(METRIC) as string[]).includes(metricName)) {
      throw new ConfigurationError(
        `metric "${metricName}" is not one the functions publish; use one of ${Object.values(METRIC).join(', ')}.`,
      );
    }
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: this.serviceName },
      statistic: 'Sum',
      period: FIVE_MINUTES,
      ...props,
    });
  }

  /** Authentic deliveries stored, all event types and modes together (published with `detailedMetrics`). */
  public metricDeliveries(props: cloudwatch.MathExpressionOptions = {}): cloudwatch.MathExpression {
    const period = props.period ?? FIVE_MINUTES;
    return new cloudwatch.MathExpression({
      expression: `SUM(SEARCH('{${METRICS_NAMESPACE},EventType,Mode,service} MetricName="${METRIC.deliveries}" service="${this.serviceName}"', 'Sum', ${period.toSeconds()}))`,
      label: 'deliveries',
      ...props,
      period,
    });
  }
}
