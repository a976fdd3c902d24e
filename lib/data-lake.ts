/**
 * The S3 data lake and the function that fills it: a private, TLS-only, encrypted, versioned bucket
 * (or one the caller brings) and the ingest function that drains the delivery queue into batched gzip
 * NDJSON objects under Hive-style partitions.
 */
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaEvents from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_NONCURRENT_VERSION_DAYS,
  ENV,
  ERASURE_LEDGER_KEY,
  INGEST_TIMEOUT_SECONDS,
} from '../lambda/contract';
import { HouseFunction } from './function';
import { privateBucket } from './private-bucket';
import { lakeLifecycleRules } from './retention';
import { ConfigurationError } from './validation';

/**
 * Storage-class rules for the raw zone (the advanced form; how long things are kept is `retention`).
 * Transitions apply only to raw objects over 128 KB (the rule says so in its size filter): smaller ones
 * would be billed as 128 KB in Standard-IA or Glacier IR and never pay back (see lib/retention.ts).
 */
export interface LakeLifecycle {
  /**
   * Move raw objects over 128 KB to S3 Standard-IA this long after they are written (30 days at the least).
   * @default - never (before 0.4.0: 30 days, which S3 skipped for the usual 84 KB object anyway)
   */
  readonly infrequentAccessAfter?: Duration;
  /**
   * Keep every object in S3 Standard, whatever the other settings say.
   * @default false
   */
  readonly disableTransition?: boolean;
  /**
   * Move raw objects over 128 KB to Glacier Instant Retrieval this long after they are written.
   * @default - never
   */
  readonly glacierInstantRetrievalAfter?: Duration;
  /**
   * Delete raw objects this long after they are written. Same as `retention.raw`, which is the one to use.
   * @default - never: the lake keeps everything
   */
  readonly expireAfter?: Duration;
  /**
   * Delete overwritten or deleted versions this long after they stop being current. Same as
   * `retention.noncurrentVersions`.
   * @default Duration.days(30)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Abort multipart uploads left incomplete this long.
   * @default Duration.days(7)
   */
  readonly abortIncompleteMultipartUploadAfter?: Duration;
}

/** Which normalized events are published. */
export interface FleetEventFilter {
  /** Only these event types (e.g. ['VEHICLE_ERROR']). @default - all */
  readonly eventTypes?: string[];
  /** VEHICLE_STATE events carry only these signals (name or code), and are skipped when none is left. @default - all */
  readonly signalNames?: string[];
}

