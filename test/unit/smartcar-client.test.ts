import { parseRetryAfter, SmartcarApiError, SmartcarClient } from '../../lambda/core/smartcar-client';
import { FakeSmartcar } from '../support/fake-smartcar';

const TOKEN = 'user-access-token';
const AMT = 'management-token';
const vehicles = Array.from({ length: 23 }, (_, i) => `vehicle-${String(i).padStart(2, '0')}`);
const fake = new FakeSmartcar({ vehicles, accessToken: TOKEN, managementToken: AMT, webhookId: 'wh-1' });
let origin: string;

beforeAll(async () => {
  origin = await fake.start();
});
afterAll(() => fake.stop());
beforeEach(() => fake.reset({ vehicles, accessToken: TOKEN, managementToken: AMT, webhookId: 'wh-1' }));

async function failure(p: Promise<unknown>): Promise<SmartcarApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SmartcarApiError)) throw new Error(`expected a SmartcarApiError, got ${String(err)}`);
  return err;
}

describe('listing', () => {
  it('pages until paging.count, even when the server caps the page size', async () => {
    fake.options.maxPageSize = 10;
    const client = new SmartcarClient({ origin });
    expect(await client.listAllVehicles(TOKEN, 50)).toEqual(vehicles);
    expect(fake.calls.map((c) => c.status)).toEqual([200, 200, 200]);
    expect(fake.calls.every((c) => c.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('returns one page with the total', async () => {
    const page = await new SmartcarClient({ origin }).listVehicles(TOKEN, { limit: 5, offset: 20 });
    expect(page).toEqual({ vehicles: vehicles.slice(20), count: 23, offset: 20 });
  });

  it('reads the base URL from SMARTCAR_API_ORIGIN', async () => {
    process.env.SMARTCAR_API_ORIGIN = origin;
    try {
      expect((await new SmartcarClient().listVehicles(TOKEN, { limit: 1, offset: 0 })).count).toBe(23);
    } finally {
      delete process.env.SMARTCAR_API_ORIGIN;
    }
  });

  it('defaults to the public API and rejects an origin that is not a URL', () => {
    expect(() => new SmartcarClient({ origin: 'not a url' })).toThrow(/SMARTCAR_API_ORIGIN/);
  });
});

describe('subscribe and unsubscribe', () => {
  it('subscribes with the user token and unsubscribes with the management token', async () => {
    const client = new SmartcarClient({ origin });
    await client.subscribe(TOKEN, 'vehicle-01', 'wh-1');
    await client.unsubscribe(AMT, 'vehicle-01', 'wh-1');
    expect(fake.calls).toEqual([
      {
        method: 'POST',
        path: '/v2.0/vehicles/vehicle-01/webhooks/wh-1',
        authorization: `Bearer ${TOKEN}`,
        status: 200,
      },
      {
        method: 'DELETE',
        path: '/v2.0/vehicles/vehicle-01/webhooks/wh-1',
        authorization: `Bearer ${AMT}`,
        status: 200,
      },
    ]);
  });
});

describe('errors', () => {
  it.each([
    [400, 'VALIDATION', false],
    [401, 'AUTHENTICATION', false],
    [403, 'PERMISSION', false],
    [404, 'RESOURCE_NOT_FOUND', false],
    [409, 'VEHICLE_STATE', true],
    [430, 'BILLING', false],
    [500, 'SERVER', true],
    [501, 'COMPATIBILITY', false],
    [502, 'UPSTREAM', true],
  ])('%d is %s, retryable=%s, with the request id', async (status, type, retryable) => {
    fake.options.permanent = { 'vehicle-02': status };
    const err = await failure(new SmartcarClient({ origin }).subscribe(TOKEN, 'vehicle-02', 'wh-1'));
    expect(err).toMatchObject({ status, type, retryable, requestId: expect.stringMatching(/^req-/) });
    expect(err.message).toContain(String(status));
    expect(err.message).not.toContain(TOKEN);
  });

  it('429 carries Retry-After in seconds', async () => {
    fake.options.rateLimit = { capacity: 0, refillPerSecond: 0, retryAfterSeconds: 42 };
    const err = await failure(new SmartcarClient({ origin }).subscribe(TOKEN, 'vehicle-02', 'wh-1'));
    expect(err).toMatchObject({
      status: 429,
      type: 'RATE_LIMIT',
      code: 'SMARTCAR_API',
      retryable: true,
      retryAfterSeconds: 42,
    });
    expect(err.rateLimited).toBe(true);
  });

  it('times out a request that takes too long, as a retryable TIMEOUT', async () => {
    fake.options.delayMs = 500;
    const err = await failure(new SmartcarClient({ origin, timeoutMs: 50 }).subscribe(TOKEN, 'vehicle-02', 'wh-1'));
    expect(err).toMatchObject({ status: null, type: 'TIMEOUT', retryable: true });
  });

  it('reports an unreachable server as a retryable NETWORK error', async () => {
    const err = await failure(new SmartcarClient({ origin: 'http://127.0.0.1:1' }).subscribe(TOKEN, 'v', 'wh-1'));
    expect(err).toMatchObject({ status: null, type: 'NETWORK', retryable: true });
  });

  it('rejects a 200 listing without vehicles or paging', async () => {
    const fetchStub = (async () => new Response('{"vehicles":"nope"}', { status: 200 })) as typeof fetch;
    const err = await failure(
      new SmartcarClient({ origin, fetch: fetchStub }).listVehicles(TOKEN, { limit: 1, offset: 0 }),
    );
    expect(err).toMatchObject({ type: 'INVALID_RESPONSE', retryable: false });
  });

  it('keeps a non-JSON error body short in the description', async () => {
    const fetchStub = (async () => new Response(`<html>${'x'.repeat(1000)}</html>`, { status: 502 })) as typeof fetch;
    const err = await failure(new SmartcarClient({ origin, fetch: fetchStub }).subscribe(TOKEN, 'v', 'wh'));
    expect(err).toMatchObject({ status: 502, type: null, retryable: true });
    expect((err.description ?? '').length).toBeLessThanOrEqual(200);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  it.each([
    ['30', 30],
    ['0', 0],
    ['1.2', 2],
    ['Thu, 26 Nov 2026 12:01:00 GMT', 60],
    ['Thu, 26 Nov 2026 11:59:00 GMT', 0],
    ['999999', 3600],
    ['soon', null],
    ['', null],
    [null, null],
    [undefined, null],
  ])('%p → %p', (value, expected) => {
    expect(parseRetryAfter(value as string | null | undefined, now)).toBe(expected);
  });
});
