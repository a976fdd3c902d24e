/**
 * `SmartcarWebhooks`: the reusable construct. Receives Smartcar webhooks on an API Gateway HTTP API (or,
 * with `endpoint: ReceiverEndpoint.FUNCTION_URL`, a Lambda Function URL), answers VERIFY, authenticates
 * every delivery by `SC-Signature`, buffers it durably (a Firehose stream, or the delivery queue) and writes
 * it to an S3 data lake. Bring your own
 * bucket or secret, or let it create them with safe defaults.
 */
import { createHash } from 'node:crypto';
import { Duration, RemovalPolicy, SecretValue, Stack, Token } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  DEFAULT_LANDING_PREFIX,
  DEFAULT_TOKEN_GRACE_SECONDS,
  ENV,
  METRIC,
  PLACEHOLDER_SECRET_KEY,
} from '../lambda/contract';
import { Catalog, type CatalogOptions } from './catalog';
import { Compaction, type CompactionOptions } from './compaction';
import { DataLake, type FleetEventFilter, INGEST_TIMEOUT, type LakeLifecycle } from './data-lake';
import { Erasure, type ErasureOptions } from './erasure';
import { FleetCheck, type FleetCheckOptions } from './fleet-check';
import { setServiceName } from './function';
import { DEFAULT_DELIVERY_BUFFER, DELIVERY_BUFFERS, DeliveryBuffer, Landing } from './landing';
import { Monitoring, type MonitoringOptions } from './monitoring';
import { checkOutputsPrefix, emitOutputs, type OutputsOptions, operatorCommands } from './operations';
import { Quarantine, type QuarantineOptions } from './quarantine';
import { Receiver, type ReceiverEndpoint, type ReceiverThrottle } from './receiver';
import { Reconcile, type ReconcileOptions } from './reconcile';
import { type RetentionOptions, resolveRetention } from './retention';
import { SubscriptionWorkflow, type SubscriptionWorkflowOptions } from './subscription-workflow';
import { ConfigurationError, checkBucketName, checkEmail, checkInteger, checkSecretName } from './validation';

/** Where and which normalized events the ingest function publishes. */
export interface FleetEventsOptions extends FleetEventFilter {
  /** Publish events. @default false */
  readonly enabled?: boolean;
  /** A bus to publish to instead of a new one. @default - a new bus */
  readonly existingEventBus?: events.IEventBus;
}

