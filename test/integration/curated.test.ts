/**
 * The curated layer (local/compact.ts with DuckDB, the same SQL the stack's Athena compaction runs):
 * every view answers the same before, during and after compaction; the curated tables hold each eventId
 * once whatever the raw zone holds; reruns change nothing; late objects and abandoned runs are handled;
 * one run at a time, so two runs started together still curate each event once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { VIEWS } from '../../lib/queries';
import { CompactionBusyError, compactLocalLake, main as compactMain, LOCK_FILE } from '../../local/compact';
import { listLakeKeys, putLakeObject } from '../../local/file-lake';
import { openLocalLake } from '../../local/query';
import { runInProcess, spawnCommand } from '../support/cli';
import { fixture, vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

/** A VEHICLE_STATE delivery with its own eventId, state of charge and OEM time. */
function stateOfCharge(eventId: string, value: number, oemUpdatedAt: number, vehicle = 'veh-1'): string {
  return vehicleState(eventId, { vehicleId: vehicle, value, oemUpdatedAt });
}

async function store(lakeDir: string, objectName: string, bodies: [string | Buffer, string][]) {
  const records = bodies.map(([body, at]) => toLakeRecord(deliveryMessage(body, at), new Date(at)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [objectName]), encodeNdjsonGzip(records));
}

const at = (hour: number, minute: number) =>
  `2026-11-26T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:00.000Z`;

/** Hours 20, 21 and 22 of one day, with duplicates inside an object, an hour, and across hours. */
async function fixtureLake(): Promise<string> {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'curated-lake-'));
  await store(lakeDir, 'h20', [
    [stateOfCharge('evt-1', 70, 1764180000000), at(20, 1)],
    [stateOfCharge('evt-1', 70, 1764180000000), at(20, 2)], // the same event twice in one batch
    [stateOfCharge('evt-2', 71, 1764181000000, 'veh-2'), at(20, 5)],
  ]);
  await store(lakeDir, 'h20-again', [[stateOfCharge('evt-2', 71, 1764181000000, 'veh-2'), at(20, 40)]]);
  await store(lakeDir, 'h20-error', [[fixture('vehicle-error'), at(20, 30)]]);
  await store(lakeDir, 'h21', [
    [stateOfCharge('evt-1', 70, 1764180000000), at(21, 0)], // Smartcar retried it into the next hour
    [stateOfCharge('evt-3', 75, 1764189000000), at(21, 10)],
  ]);
  await store(lakeDir, 'h21-schedule', [[fixture('schedule-legacy'), at(21, 20)]]);
  await store(lakeDir, 'h21-schedule-again', [[fixture('schedule-legacy'), at(21, 25)]]);
  await store(lakeDir, 'h21-variant', [[fixture('vehicle-state-variant'), at(21, 30)]]);
  await store(lakeDir, 'h22', [
    [stateOfCharge('evt-3', 75, 1764189000000), at(22, 5)], // a retry of an event of hour 21
    [stateOfCharge('evt-4', 80, 1764190600000), at(22, 15)],
  ]);
  await store(lakeDir, 'h22-event', [[fixture('event-based-legacy'), at(22, 50)]]);
  return lakeDir;
}

/** Every view's rows (time-dependent ages left out), sorted: what "the same answer" means. */
async function answers(lakeDir: string, { copies = true } = {}): Promise<Record<string, string[]>> {
  const lake = await openLocalLake(lakeDir);
  try {
    const out: Record<string, string[]> = {};
    // recent_deliveries is, by definition, what compaction has not taken yet.
    for (const view of VIEWS.filter((v) => v.name !== 'recent_deliveries')) {
      const rows = await lake.query(`SELECT * FROM "${view.name}"`);
      out[view.name] = rows
        .map((r) => {
          const { silent_for_seconds, age_seconds, ...rest } = r;
          if (!copies) {
            delete rest.copies;
            delete rest.deliveries;
          }
          return JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))));
        })
        .sort();
    }
    return out;
  } finally {
    lake.close();
  }
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .map((f) => `${f}:${statSync(path.join(dir, f)).mtimeMs}`)
    .sort();
}

async function count(lakeDir: string, sql: string): Promise<number> {
  const lake = await openLocalLake(lakeDir);
  try {
    return Number((await lake.query(sql))[0].n);
  } finally {
    lake.close();
  }
}

let lakeDir: string;
let before: Record<string, string[]>;
let beforeWithoutCopies: Record<string, string[]>;

beforeAll(async () => {
  lakeDir = await fixtureLake();
  before = await answers(lakeDir);
  beforeWithoutCopies = await answers(lakeDir, { copies: false });
});

