import type * as SecretsManagerModule from '@aws-sdk/client-secrets-manager';
import type * as SqsModule from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import type { DeliveryMessage } from '../../lambda/contract';
import type { handler as Handler } from '../../lambda/verify/index';
import { FRONT_DOORS } from '../support/api-event';
import { fixture, sign, TEST_TOKEN } from '../support/fixtures';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:amt-AbCdEf';
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/deliveries';

let handler: typeof Handler;
let logs: string[];
let sm: AwsClientStub<SecretsManagerModule.SecretsManagerClient>;
let sqs: AwsClientStub<SqsModule.SQSClient>;
let GetSecretValueCommand: typeof SecretsManagerModule.GetSecretValueCommand;
let SendMessageCommand: typeof SqsModule.SendMessageCommand;

describe.each(FRONT_DOORS)('front door: %s', (frontDoor, event) => {
  const setup = async () => {
    // A fresh module registry per test gives a fresh token cache; the SDK classes must come from the same
    // registry as the handler's for the mocks to apply.
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sqsModule = await import('@aws-sdk/client-sqs');
    GetSecretValueCommand = smModule.GetSecretValueCommand;
    SendMessageCommand = sqsModule.SendMessageCommand;
    sm = mockClient(smModule.SecretsManagerClient);
    sqs = mockClient(sqsModule.SQSClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
    sqs.on(SendMessageCommand).resolves({ MessageId: 'msg-1' });
    process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = SECRET_ARN;
    process.env.DELIVERY_QUEUE_URL = QUEUE_URL;
    process.env.POWERTOOLS_DEV = 'false';
    process.env.POWERTOOLS_SERVICE_NAME = 'TestStack';
    // Behind a Function URL the function checks the route itself; behind the HTTP API the route does.
    if (frontDoor === 'function-url') process.env.SMARTCAR_CALLBACK_PATH = '/webhooks';
    else delete process.env.SMARTCAR_CALLBACK_PATH;
    logs = [];
    for (const stream of [process.stdout, process.stderr]) {
      jest.spyOn(stream, 'write').mockImplementation((chunk) => {
        logs.push(String(chunk));
        return true;
      });
    }
    jest.spyOn(console, 'log').mockImplementation((...a) => logs.push(a.join(' ')));
    jest.spyOn(console, 'info').mockImplementation((...a) => logs.push(a.join(' ')));
    jest.spyOn(console, 'warn').mockImplementation((...a) => logs.push(a.join(' ')));
    jest.spyOn(console, 'error').mockImplementation((...a) => logs.push(a.join(' ')));
    ({ handler } = await import('../../lambda/verify/index'));
  };
  beforeEach(setup);

  afterEach(() => {
    delete process.env.SMARTCAR_CALLBACK_PATH;
    jest.restoreAllMocks();
    sm.restore();
    sqs.restore();
  });

  function queued(): DeliveryMessage[] {
    return sqs.commandCalls(SendMessageCommand).map((c) => JSON.parse(c.args[0].input.MessageBody as string));
  }

  describe('VERIFY', () => {
    it.each([['verify-legacy'], ['verify-current']] as const)(
      '%s: 200 with the HMAC of the challenge',
      async (name) => {
        const res = await handler(event(fixture(name)));
        expect(res.statusCode).toBe(200);
        expect(res.headers?.['content-type']).toBe('application/json');
        expect(JSON.parse(res.body as string)).toEqual({
          challenge: '349d5faf8fa4f2d540b13549b98559b6fa4fd9592b8340988d0bd441eeaca352',
        });
        expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
        expect(sm.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: SECRET_ARN });
      },
    );

    it('400 for a VERIFY without a challenge', async () => {
      const res = await handler(event('{"eventType":"VERIFY","data":{}}'));
      expect(res.statusCode).toBe(400);
    });
  });

  describe('signed deliveries', () => {
    it('queues the exact raw bytes before answering 200', async () => {
      const body = fixture('vehicle-state');
      const res = await handler(event(body, { 'sc-signature': sign(body) }));
      expect(res.statusCode).toBe(200);
      const calls = sqs.commandCalls(SendMessageCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0].args[0].input.QueueUrl).toBe(QUEUE_URL);
      const [message] = queued();
      expect(Buffer.from(message.bodyBase64, 'base64').equals(body)).toBe(true);
      expect(message).toMatchObject({ v: 1, receivedAt: '2026-11-26T21:04:59.123Z', requestId: 'req-123' });
    });

    it('decodes a base64-encoded body before checking the signature', async () => {
      const body = fixture('schedule-legacy');
      const res = await handler(event(body, { 'sc-signature': sign(body) }, { base64: true }));
      expect(res.statusCode).toBe(200);
      expect(Buffer.from(queued()[0].bodyBase64, 'base64').equals(body)).toBe(true);
    });

    it('finds the header whatever its case', async () => {
      const body = fixture('vehicle-error');
      const res = await handler(event(body, { 'SC-Signature': sign(body) }));
      expect(res.statusCode).toBe(200);
    });

    it('reads the secret once for many deliveries (cached)', async () => {
      for (const name of ['vehicle-state', 'vehicle-error', 'schedule-legacy'] as const) {
        const body = fixture(name);
        expect((await handler(event(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
      }
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    });

    it('picks up a rotated token without a redeploy: one re-read when the signature fails', async () => {
      const first = fixture('vehicle-state');
      expect((await handler(event(first, { 'sc-signature': sign(first) }))).statusCode).toBe(200);
      sm.on(GetSecretValueCommand).resolves({ SecretString: 'rotated-token' });
      // The cache refuses early re-reads within 30 s of a load; step past that.
      const later = Date.now() + 31_000;
      jest.spyOn(Date, 'now').mockReturnValue(later);
      const second = fixture('vehicle-error');
      const res = await handler(event(second, { 'sc-signature': sign(second, 'rotated-token') }));
      expect(res.statusCode).toBe(200);
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    });
  });

  describe('rejections store nothing', () => {
    const body = fixture('vehicle-state');

    it.each([
      ['no signature', {}, 401],
      ['a wrong signature', { 'sc-signature': sign(body, 'another-token') }, 401],
      ['a garbage signature', { 'sc-signature': 'not-a-signature' }, 401],
      ['a signature of other bytes', { 'sc-signature': sign(`${body.toString()} `) }, 401],
    ])('%s', async (_label, headers, status) => {
      const res = await handler(event(body, headers as Record<string, string>));
      expect(res.statusCode).toBe(status);
      expect(JSON.parse(res.body as string).error).toEqual(expect.any(String));
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    });

    it('rejects an unsigned delivery without looking up the token', async () => {
      expect((await handler(event(body))).statusCode).toBe(401);
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
    });

    it('a flood of forged deliveries does not become a flood of Secrets Manager calls', async () => {
      for (let i = 0; i < 20; i++) {
        expect((await handler(event(body, { 'sc-signature': sign(body, `forged-${i}`) }))).statusCode).toBe(401);
      }
      // One load, then the burst of three early re-reads a rotation may need; none after that.
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(4);
      for (let i = 0; i < 20; i++) await handler(event(body, { 'sc-signature': sign(body, `more-${i}`) }));
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(4);
    });

    it.each([
      ['an empty body', '', {}, 400],
      ['a missing body', undefined, {}, 400],
      ['non-JSON', 'hello', {}, 400],
      ['a JSON array', '[]', {}, 400],
      ['a form content type', '{"a":1}', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      ['a body over the size limit', `{"x":"${'a'.repeat(140 * 1024)}"}`, {}, 413],
    ])('%s', async (_label, raw, headers, status) => {
      const signedHeaders = raw === undefined ? headers : { ...headers, 'sc-signature': sign(raw) };
      const res = await handler(event(raw, signedHeaders as Record<string, string>));
      expect(res.statusCode).toBe(status);
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    });

    it('accepts application/json with parameters', async () => {
      const res = await handler(
        event(body, { 'content-type': 'application/json; charset=utf-8', 'sc-signature': sign(body) }),
      );
      expect(res.statusCode).toBe(200);
    });

    it('does not crash on an event with nothing in it', async () => {
      const res = await handler({} as never);
      // With no path at all, a Function URL's function cannot even tell it is the callback.
      expect(res.statusCode).toBe(frontDoor === 'function-url' ? 404 : 400);
    });
  });

  describe('failures answer 5xx so that Smartcar retries', () => {
    const body = fixture('vehicle-state');

    it('503 and a how-to log line while the secret holds its placeholder', async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: '{"placeholder":"replace this"}' });
      const res = await handler(event(fixture('verify-current')));
      expect(res.statusCode).toBe(503);
      // Requests right after do not each call Secrets Manager again.
      expect((await handler(event(fixture('verify-legacy')))).statusCode).toBe(503);
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
      expect(logs.join('\n')).toContain(`aws secretsmanager put-secret-value --secret-id ${SECRET_ARN}`);
    });

    it('500, never 2xx, when the secret cannot be read', async () => {
      sm.on(GetSecretValueCommand).rejects(new Error('AccessDeniedException'));
      const verify = await handler(event(fixture('verify-current')));
      expect(verify.statusCode).toBe(500);
      const delivery = await handler(event(body, { 'sc-signature': sign(body) }));
      expect(delivery.statusCode).toBe(500);
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    });

    it('503 when the queue does not accept the delivery', async () => {
      sqs.on(SendMessageCommand).rejects(new Error('ServiceUnavailable'));
      const res = await handler(event(body, { 'sc-signature': sign(body) }));
      expect(res.statusCode).toBe(503);
    });
  });

  describe('metrics (CloudWatch embedded metric format)', () => {
    function emf(): { metric: string; value: unknown; dims: Record<string, unknown> }[] {
      return logs
        .flatMap((l) => l.split('\n'))
        .filter((l) => l.includes('"_aws"'))
        .flatMap((l) => {
          const doc = JSON.parse(l);
          const def = doc._aws.CloudWatchMetrics[0];
          return def.Metrics.map((m: { Name: string }) => ({
            metric: m.Name,
            value: doc[m.Name],
            dims: Object.fromEntries(def.Dimensions.flat().map((d: string) => [d, doc[d]])),
          }));
        });
    }

    it('writes nothing billed for an accepted delivery: no metric line, no log line at the default level', async () => {
      const body = fixture('vehicle-state');
      for (let i = 0; i < 5; i++)
        expect((await handler(event(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
      expect(queued()).toHaveLength(5);
      // Deliveries are counted per batch by the ingest function (test/unit/ingest-handler.test.ts).
      expect(emf()).toEqual([]);
      expect(logs.join('')).toBe('');
    });

    it('counts signature failures and answered challenges', async () => {
      const body = fixture('vehicle-state');
      await handler(event(body, { 'sc-signature': sign(body, 'forged') }));
      await handler(event(fixture('verify-legacy')));
      const emitted = emf();
      expect(emitted).toContainEqual({ metric: 'SignatureFailures', value: 1, dims: { service: 'TestStack' } });
      expect(emitted).toContainEqual({ metric: 'VerifyChallengesAnswered', value: 1, dims: { service: 'TestStack' } });
      expect(emitted).toContainEqual({ metric: 'VerifyRequests', value: 1, dims: { service: 'TestStack' } });
    });
  });

  describe('logs', () => {
    it('never contain the token, the signature or the body, even at DEBUG', async () => {
      jest.restoreAllMocks();
      sm.restore();
      sqs.restore();
      process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
      await setup();
      const body = fixture('vehicle-state-variant');
      const signature = sign(body);
      await handler(event(fixture('verify-current')));
      await handler(event(body, { 'sc-signature': signature }));
      await handler(event(body, { 'sc-signature': sign(body, 'forged') }));
      const all = logs.join('\n');
      expect(all).toContain('accepted delivery');
      expect(all).toContain('7f1c2d3e-4b5a-4697-8a1b-2c3d4e5f6a7b'); // the eventId is logged
      expect(all).not.toContain(TEST_TOKEN);
      expect(all).not.toContain(signature);
      expect(all).not.toContain('37.4292'); // the latitude in the body
      delete process.env.POWERTOOLS_LOG_LEVEL;
    });
  });

  if (frontDoor === 'function-url') {
    describe('routing, which the Function URL leaves to the function', () => {
      it('404 off the callback path and 405 for other methods, before any token is read', async () => {
        const body = fixture('vehicle-state');
        const wrongPath = await handler(event(body, { 'sc-signature': sign(body) }, { path: '/other' } as never));
        expect(wrongPath.statusCode).toBe(404);
        const get = await handler(event(undefined, {}, { method: 'GET' } as never));
        expect(get.statusCode).toBe(405);
        expect(get.headers).toMatchObject({ allow: 'POST' });
        expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
        expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
      });
    });
  }
});

describe('quarantine: a token mistake (issue 18)', () => {
  it('at 2 deliveries/s for 3 minutes every attempt is kept for recovery (the old per-instance cap, 60 a minute, lost most)', async () => {
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sqsModule = await import('@aws-sdk/client-sqs');
    const s3Module = await import('@aws-sdk/client-s3');
    const smMock = mockClient(smModule.SecretsManagerClient);
    const sqsMock = mockClient(sqsModule.SQSClient);
    const s3Mock = mockClient(s3Module.S3Client);
    smMock.on(smModule.GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
    sqsMock.on(sqsModule.SendMessageCommand).resolves({ MessageId: 'm' });
    s3Mock.on(s3Module.PutObjectCommand).resolves({});
    Object.assign(process.env, {
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: SECRET_ARN,
      DELIVERY_QUEUE_URL: QUEUE_URL,
      QUARANTINE_BUCKET_NAME: 'quarantine-bucket',
      QUARANTINE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/quarantine',
    });
    delete process.env.SMARTCAR_CALLBACK_PATH;
    for (const stream of [process.stdout, process.stderr]) jest.spyOn(stream, 'write').mockImplementation(() => true);
    let now = Date.parse('2026-11-27T10:00:00Z');
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const { handler: verify } = await import('../../lambda/verify/index');
      const { apiEvent } = await import('../support/api-event');
      let attempts = 0;
      for (let s = 0; s < 180 + 175; s++) {
        now = Date.parse('2026-11-27T10:00:00Z') + s * 1000;
        for (const offset of [0, 25, 75, 175]) {
          const first = s - offset;
          if (first < 0 || first >= 180) continue;
          for (const i of [first * 2, first * 2 + 1]) {
            // Smartcar signs with the token the secret does not hold yet; each attempt has its own deliveryId.
            const body = Buffer.from(
              JSON.stringify({ eventId: `e-${i}`, eventType: 'VEHICLE_STATE', meta: { deliveryId: `${i}-${offset}` } }),
            );
            const res = await verify(apiEvent(body, { 'sc-signature': sign(body, 'amt-rotated') }, { timeEpoch: now }));
            expect(res.statusCode).toBe(401);
            attempts++;
          }
        }
      }
      expect(attempts).toBe(1440);
      const toQuarantineQueue = sqsMock
        .commandCalls(sqsModule.SendMessageCommand)
        .filter((c) => c.args[0].input.QueueUrl === process.env.QUARANTINE_QUEUE_URL);
      const kept = toQuarantineQueue.length + s3Mock.commandCalls(s3Module.PutObjectCommand).length;
      expect(kept).toBe(1440);
      expect(
        sqsMock.commandCalls(sqsModule.SendMessageCommand).filter((c) => c.args[0].input.QueueUrl === QUEUE_URL),
      ).toHaveLength(0);
      const ids = new Set(
        toQuarantineQueue.map((c) => {
          const q = JSON.parse(c.args[0].input.MessageBody as string);
          expect(q).toMatchObject({ v: 1, signature: expect.stringMatching(/^[0-9a-f]{64}$/) });
          return JSON.parse(Buffer.from(q.bodyBase64, 'base64').toString()).eventId;
        }),
      );
      expect(ids.size).toBe(360);
    } finally {
      delete process.env.QUARANTINE_BUCKET_NAME;
      delete process.env.QUARANTINE_QUEUE_URL;
      jest.restoreAllMocks();
      smMock.restore();
      sqsMock.restore();
      s3Mock.restore();
    }
  });
});

describe('the vehicle error callback path behind a Function URL (issue 22)', () => {
  const ERROR_PATH = '/webhooks/errors';
  let verify: typeof Handler;
  let smMock: AwsClientStub<SecretsManagerModule.SecretsManagerClient>;
  let sqsMock: AwsClientStub<SqsModule.SQSClient>;
  let Send: typeof SqsModule.SendMessageCommand;
  let GetSecret: typeof SecretsManagerModule.GetSecretValueCommand;
  let at: typeof import('../support/api-event').functionUrlEvent;

  const load = async (errorPath: string | undefined) => {
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sqsModule = await import('@aws-sdk/client-sqs');
    Send = sqsModule.SendMessageCommand;
    GetSecret = smModule.GetSecretValueCommand;
    smMock = mockClient(smModule.SecretsManagerClient);
    sqsMock = mockClient(sqsModule.SQSClient);
    smMock.on(GetSecret).resolves({ SecretString: TEST_TOKEN });
    sqsMock.on(Send).resolves({ MessageId: 'm' });
    Object.assign(process.env, {
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: SECRET_ARN,
      DELIVERY_QUEUE_URL: QUEUE_URL,
      SMARTCAR_CALLBACK_PATH: '/webhooks',
    });
    if (errorPath) process.env.SMARTCAR_ERROR_CALLBACK_PATH = errorPath;
    else delete process.env.SMARTCAR_ERROR_CALLBACK_PATH;
    for (const stream of [process.stdout, process.stderr]) jest.spyOn(stream, 'write').mockImplementation(() => true);
    ({ handler: verify } = await import('../../lambda/verify/index'));
    ({ functionUrlEvent: at } = await import('../support/api-event'));
  };

  afterEach(() => {
    delete process.env.SMARTCAR_CALLBACK_PATH;
    delete process.env.SMARTCAR_ERROR_CALLBACK_PATH;
    jest.restoreAllMocks();
    smMock.restore();
    sqsMock.restore();
  });

  it('answers VERIFY and stores signed deliveries on both paths, into the one queue', async () => {
    await load(ERROR_PATH);
    const challenge = await verify(at(fixture('verify-current'), {}, { path: ERROR_PATH }));
    expect(challenge.statusCode).toBe(200);
    expect(JSON.parse(challenge.body as string)).toEqual({
      challenge: '349d5faf8fa4f2d540b13549b98559b6fa4fd9592b8340988d0bd441eeaca352',
    });
    const error = fixture('vehicle-error');
    expect((await verify(at(error, { 'sc-signature': sign(error) }, { path: ERROR_PATH }))).statusCode).toBe(200);
    const state = fixture('vehicle-state');
    expect((await verify(at(state, { 'sc-signature': sign(state) }, { path: '/webhooks' }))).statusCode).toBe(200);
    const sent = sqsMock.commandCalls(Send).map((c) => c.args[0].input);
    expect(sent.map((m) => m.QueueUrl)).toEqual([QUEUE_URL, QUEUE_URL]);
    const bodies = sent.map((m) => Buffer.from(JSON.parse(m.MessageBody as string).bodyBase64, 'base64'));
    expect(bodies[0].equals(error)).toBe(true);
    expect(bodies[1].equals(state)).toBe(true);
  });

  it('checks the signature on the error path as on the callback', async () => {
    await load(ERROR_PATH);
    const error = fixture('vehicle-error');
    const res = await verify(at(error, { 'sc-signature': sign(error, 'not-the-token') }, { path: ERROR_PATH }));
    expect(res.statusCode).toBe(401);
    expect(sqsMock.commandCalls(Send).filter((c) => c.args[0].input.QueueUrl === QUEUE_URL)).toHaveLength(0);
  });

  it('404 on any other path (naming both), 405 for GET on the error path, before any token is read', async () => {
    await load(ERROR_PATH);
    const error = fixture('vehicle-error');
    for (const path of ['/other', '/webhooks/errors/', '/webhooks/error']) {
      const res = await verify(at(error, { 'sc-signature': sign(error) }, { path }));
      expect(res.statusCode).toBe(404);
      expect(JSON.parse(res.body as string).error).toBe(
        'not found; the callback is POST /webhooks (vehicle errors: POST /webhooks/errors)',
      );
    }
    const get = await verify(at(undefined, {}, { path: ERROR_PATH, method: 'GET' }));
    expect(get.statusCode).toBe(405);
    expect(smMock.commandCalls(GetSecret)).toHaveLength(0);
    expect(sqsMock.commandCalls(Send)).toHaveLength(0);
  });

  it('without an error path the error path is just another unknown path', async () => {
    await load(undefined);
    const error = fixture('vehicle-error');
    const res = await verify(at(error, { 'sc-signature': sign(error) }, { path: ERROR_PATH }));
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body as string).error).toBe('not found; the callback is POST /webhooks');
  });
});
