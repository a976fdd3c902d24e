/**
 * The curated layer's lock (local/compact.ts): one compaction run at a time, in one process or two, and
 * a crashed run's lock taken over only when its holder is provably gone. Split from curated.test.ts so
 * that the two run side by side.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { CompactionBusyError, compactLocalLake, LOCK_FILE } from '../../local/compact';
import { spawnCommand } from '../support/cli';
import { answers, at, count, fixtureLake, stateOfCharge, store } from '../support/curated-lake';

describe('one run at a time', () => {
  const now = new Date('2026-11-27T06:00:00.000Z');
  const curatedCounts = async (dir: string) => ({
    rows: await count(dir, 'SELECT COUNT(*) AS n FROM curated_deliveries'),
    events: await count(dir, 'SELECT COUNT(DISTINCT event_id) AS n FROM curated_deliveries'),
    signals: await count(dir, 'SELECT COUNT(*) AS n FROM curated_signals'),
  });

  it('two runs started together curate each event once: the second fails at once, saying why, and changes nothing', async () => {
    const fresh = await fixtureLake();
    const expected = await answers(fresh);
    const results = await Promise.allSettled([compactLocalLake(fresh, { now }), compactLocalLake(fresh, { now })]);
    const done = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0].reason).toBeInstanceOf(CompactionBusyError);
    expect(String(refused[0].reason.message)).toMatch(
      /^another compaction run \(.+\) is compacting this lake; this run did nothing/,
    );
    expect(await curatedCounts(fresh)).toEqual({ rows: 8, events: 8, signals: expect.any(Number) });
    expect(await answers(fresh)).toEqual(expected);
    expect(existsSync(path.join(fresh, LOCK_FILE))).toBe(false); // given back
  });

  it('(spawned) two npm run compact processes at once: each event curated exactly once, whichever wins', async () => {
    const fresh = await fixtureLake();
    const expected = await answers(fresh);
    const env = { LOCAL_LAKE_DIR: fresh };
    const runs = await Promise.all(
      [1, 2].map(() => spawnCommand('compact', ['--now', '2026-11-27T06:00:00Z'], env).done),
    );
    // Either one was refused (exit 1, one line) or it started after the other ended and found nothing.
    for (const r of runs) {
      expect([0, 1]).toContain(r.code);
      if (r.code === 1)
        expect(r.stderr.trim()).toMatch(/^compact: another compaction run \(.+\) is compacting this lake/);
    }
    expect(runs.map((r) => r.stdout).join('')).toMatch(/9 raw object\(s\) → 8 event\(s\)/);
    expect(await count(fresh, 'SELECT COUNT(*) AS n FROM curated_deliveries')).toBe(8);
    expect(await answers(fresh)).toEqual(expected);
  });

  it("a run that starts while another is running leaves that run's files alone", async () => {
    const fresh = await fixtureLake();
    // A run in progress (this process, so alive): its uncommitted files must survive.
    const inProgress = path.join(
      fresh,
      'curated',
      'deliveries',
      'event_type=VEHICLE_STATE',
      'mode=live',
      'dt=2026-11-26',
    );
    mkdirSync(inProgress, { recursive: true });
    mkdirSync(path.join(fresh, 'curated'), { recursive: true });
    const file = path.join(inProgress, 'run-20261127T055900Z-0000beef_0.parquet');
    writeFileSync(file, 'being written');
    const holder = {
      runId: '20261127T055900Z-0000beef',
      token: 'x',
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    };
    writeFileSync(path.join(fresh, LOCK_FILE), JSON.stringify(holder));
    await expect(compactLocalLake(fresh, { now })).rejects.toThrow(
      /another compaction run \(20261127T055900Z-0000beef, pid \d+/,
    );
    expect(existsSync(file)).toBe(true);
    expect(existsSync(path.join(fresh, LOCK_FILE))).toBe(true); // still that run's
  });

  it('takes over the lock of a run that crashed (its process is gone, or, on another host, its lease expired) and clears its files', async () => {
    for (const crashed of [
      { pid: spawnSync(process.execPath, ['-e', '']).pid, expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
      { host: 'another-host', pid: 1, expiresAt: new Date(Date.now() - 1).toISOString() },
    ]) {
      const fresh = await fixtureLake();
      // What the crashed run left: all its files but its commit.
      await compactLocalLake(fresh, { now });
      const { rm } = await import('node:fs/promises');
      await rm(path.join(fresh, 'curated', 'compaction', 'commits'), { recursive: true });
      const holder = {
        runId: '20261127T050000Z-0000dead',
        token: 'y',
        host: hostname(),
        startedAt: '2026-11-27T05:00:00Z',
        ...crashed,
      };
      writeFileSync(path.join(fresh, LOCK_FILE), JSON.stringify(holder));
      const r = await compactLocalLake(fresh, { now });
      expect(r).toMatchObject({ objects: 9, events: 8 });
      expect(r.abandonedFiles).toBeGreaterThan(0);
      expect(await count(fresh, 'SELECT COUNT(*) AS n FROM curated_deliveries')).toBe(8);
      expect(existsSync(path.join(fresh, LOCK_FILE))).toBe(false);
    }
  });

  it('never takes the lock of a live run on this machine, however long it has run', async () => {
    const fresh = await fixtureLake();
    const holder = {
      runId: '20261127T050000Z-0000beef',
      token: 'z',
      host: hostname(),
      pid: process.pid,
      startedAt: '2026-11-27T05:00:00Z',
      expiresAt: new Date(Date.now() - 1).toISOString(),
    };
    mkdirSync(path.dirname(path.join(fresh, LOCK_FILE)), { recursive: true });
    writeFileSync(path.join(fresh, LOCK_FILE), JSON.stringify(holder));
    await expect(compactLocalLake(fresh, { now })).rejects.toThrow(/0000beef/);
  });

  it('gives every run its own id, even two runs taking the same time as now', async () => {
    const a = await fixtureLake();
    const first = await compactLocalLake(a, { now: new Date('2026-11-26T21:59:00.000Z'), settleMinutes: 30 });
    await store(a, 'h20-late', [[stateOfCharge('evt-9', 60, 1764182000000, 'veh-9'), at(20, 55)]]);
    const second = await compactLocalLake(a, { now: new Date('2026-11-26T21:59:00.000Z'), settleMinutes: 30 });
    expect(first.runId).not.toBeNull();
    expect(second.runId).not.toBeNull();
    expect(first.runId).not.toBe(second.runId);
    expect(await count(a, 'SELECT COUNT(DISTINCT run_id) AS n FROM compaction_commits')).toBe(2);
  });
});
