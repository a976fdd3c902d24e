/**
 * The verification function with the Firehose buffer (the default): an authentic delivery is one NDJSON
 * line on the stream; a record the stream refuses goes to the delivery queue instead (counted), and only
 * when both refuse is the answer a 5xx for Smartcar to retry.
 */
import type * as FirehoseModule from '@aws-sdk/client-firehose';
import type * as SecretsManagerModule from '@aws-sdk/client-secrets-manager';
import type * as SqsModule from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import type { DeliveryMessage } from '../../lambda/contract';
import { landingMessages } from '../../lambda/core/landing';
import type { handler as Handler } from '../../lambda/verify/index';
import { apiEvent } from '../support/api-event';
import { fixture, sign, TEST_TOKEN } from '../support/fixtures';

const STREAM = 'deliveries-stream';
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/deliveries';

let handler: typeof Handler;
let out: string[];
let firehose: AwsClientStub<FirehoseModule.FirehoseClient>;
let sqs: AwsClientStub<SqsModule.SQSClient>;
let sm: AwsClientStub<SecretsManagerModule.SecretsManagerClient>;
let PutRecordCommand: typeof FirehoseModule.PutRecordCommand;
let SendMessageCommand: typeof SqsModule.SendMessageCommand;

beforeEach(async () => {
  jest.resetModules();
  const fhModule = await import('@aws-sdk/client-firehose');
  const sqsModule = await import('@aws-sdk/client-sqs');
  const smModule = await import('@aws-sdk/client-secrets-manager');
  PutRecordCommand = fhModule.PutRecordCommand;
  SendMessageCommand = sqsModule.SendMessageCommand;
  firehose = mockClient(fhModule.FirehoseClient);
  sqs = mockClient(sqsModule.SQSClient);
  sm = mockClient(smModule.SecretsManagerClient);
  sm.on(smModule.GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
  firehose.on(PutRecordCommand).resolves({ RecordId: 'r-1' });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:amt';
  process.env.DELIVERY_QUEUE_URL = QUEUE_URL;
  process.env.DELIVERY_STREAM_NAME = STREAM;
  process.env.POWERTOOLS_DEV = 'false';
  process.env.POWERTOOLS_SERVICE_NAME = 'TestStack';
  delete process.env.SMARTCAR_CALLBACK_PATH;
  out = [];
  for (const stream of [process.stdout, process.stderr])
    jest.spyOn(stream, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
  for (const m of ['log', 'info', 'warn', 'error'] as const)
    jest.spyOn(console, m).mockImplementation((...a) => out.push(a.join(' ')));
  ({ handler } = await import('../../lambda/verify/index'));
});

afterEach(() => {
  delete process.env.DELIVERY_STREAM_NAME;
  jest.restoreAllMocks();
  firehose.restore();
  sqs.restore();
  sm.restore();
});

const delivery = () => {
  const body = fixture('vehicle-state');
  return { body, event: apiEvent(body, { 'sc-signature': sign(body) }) };
};

it('puts an authentic delivery on the stream as one landing line, and nothing on the queue', async () => {
  const { body, event } = delivery();
  const res = await handler(event);
  expect(res.statusCode).toBe(200);
  const calls = firehose.commandCalls(PutRecordCommand);
  expect(calls).toHaveLength(1);
  expect(calls[0].args[0].input.DeliveryStreamName).toBe(STREAM);
  const data = Buffer.from(calls[0].args[0].input.Record?.Data as Uint8Array).toString('utf8');
  // Exactly one line, which the ingest side reads back as the queue message it replaces.
  expect(data.endsWith('\n')).toBe(true);
  expect(data.slice(0, -1)).not.toContain('\n');
  const [line] = landingMessages('landing/x', data);
  const message = JSON.parse(line.body) as DeliveryMessage;
  expect(Buffer.from(message.bodyBase64, 'base64').equals(body)).toBe(true);
  expect(message).toMatchObject({ v: 1, receivedAt: '2026-11-26T21:04:59.123Z', requestId: 'req-123' });
  expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
});

it('a record the stream refuses goes to the delivery queue instead, still 200, and is counted', async () => {
  firehose.on(PutRecordCommand).rejects(Object.assign(new Error('Slow down'), { name: 'ServiceUnavailableException' }));
  const { body, event } = delivery();
  const res = await handler(event);
  expect(res.statusCode).toBe(200);
  const sent = sqs.commandCalls(SendMessageCommand);
  expect(sent).toHaveLength(1);
  expect(sent[0].args[0].input.QueueUrl).toBe(QUEUE_URL);
  const message = JSON.parse(sent[0].args[0].input.MessageBody as string) as DeliveryMessage;
  expect(Buffer.from(message.bodyBase64, 'base64').equals(body)).toBe(true);
  const text = out.join('');
  expect(text).toContain('DeliveryStreamFallbacks');
  expect(text).toContain('ServiceUnavailableException');
  // The fallback log line names the error, never the body or the token.
  expect(text).not.toContain(TEST_TOKEN);
  expect(text).not.toContain(message.bodyBase64);
});

it('503 when neither the stream nor the queue takes it, so that Smartcar retries', async () => {
  firehose.on(PutRecordCommand).rejects(new Error('stream down'));
  sqs.on(SendMessageCommand).rejects(new Error('queue down'));
  const res = await handler(delivery().event);
  expect(res.statusCode).toBeGreaterThanOrEqual(500);
  expect(out.join('')).toContain('HandOffFailures');
});

it('rejections touch neither the stream nor the queue', async () => {
  const body = fixture('vehicle-state');
  const res = await handler(apiEvent(body, { 'sc-signature': sign(body, 'another-token') }));
  expect(res.statusCode).toBe(401);
  expect(firehose.commandCalls(PutRecordCommand)).toHaveLength(0);
  // The quarantine is off here (no queue URL for it): nothing is sent anywhere.
  expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
});

describe('what a cold start loads', () => {
  it('with the stream, a genuine delivery never loads the SQS client (only a refused record or a quarantined delivery does)', async () => {
    jest.resetModules();
    let sqsLoaded = 0;
    jest.doMock('@aws-sdk/client-sqs', () => {
      sqsLoaded++;
      return jest.requireActual('@aws-sdk/client-sqs');
    });
    const fh = await import('@aws-sdk/client-firehose');
    const stub = mockClient(fh.FirehoseClient);
    stub.on(fh.PutRecordCommand).resolves({ RecordId: 'r' });
    const sm = await import('@aws-sdk/client-secrets-manager');
    const smStub = mockClient(sm.SecretsManagerClient);
    smStub.on(sm.GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
    const { handler: h } = await import('../../lambda/verify/index');
    expect((await h(delivery().event)).statusCode).toBe(200);
    expect(sqsLoaded).toBe(0);
    stub.restore();
    smStub.restore();
    jest.dontMock('@aws-sdk/client-sqs');
  });
});