it('the raw fixture has duplicates the views already fold', () => {
  expect(before.deliveries_deduplicated).toHaveLength(8);
  expect(before.deliveries_per_hour.join('\n')).toContain('"deliveries":"5"'); // hour 20, VEHICLE_STATE
});

it('compacting the first closed hour leaves every view answering the same, with the boundary counted once', async () => {
  // 21:59 with a 30-minute settle: only hour 20 is closed. evt-1 is curated, its retry in hour 21 is raw tail.
  const r = await compactLocalLake(lakeDir, { now: new Date(at(21, 59)), settleMinutes: 30 });
  expect(r).toMatchObject({ objects: 3, events: 3, abandonedFiles: 0 });
  expect(await answers(lakeDir, { copies: false })).toEqual(beforeWithoutCopies);
  // The one documented difference: evt-1's copy in hour 21, in the raw tail after evt-1 was curated, is
  // not counted among its copies (4 instead of 5 for hour 20).
  expect((await answers(lakeDir)).deliveries_per_hour).toContain(
    '{"deliveries":"4","distinct_events":"2","dt":"2026-11-26","event_type":"VEHICLE_STATE","hour":"20","mode":"live"}',
  );
  expect(await count(lakeDir, 'SELECT COUNT(*) AS n FROM recent_deliveries')).toBe(5);
});

it('compacting the rest curates each eventId once, across runs and hours, and the views still agree', async () => {
  const r = await compactLocalLake(lakeDir, { now: new Date('2026-11-27T06:00:00.000Z') });
  expect(r.objects).toBe(6);
  // evt-1 (retried into hour 21) and evt-3 (retried into hour 22) were curated already or in this run.
  expect(r.events).toBe(5);
  expect(await answers(lakeDir, { copies: false })).toEqual(beforeWithoutCopies);
  expect(await count(lakeDir, 'SELECT COUNT(*) AS n FROM recent_deliveries')).toBe(0);
  expect(await count(lakeDir, 'SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM curated_deliveries')).toBe(0);
  expect(await count(lakeDir, 'SELECT COUNT(*) AS n FROM curated_deliveries')).toBe(8);
  const parquet = (await listLakeKeys(lakeDir, 'curated')).filter((k) => k.endsWith('.parquet'));
  expect(parquet.some((k) => /curated\/deliveries\/event_type=VEHICLE_STATE\/mode=live\/dt=2026-11-26\//.test(k))).toBe(
    true,
  );
});

it('a rerun with nothing new changes nothing', async () => {
  const curated = files(path.join(lakeDir, 'curated'));
  const r = await compactLocalLake(lakeDir, { now: new Date('2026-11-28T00:00:00.000Z') });
  expect(r).toEqual({ runId: null, objects: 0, events: 0, signals: 0, abandonedFiles: 0, waiting: 0, earlierRuns: 2 });
  expect(files(path.join(lakeDir, 'curated'))).toEqual(curated);
  expect(await answers(lakeDir, { copies: false })).toEqual(beforeWithoutCopies);
});

it('a late object in a compacted hour is read from raw until the next run, and its duplicate is never curated twice', async () => {
  // A redrive puts an old copy of evt-2 and a new event into hour 20, long after it was compacted.
  await store(lakeDir, 'h20-redriven', [
    [stateOfCharge('evt-2', 71, 1764181000000, 'veh-2'), at(20, 45)],
    [stateOfCharge('evt-5', 90, 1764182000000, 'veh-5'), at(20, 50)],
  ]);
  const lake = await openLocalLake(lakeDir);
  const ids = async () =>
    (await lake.query('SELECT event_id FROM deliveries_deduplicated ORDER BY event_id')).map((r) => r.event_id);
  let withLate: unknown[];
  try {
    withLate = await ids();
  } finally {
    lake.close();
  }
  expect(withLate.filter((id) => id === 'evt-2')).toHaveLength(1);
  expect(withLate).toContain('evt-5');
  expect(withLate).toHaveLength(9);

  const r = await compactLocalLake(lakeDir, { now: new Date('2026-11-28T00:00:00.000Z') });
  expect(r).toMatchObject({ objects: 1, events: 1 });
  expect(await count(lakeDir, 'SELECT COUNT(*) AS n FROM curated_deliveries')).toBe(9);
  expect(await count(lakeDir, "SELECT COUNT(*) AS n FROM curated_deliveries WHERE event_id = 'evt-2'")).toBe(1);
  expect(await count(lakeDir, 'SELECT COUNT(*) AS n FROM deliveries_deduplicated')).toBe(9);
});

it('compacting everything in one run keeps the copies counted too', async () => {
  const fresh = await fixtureLake();
  await compactLocalLake(fresh, { now: new Date('2026-11-27T06:00:00.000Z') });
  expect(await answers(fresh)).toEqual(before);
});

it('a run that never committed counts for nothing and is cleared by the next run', async () => {
  const fresh = await fixtureLake();
  const expected = await answers(fresh);
  // Copy the files of a real run but drop its commit, as a crash just before committing would leave them.
  const done = await compactLocalLake(fresh, { now: new Date('2026-11-27T06:00:00.000Z') });
  const { rm } = await import('node:fs/promises');
  await rm(path.join(fresh, 'curated', 'compaction', 'commits'), { recursive: true });
  expect(await answers(fresh)).toEqual(expected);
  expect(await count(fresh, 'SELECT COUNT(*) AS n FROM recent_deliveries')).toBe(8);
  const again = await compactLocalLake(fresh, { now: new Date('2026-11-27T06:00:00.000Z') });
  expect(again.abandonedFiles).toBeGreaterThan(0);
  expect(again).toMatchObject({ objects: done.objects, events: done.events });
  expect(await answers(fresh)).toEqual(expected);
  expect(await count(fresh, 'SELECT COUNT(*) AS n FROM curated_deliveries')).toBe(8);
});

it('npm run compact compacts $LOCAL_LAKE_DIR and says what it did', async () => {
  const fresh = await fixtureLake();
  // Before any hour has closed: "not yet", not "already curated".
  const early = await runInProcess(
    'compact',
    compactMain,
    ['--now', '2026-11-27T06:00:00Z', '--settle-minutes', '100000'],
    {
      LOCAL_LAKE_DIR: fresh,
    },
  );
  expect(early.stdout).toMatch(/nothing to compact yet: 9 raw object\(s\) are in hours that have not closed/);
  const empty = await runInProcess('compact', compactMain, [
    '--lake-dir',
    mkdtempSync(path.join(tmpdir(), 'curated-empty-')),
  ]);
  expect(empty.code).toBe(0);
  expect(empty.stdout).toMatch(/nothing to compact: the lake has no deliveries yet/);
  const first = await runInProcess('compact', compactMain, ['--now', '2026-11-27T06:00:00Z'], {
    LOCAL_LAKE_DIR: fresh,
  });
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/9 raw object\(s\) → 8 event\(s\)/);
  const second = await runInProcess('compact', compactMain, ['--now', '2026-11-27T06:00:00Z'], {
    LOCAL_LAKE_DIR: fresh,
  });
  expect(second.stdout).toMatch(/nothing to compact: every closed hour is already in the curated layer/);
  const bad = await runInProcess('compact', compactMain, ['--settle-minutes', 'soon'], { LOCAL_LAKE_DIR: fresh });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--settle-minutes takes a whole number/);
});

