/**
 * The quarantine and its recovery: deliveries answered 401 only because their signature did not match
 * are kept in their own bucket (never the lake, never the views; expiring after 14 days). The
 * verification function hands each to the quarantine queue (SendMessage only); the quarantine function
 * writes them in batches, one gzip NDJSON object each, under `quarantine/` within an hourly budget for
 * the whole stack sized from `expectedPeakDeliveriesPerSecond` (every attempt of a token mistake at that
 * peak for an hour, with 25% to spare). The recovery function re-verifies them after a rotation and sends
 * the authentic ones to the delivery queue; it alone can read and delete them, and it keeps its progress
 * under `recovery/`.
 */
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaEvents from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_QUARANTINE_RETENTION_DAYS,
  ENV,
  QUARANTINE_PREFIX,
  quarantineCapsFor,
  RECOVERY_PREFIX,
} from '../lambda/contract';
import { HouseFunction } from './function';
import { listPrefixStatement, privateBucket, queueWithDeadLetters } from './private-bucket';
import { DEFAULT_EXPECTED_PEAK_PER_SECOND } from './receiver';
import { checkInteger } from './validation';

/** The quarantine function's timeout: a batch of at most 6 MB is gzipped and written in a few seconds. */
const WRITER_TIMEOUT = Duration.seconds(60);

/** What a user of {@link SmartcarWebhooks} can set about the quarantine. */
export interface QuarantineOptions {
  /** Keep deliveries rejected only for their signature, for recovery after a token mistake. @default true */
  readonly enabled?: boolean;
  /** How long quarantined deliveries are kept. @default Duration.days(14) */
  readonly retention?: Duration;
  /**
   * Most deliveries the quarantine keeps per clock hour, across the stack (what a forged flood can cost
   * in storage). @default - every attempt of a token mistake at `expectedPeakDeliveriesPerSecond` for an hour, with 25% to spare (peak × 18,000)
   */
  readonly maxPerHour?: number;
  /** Most body bytes the quarantine keeps per clock hour, across the stack. @default - `maxPerHour` × 16 KiB */
  readonly maxBytesPerHour?: number;
  /**
   * What happens to the quarantine bucket when the stack is deleted. `DESTROY` removes it only when it is
   * empty.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
}

export interface QuarantineProps extends QuarantineOptions {
  /** The verification function, which hands rejected deliveries to the quarantine queue. */
  readonly verifyFunction: HouseFunction;
  /** The peak the front door is sized for; sizes the hourly budget. @default 500 */
  readonly expectedPeakDeliveriesPerSecond?: number;
  /** What happens to the quarantine queue and its dead-letter queue when the stack is deleted. @default RemovalPolicy.DESTROY */
  readonly queueRemovalPolicy?: RemovalPolicy;
  /** The secret holding the management token (recovery re-verifies with its current and previous versions). */
  readonly managementTokenSecret: secretsmanager.ISecret;
  /** The delivery queue recovered deliveries go to. */
  readonly queue: sqs.IQueue;
  /** The deduplication table, to count recovered deliveries already stored. @default - none */
  readonly dedupTable?: dynamodb.ITable;
  /** How long the deduplication table remembers ids. @default Duration.days(7) */
  readonly deduplicationWindow?: Duration;
  /** How long after a rotation the previous token is accepted. */
  readonly tokenGracePeriod: Duration;
  /** Retention of the recovery function's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

export class Quarantine extends Construct {
  /** Holds the quarantined deliveries under `quarantine/dt=…/hour=…/`, and recovery's progress under `recovery/`. */
  public readonly bucket: s3.Bucket;
  /** Rejected deliveries on their way to the bucket. */
  public readonly queue: sqs.Queue;
  /** Quarantine messages the quarantine function failed to write 10 times (should stay empty). */
  public readonly deadLetterQueue: sqs.Queue;
  /** Writes the queued rejected deliveries to the bucket in batches, within the hourly budget. */
  public readonly writerFunction: HouseFunction;
  /** Most deliveries kept per clock hour, across the stack (the budget in force). */
  public readonly maxPerHour: number;
  /** Most body bytes kept per clock hour, across the stack (the budget in force). */
  public readonly maxBytesPerHour: number;
  /** Re-verifies quarantined deliveries and sends the authentic ones to the delivery queue. */
  public readonly recoverFunction: HouseFunction;

