/**
 * Property-based tests (fast-check): the signature check, the envelope parser and the receiver never
 * throw on any bytes, headers or encodings, and never accept what is not signed with the token.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import type { DeliveryMessage } from '../../lambda/contract';
import { parseBody, readEnvelope } from '../../lambda/core/envelope';
import { receive } from '../../lambda/core/receive';
import { hmacHex, isValidSignature } from '../../lambda/core/signature';
import type { handler as verifyHandlerType } from '../../lambda/verify/index';
import { fixture } from '../support/fixtures';

const TOKEN = 'property-token';
const silent = { info() {}, warn() {}, error() {} };
const RUNS = { numRuns: 500 };

const anyBytes = fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a));
const jsonish = fc.oneof(
  fc.json().map((s) => Buffer.from(s)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ eventType: 'VEHICLE_STATE', data: v, meta: v }))),
  fc.constantFrom(
    ...['vehicle-state', 'vehicle-error', 'schedule-legacy', 'verify-legacy'].map((n) => fixture(n as never)),
  ),
);
const body = fc.oneof(anyBytes, jsonish);
const signatureHeader = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 64, maxLength: 64 }),
  fc.constant(''),
  fc.constant(undefined),
);

describe('isValidSignature', () => {
  it('never throws, and accepts exactly the HMAC of the bytes under the token', () => {
    fc.assert(
      fc.property(body, signatureHeader, (raw, sig) => {
        const valid = isValidSignature(TOKEN, raw, sig);
        const expected = hmacHex(TOKEN, raw);
        expect(valid).toBe(typeof sig === 'string' && sig.trim().toLowerCase() === expected);
      }),
      RUNS,
    );
  });

  it('rejects the right signature for any other body', () => {
    fc.assert(
      fc.property(body, body, (a, b) => {
        fc.pre(!a.equals(b));
        expect(isValidSignature(TOKEN, b, hmacHex(TOKEN, a))).toBe(false);
      }),
      RUNS,
    );
  });
});

describe('envelope parser', () => {
  it('never throws on any bytes', () => {
    fc.assert(
      fc.property(body, (raw) => {
        const parsed = parseBody(raw);
        if (parsed.ok) {
          const env = readEnvelope(parsed.json, raw);
          expect(typeof env.fields.eventId).toBe('string');
          expect(typeof env.fields.eventType).toBe('string');
        } else {
          expect(typeof parsed.reason).toBe('string');
        }
      }),
      RUNS,
    );
  });
});

describe('receiver', () => {
  const headers = fc.dictionary(
    fc.oneof(
      fc.constantFrom('sc-signature', 'SC-Signature', 'content-type', 'Content-Type'),
      fc.string({ maxLength: 20 }),
    ),
    fc.string({ maxLength: 100 }),
    { maxKeys: 5 },
  );

  it('never throws, never enqueues what is not signed, and answers with a known status', async () => {
    await fc.assert(
      fc.asyncProperty(body, headers, async (raw, hdrs) => {
        const queued: DeliveryMessage[] = [];
        const res = await receive(
          { body: raw, headers: hdrs, receivedAt: new Date() },
          {
            token: { get: async () => TOKEN, refresh: async () => undefined },
            logger: silent,
            enqueue: async (m) => {
              queued.push(m);
            },
          },
        );
        expect([200, 400, 401, 413, 415]).toContain(res.statusCode);
        const sig = Object.entries(hdrs).find(([k]) => k.toLowerCase() === 'sc-signature')?.[1];
        if (queued.length > 0) {
          expect(isValidSignature(TOKEN, raw, sig)).toBe(true);
          expect(Buffer.from(queued[0].bodyBase64, 'base64').equals(raw)).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('accepts every signed JSON object and keeps its bytes exactly', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .dictionary(fc.string({ maxLength: 10 }), fc.jsonValue(), { maxKeys: 6 })
          .filter((o) => !('eventType' in o) && !('eventName' in o)),
        fc.constantFrom(0, 2),
        async (obj, indent) => {
          const raw = Buffer.from(JSON.stringify(obj, null, indent));
          const queued: DeliveryMessage[] = [];
          const res = await receive(
            { body: raw, headers: { 'sc-signature': hmacHex(TOKEN, raw) }, receivedAt: new Date() },
            {
              token: { get: async () => TOKEN, refresh: async () => undefined },
              logger: silent,
              enqueue: async (m) => {
                queued.push(m);
              },
            },
          );
          expect(res.statusCode).toBe(200);
          expect(Buffer.from(queued[0].bodyBase64, 'base64').equals(raw)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('API Gateway encodings', () => {
  it('the handler decodes base64 and text bodies alike (never throws)', async () => {
    process.env.SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:amt-AbCdEf';
    process.env.DELIVERY_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/q';
    // Strict stubs: nothing leaves the process.
    mockClient(SecretsManagerClient).on(GetSecretValueCommand).resolves({ SecretString: TOKEN });
    mockClient(SQSClient).rejects(new Error('nothing is signed, so nothing may be queued'));
    const { handler } = require('../../lambda/verify/index') as { handler: typeof verifyHandlerType };
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.base64String()), fc.boolean(), async (text, isBase64Encoded) => {
        jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
        jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
        const res = await handler({ body: text, isBase64Encoded, headers: {}, requestContext: {} } as never);
        jest.restoreAllMocks();
        expect(typeof res.statusCode).toBe('number');
        expect(res.statusCode).not.toBe(200); // unsigned: never accepted
      }),
      { numRuns: 100 },
    );
  });
});