it('a signal time or legacy status that is not a number becomes null; it never fails a compaction run or a view', async () => {
  const fresh = mkdtempSync(path.join(tmpdir(), 'curated-odd-'));
  const odd = stateOfCharge('evt-odd', 42, 1764180000000).replace(
    '"oemUpdatedAt":1764180000000',
    '"oemUpdatedAt":"soon"',
  );
  const huge = stateOfCharge('evt-huge', 43, 1764180000000).replace(
    '"oemUpdatedAt":1764180000000',
    '"oemUpdatedAt":1e300',
  );
  const legacy = fixture('schedule-legacy').toString().replace('"code":200', '"code":"OK"');
  await store(fresh, 'odd', [
    [odd, at(20, 1)],
    [huge, at(20, 2)],
  ]);
  await store(fresh, 'odd-legacy', [[legacy, at(20, 3)]]);
  const before = await answers(fresh);
  const r = await compactLocalLake(fresh, { now: new Date('2026-11-27T06:00:00.000Z') });
  expect(r).toMatchObject({ objects: 2, events: 3 });
  expect(await answers(fresh)).toEqual(before);
  const lake = await openLocalLake(fresh);
  try {
    const rows = await lake.query(
      "SELECT event_id, oem_updated_at, status_code FROM signals WHERE event_id IN ('evt-odd', 'evt-huge') OR signal_code = '/odometer' ORDER BY event_id",
    );
    expect(rows.map((x) => [x.oem_updated_at, x.status_code])).toEqual([
      [null, null],
      [null, null],
      [null, null],
    ]);
  } finally {
    lake.close();
  }
});

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
