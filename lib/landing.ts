/**
 * The delivery buffer between the verification and the ingest function. By default a Kinesis Data Firehose
 * stream: the verification function puts each authentic delivery to it (one NDJSON line, $0.029 a GB in
 * 5 KB steps, about $0.15 per million small deliveries against SQS's $0.40), Firehose writes the buffered
 * lines as one object under `landing/` every few minutes, S3 notifies the delivery queue, and the ingest
 * function stores the object's deliveries in the raw zone and deletes it. The delivery queue stays: it
 * carries those notifications, the deliveries the stream refuses (the verification function falls back to
 * it), and recovered and redriven deliveries. `DeliveryBuffer.QUEUE` puts every delivery on the queue, as
 * 0.3 did.
 */
import { Duration, type RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { DEFAULT_LANDING_PREFIX, ENV } from '../lambda/contract';
import type { HouseFunction } from './function';
import { ConfigurationError } from './validation';

/** How authentic deliveries travel from the verification to the ingest function. */
export enum DeliveryBuffer {
  /**
   * A Kinesis Data Firehose stream writing buffered objects to the landing zone (`landing/`), announced on
   * the delivery queue: the cheapest per delivery and the fewest raw objects; deliveries reach the lake
   * after the stream's buffering interval plus the ingest batching window.
   */
  FIREHOSE = 'firehose',
  /** Every delivery is one message on the delivery queue (0.3's buffer): SQS's $0.40 per million. */
  QUEUE = 'queue',
}

/** The id aws-cdk-lib gives a bucket's notifications resource (`bucket.addEventNotification`, EventBridge). */
const NOTIFICATIONS_ID = 'Notifications';

/** The buffers, as `cdk.json` names them. */
export const DELIVERY_BUFFERS: readonly string[] = Object.values(DeliveryBuffer);
/** The default delivery buffer. */
export const DEFAULT_DELIVERY_BUFFER = DeliveryBuffer.FIREHOSE;
/** How long Firehose buffers deliveries before it writes a landing object, unless told otherwise. */
export const DEFAULT_LANDING_BUFFER_INTERVAL = Duration.minutes(5);
/** The landing object size at which Firehose writes early, unless told otherwise. */
export const DEFAULT_LANDING_BUFFER_MIB = 16;

export interface LandingProps {
  /** The lake bucket; landing objects live under `landing/` in it. */
  readonly bucket: s3.IBucket;
  /** The delivery queue: S3 notifies it of each landing object. */
  readonly queue: sqs.IQueue;
  /**
   * Puts deliveries to the stream (with `DeliveryBuffer.FIREHOSE`). Without one the stream stands idle (no
   * charge), so that a switch between the buffers loses nothing: a stream deleted with deliveries in its
   * buffer may not write them, and the landing zone keeps being read either way. @default - none
   */
  readonly verifyFunction?: HouseFunction;
  /** Reads and deletes landing objects. */
  readonly ingestFunction: HouseFunction;
  /**
   * How long Firehose buffers before writing an object (0 to 900 s; under 60 s it writes by multipart
   * upload, a few more S3 requests per object). @default Duration.minutes(5)
   */
  readonly bufferingInterval?: Duration;
  /**
   * Size at which Firehose writes an object before the interval is up, in MiB (1 to 32: the ingest
   * function holds a landing object and its records in 512 MB). @default 16
   */
  readonly bufferingSizeMiB?: number;
  /** Retention of the stream's error log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to that log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

export class Landing extends Construct {
  /** The stream the verification function puts deliveries to. */
  public readonly deliveryStream: firehose.CfnDeliveryStream;
  /** Its name. */
  public readonly deliveryStreamName: string;
  /** Its ARN. */
  public readonly deliveryStreamArn: string;
  /** Key prefix of the landing zone, without slashes at the ends. */
  public readonly prefix: string = DEFAULT_LANDING_PREFIX;
  /** Whether the verification function puts deliveries to the stream (`DeliveryBuffer.FIREHOSE`). */
  public readonly streaming: boolean;

  constructor(scope: Construct, id: string, props: LandingProps) {
    super(scope, id);
    const interval = props.bufferingInterval ?? DEFAULT_LANDING_BUFFER_INTERVAL;
    const seconds = interval.toSeconds();
    if (!Token.isUnresolved(seconds) && !(seconds >= 0 && seconds <= 900)) {
      throw new ConfigurationError(`deliveryBufferInterval is ${seconds} s; Firehose buffers 0 to 900 s.`);
    }
    const mib = props.bufferingSizeMiB ?? DEFAULT_LANDING_BUFFER_MIB;
    if (!Token.isUnresolved(mib) && !(Number.isInteger(mib) && mib >= 1 && mib <= 32)) {
      throw new ConfigurationError(
        `deliveryBufferSizeMiB is ${mib}; give a whole number from 1 to 32 (the ingest function reads a landing object whole, in 512 MB).`,
      );
    }
    const errors = new logs.LogGroup(this, 'DeliveryErrors', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    const errorStream = errors.addStream('S3Delivery');
    // Its own role, scoped to the landing zone: the L2 DeliveryStream grants read, write and delete on the
    // whole bucket, and Firehose needs to write here and nowhere else.
    const role = new iam.Role(this, 'StreamRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'Lets the delivery stream write landing objects, and only those',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject'],
        resources: [props.bucket.arnForObjects(`${this.prefix}/*`)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        resources: [props.bucket.bucketArn],
      }),
    );
    // Decrypt too: under a 60 s interval Firehose writes by multipart upload, which SSE-KMS needs it for.
    props.bucket.encryptionKey?.grantEncryptDecrypt(role);
    errors.grantWrite(role);
    const stream = new firehose.CfnDeliveryStream(this, 'Stream', {
      deliveryStreamType: 'DirectPut',
      // An AWS-owned key: encrypted at rest at no charge (the bucket encrypts the objects it writes).
      deliveryStreamEncryptionConfigurationInput: { keyType: 'AWS_OWNED_CMK' },
      extendedS3DestinationConfiguration: {
        bucketArn: props.bucket.bucketArn,
        roleArn: role.roleArn,
        // Firehose adds YYYY/MM/DD/HH/ (UTC) and a unique name.
        prefix: `${this.prefix}/`,
        bufferingHints: { intervalInSeconds: seconds, sizeInMBs: mib },
        compressionFormat: 'UNCOMPRESSED',
        cloudWatchLoggingOptions: {
          enabled: true,
          logGroupName: errors.logGroupName,
          logStreamName: errorStream.logStreamName,
        },
      },
    });
    // The role's policy must exist before Firehose checks it can write.
    stream.node.addDependency(role);
    this.deliveryStream = stream;
    this.deliveryStreamName = stream.ref;
    this.deliveryStreamArn = stream.attrArn;
    if (props.verifyFunction) {
      props.verifyFunction.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['firehose:PutRecord'], resources: [stream.attrArn] }),
      );
      props.verifyFunction.addEnvironment(ENV.deliveryStreamName, stream.ref);
    }
    this.streaming = props.verifyFunction !== undefined;

    const notifications = this.notifyQueue(props.bucket, props.queue);
    // The notification must be in place before anything can land (CDK's resource, on a brought bucket).
    if (notifications) stream.node.addDependency(notifications);
    // Reads an object (that version) and deletes it once stored; only in the landing zone.
    props.ingestFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [props.bucket.arnForObjects(`${this.prefix}/*`)],
      }),
    );
    // A landing object it cannot read: a delete marker on top says someone else removed it unstored.
    props.ingestFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucketVersions'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${this.prefix}/*`] } },
      }),
    );
    props.ingestFunction.addEnvironment(ENV.landingPrefix, this.prefix);
    // Notifications it has no time left for go back on the queue, so a backlog never counts as failures.
    props.queue.grantSendMessages(props.ingestFunction);
    props.ingestFunction.addEnvironment(ENV.deliveryQueueUrl, props.queue.queueUrl);
  }

  /**
   * S3 tells the delivery queue of each landing object. On a bucket this construct created, the
   * notification is part of the bucket itself: CDK's `addEventNotification` would add a stack-level
   * function (with an AWS managed policy) only to break the bucket ↔ queue policy cycle, which a queue
   * policy that names the account (or the bucket by name, when it is known) avoids. A bucket brought with
   * `existingBucket` is configured through that function, since its template is not ours.
   */
  private notifyQueue(bucket: s3.IBucket, queue: sqs.IQueue): IConstruct | undefined {
    const cfnBucket = bucket.node.defaultChild;
    // CDK's notifications resource replaces the bucket's whole configuration: when the bucket has one (a
    // brought bucket, or bucketProps.eventBridgeEnabled), ours goes through it too, merged with the rest.
    if (!(cfnBucket instanceof s3.CfnBucket) || bucket.node.tryFindChild(NOTIFICATIONS_ID)) {
      bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SqsDestination(queue), {
        prefix: `${this.prefix}/`,
      });
      return bucket.node.tryFindChild(NOTIFICATIONS_ID);
    }
    // One added later (bucket.addEventNotification after this construct) would silently wipe ours at
    // deploy time, and landing objects would wait unannounced: refuse it at synth.
    this.node.addValidation({
      validate: () =>
        bucket.node.tryFindChild(NOTIFICATIONS_ID)
          ? [
              "Notifications were added to the lake bucket the construct created (addEventNotification or enableEventBridgeNotification): CDK's notifications resource would replace the landing notification the ingest function depends on. For EventBridge pass bucketProps.eventBridgeEnabled (merged with it); for others bring the bucket (existingBucket) with them.",
            ]
          : [],
    });
    const stack = Stack.of(this);
    const name = cfnBucket.bucketName;
    const source =
      name !== undefined && !Token.isUnresolved(name)
        ? {
            ArnEquals: { 'aws:SourceArn': stack.formatArn({ service: 's3', region: '', account: '', resource: name }) },
          }
        : { ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 's3', region: '', account: '', resource: '*' }) } };
    const policy = queue.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        resources: [queue.queueArn],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account }, ...source },
      }),
    );
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: queue.queueArn,
          filter: { s3Key: { rules: [{ name: 'prefix', value: `${this.prefix}/` }] } },
        },
      ],
    };
    // S3 checks that it may send when the notification is set: the queue policy must exist first.
    if (policy.policyDependable) cfnBucket.node.addDependency(policy.policyDependable);
    return undefined;
  }

  /**
   * Age of the oldest delivery the stream has not written to S3 yet, in seconds. Firehose retries a failing
   * bucket for 24 hours and then drops what it holds: an alarm on this pages long before.
   */
  public metricDataFreshness(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Firehose',
      metricName: 'DeliveryToS3.DataFreshness',
      dimensionsMap: { DeliveryStreamName: this.deliveryStreamName },
      statistic: 'Maximum',
      period: Duration.minutes(5),
      ...props,
    });
  }
}