export interface SmartcarWebhooksProps {
  /**
   * The Smartcar webhook id (Dashboard → Webhooks), used by the subscription workflow as its default.
   * @default - none: callers name the webhook per execution
   */
  readonly webhookId?: string;
  /**
   * A secret that already holds the application management token (the plain token as its string).
   * @default - a new secret is created, holding a placeholder until you put the token in it
   */
  readonly existingManagementTokenSecret?: secretsmanager.ISecret;
  /**
   * Overrides for the secret the construct creates; cannot be combined with `existingManagementTokenSecret`.
   * @default - a secret with a generated name and a placeholder value
   */
  readonly managementTokenSecretProps?: secretsmanager.SecretProps;
  /**
   * A bucket to write the lake into instead of creating one.
   * @default - a new bucket is created
   */
  readonly existingBucket?: s3.IBucket;
  /**
   * Overrides for the bucket the construct creates; cannot be combined with `existingBucket`.
   * @default - private, TLS-only, SSE-S3, versioned, retained on stack deletion
   */
  readonly bucketProps?: s3.BucketProps;
  /**
   * What happens to the created lake bucket when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
  /**
   * How long each place keeps deliveries: `raw`, `curated`, `quarantine`, `work`, `requestLog`,
   * `queryResults`, `noncurrentVersions`. The erasure ledger and receipts are never expired.
   * @default - raw and curated kept until set; quarantine 14 days, work 30, request log 7, query results 30, noncurrent versions 30
   */
  readonly retention?: RetentionOptions;
  /**
   * Storage-class transitions of the raw zone in the created bucket (the advanced form; to keep raw
   * objects N days, set `retention.raw`). @default - no transitions
   */
  readonly lifecycle?: LakeLifecycle;
  /** Key prefix of the raw zone. @default 'raw' */
  readonly rawPrefix?: string;
  /**
   * The front door: `ReceiverEndpoint.FUNCTION_URL` (a Lambda Function URL: no API Gateway charge,
   * throttled by reserved concurrency) or `ReceiverEndpoint.HTTP_API` (an API Gateway HTTP API: access
   * logs, custom domains, a stage throttle, $1.00 per million requests). See the cost guide for the figures.
   * @default ReceiverEndpoint.HTTP_API
   */
  readonly endpoint?: ReceiverEndpoint;
  /** Path of the callback route. @default '/webhooks' */
  readonly callbackPath?: string;
  /**
   * Path of a second route on the same front door for the webhook's "vehicle error callback URI" in the
   * Smartcar Dashboard: VEHICLE_ERROR deliveries, verified and stored exactly like the callback's. Must
   * differ from `callbackPath`. Without it Smartcar sends errors to the callback URI. @default - none
   */
  readonly errorCallbackPath?: string;
  /**
   * The most deliveries per second the front door must take without answering 429: scheduled webhooks of a
   * whole fleet arrive together at the top of the hour. Sizes the HTTP API's throttle or the Function URL's
   * reserved concurrency.
   * @default 500
   */
  readonly expectedPeakDeliveriesPerSecond?: number;
  /**
   * HTTP API stage throttling (with `ReceiverEndpoint.HTTP_API` only), instead of the one sized from the
   * expected peak.
   * @default - rate and burst 5 × expectedPeakDeliveriesPerSecond, at least 50 and 100 (2,500 each at the default peak)
   */
  readonly throttle?: ReceiverThrottle;
  /**
   * Reserved concurrency of the verification function behind a Function URL, instead of the one sized from
   * the expected peak (it comes out of the account's Lambda concurrency).
   * @default - sized from expectedPeakDeliveriesPerSecond
   */
  readonly reservedConcurrency?: number;
  /** How long the verification function caches the token. @default Duration.minutes(5) */
  readonly tokenCacheTtl?: Duration;
  /**
   * How long after a rotation (a new secret version) deliveries signed with the previous token are still
   * accepted; VERIFY is always answered with the current one. @default Duration.hours(24)
   */
  readonly tokenGracePeriod?: Duration;
  /**
   * The quarantine of deliveries rejected only for their signature, and their recovery (exposed as
   * `quarantine`). @default - see {@link QuarantineOptions}
   */
  readonly quarantine?: QuarantineOptions;
  /**
   * How deliveries travel from the verification to the ingest function: a Kinesis Data Firehose stream
   * writing buffered landing objects (about $0.15 per million small deliveries, a few raw objects per
   * buffering interval), or one delivery queue message each (0.3's way: $0.40 per million, and polling).
   * With Firehose, the queue stays for the landing notifications, the deliveries the stream refuses
   * (throttled: the verification function falls back to the queue) and recovered ones.
   * @default DeliveryBuffer.FIREHOSE
   */
  readonly deliveryBuffer?: DeliveryBuffer;
  /**
   * With the Firehose buffer: how long it buffers deliveries before writing a landing object (0 to 900 s).
   * Longer means fewer objects, later arrival in the lake (durable in Firehose meanwhile); under 60 s
   * Firehose writes by multipart upload, a few more S3 requests per object.
   * @default Duration.minutes(5)
   */
  readonly deliveryBufferInterval?: Duration;
  /** With the Firehose buffer: the landing object size that is written before the interval is up (MiB, 1 to 64). @default 16 */
  readonly deliveryBufferSizeMiB?: number;
  /** Most messages per ingest invocation (fewer, bigger lake objects). @default 1000 */
  readonly ingestBatchSize?: number;
  /**
   * How long the ingest function waits to fill a batch (at most 5 minutes). With the queue buffer, the
   * longer, the fewer raw objects, receives and invocations (`npm run bench:cost`), and the later a delivery
   * reaches the lake (it is durable in the queue meanwhile). With the Firehose buffer, the stream has done
   * the batching: the window only gathers the deliveries it refused.
   * @default - Duration.minutes(5) with the queue buffer, Duration.minutes(1) with Firehose
   */
  readonly ingestMaxBatchingWindow?: Duration;
  /**
   * Store a delivery retried after its first copy was stored only once in the raw zone (DynamoDB). The
   * curated layer and the views count each event once either way; see the cost guide.
   * @default false
   */
  readonly deduplication?: boolean;
  /** How long stored eventIds are remembered. @default Duration.days(7) */
  readonly deduplicationWindow?: Duration;
  /**
   * What happens to the deduplication table when the stack is deleted (it holds only expiring ids).
   * @default RemovalPolicy.DESTROY
   */
  readonly deduplicationTableRemovalPolicy?: RemovalPolicy;
  /**
   * Keep each vehicle's current state in a DynamoDB table (opt-in; the views answer the same from the
   * lake, and `npx smartcar-webhooks rebuild-state` rebuilds the table from it). @default false
   */
  readonly vehicleStateTable?: boolean;
  /**
   * Events for other teams: one normalized EventBridge event per stored delivery (source
   * `smartcar.webhooks`, detail-type = the event type), published after the record is in the lake.
   * @default - off
   */
  readonly events?: FleetEventsOptions;
  /** Most concurrent ingest invocations (2 to 1000). @default 2 */
  readonly ingestMaxConcurrency?: number;
  /** Failed ingest attempts before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /**
   * What happens to the delivery queue and the dead-letter queue when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly queueRemovalPolicy?: RemovalPolicy;
  /** Glue catalog and Athena workgroup over the lake (exposed as `catalog`). @default - see {@link CatalogOptions} */
  readonly catalog?: CatalogOptions;
  /**
   * Alarms, their SNS topic, the dashboard (off by default: $3.00 a month) and the ingest function's
   * per-batch metrics (off by default), exposed as `monitoring`. Alarms come with the features they watch:
   * reconcile's with `reconcile.enabled`, the fleet check's with `fleetCheck.enabled`, the quarantine's
   * with the quarantine, the compaction's with `compaction.enabled`. @default - see {@link MonitoringOptions}
   */
  readonly monitoring?: MonitoringOptions;
  /**
   * The vehicle subscription workflow (exposed as `subscriptionWorkflow`).
   * @default - see {@link SubscriptionWorkflowOptions}
   */
  readonly subscriptionWorkflow?: SubscriptionWorkflowOptions;
  /**
   * Reconciliation with the application's client credentials: keeps every connected vehicle subscribed,
   * on schedules that are DISABLED until `reconcile.enabled` is true (exposed as `reconcile`).
   * @default - see {@link ReconcileOptions}
   */
  readonly reconcile?: ReconcileOptions;
  /**
   * The scheduled fleet check (silent vehicles as a metric, an alarm, a report), exposed as `fleetCheck`;
   * its schedule is DISABLED until `fleetCheck.enabled`. @default - see {@link FleetCheckOptions}
   */
  readonly fleetCheck?: FleetCheckOptions;
  /**
   * The curated layer's scheduled compaction (closed hours of raw NDJSON into Parquet, one row per
   * eventId, with Athena), exposed as `compaction`. @default - see {@link CompactionOptions}
   */
  readonly compaction?: CompactionOptions;
  /**
   * The erase state machine (one user's or vehicle's records removed everywhere, with a ledger and a
   * receipt), exposed as `erasure`. @default - enabled
   */
  readonly erasure?: ErasureOptions;
  /** Key prefix of the curated layer. @default 'curated' */
  readonly curatedPrefix?: string;
  /** Retention of every log group the construct creates. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log groups when the stack is deleted. @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Emit the instance's stack outputs (callback URL, secret, buckets, queues, state machines, …), which
   * the operations CLI reads: `npx smartcar-webhooks <command> --stack <stack> [--instance <prefix>]`.
   * Give each instance of a stack its own prefix.
   * @default - no outputs: the alarm texts name the CLI's explicit flags instead of `--stack`
   */
  readonly outputs?: OutputsOptions;
}

