import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compactLocalLake, main as compactMain } from '../../local/compact';
import { listLakeKeys } from '../../local/file-lake';
import { openLocalLake } from '../../local/query';
import { runInProcess } from '../support/cli';
import { answers, at, count, files, fixtureLake, stateOfCharge, store } from '../support/curated-lake';
import { fixture } from '../support/fixtures';

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
