/**
 * The local receiver end to end: each event kind sent by send-event's module lands in the local lake in
 * the deployed layout with its raw body byte for byte; a bad signature writes nothing; stopping with a
 * pending batch loses nothing; and the three commands fail with a message, not a stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readLake } from '../../local/file-lake';
import { sendEvent } from '../../local/send-event';
import { startLocalServer } from '../../local/server';
import { Spool } from '../../local/spool';
import { FakeSmartcar } from '../support/fake-smartcar';
import { deliveryMessage } from '../support/lake';

const ROOT = path.join(__dirname, '..', '..');
const TOKEN = 'local-test-token';
const silent = { info() {}, warn() {}, error() {} };
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'local-lake-'));

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'local', script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, output: () => stdout };
}

const STACK_TRACE = /^\s+at .+\(.+:\d+:\d+\)$/m;

/** A command that failed as it should: the exit code, a message that says what is wrong, no stack trace. */
function expectCleanFailure(
  result: { code: number | null; stdout: string; stderr: string },
  code: number,
  message: RegExp,
) {
  expect(result.code).toBe(code);
  expect(result.stdout + result.stderr).toMatch(message);
  expect(result.stdout + result.stderr).not.toMatch(STACK_TRACE);
}

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
});

describe('npm start', () => {
  it('prints the callback URL, and Ctrl-C writes the pending batch before exiting', async () => {
    const lakeDir = tempDir();
    const start = run('start.ts', [], { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: TOKEN });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = /callback URL\s+(http:\/\/\S+)/.exec(start.output());
        if (m) {
          clearInterval(timer);
          resolve(m[1]);
        }
      }, 50);
      start.done.then(() => reject(new Error('npm start exited early')));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks$/);
    const result = await sendEvent({ kind: 'vehicle-error', url, token: TOKEN });
    expect(result.ok).toBe(true);
    start.child.kill('SIGINT');
    const { code, stdout } = await start.done;
    expect(code).toBe(0);
    expect(stdout).toContain('nothing pending');
    expect([...(await readLake(lakeDir)).values()].flat().map((r) => r.event_id)).toEqual([result.eventId]);
  });

  it('generates a development token once and reuses it', async () => {
    const lakeDir = tempDir();
    const first = run('start.ts', [], { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: '' });
    await new Promise((r) => setTimeout(r, 200));
    while (!first.output().includes('Ctrl-C')) await new Promise((r) => setTimeout(r, 50));
    first.child.kill('SIGINT');
    const { stdout } = await first.done;
    const token = /generated for development.*\n\s+(dev-[0-9a-f]+)/.exec(stdout)?.[1];
    expect(token).toMatch(/^dev-[0-9a-f]{48}$/);
    const second = run('start.ts', [], { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: '' });
    while (!second.output().includes('Ctrl-C')) await new Promise((r) => setTimeout(r, 50));
    second.child.kill('SIGINT');
    const again = await second.done;
    expect(again.stdout).toContain('development token from');
    expect(again.stdout).not.toContain(token as string);
    // send-event finds it without being told.
    const send = run('send-event.ts', ['verify', '--url', 'http://127.0.0.1:1/webhooks'], {
      LOCAL_LAKE_DIR: lakeDir,
      SMARTCAR_MANAGEMENT_TOKEN: '',
    });
    const sent = await send.done;
    expect(sent.stdout).toContain('could not reach');
    expect(sent.code).toBe(1);
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
    const result = await run('send-event.ts', args as string[], {
      LOCAL_LAKE_DIR: tempDir(),
      SMARTCAR_MANAGEMENT_TOKEN: '',
    }).done;
    expectCleanFailure(result, code, message);
  });

  it('npm start says when the port is taken', async () => {
    const lakeDir = tempDir();
    const server = await startLocalServer({ lakeDir, managementToken: TOKEN, port: 0, logger: silent });
    try {
      const port = new URL(server.url).port;
      const result = await run('start.ts', [], { PORT: port, LOCAL_LAKE_DIR: lakeDir }).done;
      expectCleanFailure(result, 1, new RegExp(`port ${port} is already in use`));
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
    const result = await run(
      'subscribe.ts',
      ['--access-token', 'user-token', '--webhook-id', 'wh-local', '--api-origin', origin],
      { LOCAL_WORKFLOW_DIR: tempDir() },
    ).done;
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
    const result = await run('subscribe.ts', args as string[], {
      LOCAL_WORKFLOW_DIR: tempDir(),
      SMARTCAR_WEBHOOK_ID: '',
    }).done;
    expectCleanFailure(result, code, message);
  });
});
