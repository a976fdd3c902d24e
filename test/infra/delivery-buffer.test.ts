/**
 * The delivery buffer's choices, each in a stack of its own (the default's template is checked in
 * stack.test.ts): the queue buffer, bucket notifications of the consumer's, a KMS lake, and the options.
 */
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DeliveryBuffer } from '../../lib/landing';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { bareStack } from '../support/synth';

describe('delivery buffer', () => {
  it("DeliveryBuffer.QUEUE is 0.3's buffer: the verification function sends to the queue, the 300 s window; the landing zone is still read and the stream stands idle, so a switch loses nothing", () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { deliveryBuffer: DeliveryBuffer.QUEUE });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 300,
    });
    const verify = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.includes('VerifyFunction'));
    expect(JSON.stringify(verify)).not.toMatch(/firehose:/);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Answers Smartcar VERIFY'),
      Environment: { Variables: Match.objectLike({ DELIVERY_STREAM_NAME: Match.absent() }) },
    });
    // Kept: a stream deleted with deliveries in its buffer may not write them, and what it writes is read.
    t.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    t.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { QueueConfigurations: [Match.objectLike({ Event: 's3:ObjectCreated:*' })] },
    });
    const ingest = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.includes('IngestFunction'));
    expect(JSON.stringify(ingest)).toMatch(/s3:DeleteObjectVersion/);
    // No alarm on a stream nothing puts to.
    expect(JSON.stringify(t.findResources('AWS::CloudWatch::Alarm'))).not.toMatch(
      /AWS\/Firehose|DeliveryStreamFallbacks/,
    );
  });

  it('notifications added to the created lake bucket after the construct would replace the landing one: synth refuses', () => {
    const stack = bareStack();
    const w = new SmartcarWebhooks(stack, 'W');
    (w.dataLake.bucket as s3.Bucket).enableEventBridgeNotification();
    expect(() => Template.fromStack(stack)).toThrow(/would replace the landing notification/);
  });

  it("with bucketProps.eventBridgeEnabled the landing notification is merged into CDK's notifications resource", () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { bucketProps: { eventBridgeEnabled: true } });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        EventBridgeConfiguration: {},
        QueueConfigurations: [
          Match.objectLike({ Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'landing/' }] } } }),
        ],
      },
    });
    // The stream waits for it: nothing lands unannounced.
    const stream = Object.values(t.findResources('AWS::KinesisFirehose::DeliveryStream'))[0];
    expect(JSON.stringify(stream.DependsOn)).toMatch(/Notifications/);
  });

  it('a KMS-encrypted lake: the stream may encrypt and decrypt (multipart uploads under a 60 s interval need both)', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { bucketProps: { encryption: s3.BucketEncryption.KMS } });
    const t = Template.fromStack(stack);
    const role = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.includes('LandingStreamRole'));
    expect(JSON.stringify(role)).toMatch(/kms:Decrypt/);
    expect(JSON.stringify(role)).toMatch(/kms:GenerateDataKey/);
  });

  it('checks its options', () => {
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { deliveryBufferInterval: Duration.seconds(901) })).toThrow(
      /deliveryBufferInterval is 901 s/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { deliveryBufferSizeMiB: 33 })).toThrow(
      /deliveryBufferSizeMiB is 33/,
    );
    expect(
      () =>
        new SmartcarWebhooks(bareStack(), 'W', {
          deliveryBuffer: DeliveryBuffer.QUEUE,
          deliveryBufferInterval: Duration.seconds(60),
        }),
    ).toThrow(/with DeliveryBuffer.QUEUE leave them unset/);
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { deliveryBuffer: 'kinesis' as DeliveryBuffer })).toThrow(
      /deliveryBuffer "kinesis" is not a buffer/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { rawPrefix: 'landing/raw' })).toThrow(/overlaps landing\//);
    const brought = bareStack();
    expect(
      () =>
        new SmartcarWebhooks(brought, 'W', {
          existingBucket: s3.Bucket.fromBucketName(brought, 'B', 'their-lake'),
          curatedPrefix: 'landing/curated',
        }),
    ).toThrow(/curatedPrefix "landing\/curated" overlaps landing\//);
    expect(settingsFromContext((k) => ({ deliveryBuffer: 'queue' })[k])).toMatchObject({ deliveryBuffer: 'queue' });
    expect(() => settingsFromContext((k) => ({ deliveryBuffer: 'kinesis' })[k])).toThrow(
      /Context "deliveryBuffer" must be firehose or queue/,
    );
  });
});
