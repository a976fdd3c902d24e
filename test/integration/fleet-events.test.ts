/**
 * Events for other teams, against moto: a signed delivery goes verification → SQS → ingest → lake, and
 * then one normalized event reaches the bus (seen through a rule's SQS target); a rejected delivery
 * publishes nothing; a filter keeps only what a team asked for; a failing bus never costs the lake record.
 */
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { fleetEventOf, publishEvents } from '../../lambda/core/fleet-events';
import { toLakeRecord } from '../../lambda/core/lake';
import { apiEvent } from '../support/api-event';
import { fixture, sign, TEST_TOKEN } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { RecordingMetrics } from '../support/metrics';
import { drainQueue, type Moto, startMoto, useMoto } from '../support/moto';

let moto: Moto;
let sqs: SQSClient;
let deliveries: string;
let consumer: string;
const LAKE = 'events-lake';
type H<E> = (event: E) => Promise<{ statusCode?: number } | unknown>;
let verify: H<ReturnType<typeof apiEvent>>;
let ingest: H<SQSEvent>;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  sqs = new SQSClient({});
  const secret = await new SecretsManagerClient({}).send(
    new CreateSecretCommand({ Name: 'amt-events', SecretString: TEST_TOKEN }),
  );
  deliveries = (await sqs.send(new CreateQueueCommand({ QueueName: 'events-deliveries' }))).QueueUrl as string;
  consumer = (await sqs.send(new CreateQueueCommand({ QueueName: 'other-team' }))).QueueUrl as string;
  const consumerArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: consumer, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  await new S3Client({}).send(new CreateBucketCommand({ Bucket: LAKE }));
  const eb = new EventBridgeClient({});
  await eb.send(new CreateEventBusCommand({ Name: 'fleet' }));
  // The README's example rule: every event the stack publishes, to another team's queue.
  await eb.send(
    new PutRuleCommand({
      Name: 'other-team',
      EventBusName: 'fleet',
      EventPattern: JSON.stringify({ source: ['smartcar.webhooks'] }),
    }),
  );
  await eb.send(
    new PutTargetsCommand({ Rule: 'other-team', EventBusName: 'fleet', Targets: [{ Id: 'q', Arn: consumerArn }] }),
  );
  Object.assign(process.env, {
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: secret.ARN,
    DELIVERY_QUEUE_URL: deliveries,
    LAKE_BUCKET_NAME: LAKE,
    LAKE_RAW_PREFIX: 'raw',
    EVENT_BUS_NAME: 'fleet',
    EVENT_FILTER: JSON.stringify({ eventTypes: ['VEHICLE_STATE', 'VEHICLE_ERROR'] }),
  });
  delete process.env.DEDUP_TABLE_NAME;
  delete process.env.QUARANTINE_BUCKET_NAME;
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  jest.isolateModules(() => {
    verify = require('../../lambda/verify/index').handler;
    ingest = require('../../lambda/ingest/index').handler;
  });
});
afterAll(async () => {
  jest.restoreAllMocks();
  await moto?.stop();
});

const drain = (url: string) => drainQueue(sqs, url);

it('one event per stored delivery, after the lake write; none for rejected, filtered or legacy types', async () => {
  const state = fixture('vehicle-state');
  const error = fixture('vehicle-error');
  const schedule = fixture('schedule-legacy'); // filtered out (eventTypes)
  for (const body of [state, error, schedule]) {
    expect(((await verify(apiEvent(body, { 'sc-signature': sign(body) }))) as { statusCode: number }).statusCode).toBe(
      200,
    );
  }
  expect(
    ((await verify(apiEvent(state, { 'sc-signature': sign(state, 'wrong') }))) as { statusCode: number }).statusCode,
  ).toBe(401);
  const queued = await drain(deliveries);
  await ingest({ Records: queued.map((m) => ({ messageId: m.messageId, body: m.body }) as SQSRecord) });

  const events = (await drain(consumer)).map((m) => JSON.parse(m.body as string));
  expect(events.map((e) => e['detail-type']).sort()).toEqual(['VEHICLE_ERROR', 'VEHICLE_STATE']);
  const stateEvent = events.find((e) => e['detail-type'] === 'VEHICLE_STATE');
  expect(stateEvent).toMatchObject({
    source: 'smartcar.webhooks',
    detail: {
      eventId: '550e8400-e29b-41d4-a716-446655440000',
      vehicleId: '9af13248-3b73-4c9d-9a4b-d937ce6bc8e2',
      mode: 'live',
      signals: [expect.objectContaining({ name: 'StateOfCharge', body: { unit: 'percent', value: 78 } })],
    },
  });
  // The lake key in the event points at an object that exists.
  const keys = (await new S3Client({}).send(new ListObjectsV2Command({ Bucket: LAKE }))).Contents?.map((o) => o.Key);
  expect(keys).toContain(stateEvent.detail.lakeKey);
  expect(events.find((e) => e['detail-type'] === 'VEHICLE_ERROR').detail.errors[0]).toMatchObject({
    code: 'SMARTCAR_NOT_CAPABLE',
  });
});

it('a signal filter narrows VEHICLE_STATE events and drops those left empty', () => {
  const at = '2026-11-26T21:00:00.000Z';
  const record = toLakeRecord(deliveryMessage(fixture('vehicle-state'), at), new Date(at));
  expect(fleetEventOf(record, 'k', { signalNames: ['StateOfCharge'] })?.detail.signals).toHaveLength(1);
  expect(fleetEventOf(record, 'k', { signalNames: ['Odometer'] })).toBeNull();
  expect(fleetEventOf(record, 'k', { eventTypes: ['VEHICLE_ERROR'] })).toBeNull();
});

it('publishing is retried; what still fails is counted, never thrown', async () => {
  const metrics = new RecordingMetrics();
  let calls = 0;
  const events = Array.from({ length: 12 }, (_, i) => ({ detailType: 'VEHICLE_STATE', detail: { i } }));
  const failed = await publishEvents(
    events,
    async (batch) => {
      calls++;
      if (calls === 1) throw new Error('throttled');
      return batch.map((e) => (e.detail as { i: number }).i !== 11); // one entry keeps failing
    },
    { logger: { info() {}, warn() {}, error() {} }, metrics, sleep: async () => {} },
  );
  expect(failed).toBe(1);
  expect(metrics.total('EventsPublished')).toBe(11);
  expect(metrics.total('EventPublishFailures')).toBe(1);
});
