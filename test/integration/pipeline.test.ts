/**
 * The whole delivery path against moto: API Gateway event → verification handler → SQS → ingest handler
 * → S3, with real SDK clients built from the default configuration.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { apiEvent } from '../support/api-event';
import { fixture, sign, TEST_TOKEN, vehicleState } from '../support/fixtures';
import { decodeNdjsonGzip } from '../support/lake';
import { drainQueue as drainMessages, type Moto, startMoto, useMoto } from '../support/moto';

let moto: Moto;
let s3: S3Client;
let sqs: SQSClient;
let queueUrl: string;
const BUCKET = 'smartcar-lake-it';
let verify: typeof import('../../lambda/verify/index').handler;
let ingest: typeof import('../../lambda/ingest/index').handler;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  const sm = new SecretsManagerClient({});
  s3 = new S3Client({});
  sqs = new SQSClient({});
  const secret = await sm.send(new CreateSecretCommand({ Name: 'smartcar/amt', SecretString: TEST_TOKEN }));
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'deliveries' }))).QueueUrl as string;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await new DynamoDBClient({}).send(
    new CreateTableCommand({
      TableName: 'stored-event-ids',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'eventId', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'eventId', KeyType: 'HASH' }],
    }),
  );

  process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = secret.ARN;
  process.env.DELIVERY_QUEUE_URL = queueUrl;
  process.env.LAKE_BUCKET_NAME = BUCKET;
  process.env.LAKE_RAW_PREFIX = 'raw';
  process.env.DEDUP_TABLE_NAME = 'stored-event-ids';
  // The handlers build their clients and read their configuration at module scope.
  verify = require('../../lambda/verify/index').handler;
  ingest = require('../../lambda/ingest/index').handler;
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});

afterAll(async () => {
  jest.restoreAllMocks();
  s3?.destroy();
  sqs?.destroy();
  await moto?.stop();
});

async function drainQueue(): Promise<SQSEvent> {
  return { Records: await drainMessages(sqs, queueUrl) };
}

async function lakeKeys(): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (out.Contents ?? []).map((o) => o.Key as string);
}

async function queueDepth(): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible)
  );
}

it('answers VERIFY with the token read from Secrets Manager', async () => {
  const res = await verify(apiEvent(fixture('verify-current')));
  expect(res.statusCode).toBe(200);
  expect(JSON.parse(res.body as string)).toEqual({
    challenge: '349d5faf8fa4f2d540b13549b98559b6fa4fd9592b8340988d0bd441eeaca352',
  });
});

it('a wrongly signed delivery leaves the queue and the bucket empty', async () => {
  const body = fixture('vehicle-state');
  const res = await verify(apiEvent(body, { 'sc-signature': sign(body, 'not-the-token') }));
  expect(res.statusCode).toBe(401);
  expect(await queueDepth()).toBe(0);
  expect(await lakeKeys()).toEqual([]);
});

it('a signed delivery goes through the queue into the lake with its raw body byte for byte', async () => {
  const body = fixture('vehicle-state');
  const legacy = fixture('schedule-legacy');
  expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
  expect((await verify(apiEvent(legacy, { 'SC-Signature': sign(legacy) }, { base64: true }))).statusCode).toBe(200);

  const event = await drainQueue();
  expect(event.Records).toHaveLength(2);
  expect(await ingest(event)).toEqual({ batchItemFailures: [] });

  const keys = (await lakeKeys()).sort();
  expect(keys).toHaveLength(2);
  expect(keys[0]).toMatch(/^raw\/event_type=VEHICLE_STATE\/mode=live\/dt=2026-11-26\/hour=21\/[^/]+\.ndjson\.gz$/);
  expect(keys[1]).toMatch(/^raw\/event_type=schedule\/mode=live\/dt=2026-11-26\/hour=21\//);

  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: keys[0] }));
  const [record] = decodeNdjsonGzip(
    await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
  expect(Buffer.from(record.body as string, 'utf8').equals(body)).toBe(true);
  expect(record).toMatchObject({
    event_id: '550e8400-e29b-41d4-a716-446655440000',
    event_type: 'VEHICLE_STATE',
    vehicle_ids: ['9af13248-3b73-4c9d-9a4b-d937ce6bc8e2'],
    received_at: '2026-11-26T21:04:59.123Z',
    request_id: 'req-123',
  });
});

it('a delivery Smartcar retries after it was stored is acknowledged and not stored again', async () => {
  const body = fixture('vehicle-state');
  const before = (await lakeKeys()).length;
  expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
  const event = await drainQueue();
  expect(event.Records).toHaveLength(1);
  expect(await ingest(event)).toEqual({ batchItemFailures: [] });
  expect((await lakeKeys()).length).toBe(before);
});

it('one eventId over DynamoDB key limits does not stop the genuine ids of its batch being remembered', async () => {
  const bodyWith = (eventId: string) => vehicleState(eventId);
  const bodies = [bodyWith('a'.repeat(3000)), bodyWith('dedupe-normal-1'), bodyWith('dedupe-normal-2')];
  const send = async () => {
    for (const b of bodies) expect((await verify(apiEvent(b, { 'sc-signature': sign(b) }))).statusCode).toBe(200);
    const event = await drainQueue();
    expect(event.Records).toHaveLength(3);
    expect(await ingest(event)).toEqual({ batchItemFailures: [] });
  };
  const records = async () => {
    const all = [];
    for (const key of await lakeKeys()) {
      const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      all.push(
        ...decodeNdjsonGzip(
          await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        ),
      );
    }
    return all.filter((r) => r.event_id.startsWith('dedupe-normal') || r.event_id.length === 3000);
  };
  await send();
  expect(await records()).toHaveLength(3);
  await send(); // Smartcar retries all three: every one was remembered, so none is stored twice
  expect(await records()).toHaveLength(3);
});