export class SmartcarWebhooks extends Construct {
  /** The webhook id given in props, if any. */
  public readonly webhookId?: string;
  /** The secret holding the application management token. */
  public readonly managementTokenSecret: secretsmanager.ISecret;
  /** The receiver: front door (Function URL or HTTP API), verification function, queue and dead-letter queue. */
  public readonly receiver: Receiver;
  /**
   * The landing zone and its Firehose stream; the verification function puts deliveries to the stream with
   * `DeliveryBuffer.FIREHOSE` (the default), and it stands idle with the queue buffer.
   */
  public readonly landing: Landing;
  /** The data lake: bucket and ingest function. */
  public readonly dataLake: DataLake;
  /** The URL to paste into the Smartcar Dashboard as the webhook's callback URI. */
  public readonly callbackUrl: string;
  /** The URL to paste as the vehicle error callback URI, when `errorCallbackPath` is set. */
  public readonly errorCallbackUrl?: string;
  /** The vehicle subscription workflow (state machine and task functions). */
  public readonly subscriptionWorkflow: SubscriptionWorkflow;
  /** Alarms, alarm topic and dashboard. */
  public readonly monitoring: Monitoring;
  /** Glue database and table, Athena workgroup, named queries. */
  public readonly catalog: Catalog;
  /** The quarantine bucket and the recovery function, unless turned off. */
  public readonly quarantine?: Quarantine;
  /** The bus normalized events go to, when `events.enabled`. */
  public readonly eventBus?: events.IEventBus;
  /** The reconcile state machine, its function, schedules and (with `reconcile.enabled`) credentials secret. */
  public readonly reconcile: Reconcile;
  /** The scheduled fleet check: silent vehicles metric, alarm and report. */
  public readonly fleetCheck: FleetCheck;
  /** Compacts the raw zone into the curated layer. */
  public readonly compaction: Compaction;
  /** The erase state machine and its function (absent when `erasure.enabled` is false). */
  public readonly erasure?: Erasure;
  /**
   * The Powertools service name of the instance: the `service` dimension of its functions' metrics, which
   * its alarms and dashboard filter on. The first instance of a stack has the stack name (the name every
   * deployment had before); any other, the stack name, its path and a short hash (see {@link defaultServiceName}).
   */
  public readonly serviceName: string;
  /** The prefix of the instance's stack outputs, when it emits them. */
  public readonly outputsPrefix?: string;

