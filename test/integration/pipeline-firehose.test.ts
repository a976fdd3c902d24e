/**
 * The default delivery path against moto, with real SDK clients: API Gateway event → verification handler
 * → Firehose stream → landing object in the versioned lake bucket → S3's notification on the delivery
 * queue → ingest handler → raw zone, and the landing object gone (no version of it left behind).
 */
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { apiEvent } from '../support/api-event';
import { fixture, sign, TEST_TOKEN } from '../support/fixtures';
import { drainQueue as drainMessages, type Moto, startMoto, useMoto } from '../support/moto';

let moto: Moto;
let s3: S3Client;
let sqs: SQSClient;
let queueUrl: string;
const BUCKET = 'smartcar-lake-firehose-it';
const STREAM = 'smartcar-deliveries';
let verify: typeof import('../../lambda/verify/index').handler;
let ingest: typeof import('../../lambda/ingest/index').handler;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  const { FirehoseClient, CreateDeliveryStreamCommand } = await import('@aws-sdk/client-firehose');
  s3 = new S3Client({});
  sqs = new SQSClient({});
  const secret = await new SecretsManagerClient({}).send(
    new CreateSecretCommand({ Name: 'smartcar/amt-firehose', SecretString: TEST_TOKEN }),
  );
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'deliveries-firehose' }))).QueueUrl as string;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] })))
    .Attributes?.QueueArn;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
  // As the stack configures it: created objects under landing/ are announced on the delivery queue.
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: BUCKET,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            QueueArn: queueArn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'landing/' }] } },
          },
        ],
      },
    }),
  );
  await new FirehoseClient({}).send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: STREAM,
      DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: {
        RoleARN: 'arn:aws:iam::123456789012:role/landing',
        BucketARN: `arn:aws:s3:::${BUCKET}`,
        Prefix: 'landing/',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 16 },
      },
    }),
  );
  process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = secret.ARN;
  process.env.DELIVERY_QUEUE_URL = queueUrl;
  process.env.DELIVERY_STREAM_NAME = STREAM;
  process.env.LAKE_BUCKET_NAME = BUCKET;
  process.env.LAKE_RAW_PREFIX = 'raw';
  process.env.LANDING_PREFIX = 'landing';
  verify = require('../../lambda/verify/index').handler;
  ingest = require('../../lambda/ingest/index').handler;
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});

afterAll(async () => {
  jest.restoreAllMocks();
  for (const k of ['DELIVERY_STREAM_NAME', 'LANDING_PREFIX']) delete process.env[k];
  s3?.destroy();
  sqs?.destroy();
  await moto?.stop();
});

async function drainQueue(): Promise<SQSEvent> {
  return { Records: await drainMessages(sqs, queueUrl) };
}

const keysUnder = async (prefix: string) =>
  ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map(
    (o) => o.Key as string,
  );

it('a signed delivery reaches the raw zone through a landing object, which leaves nothing behind', async () => {
  const bodies = [fixture('vehicle-state'), fixture('vehicle-error')];
  for (const body of bodies)
    expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
  const landed = await keysUnder('landing/');
  // moto writes each record as it comes (the real stream buffers them into one object per interval).
  expect(landed.length).toBeGreaterThan(0);
  for (const key of landed) expect(key).toMatch(/^landing\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/smartcar-deliveries-/);

  const event = await drainQueue();
  // S3's test event (sent when the notification was set) and one notification per landing object.
  expect(event.Records.length).toBe(landed.length + 1);
  expect(await ingest(event)).toEqual({ batchItemFailures: [] });

  const raw = await keysUnder('raw/');
  expect(raw.length).toBe(2);
  expect(await keysUnder('landing/')).toEqual([]);
  // Deleted by version: no delete marker and no noncurrent copy holding the deliveries.
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'landing/' }));
  expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
});
