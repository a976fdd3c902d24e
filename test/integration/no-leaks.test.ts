/**
 * One full run through every handler — VERIFY, signed and forged deliveries, ingest, and a subscription
 * workflow (subscribe and unsubscribe) — with every byte the handlers write to stdout and stderr
 * captured: neither the management token nor the user's access token appears, no payload body is
 * logged (location and VIN are personal data), and every line is structured JSON with the ids.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { definitionFromTemplate, executionArnOf, runLocally } from '../../local/workflow-runner';
import { apiEvent } from '../support/api-event';
import { FakeSmartcar } from '../support/fake-smartcar';
import { fixture, sign, TEST_TOKEN } from '../support/fixtures';
import { type Moto, startMoto, useMoto } from '../support/moto';
import { synthStack } from '../support/synth';

const ACCESS_TOKEN = 'user-access-token-3f9a1c77';
const VIN = '5YJ3E1EA7KF000316';
let moto: Moto;
let fake: FakeSmartcar;
const lines: string[] = [];
const sfn = mockClient(SFNClient);

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  fake = new FakeSmartcar({
    vehicles: ['veh-1', 'veh-2'],
    accessToken: ACCESS_TOKEN,
    managementToken: TEST_TOKEN,
    webhookId: 'wh-1',
    permanent: { 'veh-2': 403 },
  });
  const origin = await fake.start();
  const secret = await new SecretsManagerClient({}).send(
    new CreateSecretCommand({ Name: 'leaks/amt', SecretString: TEST_TOKEN }),
  );
  const queueUrl = (await new SQSClient({}).send(new CreateQueueCommand({ QueueName: 'leaks' }))).QueueUrl as string;
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: 'leaks-lake' }));
  await s3.send(new CreateBucketCommand({ Bucket: 'leaks-work' }));
  Object.assign(process.env, {
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: secret.ARN,
    DELIVERY_QUEUE_URL: queueUrl,
    LAKE_BUCKET_NAME: 'leaks-lake',
    WORKFLOW_BUCKET_NAME: 'leaks-work',
    SMARTCAR_API_ORIGIN: origin,
    SMARTCAR_WEBHOOK_ID: 'wh-1',
    POWERTOOLS_SERVICE_NAME: 'LeakTest',
    // DEBUG, so that the per-delivery lines (off by default) are checked too.
    POWERTOOLS_LOG_LEVEL: 'DEBUG',
  });
  for (const stream of [process.stdout, process.stderr]) {
    jest.spyOn(stream, 'write').mockImplementation((chunk) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    });
  }
});

afterAll(async () => {
  jest.restoreAllMocks();
  delete process.env.POWERTOOLS_LOG_LEVEL;
  sfn.restore();
  await fake?.stop();
  await moto?.stop();
});

it('logs ids and outcomes, never tokens, signatures or payloads', async () => {
  const verify = require('../../lambda/verify/index').handler;
  const ingest = require('../../lambda/ingest/index').handler;

  // Deliveries: a VERIFY, a location payload with a VIN, a forged one, a legacy one.
  const located = Buffer.from(
    fixture('vehicle-state-variant').toString().replace('"make":"TESLA"', `"vin":"${VIN}","make":"TESLA"`),
  );
  const signatures = [sign(located), sign(fixture('schedule-legacy'))];
  expect((await verify(apiEvent(fixture('verify-current')))).statusCode).toBe(200);
  expect((await verify(apiEvent(located, { 'sc-signature': signatures[0] }))).statusCode).toBe(200);
  expect((await verify(apiEvent(located, { 'sc-signature': sign(located, 'forged') }))).statusCode).toBe(401);
  expect((await verify(apiEvent(fixture('schedule-legacy'), { 'sc-signature': signatures[1] }))).statusCode).toBe(200);
  const received = await new SQSClient({}).send(
    new ReceiveMessageCommand({ QueueUrl: process.env.DELIVERY_QUEUE_URL, MaxNumberOfMessages: 10 }),
  );
  const records = (received.Messages ?? []).map((m) => ({ messageId: m.MessageId, body: m.Body }) as SQSRecord);
  expect(await ingest({ Records: records })).toEqual({ batchItemFailures: [] });

  // The workflow, subscribe then unsubscribe, with the real task handlers.
  const definition = definitionFromTemplate(synthStack().template.toJSON() as never);
  const handlers = {
    PlanFunction: require('../../lambda/workflow-plan/index').handler,
    VehicleFunction: require('../../lambda/workflow-vehicle/index').handler,
    ResultsFunction: require('../../lambda/workflow-results/index').handler,
  };
  const inputs = new Map<string, unknown>();
  sfn
    .on(DescribeExecutionCommand)
    .callsFake(({ executionArn }) => ({ input: JSON.stringify(inputs.get(executionArn)) }));
  for (const [name, input] of [
    ['sub', { accessToken: ACCESS_TOKEN }],
    ['unsub', { action: 'unsubscribe', vehicleIds: ['veh-1'] }],
  ] as const) {
    inputs.set(executionArnOf(name), input);
    await runLocally({ definition, input, handlers, executionName: name, waitMs: 1, retryMs: 1 });
  }
  expect(fake.subscribed.get('veh-1')).toBe(1);
  expect(fake.unsubscribed.get('veh-1')).toBe(1);

  const all = lines.join('\n');
  expect(lines.length).toBeGreaterThan(10);
  for (const secret of [TEST_TOKEN, ACCESS_TOKEN, ...signatures]) expect(all).not.toContain(secret);
  for (const personal of [VIN, '37.4292', '-122.1381', '"distance":37829', 'signals'])
    expect(all).not.toContain(personal);

  // Structured: every line is JSON; deliveries carry their ids.
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const accepted = parsed.filter((l) => l.message === 'accepted delivery');
  expect(accepted).toHaveLength(2);
  expect(accepted[0]).toMatchObject({
    level: 'DEBUG',
    service: 'LeakTest',
    eventId: '7f1c2d3e-4b5a-4697-8a1b-2c3d4e5f6a7b',
    eventType: 'VEHICLE_STATE',
    deliveryId: expect.any(String),
    requestId: 'req-123',
  });
  expect(parsed.some((l) => l.message === 'rejected: SC-Signature does not match')).toBe(true);
  expect(parsed.some((l) => l.message === 'ingested batch' && l.recordsWritten === 2)).toBe(true);
  expect(parsed.some((l) => l.message === 'run finished')).toBe(true);
});