  constructor(scope: Construct, id: string, props: SmartcarWebhooksProps = {}) {
    super(scope, id);
    if (props.existingManagementTokenSecret && props.managementTokenSecretProps) {
      throw new ConfigurationError(
        'Pass either existingManagementTokenSecret or managementTokenSecretProps, not both: the props only shape a secret this construct creates.',
      );
    }
    checkSecretName('managementTokenSecretProps.secretName', props.managementTokenSecretProps?.secretName);
    checkBucketName('bucketProps.bucketName', props.bucketProps?.bucketName);
    checkEmail('monitoring.alarmEmail', props.monitoring?.alarmEmail);
    const stack = Stack.of(this);
    const others = stack.node
      .findAll()
      .filter((c): c is SmartcarWebhooks => c instanceof SmartcarWebhooks && c !== this && Stack.of(c) === stack);
    if (props.outputs) {
      const prefix = props.outputs.prefix ?? '';
      checkOutputsPrefix(prefix);
      const same = others.find((o) => o.outputsPrefix === prefix);
      if (same)
        throw new ConfigurationError(
          `outputs.prefix ${JSON.stringify(prefix)} is already used by ${same.node.path} in stack ${stack.node.id}; give each instance its own.`,
        );
      this.outputsPrefix = prefix;
    }
    this.serviceName = defaultServiceName(this, new Set(others.map((o) => o.serviceName)));
    // Every function and state machine below publishes under it (HouseFunction, Compaction read it).
    setServiceName(this, this.serviceName);
    const deliveryBuffer = props.deliveryBuffer ?? DEFAULT_DELIVERY_BUFFER;
    // Checked for JavaScript callers and values cast from strings.
    if (!DELIVERY_BUFFERS.includes(deliveryBuffer)) {
      throw new ConfigurationError(
        `deliveryBuffer "${deliveryBuffer}" is not a buffer: use DeliveryBuffer.FIREHOSE or DeliveryBuffer.QUEUE.`,
      );
    }
    const firehoseBuffer = deliveryBuffer === DeliveryBuffer.FIREHOSE;
    if (!firehoseBuffer && (props.deliveryBufferInterval || props.deliveryBufferSizeMiB !== undefined)) {
      throw new ConfigurationError(
        'deliveryBufferInterval and deliveryBufferSizeMiB shape the Firehose buffer; with DeliveryBuffer.QUEUE leave them unset (ingestMaxBatchingWindow batches the queue).',
      );
    }
    const batchingWindow =
      props.ingestMaxBatchingWindow ?? (firehoseBuffer ? Duration.minutes(1) : Duration.minutes(5));
    if (batchingWindow.toSeconds() > 300) {
      throw new ConfigurationError(
        `ingestMaxBatchingWindow is ${batchingWindow.toSeconds()} s; Lambda allows at most 300 s.`,
      );
    }
    const maxConcurrency = props.ingestMaxConcurrency ?? 2;
    checkInteger('ingestMaxConcurrency', maxConcurrency, 2, 1000, 'what Lambda accepts');
    checkInteger('ingestBatchSize', props.ingestBatchSize, 1, 10000, 'what an SQS event source accepts');
    checkInteger('maxReceiveCount', props.maxReceiveCount, 1, 1000, 'what SQS accepts');
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const retention = resolveRetention(props.retention, {
      lakeExpireAfter: props.lifecycle?.expireAfter,
      noncurrentVersionExpiration: props.lifecycle?.noncurrentVersionExpiration,
      quarantineRetention: props.quarantine?.retention,
      workRetention: props.subscriptionWorkflow?.workRetention,
      resultsRetention: props.catalog?.resultsRetention,
      compactionLookbackDays: props.compaction?.lookbackDays,
    });
    const logRemovalPolicy = props.logRemovalPolicy ?? RemovalPolicy.DESTROY;
    this.webhookId = props.webhookId;

    this.managementTokenSecret =
      props.existingManagementTokenSecret ??
      new secretsmanager.Secret(this, 'ManagementToken', {
        description:
          'Smartcar application management token (Dashboard → Configuration). Replace the whole value with the plain token.',
        // A recognisable placeholder: the receiver answers 503 and logs how to set the token while it
        // sees this, rather than signing challenges with a random value.
        secretStringValue: SecretValue.unsafePlainText(
          JSON.stringify({ [PLACEHOLDER_SECRET_KEY]: 'replace this whole value with the management token' }),
        ),
        ...props.managementTokenSecretProps,
      });

    this.receiver = new Receiver(this, 'Receiver', {
      managementTokenSecret: this.managementTokenSecret,
      endpoint: props.endpoint,
      callbackPath: props.callbackPath,
      errorCallbackPath: props.errorCallbackPath,
      expectedPeakDeliveriesPerSecond: props.expectedPeakDeliveriesPerSecond,
      throttle: props.throttle,
      reservedConcurrency: props.reservedConcurrency,
      tokenCacheTtl: props.tokenCacheTtl,
      maxReceiveCount: props.maxReceiveCount,
      queueRemovalPolicy: props.queueRemovalPolicy,
      // AWS's guidance for SQS event sources: at least six times the function timeout, plus the window.
      queueVisibilityTimeout: Duration.seconds(INGEST_TIMEOUT.toSeconds() * 6 + batchingWindow.toSeconds()),
      logRetention,
      logRemovalPolicy,
    });
    if (props.events?.enabled) {
      this.eventBus =
        props.events.existingEventBus ??
        new events.EventBus(this, 'EventBus', { description: 'Smartcar deliveries stored in the lake, normalized' });
    }
    this.dataLake = new DataLake(this, 'DataLake', {
      eventBus: this.eventBus,
      eventFilter: props.events
        ? { eventTypes: props.events.eventTypes, signalNames: props.events.signalNames }
        : undefined,
      queue: this.receiver.queue,
      landingPrefix: DEFAULT_LANDING_PREFIX,
      existingBucket: props.existingBucket,
      bucketProps: props.bucketProps,
      bucketRemovalPolicy: props.bucketRemovalPolicy,
      lifecycle: props.lifecycle,
      rawRetention: retention.raw,
      curatedRetention: retention.curated,
      noncurrentVersionRetention: retention.noncurrentVersions,
      curatedPrefix: props.curatedPrefix,
      rawPrefix: props.rawPrefix,
      batchSize: props.ingestBatchSize,
      maxBatchingWindow: batchingWindow,
      maxConcurrency,
      deduplication: props.deduplication,
      deduplicationWindow: props.deduplicationWindow,
      deduplicationTableRemovalPolicy: props.deduplicationTableRemovalPolicy,
      vehicleStateTable: props.vehicleStateTable,
      logRetention,
      logRemovalPolicy,
    });
    // The landing zone is read with either buffer, and its stream kept (idle, no charge, with the queue
    // buffer): a switch between them then loses nothing that was buffered.
    this.landing = new Landing(this, 'Landing', {
      bucket: this.dataLake.bucket,
      queue: this.receiver.queue,
      verifyFunction: firehoseBuffer ? this.receiver.verifyFunction : undefined,
      ingestFunction: this.dataLake.ingestFunction,
      bufferingInterval: props.deliveryBufferInterval,
      bufferingSizeMiB: props.deliveryBufferSizeMiB,
      logRetention,
      logRemovalPolicy,
    });
    this.callbackUrl = this.receiver.callbackUrl;
    this.errorCallbackUrl = this.receiver.errorCallbackUrl;
    const tokenGracePeriod = props.tokenGracePeriod ?? Duration.seconds(DEFAULT_TOKEN_GRACE_SECONDS);
    this.receiver.verifyFunction.addEnvironment(ENV.tokenGraceSeconds, String(tokenGracePeriod.toSeconds()));
    if (props.quarantine?.enabled ?? true) {
      this.quarantine = new Quarantine(this, 'Quarantine', {
        ...props.quarantine,
        retention: retention.quarantine,
        verifyFunction: this.receiver.verifyFunction,
        expectedPeakDeliveriesPerSecond: props.expectedPeakDeliveriesPerSecond,
        queueRemovalPolicy: props.queueRemovalPolicy,
        managementTokenSecret: this.managementTokenSecret,
        queue: this.receiver.queue,
        dedupTable: this.dataLake.dedupTable,
        deduplicationWindow: props.deduplicationWindow,
        tokenGracePeriod,
        logRetention,
        logRemovalPolicy,
      });
    }
    this.catalog = new Catalog(this, 'Catalog', {
      ...props.catalog,
      resultsRetention: retention.queryResults,
      bucket: this.dataLake.bucket,
      rawPrefix: this.dataLake.rawPrefix,
      curatedPrefix: props.curatedPrefix,
    });
    this.compaction = new Compaction(this, 'Compaction', {
      ...props.compaction,
      // Its failed runs are notified through the alarm topic (below), which costs nothing.
      failedRunsAlarm: false,
      catalog: this.catalog,
      bucket: this.dataLake.bucket,
      logRetention,
      logRemovalPolicy,
    });
    this.subscriptionWorkflow = new SubscriptionWorkflow(this, 'SubscriptionWorkflow', {
      managementTokenSecret: this.managementTokenSecret,
      webhookId: props.webhookId,
      ...props.subscriptionWorkflow,
      workRetention: retention.work,
      logRetention,
      logRemovalPolicy,
    });
    const workflow = this.subscriptionWorkflow;
    this.reconcile = new Reconcile(this, 'Reconcile', {
      ...props.reconcile,
      managementTokenSecret: this.managementTokenSecret,
      workBucket: workflow.workBucket,
      webhookId: props.webhookId,
      allowedWebhookIds: props.subscriptionWorkflow?.allowedWebhookIds,
      callbackUrl: this.callbackUrl,
      errorCallbackUrl: this.errorCallbackUrl,
      callbackPath: props.callbackPath,
      errorCallbackPath: props.errorCallbackPath,
      logRetention,
      logRemovalPolicy,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      ...props.monitoring,
      receiver: this.receiver,
      verifyFunction: this.receiver.verifyFunction,
      ingestFunction: this.dataLake.ingestFunction,
      recoverFunction: this.quarantine?.recoverFunction,
      quarantine: this.quarantine,
      workflowFunctions: [
        workflow.planFunction,
        workflow.vehicleFunction,
        workflow.resultsFunction,
        this.reconcile.reconcileFunction,
      ],
      queue: this.receiver.queue,
      deadLetterQueue: this.receiver.deadLetterQueue,
      landing: this.landing.streaming ? this.landing : undefined,
      stateDeadLetterQueue: this.dataLake.stateDeadLetterQueue,
      stateMachine: workflow.stateMachine,
      serviceName: this.serviceName,
      commands: operatorCommands(
        this,
        this.outputsPrefix === undefined ? undefined : { stackName: stack.stackName, prefix: this.outputsPrefix },
      ),
    });
    this.fleetCheck = new FleetCheck(this, 'FleetCheck', {
      ...props.fleetCheck,
      catalog: this.catalog,
      serviceName: this.serviceName,
      logRetention,
      logRemovalPolicy,
    });
    // Per-batch figures only when asked for (or charted): each is a custom metric billed every hour.
    this.dataLake.ingestFunction.addEnvironment(ENV.detailedMetrics, String(this.monitoring.detailedMetrics));
    const notify = new actions.SnsAction(this.monitoring.alarmTopic);
    // Alarms cost $0.10 a month each whether or not what they watch runs: they come with the features that
    // are on (the fleet check's and the compaction's create theirs only when enabled).
    for (const a of [this.fleetCheck.silentAlarm, this.compaction.failedAlarm, this.compaction.lateAlarm]) {
      a?.addAlarmAction(notify);
      a?.addOkAction(notify);
    }
    if (props.compaction?.enabled ?? true)
      this.monitoring.notifyOnFailedRuns(
        'Compaction',
        this.compaction.stateMachine,
        'A compaction run failed; the views keep reading those hours from the raw zone. Open the failed execution: ' +
          'Athena.QueryFailed names the statement and its Athena query id (the next run retries the same objects); ' +
          'Compaction.AlreadyRunning means another run held the lock (start this one again after it ends). A run ' +
          'that timed out or was aborted gives its lease back at most 15 minutes after the 2-hour timeout.',
      );
    if (props.reconcile?.enabled) {
      this.monitoring.notifyOnFailedRuns(
        'Reconcile',
        this.reconcile.stateMachine,
        'A reconcile run failed, timed out or was aborted. Reconcile.PruneStopped or Reconcile.ListingAnomaly: it ' +
          "deleted nothing it could not prove gone, and the execution's cause gives the reason in one line and the " +
          'report; Reconcile.Runaway: a listing or a 429 would not end; anything else: see the failed step.',
      );
      // The webhook health check runs with reconcile (its credentials): alarmed only when switched on.
      if (this.reconcile.webhookHealthSchedule)
        this.monitoring.alarmOnWebhookHealth(this.reconcile.webhookHealthInterval);
    }
    if (props.fleetCheck?.enabled) {
      this.monitoring.notifyOnFailedRuns(
        'FleetCheck',
        this.fleetCheck.stateMachine,
        'A fleet check run failed, timed out or was aborted: the SilentVehicles figures are stale; open the execution for the Athena error.',
      );
    }
    if (props.erasure?.enabled ?? true) {
      this.erasure = new Erasure(this, 'Erasure', {
        lakeBucket: this.dataLake.bucket,
        rawPrefix: this.dataLake.rawPrefix,
        workBucket: workflow.workBucket,
        stateTable: this.dataLake.vehicleStateTable,
        dedupTable: this.dataLake.dedupTable,
        quarantineBucket: this.quarantine?.bucket,
        deadLetterQueue: this.receiver.deadLetterQueue,
        stateDeadLetterQueue: this.dataLake.stateDeadLetterQueue,
        athenaResultsBucket: this.catalog.resultsBucket,
        lockTable: this.compaction.lockTable,
        catalog: this.catalog,
        managementTokenSecret: this.managementTokenSecret,
        clientCredentialsSecret: this.reconcile.clientCredentialsSecret,
        webhookId: props.webhookId,
        logRetention,
        logRemovalPolicy,
      });
      this.monitoring.notifyOnFailedRuns(
        'Erase',
        this.erasure.stateMachine,
        'An erasure failed, timed out or was aborted: the subject is only partly erased (the ledger entry stays ' +
          '"started", so ingest, replay, redrive and compaction already drop their records). Read the one-line cause; ' +
          'Erasure.LockBusy: start it again after the compaction named ends; anything else: fix it and start the ' +
          'same input again, which finishes the job (a stopped or timed-out run gives its lock back by itself).',
      );
    }
    if (this.outputsPrefix !== undefined) emitOutputs(this, this.outputsPrefix);
  }