  constructor(scope: Construct, id: string, props: QuarantineProps) {
    super(scope, id);
    checkInteger('quarantine.maxPerHour', props.maxPerHour, 1, 10 ** 10);
    checkInteger('quarantine.maxBytesPerHour', props.maxBytesPerHour, 1, 10 * 1024 ** 4);
    const peak = props.expectedPeakDeliveriesPerSecond ?? DEFAULT_EXPECTED_PEAK_PER_SECOND;
    // A peak known only at deploy time: size for the default; pass maxPerHour to size it yourself.
    const sized = quarantineCapsFor(Token.isUnresolved(peak) ? DEFAULT_EXPECTED_PEAK_PER_SECOND : peak);
    this.maxPerHour = props.maxPerHour ?? sized.maxPerHour;
    this.maxBytesPerHour =
      props.maxBytesPerHour ?? (props.maxPerHour ? props.maxPerHour * 16 * 1024 : sized.maxBytesPerHour);
    const retention = props.retention ?? Duration.days(DEFAULT_QUARANTINE_RETENTION_DAYS);
    this.bucket = privateBucket(this, 'Bucket', {
      removalPolicy: props.bucketRemovalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        // Scoped, as every expiring rule is: the deliveries and recovery's markers about them, nothing else.
        { id: 'expire-quarantine', prefix: `${QUARANTINE_PREFIX}/`, expiration: retention },
        { id: 'expire-recovery-markers', prefix: `${RECOVERY_PREFIX}/`, expiration: retention },
        { id: 'abort-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    const objects = this.bucket.arnForObjects(`${QUARANTINE_PREFIX}/*`);

    const markers = this.bucket.arnForObjects(`${RECOVERY_PREFIX}/*`);

    // The verification function only sends to the queue: one SendMessage per rejection, as for an
    // accepted delivery; batching into objects happens behind it.
    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = queueWithDeadLetters(
      this,
      { queue: 'Queue', deadLetterQueue: 'DeadLetterQueue' },
      {
        removalPolicy: props.queueRemovalPolicy ?? RemovalPolicy.DESTROY,
        visibilityTimeout: Duration.seconds(WRITER_TIMEOUT.toSeconds() * 6 + 60),
        maxReceiveCount: 10,
      },
    ));
    const verify = props.verifyFunction;
    verify.addEnvironment(ENV.quarantineQueueUrl, this.queue.queueUrl);
    this.queue.grantSendMessages(verify);

    // The writer: PutObject under quarantine/ and a listing of it (the budget is read from the keys).
    this.writerFunction = new HouseFunction(this, 'WriterFunction', {
      handler: 'quarantine',
      description:
        'Writes deliveries rejected for their signature to the quarantine bucket in batches, within the hourly budget',
      timeout: WRITER_TIMEOUT,
      memorySize: 512,
      environment: {
        [ENV.quarantineBucketName]: this.bucket.bucketName,
        [ENV.quarantineMaxPerHour]: String(this.maxPerHour),
        [ENV.quarantineMaxBytesPerHour]: String(this.maxBytesPerHour),
      },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    this.writerFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [objects] }));
    this.writerFunction.addToRolePolicy(listPrefixStatement(this.bucket, QUARANTINE_PREFIX));
    this.writerFunction.addEventSource(
      new lambdaEvents.SqsEventSource(this.queue, {
        // As many as fit one invocation (6 MB), or what a minute brings: few objects, whatever the rate.
        batchSize: 10_000,
        maxBatchingWindow: Duration.seconds(60),
        // A token mistake at the peak brings 4 × peak a second; one writer keeps up with a few thousand.
        maxConcurrency: Math.min(1000, Math.max(2, Math.ceil((Token.isUnresolved(peak) ? 500 : peak) / 250))),
      }),
    );

    this.recoverFunction = new HouseFunction(this, 'RecoverFunction', {
      handler: 'recover',
      description: 'Re-verifies quarantined deliveries after a token rotation and queues the authentic ones',
      // It stops a minute before this and answers done: false; `smartcar-webhooks rotate-token` invokes it again.
      timeout: Duration.minutes(15),
      memorySize: 1024,
      // One recovery at a time: two would read the same objects and hand their deliveries over twice.
      reservedConcurrentExecutions: 1,
      environment: {
        [ENV.managementTokenSecretId]: props.managementTokenSecret.secretArn,
        [ENV.quarantineBucketName]: this.bucket.bucketName,
        [ENV.deliveryQueueUrl]: props.queue.queueUrl,
        [ENV.tokenGraceSeconds]: String(props.tokenGracePeriod.toSeconds()),
        ...(props.dedupTable
          ? {
              [ENV.dedupTableName]: props.dedupTable.tableName,
              [ENV.dedupTtlSeconds]: String(props.deduplicationWindow?.toSeconds() ?? DEFAULT_DEDUP_TTL_SECONDS),
            }
          : {}),
      },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const recover = this.recoverFunction;
    recover.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [objects] }),
    );
    recover.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [markers] }),
    );
    recover.addToRolePolicy(listPrefixStatement(this.bucket, QUARANTINE_PREFIX));
    recover.addToRolePolicy(listPrefixStatement(this.bucket, RECOVERY_PREFIX));
    props.managementTokenSecret.grantRead(recover);
    props.queue.grantSendMessages(recover);
    props.dedupTable?.grant(recover, 'dynamodb:BatchGetItem');
  }

  /** Lets `grantee` run the recovery (e.g. the operators' role, for `npx smartcar-webhooks rotate-token`). */
  public grantInvokeRecovery(grantee: iam.IGrantable): iam.Grant {
    return this.recoverFunction.grantInvoke(grantee);
  }
}
