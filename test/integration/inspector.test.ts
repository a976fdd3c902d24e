/**
 * The inspector behind `npm start`, through its HTTP API: what each answered request is recorded as, what is
 * never recorded or shown (the SC-Signature value, the management token), who may read it (this start's key,
 * from this machine, never through a tunnel), replay, and the bounded log that survives a restart.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type InspectedRequest, RequestLog } from '../../local/inspector/request-log';
import { type LocalServer, startLocalServer } from '../../local/server';
import { startFromEnv } from '../../local/start';
import { fixture, sign, vehicleState } from '../support/fixtures';
import { storedCheck } from '../support/webhook-check';

const TOKEN = 'inspector-test-management-token';
const silent = { info() {}, warn() {}, error() {} };
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'inspector-'));
const keyOf = (server: LocalServer) => new URL(server.inspectorUrl as string).searchParams.get('key') as string;
const at = (server: LocalServer, p: string) => new URL(p, server.url).toString();

const post = (server: LocalServer, body: string, headers: Record<string, string>) =>
  fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
const api = async (server: LocalServer, p: string, init: RequestInit = {}) => {
  const res = await fetch(at(server, p), {
    ...init,
    headers: { 'x-inspector-key': keyOf(server), ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, text: await res.text() };
};
const entries = async (server: LocalServer) =>
  JSON.parse((await api(server, '/_inspector/requests')).text).entries as InspectedRequest[];
/** A raw request, for the headers fetch will not set (Host) or that tunnels add. */
const raw = (url: string, headers: Record<string, string>) =>
  new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });

describe('the inspector request log', () => {
  let lakeDir: string;
  let server: LocalServer;
  beforeEach(async () => {
    lakeDir = tempDir();
    server = await startLocalServer({ lakeDir, managementToken: TOKEN, port: 0, logger: silent });
  });
  afterEach(() => server.close());

  it('records each answer with its verdict, and never the signature or the token', async () => {
    const good = vehicleState('ev-good', { vehicleId: 'veh-1' });
    const goodSignature = sign(good, TOKEN);
    const forged = vehicleState('ev-forged');
    const forgedSignature = sign(forged, 'another-token'); // Smartcar-shaped: quarantined
    expect((await post(server, good, { 'sc-signature': goodSignature })).status).toBe(200);
    expect((await post(server, forged, { 'sc-signature': forgedSignature })).status).toBe(401);
    expect((await post(server, vehicleState('ev-junk'), { 'sc-signature': 'not-hex' })).status).toBe(401);
    expect((await post(server, vehicleState('ev-unsigned'), {})).status).toBe(401);
    const verify = JSON.stringify({ eventType: 'VERIFY', data: { challenge: 'abc-123' } });
    expect((await post(server, verify, {})).status).toBe(200);
    const badVerify = JSON.stringify({ eventType: 'VERIFY', data: { challenge: 'no spaces allowed' } });
    expect((await post(server, badVerify, {})).status).toBe(400);
    expect((await fetch(at(server, '/nope'))).status).toBe(404);
    expect((await fetch(server.url)).status).toBe(405);

    const list = await entries(server);
    const view = list.map((e) => [e.verdict, e.status, e.eventId, e.reason]).reverse();
    expect(view).toEqual([
      ['stored', 200, 'ev-good', null],
      ['quarantined', 401, 'ev-forged', 'invalid SC-Signature'],
      ['rejected', 401, 'ev-junk', 'invalid SC-Signature'],
      ['rejected', 401, 'ev-unsigned', 'missing SC-Signature header'],
      ['verify-answered', 200, expect.any(String), null],
      ['verify-refused', 400, expect.any(String), expect.stringMatching(/challenge must be/)],
      ['not-found', 404, null, expect.stringMatching(/not found/)],
      ['method-not-allowed', 405, null, 'use POST'],
    ]);
    const stored = list[list.length - 1];
    expect(stored).toMatchObject({ eventType: 'VEHICLE_STATE', vehicleId: 'veh-1', mode: 'live', method: 'POST' });
    expect(stored.ms).toBeGreaterThanOrEqual(0);

    // The detail holds the exact body and our answer, the signature masked.
    const detail = await api(server, `/_inspector/requests/${stored.id}`);
    const { entry, commands } = JSON.parse(detail.text);
    expect(entry.body).toBe(good);
    expect(entry.response).toEqual({ status: 200, body: { status: 'received' } });
    expect(entry.headers['sc-signature']).toMatch(/hidden/);
    expect(commands.sendEvent).toContain("--from-lake 'ev-good'");
    const verifyEntry = list.find((e) => e.verdict === 'verify-answered') as InspectedRequest;
    const verifyDetail = JSON.parse((await api(server, `/_inspector/requests/${verifyEntry.id}`)).text).entry;
    expect(verifyDetail.response.body.challenge).toMatch(/^[0-9a-f]{64}$/);

    const shown = [JSON.stringify(list)];
    for (const e of list) shown.push((await api(server, `/_inspector/requests/${e.id}`)).text);
    await server.close();
    const file = readFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), 'utf8');
    expect(file.trim().split('\n')).toHaveLength(8);
    for (const secret of [goodSignature, forgedSignature, 'not-hex', TOKEN]) {
      expect(file).not.toContain(secret);
      for (const text of shown) expect(text).not.toContain(secret);
    }
  });

  it('replays the exact request and shows the new entry', async () => {
    const body = vehicleState('ev-replay');
    await post(server, body, { 'sc-signature': sign(body, TOKEN) });
    await post(server, body, { 'sc-signature': sign(body, 'wrong') });
    const [wrong, good] = await entries(server);
    for (const [original, status] of [
      [good, 200],
      [wrong, 401],
    ] as const) {
      const res = await api(server, `/_inspector/requests/${original.id}/replay`, {
        method: 'POST',
        headers: { 'x-inspector': 'replay' },
      });
      expect(res.status).toBe(200);
      const replayed = JSON.parse(res.text).entry as InspectedRequest;
      expect(replayed).toMatchObject({ replayOf: original.id, status, eventId: 'ev-replay' });
      expect(replayed.id).not.toBe(original.id);
    }
    // Without the header a cross-site form cannot send, nothing is replayed.
    expect((await api(server, `/_inspector/requests/${good.id}/replay`, { method: 'POST' })).status).toBe(405);
    expect(await entries(server)).toHaveLength(4);
  });

  it('after a restart, re-signs only what was stored: a forgery that reached the log replays as a forgery', async () => {
    const genuine = vehicleState('ev-genuine');
    const forged = vehicleState('ev-laundered');
    await post(server, genuine, { 'sc-signature': sign(genuine, TOKEN) });
    await post(server, forged, { 'sc-signature': 'deadbeef', 'x-inspector-key': keyOf(server) });
    await server.close();
    // The next start has none of the original signatures in memory.
    server = await startLocalServer({ lakeDir, managementToken: TOKEN, port: 0, logger: silent });
    const logged = await entries(server);
    const byEvent = (id: string) => logged.find((e) => e.eventId === id && !e.replayOf) as InspectedRequest;
    const replay = async (e: InspectedRequest) =>
      JSON.parse(
        (
          await api(server, `/_inspector/requests/${e.id}/replay`, {
            method: 'POST',
            headers: { 'x-inspector': 'replay' },
          })
        ).text,
      ).entry as InspectedRequest;
    const laundered = await replay(byEvent('ev-laundered'));
    expect(laundered.status).toBe(401);
    expect(laundered.verdict).not.toBe('stored');
    expect(await replay(byEvent('ev-genuine'))).toMatchObject({ status: 200 });
    await server.close();
    const stored = readFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), 'utf8');
    expect(stored).not.toContain(keyOf(server)); // a key header sent to the receiver is masked like a signature
    const { readLake } = await import('../../local/file-lake');
    const ids = [...(await readLake(lakeDir, 'raw')).values()].flat().map((r) => r.event_id);
    expect(ids).toContain('ev-genuine');
    expect(ids).not.toContain('ev-laundered');
    server = await startLocalServer({ lakeDir, managementToken: TOKEN, port: 0, logger: silent });
  });

  it('replays only to its own callback route: a logged path never points a replay at another host', async () => {
    let reached = false;
    const { createServer } = await import('node:http');
    const elsewhere = createServer((_req, res) => {
      reached = true;
      res.end();
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const port = (elsewhere.address() as { port: number }).port;
    try {
      // A request line Node normalizes to a protocol-relative path: `//127.0.0.1:<port>/pwn`.
      await raw(at(server, `/.//127.0.0.1:${port}/pwn`), { 'sc-signature': 'x' });
      const planted = (await entries(server)).find((e) => e.path.includes('pwn')) as InspectedRequest;
      expect(planted).toBeDefined();
      const res = await api(server, `/_inspector/requests/${planted.id}/replay`, {
        method: 'POST',
        headers: { 'x-inspector': 'replay' },
      });
      expect(res.status).toBe(409);
      expect(JSON.parse(res.text).error).toMatch(/only requests to the callback route/);
      expect(reached).toBe(false);
    } finally {
      elsewhere.close();
    }
  });

  it('answers only with this start’s key, from this machine, never through a tunnel', async () => {
    const key = keyOf(server);
    const list = at(server, '/_inspector/requests');
    const unknown = await raw(at(server, '/somewhere-else'), {});
    // Without the key, the page and the API answer as any unknown path does: nothing says they exist.
    for (const [url, headers] of [
      [list, {}],
      [list, { 'x-inspector-key': 'wrong' }],
      [list, { cookie: 'sc_inspector=wrong' }],
      [at(server, '/'), {}],
      [list, { 'x-inspector-key': key, 'x-forwarded-for': '203.0.113.9' }],
      [list, { 'x-inspector-key': key, forwarded: 'for=203.0.113.9' }],
      [list, { 'x-inspector-key': key, host: 'abc.ngrok.app' }],
      [`${at(server, '/')}?key=${key}`, { 'x-forwarded-for': '203.0.113.9' }],
    ] as const) {
      const res = await raw(url, headers);
      expect([url, res.status, res.body]).toEqual([url, 404, unknown.body]);
    }
    // The printed URL sets the cookie and drops the key from the address bar.
    const opened = await raw(server.inspectorUrl as string, {});
    expect(opened.status).toBe(303);
    expect(opened.headers.location).toBe('/');
    const cookie = String(opened.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await raw(at(server, '/'), { cookie: cookie.split(';')[0] });
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(page.body).not.toMatch(/ on[a-z]+=/); // no inline handlers
    expect((await raw(list, { cookie: cookie.split(';')[0] })).status).toBe(200);
  });
});

describe('the bounded request log', () => {
  it('keeps the newest entries within its bound, on disk, across a restart', async () => {
    const lakeDir = tempDir();
    const add = (log: RequestLog, i: number) =>
      log.add({
        at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
        verdict: 'stored',
        reason: null,
        status: 200,
        method: 'POST',
        path: '/webhooks',
        eventType: 'VEHICLE_STATE',
        eventId: `ev-${i}`,
        vehicleId: 'v',
        mode: 'live',
        ms: 1,
        headers: {},
        bodyRaw: Buffer.from(vehicleState(`ev-${i}`)),
        response: { status: 200, body: {} },
        replayOf: null,
      });
    const log = await RequestLog.open({ lakeDir, keep: 10 });
    for (let i = 0; i < 35; i++) add(log, i);
    await log.flushed();
    const lines = () => readFileSync(log.file, 'utf8').trim().split('\n');
    expect(log.list().length).toBeLessThanOrEqual(12);
    expect(log.list()[0].eventId).toBe('ev-34');
    expect(lines().length).toBe(log.list().length);
    const reopened = await RequestLog.open({ lakeDir, keep: 10 });
    expect(reopened.list().map((e) => e.eventId)).toEqual(
      log
        .list()
        .slice(0, 10)
        .map((e) => e.eventId),
    );
    // A line cut by a crash is dropped, the rest kept. (Counted first: a log that sees its file changed by
    // someone else reloads it, as a running receiver does after erase or expire.)
    const kept = reopened.list().length;
    await reopened.flushed();
    const { appendFileSync } = await import('node:fs');
    appendFileSync(log.file, '{"id":"cut');
    expect((await RequestLog.open({ lakeDir, keep: 10 })).list()).toHaveLength(kept);
    // The byte bound wins over the count.
    const small = await RequestLog.open({ lakeDir: tempDir(), keep: 1000, maxBytes: 20_000 });
    for (let i = 0; i < 100; i++) add(small, i);
    await small.flushed();
    expect(readFileSync(small.file).length).toBeLessThanOrEqual(20_000);
    expect(small.list()[0].eventId).toBe('ev-99');
  });

  it('npm start prints the inspector URL and a restart keeps what was recorded', async () => {
    const lakeDir = tempDir();
    const env = { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: TOKEN };
    let banner = '';
    const first = await startFromEnv(env, (t) => {
      banner = t;
    });
    expect(banner).toMatch(/^ {2}inspector {6}http:\/\/127\.0\.0\.1:\d+\/\?key=[\w-]{20,}$/m);
    const body = vehicleState('ev-kept');
    await post(first, body, { 'sc-signature': sign(body, TOKEN) });
    await first.close();
    const second = await startFromEnv(env, () => {});
    try {
      expect(keyOf(second)).not.toBe(keyOf(first));
      expect((await entries(second)).map((e) => e.eventId)).toEqual(['ev-kept']);
    } finally {
      await second.close();
    }
  });
});

/** A delivery for another vehicle reporting its odometer and location instead of its charge. */
function odometerAndLocation(eventId: string, vehicleId: string): string {
  const payload = JSON.parse(vehicleState(eventId, { vehicleId }));
  payload.data.signals = [
    {
      code: 'odometer-traveleddistance',
      name: 'TraveledDistance',
      group: 'Odometer',
      body: { unit: 'km', value: 12345 },
      meta: { oemUpdatedAt: 1731940328000, fetchedAt: 1731940330000 },
    },
    {
      code: 'location-preciselocation',
      name: 'PreciseLocation',
      group: 'Location',
      body: { latitude: 37.7749, longitude: -122.4194, heading: 90 },
      meta: { oemUpdatedAt: 1731940328000, fetchedAt: 1731940330000 },
    },
  ];
  return JSON.stringify(payload);
}

it('the fleet route reads the lake: one row per vehicle with its headline signals, deliveries per hour', async () => {
  const lakeDir = tempDir();
  const server = await startLocalServer({
    lakeDir,
    workflowDir: storedCheck(false),
    managementToken: TOKEN,
    port: 0,
    logger: silent,
    batchWindowMs: 60_000,
  });
  try {
    const charged = vehicleState('ev-fleet-1', { vehicleId: 'veh-charged', value: 64 });
    const moving = odometerAndLocation('ev-fleet-2', 'veh-moving');
    for (const body of [charged, moving, vehicleState('ev-fleet-3', { vehicleId: 'veh-charged', value: 61 })])
      expect((await post(server, body, { 'sc-signature': sign(body, TOKEN) })).status).toBe(200);
    await server.flush();

    expect((await fetch(at(server, '/_inspector/fleet'))).status).toBe(404); // no key: nothing is there
    const res = await api(server, '/_inspector/fleet');
    expect(res.status).toBe(200);
    const view = JSON.parse(res.text);
    const byId = Object.fromEntries(view.vehicles.map((v: { vehicle_id: string }) => [v.vehicle_id, v]));
    expect(Object.keys(byId).sort()).toEqual(['veh-charged', 'veh-moving']);
    expect(byId['veh-charged']).toMatchObject({
      mode: 'live',
      make: 'TESLA',
      deliveries: 2,
      silent: false,
      open_errors: [],
      headline: { stateOfCharge: '61 percent', odometer: null, location: null },
    });
    expect(byId['veh-moving'].headline).toEqual({
      stateOfCharge: null,
      odometer: '12345 km',
      location: '37.77490, -122.41940',
    });
    expect(view.hours).toHaveLength(48);
    expect(view.hours.reduce((n: number, h: { deliveries: number }) => n + h.deliveries, 0)).toBe(3);
    // The webhook's last health check comes with it (the failures file beside it is not a webhook).
    expect(view.webhooks).toEqual([
      {
        webhookId: 'wh-1',
        healthy: false,
        line: expect.stringMatching(
          /^webhook wh-1: UNHEALTHY: the webhook is disabled, not enabled .*\[checked 2026-12-04/,
        ),
      },
    ]);
  } finally {
    await server.close();
  }
});

it('without DuckDB the fleet route says so (the page shows it as text) and the rest keeps working', async () => {
  const missing = Object.assign(new Error("Cannot find module '@duckdb/node-api'"), { code: 'MODULE_NOT_FOUND' });
  jest.doMock('@duckdb/node-api', () => {
    throw missing;
  });
  try {
    // A fresh module registry: the lake modules load again, and find no DuckDB.
    await jest.isolateModulesAsync(async () => {
      const { readFleet } = await import('../../local/inspector/fleet-view');
      await expect(readFleet(tempDir())).resolves.toEqual({
        ok: false,
        status: 503,
        error: expect.stringMatching(/DuckDB.*not installed.*npm install @duckdb\/node-api/),
      });
    });
  } finally {
    jest.dontMock('@duckdb/node-api');
  }
});

it('replays a delivery that came to the error callback path to that path, and refuses any other path by name', async () => {
  const server = await startLocalServer({
    lakeDir: tempDir(),
    managementToken: TOKEN,
    port: 0,
    logger: silent,
    batchWindowMs: 60_000,
    errorPath: '/webhooks/errors',
  });
  try {
    const body = fixture('vehicle-error').toString();
    const headers = { 'content-type': 'application/json', 'sc-signature': sign(body, TOKEN) };
    expect((await fetch(server.errorUrl as string, { method: 'POST', headers, body })).status).toBe(200);
    expect((await fetch(at(server, '/elsewhere'), { method: 'POST', headers, body })).status).toBe(404);
    const [elsewhere, original] = await entries(server);
    expect(original.path).toBe('/webhooks/errors');
    const replay = (id: string) =>
      api(server, `/_inspector/requests/${id}/replay`, { method: 'POST', headers: { 'x-inspector': 'replay' } });
    const res = await replay(original.id);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).entry).toMatchObject({ replayOf: original.id, path: '/webhooks/errors', status: 200 });
    const refused = await replay(elsewhere.id);
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.text).error).toBe(
      'only requests to the callback routes /webhooks and /webhooks/errors can be replayed',
    );
  } finally {
    await server.close();
  }
});
