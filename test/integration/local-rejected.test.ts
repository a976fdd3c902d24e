/**
 * The token-mistake drills against the local receiver of `npm start` (a quarantine folder beside the
 * local lake, the token files that `npm run rotate-token -- --lake-dir` writes), plus the commands.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { readLake } from '../../local/file-lake';
import { startLocalServer } from '../../local/server';
import { startFromEnv } from '../../local/start';
import { fileTokens, PREVIOUS_TOKEN_FILE, rotateFileToken } from '../../local/token-files';
import { main as recoverMain } from '../../scripts/ops/recover-rejected';
import { readToken, main as rotateMain, rotateToken } from '../../scripts/ops/rotate-token';
import { expectCleanFailure, runInProcess, spawnCommand } from '../support/cli';
import { sign, vehicleState } from '../support/fixtures';
import { RecordingMetrics } from '../support/metrics';

const OLD = 'local-old-token';
const NEW = 'local-new-token';
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'local-rejected-'));
const body = (eventId: string) => vehicleState(eventId);
const post = async (url: string, eventId: string, token: string) =>
  (
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sc-signature': sign(body(eventId), token) },
      body: body(eventId),
    })
  ).status;
const quarantined = (lakeDir: string) =>
  readdirSync(path.join(lakeDir, 'quarantine'), { recursive: true }).filter((f) => String(f).endsWith('.json'));
const lakeIds = async (lakeDir: string) =>
  [...(await readLake(lakeDir)).values()]
    .flat()
    .map((r) => r.event_id)
    .sort();

describe('drills on npm start', () => {
  it('late secret update, then rotation with grace, then recovery: every genuine delivery once', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const env = { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: '' };
    const server = await startFromEnv(env, () => {});
    try {
      // Smartcar already signs with NEW; the local token is still OLD.
      for (const id of ['late-1', 'late-2', 'late-3', 'late-1']) expect(await post(server.url, id, NEW)).toBe(401);
      expect(await post(server.url, 'forged', 'attacker-key')).toBe(401);
      expect(quarantined(lakeDir)).toHaveLength(5); // every rejected request, the retry of late-1 included

      // The operator rotates the local token (as `npm run rotate-token -- --lake-dir` does).
      const lines: string[] = [];
      await rotateToken({ lakeDir, token: NEW, print: (l) => lines.push(l) });
      expect(lines.join()).toContain('previous one is still accepted');
      expect(await post(server.url, 'now-new', NEW)).toBe(200); // at once
      expect(await post(server.url, 'still-old', OLD)).toBe(200); // grace period

      const recovered = await runInProcess('recover-rejected', recoverMain, ['--lake-dir', lakeDir]);
      // The retry of late-1 is the same event: stored once, counted as already stored.
      expect(recovered.stdout).toContain('examined 5, recovered 3, still rejected 1, already stored 1');
      await server.flush();
      expect(await lakeIds(lakeDir)).toEqual(['late-1', 'late-2', 'late-3', 'now-new', 'still-old']);
      const again = await runInProcess('recover-rejected', recoverMain, ['--lake-dir', lakeDir]);
      expect(again.stdout).toContain('examined 1, recovered 0, still rejected 1');
      expect(await lakeIds(lakeDir)).toEqual(['late-1', 'late-2', 'late-3', 'now-new', 'still-old']);
      expect(await post(server.url, 'forged', 'attacker-key')).toBe(401);

      // 25 hours later (the replaced token's timestamp moved back): the previous token is refused.
      writeFileSync(
        path.join(lakeDir, PREVIOUS_TOKEN_FILE),
        JSON.stringify({ token: OLD, replacedAt: new Date(Date.now() - 25 * 3600_000).toISOString() }),
      );
      const later = fileTokens(lakeDir);
      expect(await later.previous()).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('flood: 10,000 bad-signature requests keep at most the cap; genuine deliveries still answered', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const metrics = new RecordingMetrics();
    const server = await startLocalServer({
      lakeDir,
      tokens: fileTokens(lakeDir),
      port: 0,
      batchWindowMs: 60_000,
      logger: { info() {}, warn() {}, error() {} },
      metrics,
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const url = new URL(server.url);
    const forged = body('flood');
    const headers = { 'content-type': 'application/json', 'sc-signature': sign(forged, 'attacker-key') };
    const one = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(forged);
      });
    const started = Date.now();
    try {
      const statuses = new Map<number, number>();
      const genuine: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < 10_000) {
            const i = next++;
            const status = await one();
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (i % 1000 === 0) genuine.push(await post(server.url, `genuine-${i}`, OLD));
          }
        }),
      );
      expect(Object.fromEntries(statuses)).toEqual({ 401: 10_000 });
      expect(genuine).toEqual(Array(10).fill(200));
      // The cap: a bucket of 60, refilled at 60 a minute while the flood lasts.
      const cap = 60 + Math.ceil(((Date.now() - started) / 60_000) * 60);
      expect(metrics.total('Quarantined')).toBeLessThanOrEqual(cap);
      expect(metrics.total('Quarantined') + metrics.total('QuarantineDropped')).toBe(10_000);
      expect(metrics.total('QuarantineDropped')).toBeGreaterThanOrEqual(10_000 - cap);
      // Identical requests in the same millisecond share a key, so there may be fewer files than writes.
      expect(quarantined(lakeDir).length).toBeGreaterThan(0);
      expect(quarantined(lakeDir).length).toBeLessThanOrEqual(metrics.total('Quarantined'));
      await server.flush();
      expect(await lakeIds(lakeDir)).toHaveLength(10);
    } finally {
      agent.destroy();
      await server.close();
    }
  });
});

describe('rotate-token and recover-rejected commands', () => {
  it('reads the token from standard input, never from an argument', async () => {
    expect(await readToken(Readable.from(['  piped-token\n']) as never)).toBe('piped-token');
    const refused = await runInProcess('rotate-token', rotateMain, ['--lake-dir', tempDir(), '--token', 'x']);
    expectCleanFailure(refused, 2, /never pass the token as an argument/);
    const neither = await runInProcess('rotate-token', rotateMain, []);
    expectCleanFailure(neither, 2, /pass either --secret-id or --lake-dir/);
    await expect(rotateToken({ lakeDir: tempDir(), token: 'has space', print: () => {} })).rejects.toThrow(
      /white space/,
    );
  });

  it('(spawned) rotate-token takes a piped token, and recover-rejected reports its counts', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const rotate = spawnCommand(path.join('..', 'scripts', 'ops', 'rotate-token.ts'), ['--lake-dir', lakeDir]);
    rotate.child.stdin.end(`${NEW}\n`);
    const rotated = await rotate.done;
    expect(rotated).toMatchObject({ code: 0 });
    expect(rotated.stdout).toContain('local token rotated');
    expect(rotated.stdout + rotated.stderr).not.toContain(NEW);
    expect(await fileTokens(lakeDir).get()).toBe(NEW);
    const recovered = await spawnCommand(path.join('..', 'scripts', 'ops', 'recover-rejected.ts'), [
      '--lake-dir',
      lakeDir,
      '--dry-run',
    ]).done;
    expect(recovered.code).toBe(0);
    expect(recovered.stdout).toMatch(/dry run: .*: examined 0, recovered 0, still rejected 0, already stored 0/);
  });
});
