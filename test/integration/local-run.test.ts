/**
 * The local receiver end to end: each event kind sent by send-event's module lands in the local lake in
 * the deployed layout with its raw body byte for byte; a bad signature writes nothing; stopping with a
 * pending batch loses nothing; and the three commands fail with a message, not a stack trace.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main as reconcileMain } from '../../cli/reconcile';
import { listLakeKeys, putLakeObject, readLake } from '../../local/file-lake';
import { sendEvent, main as sendEventMain } from '../../local/send-event';
import { landingKey, startLocalServer } from '../../local/server';
import { Spool } from '../../local/spool';
import { explainStartError, startFromEnv } from '../../local/start';
import { runSubscribe, main as subscribeMain } from '../../local/subscribe';
import { expectCleanFailure, runInProcess, spawnCommand } from '../support/cli';
import { connections, FakePlatform } from '../support/fake-platform';
import { FakeSmartcar } from '../support/fake-smartcar';
import { deliveryMessage } from '../support/lake';

const TOKEN = 'local-test-token';
const silent = { info() {}, warn() {}, error() {} };
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'local-lake-'));

describe('local receiver', () => {
  it('stores every event kind in the deployed layout, byte for byte, and nothing for a bad signature', async () => {
    const lakeDir = tempDir();
    const server = await startLocalServer({
      lakeDir,
      managementToken: TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: silent,
    });
    try {
      const verify = await sendEvent({ kind: 'verify', url: server.url, token: TOKEN });
      expect(verify).toMatchObject({ ok: true, status: 200 });
      const bad = await sendEvent({ kind: 'vehicle-state', url: server.url, token: TOKEN, badSignature: true });
      expect(bad).toMatchObject({ ok: true, status: 401 });
      await server.flush();
      expect((await readLake(lakeDir)).size).toBe(0);

      const sent = new Map<string, Buffer>();
      for (const kind of ['vehicle-state', 'vehicle-error', 'schedule', 'event-based'] as const) {
        const result = await sendEvent({ kind, url: server.url, token: TOKEN });
        expect(result).toMatchObject({ ok: true, status: 200 });
        sent.set(kind, result.body);
      }
      await server.flush();
      const objects = await readLake(lakeDir);
      const partitions = [...objects.keys()].map((k) => k.split('/').slice(1, 3).join('/')).sort();
      expect(partitions).toEqual([
        'event_type=VEHICLE_ERROR/mode=live',
        'event_type=VEHICLE_STATE/mode=live',
        'event_type=eventBased/mode=test',
        'event_type=schedule/mode=live',
      ]);
      for (const key of objects.keys())
        expect(key).toMatch(/^raw\/event_type=[^/]+\/mode=[^/]+\/dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/[^/]+\.ndjson\.gz$/);
      const bodies = [...objects.values()].flat().map((r) => r.body);
      expect(bodies).toHaveLength(4);
      for (const body of sent.values()) expect(bodies).toContain(body.toString('utf8'));
    } finally {
      await server.close();
    }
  });

  it('writes a pending batch on shutdown and recovers deliveries spooled before a crash', async () => {
    const lakeDir = tempDir();
    // A delivery accepted by an earlier run that died before writing it.
    await new Spool(path.join(lakeDir, '.spool')).enqueue(
      deliveryMessage('{"eventId":"crashed-1","eventType":"VEHICLE_STATE"}', new Date().toISOString()),
    );
    const server = await startLocalServer({
      lakeDir,
      managementToken: TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: silent,
    });
    expect([...(await readLake(lakeDir)).values()].flat().map((r) => r.event_id)).toEqual(['crashed-1']);

    const result = await sendEvent({ kind: 'vehicle-state', url: server.url, token: TOKEN });
    expect(result.ok).toBe(true);
    expect([...(await readLake(lakeDir)).values()].flat()).toHaveLength(1); // still pending
    await server.close();
    const records = [...(await readLake(lakeDir)).values()].flat();
    expect(records.map((r) => r.event_id).sort()).toEqual(['crashed-1', result.eventId].sort());
    expect(readdirSync(path.join(lakeDir, '.spool'))).toEqual([]);
  });

  it('as deployed with Firehose: a batch passes through one landing object, which is gone once stored; one a crash left is stored at the next start', async () => {
    const lakeDir = tempDir();
    // A landing object an earlier run wrote but died before storing (the stream's layout and line format).
    const left = landingKey(new Date());
    await putLakeObject(
      lakeDir,
      left,
      Buffer.from(
        `${JSON.stringify(deliveryMessage('{"eventId":"landed-1","eventType":"VEHICLE_STATE"}', new Date().toISOString()))}\n`,
      ),
    );
    expect(left).toMatch(
      /^landing\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/local-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}$/,
    );
    const seen: string[] = [];
    const server = await startLocalServer({
      lakeDir,
      managementToken: TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: silent,
    });
    try {
      expect([...(await readLake(lakeDir)).values()].flat().map((r) => r.event_id)).toEqual(['landed-1']);
      expect(await listLakeKeys(lakeDir, 'landing')).toEqual([]);
      for (let i = 0; i < 3; i++) {
        const r = await sendEvent({ kind: 'vehicle-state', url: server.url, token: TOKEN });
        seen.push(r.eventId as string);
      }
      await server.flush();
      const records = [...(await readLake(lakeDir)).values()].flat();
      expect(records.map((r) => r.event_id).sort()).toEqual(['landed-1', ...seen].sort());
      expect(await listLakeKeys(lakeDir, 'landing')).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('with --delivery-buffer queue the spooled batch goes straight to the raw zone', async () => {
    const lakeDir = tempDir();
    const server = await startLocalServer({
      lakeDir,
      managementToken: TOKEN,
      port: 0,
      batchWindowMs: 60_000,
      logger: silent,
      deliveryBuffer: 'queue',
    });
    try {
      expect((await sendEvent({ kind: 'schedule', url: server.url, token: TOKEN })).ok).toBe(true);
      await server.flush();
      expect([...(await readLake(lakeDir)).values()].flat()).toHaveLength(1);
      expect(existsSync(path.join(lakeDir, 'landing'))).toBe(false);
    } finally {
      await server.close();
    }
  });
});

describe('npm start', () => {
  it('(spawned) prints the callback URL, and Ctrl-C writes the pending batch before exiting', async () => {
    const lakeDir = tempDir();
    const start = spawnCommand('start', [], {
      PORT: '0',
      LOCAL_LAKE_DIR: lakeDir,
      SMARTCAR_MANAGEMENT_TOKEN: TOKEN,
    });
    const [, url] = await start.waitFor(/callback URL\s+(http:\/\/\S+)/);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks$/);
    await start.waitFor(/Ctrl-C/);
    const result = await sendEvent({ kind: 'vehicle-error', url, token: TOKEN });
    expect(result.ok).toBe(true);
    start.child.kill('SIGINT');
    const { code, stdout } = await start.done;
    expect(code).toBe(0);
    expect(stdout).toContain('nothing pending');
    expect([...(await readLake(lakeDir)).values()].flat().map((r) => r.event_id)).toEqual([result.eventId]);
  });

  it('generates a development token once and reuses it; send-event finds it', async () => {
    const lakeDir = tempDir();
    const env = { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: '' };
    let banner = '';
    const first = await startFromEnv(env, (text) => {
      banner = text;
    });
    await first.close();
    const token = /generated for development.*\n\s+(dev-[0-9a-f]+)/.exec(banner)?.[1];
    expect(token).toMatch(/^dev-[0-9a-f]{48}$/);
    const second = await startFromEnv(env, (text) => {
      banner = text;
    });
    try {
      expect(banner).toContain('development token from');
      expect(banner).not.toContain(token as string);
      // send-event signs with it without being told, and the receiver accepts it.
      const sent = await runInProcess('send-event', sendEventMain, ['vehicle-state', '--url', second.url], {
        LOCAL_LAKE_DIR: lakeDir,
        SMARTCAR_MANAGEMENT_TOKEN: undefined,
      });
      expect(sent).toMatchObject({ code: 0 });
      expect(sent.stdout).toMatch(/ok\s+vehicle-state: HTTP 200/);
    } finally {
      await second.close();
    }
  });
});

describe('command-line errors are messages, not stack traces', () => {
  it.each([
    [['bogus'], 2, /unknown event kind "bogus"/],
    [[], 2, /which event\?/],
    [['vehicle-state', '--count', 'many', '--token', 't'], 2, /--count must be a whole number/],
    [['vehicle-state', '--url', 'ftp://x', '--token', 't'], 2, /is not an http\(s\) URL/],
    [['vehicle-state', '--frobnicate'], 2, /Unknown option '--frobnicate'/],
    [['vehicle-state', '--token', 't', '--url', 'http://127.0.0.1:1/webhooks'], 1, /could not reach/],
  ])('send-event %p exits %d', async (args, code, message) => {
    const result = await runInProcess('send-event', sendEventMain, args as string[], {
      LOCAL_LAKE_DIR: tempDir(),
      SMARTCAR_MANAGEMENT_TOKEN: '',
    });
    expectCleanFailure(result, code, message);
  });

  it('(spawned) send-event exits 2 with its usage, no stack trace', async () => {
    const result = await spawnCommand('send-event', ['bogus'], { LOCAL_LAKE_DIR: tempDir() }).done;
    expectCleanFailure(result, 2, /unknown event kind "bogus"[\s\S]*usage: npm run send-event/);
  });

  it('npm start says when the port is taken', async () => {
    const lakeDir = tempDir();
    const server = await startLocalServer({ lakeDir, managementToken: TOKEN, port: 0, logger: silent });
    try {
      const env = { PORT: new URL(server.url).port, LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: TOKEN };
      const result = await runInProcess(
        'npm start',
        async () => {
          await (await startFromEnv(env, () => {})).close();
          return 0;
        },
        [],
        {},
        (err) => explainStartError(err, env),
      );
      expectCleanFailure(result, 1, new RegExp(`port ${env.PORT} is already in use`));
    } finally {
      await server.close();
    }
  });
});

describe('npm run subscribe', () => {
  const fake = new FakeSmartcar({
    vehicles: ['veh-a', 'veh-b', 'veh-c'],
    accessToken: 'user-token',
    managementToken: 'amt',
    webhookId: 'wh-local',
    permanent: { 'veh-b': 403 },
  });
  let origin: string;
  beforeAll(async () => {
    origin = await fake.start();
  });
  afterAll(() => fake.stop());

  it('runs the synthesized workflow against --api-origin and prints each vehicle and the summary', async () => {
    const result = await runInProcess(
      'subscribe',
      subscribeMain,
      ['--access-token', 'user-token', '--webhook-id', 'wh-local', '--api-origin', origin],
      { LOCAL_WORKFLOW_DIR: tempDir() },
    );
    expect(result.stdout).toMatch(/ok\s+veh-a/);
    expect(result.stdout).toMatch(/failed\s+veh-b\s+403 PERMISSION/);
    expect(result.stdout).toContain('"succeededCount": 2');
    expect(result.stdout).not.toContain('user-token');
    expect(result.code).toBe(1); // one vehicle failed
    expect([...fake.subscribed.keys()].sort()).toEqual(['veh-a', 'veh-c']);
  });

  it.each([
    [['--api-origin', 'nope'], 2, /--api-origin "nope" is not an http\(s\) URL/],
    [['--bogus'], 2, /Unknown option '--bogus'/],
    [['--webhook-id', 'wh-local', '--api-origin', 'http://127.0.0.1:1'], 1, /InvalidInput: No access token/],
  ])('%p exits %d with a message', async (args, code, message) => {
    const result = await runInProcess('subscribe', subscribeMain, args as string[], {
      LOCAL_WORKFLOW_DIR: tempDir(),
      SMARTCAR_WEBHOOK_ID: '',
    });
    expectCleanFailure(result, code, message);
  });

  it('(spawned) exits 2 on a bad flag, before synthesizing anything', async () => {
    const result = await spawnCommand('subscribe', ['--bogus'], { LOCAL_WORKFLOW_DIR: tempDir() }).done;
    expectCleanFailure(result, 2, /Unknown option '--bogus'[\s\S]*usage: npm run subscribe/);
  });
});

describe('npm run reconcile (local)', () => {
  const platform = new FakePlatform({
    clientId: 'cid',
    clientSecret: 'csecret',
    managementToken: 'amt-local',
    webhookId: 'wh-local',
    connections: [...connections(4), ...connections(2, 100, 'simulated')],
    appearAfterSeconds: 0,
  });
  let origin: string;
  const env = {
    SMARTCAR_CLIENT_ID: 'cid',
    SMARTCAR_CLIENT_SECRET: 'csecret',
    SMARTCAR_MANAGEMENT_TOKEN: 'amt-local',
    RECONCILE_CONFIRM_DELAY_SECONDS: '0',
  };
  beforeAll(async () => {
    origin = await platform.start();
  });
  afterAll(() => platform.stop());

  it('reconciles against --api-origin, printing each step, then a rerun changes nothing', async () => {
    const workDir = tempDir();
    const args = ['--webhook-id', 'wh-local', '--api-origin', origin];
    const dry = await runInProcess('reconcile', reconcileMain, [...args, '--dry-run'], {
      ...env,
      LOCAL_WORKFLOW_DIR: workDir,
    });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('"toSubscribe": 4');
    expect(platform.created.size).toBe(0);
    const run = await runInProcess('reconcile', reconcileMain, args, { ...env, LOCAL_WORKFLOW_DIR: workDir });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/listed connections page 1/);
    // The webhook's health comes first, before the plan.
    expect(run.stdout).toMatch(/webhook wh-local: healthy \(enabled, [^\n]*\)\n[\s\S]*listed connections page 1/);
    expect(run.stdout).toMatch(/planned: desired 4, unchanged 0, to subscribe 4/);
    expect(run.stdout).toMatch(/applied 4\/4 \(accepted 4\)/);
    expect(run.stdout).toContain('"subscribed": 4');
    expect(run.stdout + run.stderr).not.toMatch(/csecret|amt-local/);
    expect([...platform.created.keys()].sort()).toEqual(['veh-000001', 'veh-000002', 'veh-000003', 'veh-000004']);
    const again = await runInProcess('reconcile', reconcileMain, [...args, '--incremental'], {
      ...env,
      LOCAL_WORKFLOW_DIR: workDir,
    });
    expect(again.stdout).toContain('"subscribed": 0');
    // The same run through API v2.0's listing: it needs the management token, and names its endpoints.
    const v2 = await runInProcess('reconcile', reconcileMain, [...args, '--smartcar-api', 'v2'], {
      ...env,
      LOCAL_WORKFLOW_DIR: workDir,
    });
    expect(v2.code).toBe(0);
    expect(v2.stdout).toMatch(/API v2\)/);
    expect(v2.stdout).toContain('"api": "v2"');
    expect(v2.stdout + v2.stderr).not.toMatch(/csecret|amt-local/);
  });

  it.each([
    [reconcileMain, ['--api-origin', 'http://127.0.0.1:1'], {}, /a local run needs --webhook-id/],
    [
      reconcileMain,
      ['--webhook-id', 'wh'],
      { SMARTCAR_CLIENT_SECRET: undefined },
      /needs SMARTCAR_CLIENT_SECRET in the environment/,
    ],
    [
      reconcileMain,
      ['--webhook-id', 'wh', '--smartcar-api', 'v2'],
      { SMARTCAR_MANAGEMENT_TOKEN: undefined },
      /needs SMARTCAR_MANAGEMENT_TOKEN in the environment/,
    ],
    [reconcileMain, ['--webhook-id', 'wh', '--smartcar-api', 'v4'], {}, /--smartcar-api "v4" must be v3 or v2/],
    [reconcileMain, ['--webhook-id', 'wh', '--mode', 'test'], {}, /--mode must be live, simulated or all/],
    [reconcileMain, ['--webhook-id', 'wh', '--prune', '--incremental'], {}, /--prune needs a full run/],
    [reconcileMain, ['--webhook-id', 'wh', '--no-wait'], {}, /--no-wait goes with --stack/],
    [subscribeMain, ['--prune', '--access-token', 't', '--webhook-id', 'wh'], {}, /Unknown option '--prune'/],
    [subscribeMain, ['--access-token', 't'], { SMARTCAR_WEBHOOK_ID: '' }, /no webhook id: pass --webhook-id/],
  ])('%#: a bad invocation is refused before anything is synthesized', async (main, args, extra, message) => {
    const started = Date.now();
    const result = await runInProcess(main === reconcileMain ? 'reconcile' : 'subscribe', main, args as string[], {
      ...env,
      ...extra,
      LOCAL_WORKFLOW_DIR: tempDir(),
    });
    expectCleanFailure(result, 2, message);
    expect(Date.now() - started).toBeLessThan(1000); // no synth (which takes seconds)
  });

  it('the per-user workflow prints its retries against an unreachable API instead of going silent', async () => {
    const lines: string[] = [];
    await expect(
      runSubscribe({
        input: { accessToken: 'user-token', webhookId: 'wh-local' },
        apiOrigin: 'http://127.0.0.1:1',
        workDir: tempDir(),
        print: (l) => lines.push(l),
        retryMs: 1,
      }),
    ).rejects.toThrow();
    const retries = lines.filter((l) => l.includes('retrying List a page of vehicles'));
    expect(retries).toHaveLength(6);
    // Each retry says why, down to the network's own reason.
    for (const line of retries) expect(line).toMatch(/after: .*NETWORK: fetch failed: bad port/);
    expect(lines.join('\n')).not.toMatch(/undefined/);
  });
});
