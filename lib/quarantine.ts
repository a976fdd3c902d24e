/**
 * The quarantine and its recovery: deliveries answered 401 only because their signature did not match
 * are kept in their own bucket (never the lake, never the views; expiring after 14 days), written by the
 * verification function with PutObject on `quarantine/*` and nothing else, within per-instance caps.
 * The recovery function re-verifies them after a rotation and sends the authentic ones to the delivery
 * queue; it alone can read and delete them.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_QUARANTINE_MAX_BYTES_PER_HOUR,
  DEFAULT_QUARANTINE_MAX_PER_MINUTE,
  DEFAULT_QUARANTINE_RETENTION_DAYS,
  ENV,
  QUARANTINE_PREFIX,
} from '../lambda/contract';
import { HouseFunction } from './function';
import { listPrefixStatement, privateBucket } from './private-bucket';
import { checkInteger } from './validation';

/** What a user of {@link SmartcarWebhooks} can set about the quarantine. */
export interface QuarantineOptions {
  /** Keep deliveries rejected only for their signature, for recovery after a token mistake. @default true */
  readonly enabled?: boolean;
  /** How long quarantined deliveries are kept. @default Duration.days(14) */
  readonly retention?: Duration;
  /** Most deliveries one verification function instance quarantines per minute. @default 60 */
  readonly maxPerMinute?: number;
  /** Most body bytes one verification function instance quarantines per hour. @default 64 MiB */
  readonly maxBytesPerHour?: number;
  /**
   * What happens to the quarantine bucket when the stack is deleted. `DESTROY` removes it only when it is
   * empty.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
}

export interface QuarantineProps extends QuarantineOptions {
  /** The verification function, which writes the quarantine. */
  readonly verifyFunction: HouseFunction;
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
  /** Holds the quarantined deliveries under `quarantine/dt=…/hour=…/`. */
  public readonly bucket: s3.Bucket;
  /** Re-verifies quarantined deliveries and sends the authentic ones to the delivery queue. */
  public readonly recoverFunction: HouseFunction;

  constructor(scope: Construct, id: string, props: QuarantineProps) {
    super(scope, id);
    checkInteger('quarantine.maxPerMinute', props.maxPerMinute, 1, 100_000);
    checkInteger('quarantine.maxBytesPerHour', props.maxBytesPerHour, 1, 10 * 1024 ** 4);
    const retention = props.retention ?? Duration.days(DEFAULT_QUARANTINE_RETENTION_DAYS);
    this.bucket = privateBucket(this, 'Bucket', {
      removalPolicy: props.bucketRemovalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'expire-quarantine', expiration: retention },
        { id: 'abort-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    const objects = this.bucket.arnForObjects(`${QUARANTINE_PREFIX}/*`);

    // The writer: PutObject under quarantine/ and nothing else (no read, list, delete or overwrite checks).
    const verify = props.verifyFunction;
    verify.addEnvironment(ENV.quarantineBucketName, this.bucket.bucketName);
    verify.addEnvironment(ENV.quarantineMaxPerMinute, String(props.maxPerMinute ?? DEFAULT_QUARANTINE_MAX_PER_MINUTE));
    verify.addEnvironment(
      ENV.quarantineMaxBytesPerHour,
      String(props.maxBytesPerHour ?? DEFAULT_QUARANTINE_MAX_BYTES_PER_HOUR),
    );
    verify.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [objects] }));

    this.recoverFunction = new HouseFunction(this, 'RecoverFunction', {
      handler: 'recover',
      description: 'Re-verifies quarantined deliveries after a token rotation and queues the authentic ones',
      timeout: Duration.minutes(5),
      memorySize: 512,
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
    recover.addToRolePolicy(listPrefixStatement(this.bucket, QUARANTINE_PREFIX));
    props.managementTokenSecret.grantRead(recover);
    props.queue.grantSendMessages(recover);
    props.dedupTable?.grant(recover, 'dynamodb:BatchGetItem');
  }

  /** Lets `grantee` run the recovery (e.g. the operators' role, for `rotate-token --recover-function`). */
  public grantInvokeRecovery(grantee: iam.IGrantable): iam.Grant {
    return this.recoverFunction.grantInvoke(grantee);
  }
}