export interface DataLakeProps {
  /** The queue the receiver fills. */
  readonly queue: sqs.IQueue;
  /**
   * Key prefix of the landing zone Firehose writes to, with the Firehose buffer: a created bucket gets a
   * lifecycle rule for it, and the raw and curated prefixes must not overlap it. @default - no landing zone
   */
  readonly landingPrefix?: string;
  /**
   * A bucket to write into instead of creating one. Its policies and lifecycle stay yours.
   * @default - a new bucket is created
   */
  readonly existingBucket?: s3.IBucket;
  /**
   * Overrides for the bucket the construct creates; cannot be combined with `existingBucket`.
   * @default - private, TLS-only, SSE-S3, versioned, retained on stack deletion
   */
  readonly bucketProps?: s3.BucketProps;
  /**
   * What happens to the created bucket when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
  /** Storage-class transitions of the raw zone in the created bucket. @default - none */
  readonly lifecycle?: LakeLifecycle;
  /** How long the created bucket keeps raw objects (`retention.raw`). @default - `lifecycle.expireAfter`, else kept */
  readonly rawRetention?: Duration;
  /** How long the created bucket keeps curated Parquet files (`retention.curated`). @default - kept */
  readonly curatedRetention?: Duration;
  /**
   * How long the created bucket keeps noncurrent versions of raw and curated objects (`retention.noncurrentVersions`).
   * @default - `lifecycle.noncurrentVersionExpiration`, else 30 days
   */
  readonly noncurrentVersionRetention?: Duration;
  /** Key prefix of the curated layer, which the created bucket's curated rules cover. @default 'curated' */
  readonly curatedPrefix?: string;
  /** Key prefix of the raw zone. @default 'raw' */
  readonly rawPrefix?: string;
  /** Most messages handed to one ingest invocation. @default 1000 */
  readonly batchSize?: number;
  /** How long the ingest function waits to fill a batch. @default Duration.minutes(5) */
  readonly maxBatchingWindow?: Duration;
  /**
   * Remember stored eventIds (DynamoDB, on demand, with TTL) so that a delivery retried after its first
   * copy was stored is not stored again in the raw zone. Off by default: the curated layer and the views
   * count each event once anyway, and the table would nearly double the cost per delivery (the cost
   * guide gives both figures). Turn it on when consumers of the raw zone or of the events must not see
   * a retried copy.
   * @default false
   */
  readonly deduplication?: boolean;
  /** How long stored eventIds are remembered (Smartcar suggests 7 days or more). @default Duration.days(7) */
  readonly deduplicationWindow?: Duration;
  /**
   * What happens to the deduplication table when the stack is deleted. It holds only expiring ids:
   * losing it means a possible duplicate, never a lost delivery.
   * @default RemovalPolicy.DESTROY
   */
  readonly deduplicationTableRemovalPolicy?: RemovalPolicy;
  /**
   * Keep each vehicle's current state (latest value of each signal by its own time, last delivery,
   * make/model) in a DynamoDB table, updated by the ingest function after the lake write. @default false
   */
  readonly vehicleStateTable?: boolean;
  /** What happens to the vehicle-state table on stack deletion (it can be rebuilt from the lake). @default RemovalPolicy.DESTROY */
  readonly vehicleStateTableRemovalPolicy?: RemovalPolicy;
  /** The bus the ingest function publishes normalized events to, after the lake write. @default - no events */
  readonly eventBus?: events.IEventBus;
  /** Which events to publish. @default - every stored delivery, every signal */
  readonly eventFilter?: FleetEventFilter;
  /** Most concurrent ingest invocations (2 to 1000); fewer means bigger objects. @default 2 */
  readonly maxConcurrency?: number;
  /** Retention of the ingest function's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

/** Ingest function timeout; the queue's visibility timeout is derived from it. */
export const INGEST_TIMEOUT = Duration.seconds(INGEST_TIMEOUT_SECONDS);
/** State function timeout: ten objects of up to a thousand vehicles each, written 16 vehicles at a time. */
export const STATE_TIMEOUT = Duration.seconds(120);

export class DataLake extends Construct {
  /** The lake bucket (created, or the one passed in). */
  public readonly bucket: s3.IBucket;
  /** The ingest function. */
  public readonly ingestFunction: HouseFunction;
  /** Key prefix of the raw zone. */
  public readonly rawPrefix: string;
  /** Stored eventIds, when deduplication is on. */
  public readonly dedupTable?: dynamodb.Table;
  /** Current state per vehicle and mode (one item holding all its signals), when `vehicleStateTable` is on. */
  public readonly vehicleStateTable?: dynamodb.Table;
  /** Keeps the state table: applies each lake object the ingest function hands it, when the table is on. */
  public readonly stateFunction?: HouseFunction;
  /** Keys of lake objects waiting for the state function, when the table is on. */
  public readonly stateQueue?: sqs.Queue;
  /** Keys the state function failed on after its retries (rebuild-state covers them), when the table is on. */
  public readonly stateDeadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: DataLakeProps) {
    super(scope, id);
    if (props.existingBucket && props.bucketProps) {
      throw new ConfigurationError(
        'Pass either existingBucket or bucketProps, not both: bucketProps only shape a bucket this construct creates.',
      );
    }
    if (props.existingBucket && props.lifecycle) {
      throw new ConfigurationError(
        'lifecycle applies only to a bucket this construct creates; set lifecycle rules on existingBucket yourself.',
      );
    }
    if (props.existingBucket && (props.rawRetention || props.curatedRetention)) {
      throw new ConfigurationError(
        'retention.raw and retention.curated apply only to a bucket this construct creates; on existingBucket add lifecycle rules scoped to the raw and curated prefixes yourself (never one that reaches erasures/).',
      );
    }
    this.rawPrefix = (props.rawPrefix ?? 'raw').replace(/^\/+|\/+$/g, '');
    if (!Token.isUnresolved(this.rawPrefix) && !/^[A-Za-z0-9_.\-/]+$/.test(this.rawPrefix)) {
      throw new ConfigurationError(
        `rawPrefix "${props.rawPrefix}" must be a non-empty S3 key prefix of letters, digits, _ . - and /.`,
      );
    }

    if (props.landingPrefix) {
      // Checked here for a brought bucket too: an object written under landing/ would be announced to the
      // ingest function, and the erasure would read it as deliveries.
      const landing = `${props.landingPrefix}/`;
      const curated = (props.curatedPrefix ?? 'curated').replace(/^\/+|\/+$/g, '');
      for (const [name, value, given] of [
        ['rawPrefix', this.rawPrefix, props.rawPrefix],
        ['curatedPrefix', curated, props.curatedPrefix],
      ] as const) {
        const p = `${value}/`;
        if (!Token.isUnresolved(value) && (p.startsWith(landing) || landing.startsWith(p)))
          throw new ConfigurationError(
            `${name} "${given}" overlaps ${landing}, where Firehose writes the buffered deliveries; choose another prefix.`,
          );
      }
    }
    this.bucket =
      props.existingBucket ??
      privateBucket(this, 'Bucket', {
        versioned: true,
        removalPolicy: props.bucketRemovalPolicy ?? RemovalPolicy.RETAIN,
        lifecycleRules: lakeLifecycleRules(
          {
            raw: this.rawPrefix,
            curated: (props.curatedPrefix ?? 'curated').replace(/^\/+|\/+$/g, ''),
            landing: props.landingPrefix,
          },
          {
            raw: props.rawRetention ?? props.lifecycle?.expireAfter,
            curated: props.curatedRetention,
            noncurrentVersions:
              props.noncurrentVersionRetention ??
              props.lifecycle?.noncurrentVersionExpiration ??
              Duration.days(DEFAULT_NONCURRENT_VERSION_DAYS),
          },
          props.lifecycle,
        ),
        ...props.bucketProps,
      });

    this.ingestFunction = new HouseFunction(this, 'IngestFunction', {
      handler: 'ingest',
      description: 'Writes queued Smartcar webhook deliveries to the S3 data lake in batches',
      timeout: INGEST_TIMEOUT,
      memorySize: 512,
      environment: {
        [ENV.lakeBucketName]: this.bucket.bucketName,
        [ENV.lakeRawPrefix]: this.rawPrefix,
      },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    // Write-only, and only under the raw zone: the ingest function never reads or deletes the lake's data.
    this.bucket.grantPut(this.ingestFunction, `${this.rawPrefix}/*`);
    // It reads the erasure ledger (and drops the records of erased subjects). ListBucket makes a missing
    // ledger NoSuchKey ("no erasure yet") rather than AccessDenied, which stops the batch; S3 grants that
    // only on the whole bucket, whose keys hold times and digests, never ids.
    this.ingestFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.bucket.arnForObjects(ERASURE_LEDGER_KEY)],
      }),
    );
    this.ingestFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
    );
    this.bucket.encryptionKey?.grantDecrypt(this.ingestFunction);

    if (props.deduplication ?? false) {
      const window = props.deduplicationWindow ?? Duration.seconds(DEFAULT_DEDUP_TTL_SECONDS);
      this.dedupTable = new dynamodb.Table(this, 'StoredEventIds', {
        partitionKey: { name: 'eventId', type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        timeToLiveAttribute: 'expiresAt',
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy: props.deduplicationTableRemovalPolicy ?? RemovalPolicy.DESTROY,
      });
      this.dedupTable.grant(this.ingestFunction, 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem');
      this.ingestFunction.addEnvironment(ENV.dedupTableName, this.dedupTable.tableName);
      this.ingestFunction.addEnvironment(ENV.dedupTtlSeconds, String(window.toSeconds()));
    }

    if (props.vehicleStateTable) {
      this.vehicleStateTable = new dynamodb.Table(this, 'VehicleState', {
        partitionKey: { name: 'vehicleId', type: dynamodb.AttributeType.STRING },
        sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy: props.vehicleStateTableRemovalPolicy ?? RemovalPolicy.DESTROY,
      });
      // The ingest function only hands over each object's key: the state writes (one per vehicle and
      // mode) happen in their own function and never slow or risk the lake write.
      this.stateDeadLetterQueue = new sqs.Queue(this, 'StateDeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      this.stateQueue = new sqs.Queue(this, 'StateQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(4),
        visibilityTimeout: Duration.seconds(STATE_TIMEOUT.toSeconds() * 6),
        deadLetterQueue: { queue: this.stateDeadLetterQueue, maxReceiveCount: 5 },
      });
      this.stateQueue.grantSendMessages(this.ingestFunction);
      this.ingestFunction.addEnvironment(ENV.stateQueueUrl, this.stateQueue.queueUrl);
      this.stateFunction = new HouseFunction(this, 'StateFunction', {
        handler: 'state',
        description: 'Applies each lake object to the vehicle state table (conditional, order-safe writes)',
        timeout: STATE_TIMEOUT,
        memorySize: 512,
        environment: {
          [ENV.lakeBucketName]: this.bucket.bucketName,
          [ENV.stateTableName]: this.vehicleStateTable.tableName,
        },
        logRetention: props.logRetention,
        logRemovalPolicy: props.logRemovalPolicy,
      });
      // Read-only on the raw zone; on the table, reads of an item and conditional puts of it.
      this.bucket.grantRead(this.stateFunction, `${this.rawPrefix}/*`);
      this.vehicleStateTable.grant(this.stateFunction, 'dynamodb:GetItem', 'dynamodb:PutItem');
      this.stateFunction.addEventSource(
        new lambdaEvents.SqsEventSource(this.stateQueue, {
          batchSize: 10,
          maxBatchingWindow: Duration.seconds(5),
          maxConcurrency: 2,
          reportBatchItemFailures: true,
        }),
      );
    }

    if (props.eventBus) {
      props.eventBus.grantPutEventsTo(this.ingestFunction);
      this.ingestFunction.addEnvironment(ENV.eventBusName, props.eventBus.eventBusName);
      this.ingestFunction.addEnvironment(ENV.eventFilter, JSON.stringify(props.eventFilter ?? {}));
    }

    this.ingestFunction.addEventSource(
      new lambdaEvents.SqsEventSource(props.queue, {
        batchSize: props.batchSize ?? 1000,
        maxBatchingWindow: props.maxBatchingWindow ?? Duration.minutes(5),
        maxConcurrency: props.maxConcurrency ?? 2,
        reportBatchItemFailures: true,
      }),
    );
  }
}
