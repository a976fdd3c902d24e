/**
 * The house bucket and queues: a bucket with public access blocked, SSE-S3, TLS 1.2+ only and
 * bucket-owner-enforced, and an encrypted TLS-only queue with its dead-letter queue. Every bucket and queue
 * pair the project creates starts here, so none can be created less safe by accident.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

export function privateBucket(scope: Construct, id: string, props: s3.BucketProps = {}): s3.Bucket {
  return new s3.Bucket(scope, id, {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: RemovalPolicy.RETAIN,
    ...props,
  });
}

/** `s3:ListBucket` on `bucket`, allowed only for keys under `prefix` (the one list permission functions get). */
export function listPrefixStatement(bucket: s3.IBucket, prefix: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringLike: { 's3:prefix': [`${prefix}/*`] } },
  });
}

/**
 * An encrypted, TLS-only queue (4 days) and its dead-letter queue (14 days): the delivery queue and the
 * quarantine queue are made the same way, so a message is never lost to a shorter retention on either.
 */
export function queueWithDeadLetters(
  scope: Construct,
  ids: { queue: string; deadLetterQueue: string },
  props: { removalPolicy: RemovalPolicy; visibilityTimeout?: Duration; maxReceiveCount: number },
): { queue: sqs.Queue; deadLetterQueue: sqs.Queue } {
  const common = { removalPolicy: props.removalPolicy, encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true };
  const deadLetterQueue = new sqs.Queue(scope, ids.deadLetterQueue, { ...common, retentionPeriod: Duration.days(14) });
  const queue = new sqs.Queue(scope, ids.queue, {
    ...common,
    retentionPeriod: Duration.days(4),
    visibilityTimeout: props.visibilityTimeout,
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
  });
  return { queue, deadLetterQueue };
}
