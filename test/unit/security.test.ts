/**
 * The security review's findings (issue 9), one block per finding, each proven on the code that runs in
 * Lambda and, where there is one, on the local receiver that shares its core.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as SecretsManagerModule from '@aws-sdk/client-secrets-manager';
import type * as SqsModule from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { parseAccessTokenSecret } from '../../lambda/core/access-token';
import { parseBody } from '../../lambda/core/envelope';
import { escapeControl, logSafe } from '../../lambda/core/log-safe';
import { receive } from '../../lambda/core/receive';
import { dedupeKey, MAX_PLAIN_DEDUPE_KEY_BYTES } from '../../lambda/core/seen-store';
import {
  CHALLENGE_PATTERN,
  challengeResponse,
  hmacHex,
  isAnswerableChallenge,
  MAX_CHALLENGE_LENGTH,
} from '../../lambda/core/signature';
import { prepare, type WorkflowDeps } from '../../lambda/core/workflow';
import type { handler as Handler } from '../../lambda/verify/index';
import { consoleLogger } from '../../local/console-logger';
import { readLake } from '../../local/file-lake';
import { startLocalServer } from '../../local/server';
import { apiEvent, FRONT_DOORS } from '../support/api-event';
import { sign, TEST_TOKEN } from '../support/fixtures';
import { RecordingMetrics } from '../support/metrics';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:amt-AbCdEf';

/** A delivery an attacker would like stored: a JSON object, as every accepted delivery must be. */
const FORGED = JSON.stringify({
  eventId: '00000000-0000-4000-8000-00000000f0f0',
  eventType: 'VEHICLE_ERROR',
  vehicleId: 'victim-vehicle',
  data: { errors: [{ type: 'FORGED', code: 'FORGED', state: 'ERROR' }] },
  meta: { version: '4.0', mode: 'LIVE', webhookId: 'wh' },
});
const verifyCurrent = (challenge: string) =>
  JSON.stringify({ eventId: 'e', eventType: 'VERIFY', data: { challenge }, meta: { version: '4.0' } });
const verifyLegacy = (challenge: string) =>
  JSON.stringify({ version: '2.0', webhookId: 'wh', eventName: 'verify', payload: { challenge } });