  /** Lets `grantee` start executions of the subscription workflow (what the console's Start execution needs). */
  public grantStartSubscriptionWorkflow(grantee: iam.IGrantable): iam.Grant {
    return this.subscriptionWorkflow.stateMachine.grantStartExecution(grantee);
  }

  /** Lets `grantee` read the lake: the raw zone and the curated layer (list and get objects under their prefixes). */
  public grantReadLake(grantee: iam.IGrantable): iam.Grant {
    return this.dataLake.bucket
      .grantRead(grantee, `${this.dataLake.rawPrefix}/*`)
      .combine(this.dataLake.bucket.grantRead(grantee, `${this.catalog.curatedPrefix}/*`));
  }

  /** Lets `grantee` query the lake in the Athena workgroup (see {@link Catalog.grantQuery}). */
  public grantQueryLake(grantee: iam.IGrantable): iam.Grant {
    return this.catalog.grantQuery(grantee);
  }

  /** One of the functions' own metrics, by name (see {@link Monitoring.metric}). */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metric(metricName, props);
  }

  /**
   * Authentic deliveries stored, all event types and modes together. Published only with
   * `monitoring.detailedMetrics` (or the dashboard): without it this metric has no data.
   */
  public metricDeliveries(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return this.monitoring.metricDeliveries(props);
  }

  /** Deliveries rejected for a missing or wrong SC-Signature. */
  public metricSignatureFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metric(METRIC.signatureFailures, props);
  }

  /** Records written to the lake. Published only with `monitoring.detailedMetrics` (or the dashboard). */
  public metricRecordsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitoring.metric(METRIC.recordsWritten, props);
  }
}

/**
 * The default service name of an instance, by the Catalog's rule (see `defaultDatabaseName`): the first
 * instance of a stack keeps the stack name, so the metrics, alarms and dashboards of a deployment made
 * before instances had their own keep their dimension; any other is the stack name, its path in the stack
 * and a hash of both, e.g. `Platform-Staging-1a2b3c4d`, so two instances never publish, alarm or chart
 * under the same `service` (CloudWatch allows letters, digits and `-` here without quoting in SEARCH).
 *
 * Adding a second instance never renames the first; removing the first of two renames the other.
 */
export function defaultServiceName(instance: Construct, taken: ReadonlySet<string>): string {
  const stack = Stack.of(instance);
  if (!taken.has(stack.stackName)) return stack.stackName;
  // A nested stack's name is known only at deploy time: its path in the app stands in for it.
  const stackName = Token.isUnresolved(stack.stackName) ? stack.node.path : stack.stackName;
  const relative = instance.node.path.slice(stack.node.path.length + 1);
  const hash = createHash('sha256').update(`${stackName}\0${relative}`).digest('hex').slice(0, 8);
  const readable = (s: string) =>
    s
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 64);
  return [readable(stackName), readable(relative), hash].filter(Boolean).join('-');
}