describe.each(FRONT_DOORS)('1. VERIFY is not a signing oracle (front door: %s)', (frontDoor, event) => {
  let handler: typeof Handler;
  let sqs: AwsClientStub<SqsModule.SQSClient>;
  let sm: AwsClientStub<SecretsManagerModule.SecretsManagerClient>;
  let SendMessageCommand: typeof SqsModule.SendMessageCommand;

  beforeEach(async () => {
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sqsModule = await import('@aws-sdk/client-sqs');
    SendMessageCommand = sqsModule.SendMessageCommand;
    sm = mockClient(smModule.SecretsManagerClient);
    sqs = mockClient(sqsModule.SQSClient);
    sm.on(smModule.GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = SECRET_ARN;
    process.env.DELIVERY_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/q';
    process.env.POWERTOOLS_DEV = 'false';
    if (frontDoor === 'function-url') process.env.SMARTCAR_CALLBACK_PATH = '/webhooks';
    else delete process.env.SMARTCAR_CALLBACK_PATH;
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    ({ handler } = await import('../../lambda/verify/index'));
  });

  afterEach(() => {
    delete process.env.SMARTCAR_CALLBACK_PATH;
    jest.restoreAllMocks();
    sm.restore();
    sqs.restore();
  });

  it.each([
    ['current', verifyCurrent],
    ['legacy', verifyLegacy],
  ])('the whole attack fails at both steps on the Lambda handler (%s VERIFY)', async (_, verify) => {
    // Step 1: ask for HMAC(token, forged body) by sending the body as a challenge.
    const step1 = await handler(event(verify(FORGED)));
    expect(step1.statusCode).toBe(400);
    const answer = (JSON.parse(step1.body as string) as { challenge?: string }).challenge;
    expect(answer).toBeUndefined();
    expect(step1.body).not.toContain(hmacHex(TEST_TOKEN, FORGED));
    // Step 2: post the forged body with whatever step 1 gave as its signature.
    const step2 = await handler(event(FORGED, { 'sc-signature': answer ?? '' }));
    expect(step2.statusCode).toBe(401);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('still answers Smartcar-shaped challenges, with the reference vector', async () => {
    const res = await handler(event(verifyCurrent('3a5c8f72-e6d9-4b1a-9f2e-8c7d6a5b4e3f')));
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body as string)).toEqual({
      challenge: '349d5faf8fa4f2d540b13549b98559b6fa4fd9592b8340988d0bd441eeaca352',
    });
  });

  it.each([
    ['too long', 'a'.repeat(MAX_CHALLENGE_LENGTH + 1)],
    ['a space', 'abc def'],
    ['JSON text', '{"a":1}'],
    ['a quote', '"x"'],
    ['non-ASCII', 'défi'],
    ['empty', ''],
  ])('refuses a challenge with %s: 400, a metric, the token never read', async (_, challenge) => {
    const metrics = new RecordingMetrics();
    const token = { get: jest.fn(async () => TEST_TOKEN), refresh: async () => undefined };
    const res = await receive(
      { body: Buffer.from(verifyCurrent(challenge)), headers: {}, receivedAt: new Date() },
      { token, enqueue: async () => {}, logger: { info() {}, warn() {}, error() {} }, metrics },
    );
    expect(res.statusCode).toBe(400);
    expect(JSON.stringify(res.body)).not.toMatch(/[0-9a-f]{64}/);
    expect(token.get).not.toHaveBeenCalled();
    // An empty challenge counts as "no challenge" (a plain 400); every other refusal is a probe.
    if (challenge !== '') expect(metrics.total('VerifyChallengesRejected')).toBe(1);
  });

  it('the same rule holds on the local receiver (npm start)', async () => {
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'oracle-'));
    const server = await startLocalServer({
      lakeDir,
      managementToken: TEST_TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: { info() {}, warn() {}, error() {} },
    });
    try {
      const post = (body: string, headers: Record<string, string> = {}) =>
        fetch(server.url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      const step1 = await post(verifyCurrent(FORGED));
      expect(step1.status).toBe(400);
      const answer = ((await step1.json()) as { challenge?: string }).challenge;
      expect(answer).toBeUndefined();
      const step2 = await post(FORGED, { 'sc-signature': answer ?? hmacHex('guess', FORGED) });
      expect(step2.status).toBe(401);
      await server.flush();
      expect((await readLake(lakeDir)).size).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('property: no answerable challenge is ever a JSON object, so no answer can sign a delivery', () => {
    const charset = fc.constantFrom(...'ABCXYZabcxyz0189-_.~'.split(''));
    const candidate = fc.oneof(
      fc.string({ unit: charset, maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.json(),
      fc.uuid(),
    );
    fc.assert(
      fc.property(candidate, (challenge) => {
        if (!isAnswerableChallenge(challenge)) {
          expect(() => challengeResponse(TEST_TOKEN, challenge)).toThrow();
          return;
        }
        expect(CHALLENGE_PATTERN.test(challenge)).toBe(true);
        expect(parseBody(Buffer.from(challenge)).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a VERIFY carrying any JSON object as its challenge is never answered', async () => {
    await fc.assert(
      fc.asyncProperty(fc.object(), async (obj) => {
        const res = await receive(
          { body: Buffer.from(verifyCurrent(JSON.stringify(obj))), headers: {}, receivedAt: new Date() },
          {
            token: { get: async () => TEST_TOKEN, refresh: async () => undefined },
            enqueue: async () => {},
            logger: { info() {}, warn() {}, error() {} },
          },
        );
        expect(res.statusCode).toBe(400);
      }),
      { numRuns: 300 },
    );
  });
});

describe('4. unsigned requests cannot flood or forge the logs', () => {
  let handler: typeof Handler;
  let written: string[];
  let sm: AwsClientStub<SecretsManagerModule.SecretsManagerClient>;
  let sqs: AwsClientStub<SqsModule.SQSClient>;

  beforeEach(async () => {
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sqsModule = await import('@aws-sdk/client-sqs');
    sm = mockClient(smModule.SecretsManagerClient);
    sqs = mockClient(sqsModule.SQSClient);
    sm.on(smModule.GetSecretValueCommand).resolves({ SecretString: TEST_TOKEN });
    sqs.on(sqsModule.SendMessageCommand).resolves({ MessageId: 'm' });
    process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = SECRET_ARN;
    process.env.DELIVERY_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/q';
    process.env.POWERTOOLS_DEV = 'false';
    written = [];
    for (const stream of [process.stdout, process.stderr]) {
      jest.spyOn(stream, 'write').mockImplementation((chunk) => {
        written.push(String(chunk));
        return true;
      });
    }
    for (const level of ['log', 'info', 'warn', 'error'] as const) {
      jest.spyOn(console, level).mockImplementation((...a) => written.push(a.join(' ')));
    }
    ({ handler } = await import('../../lambda/verify/index'));
  });

  afterEach(() => {
    jest.restoreAllMocks();
    sm.restore();
    sqs.restore();
  });

  // Each request is about 120 KB, just under the 128 KiB body limit, as in the review's finding.
  const huge = 'x'.repeat(30_000);
  const requests: [string, string, Record<string, string>, number][] = [
    [
      'unsigned, huge fields',
      JSON.stringify({ eventId: huge, eventType: huge, meta: { deliveryId: huge, webhookId: huge } }),
      {},
      401,
    ],
    [
      'wrongly signed, huge fields',
      JSON.stringify({ eventId: huge, eventType: huge, meta: { deliveryId: huge, webhookId: huge } }),
      { 'sc-signature': 'ab'.repeat(32) },
      401,
    ],
    [
      'VERIFY, huge fields and challenge',
      JSON.stringify({
        eventId: huge,
        eventType: 'VERIFY',
        data: { challenge: huge },
        meta: { deliveryId: huge, webhookId: huge },
      }),
      {},
      400,
    ],
    ['huge content type', '{}', { 'content-type': `text/${'x'.repeat(120_000)}` }, 415],
  ];
  it.each(requests)('%s: at most 1 KiB of log per rejected request', async (_, body, headers, status) => {
    const requestBytes = Buffer.byteLength(body) + Object.values(headers).join('').length;
    expect(requestBytes).toBeGreaterThan(100_000);
    const res = await handler(apiEvent(body, headers));
    expect(res.statusCode).toBe(status);
    const bytes = written.reduce((n, s) => n + Buffer.byteLength(s), 0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(1024);
  });

  it('logSafe cuts and escapes', () => {
    expect(logSafe('a'.repeat(100))).toBe(`${'a'.repeat(64)}…(100 chars)`);
    expect(logSafe('a\nb\r\u2028c\u001b[31m')).toBe('a\\u000ab\\u000d\\u2028c\\u001b[31m');
    expect(logSafe({ toString: () => 'x' })).toBeUndefined();
    expect(escapeControl('ok')).toBe('ok');
  });

  it('the local logger writes one line per entry: an injected newline cannot fake an "accepted delivery"', async () => {
    jest.restoreAllMocks();
    const lines: string[] = [];
    for (const level of ['log', 'warn', 'error'] as const) {
      jest.spyOn(console, level).mockImplementation((...a) => lines.push(a.join(' ')));
    }
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'inject-'));
    const server = await startLocalServer({
      lakeDir,
      managementToken: TEST_TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: consoleLogger(),
    });
    try {
      const injected = '\n2026-11-27T00:00:00.000Z info  accepted delivery  eventId=forged eventType=VEHICLE_STATE';
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ eventId: 'e1', eventType: `VEHICLE_STATE${injected}` }),
      });
      expect(res.status).toBe(401);
      const output = lines.join('\n').split('\n');
      expect(output).toHaveLength(lines.length); // no entry spans two lines
      expect(output.filter((l) => l.startsWith('2026-11-27T00:00:00.000Z'))).toHaveLength(0);
      expect(output.some((l) => l.includes('rejected: missing SC-Signature') && l.includes('\\u000a'))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('5. a malformed secret never leaks into an error', () => {
  const TOKEN_FRAGMENT = 'sc_at_SECR';
  const malformed = [
    `{"accessToken": "${TOKEN_FRAGMENT}ET_0123456789abcdef",`,
    `{"accessToken": ${TOKEN_FRAGMENT}ET}`,
    `{'accessToken': '${TOKEN_FRAGMENT}ET'}`,
    `{"accessToken": "${TOKEN_FRAGMENT}ET" "x": 1}`,
  ];

  it.each(malformed)('parseAccessTokenSecret(%p) names the secret and the shape, never the value', (value) => {
    let message = '';
    try {
      parseAccessTokenSecret(value, 'smartcar/access-tokens/u1');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('smartcar/access-tokens/u1');
    expect(message).toContain('{"accessToken": "<token>"}');
    expect(message).not.toContain(TOKEN_FRAGMENT);
  });

  it('through the deployed task code: InvalidInput, and neither its cause nor any log line quotes the secret', async () => {
    jest.resetModules();
    const smModule = await import('@aws-sdk/client-secrets-manager');
    const sm = mockClient(smModule.SecretsManagerClient);
    sm.on(smModule.GetSecretValueCommand).resolves({ SecretString: malformed[0] });
    const written: string[] = [];
    for (const stream of [process.stdout, process.stderr]) {
      jest.spyOn(stream, 'write').mockImplementation((chunk) => {
        written.push(String(chunk));
        return true;
      });
    }
    process.env.WORKFLOW_BUCKET_NAME = 'work';
    process.env.ACCESS_TOKEN_SECRET_PREFIX = 'smartcar/access-tokens/';
    process.env.SMARTCAR_WEBHOOK_ID = 'wh-1';
    process.env.SMARTCAR_ALLOWED_WEBHOOK_IDS = 'wh-1';
    process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = SECRET_ARN;
    try {
      const { workflowDeps } = await import('../../lambda/adapters/aws-workflow');
      const deps = workflowDeps();
      const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:smartcar/access-tokens/u1-AbCdEf';
      const err = await prepare(
        { accessTokenSecretArn: arn },
        { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:sm:r', executionName: 'r' },
        deps,
      ).catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'InvalidInput' });
      expect((err as Error).message).toContain(arn);
      expect((err as Error).message).not.toContain(TOKEN_FRAGMENT);
      expect(written.join('')).not.toContain(TOKEN_FRAGMENT);
    } finally {
      jest.restoreAllMocks();
      sm.restore();
    }
  });
});

describe('6. any eventId fits the deduplication table', () => {
  it('keeps short ids, hashes long or ill-formed ones, and keeps distinct ids distinct', () => {
    expect(dedupeKey('550e8400-e29b-41d4-a716-446655440000')).toBe('550e8400-e29b-41d4-a716-446655440000');
    expect(dedupeKey('sha256:abc')).toBe('sha256:abc');
    const long = 'é'.repeat(5000);
    expect(Buffer.byteLength(long)).toBeGreaterThan(2048);
    expect(dedupeKey(long)).toMatch(/^#sha256:[0-9a-f]{64}$/);
    expect(dedupeKey(long)).not.toBe(dedupeKey(`${long}x`));
    expect(dedupeKey('a\ud800b')).toMatch(/^#sha256:/);
    expect(dedupeKey('a\ud800b')).not.toBe(dedupeKey('a\ud801b'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (id) => {
        const key = dedupeKey(id);
        expect(Buffer.byteLength(key, 'utf8')).toBeLessThanOrEqual(Math.max(MAX_PLAIN_DEDUPE_KEY_BYTES, 72));
        expect(key.startsWith('#') && key === id).toBe(false);
      }),
    );
  });
});

describe('7. the workflow runs only against allowed webhooks', () => {
  const ctx = { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:sm:run-1', executionName: 'run-1' };
  const deps = (extra: Partial<WorkflowDeps>): WorkflowDeps => ({
    client: {} as never,
    store: {
      putJson: async () => {},
      getJson: async () => [] as never,
      getJsonIfExists: async () => undefined,
      listKeys: async () => [],
      uri: (k) => k,
    },
    logger: { info() {}, warn() {}, error() {} },
    resolveAccessToken: async () => 'token',
    managementToken: async () => 'amt',
    defaultWebhookId: 'wh-1',
    ...extra,
  });

  it.each([
    ['subscribe to another webhook', { accessToken: 't', webhookId: 'attacker-webhook' }],
    [
      'unsubscribe named vehicles from another webhook',
      { action: 'unsubscribe', vehicleIds: ['v1'], webhookId: 'wh-2' },
    ],
  ])('refuses to %s by default (allowed: the configured webhook)', async (_, input) => {
    await expect(prepare(input, ctx, deps({}))).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringMatching(/not allowed.*allowed: wh-1.*allowedWebhookIds/),
    });
  });

  it('accepts the configured webhook, and others only when listed', async () => {
    await expect(prepare({ accessToken: 't' }, ctx, deps({}))).resolves.toMatchObject({ plan: { webhookId: 'wh-1' } });
    const listed = deps({ allowedWebhookIds: ['wh-1', 'wh-2'] });
    await expect(prepare({ accessToken: 't', webhookId: 'wh-2' }, ctx, listed)).resolves.toMatchObject({
      plan: { webhookId: 'wh-2' },
    });
    await expect(prepare({ accessToken: 't', webhookId: 'wh-3' }, ctx, listed)).rejects.toMatchObject({
      name: 'InvalidInput',
    });
  });

  it('with no webhook configured and none allowed, refuses every webhook', async () => {
    const none = deps({ defaultWebhookId: undefined, allowedWebhookIds: [] });
    await expect(prepare({ accessToken: 't', webhookId: 'wh-1' }, ctx, none)).rejects.toMatchObject({
      message: expect.stringContaining('none configured'),
    });
  });
});

it('signing helpers used by these tests agree with the reference vector', () => {
  expect(sign('{"pizza":"pasta"}', 'amt')).toBe('4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70');
});
