/**
 * `expire` on a small local lake: what is older than its retention goes (raw objects by partition hour,
 * curated files by dt, quarantined deliveries by hour, request-log lines by time), everything else and
 * `erasures/` stay byte for byte; a dry run changes nothing; nonsense input is refused before anything is
 * removed. With erasure: after an erase and then an expire, nothing erased is back (not even after a
 * compaction) and the ledger still holds the entry.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeLedger } from '../../lambda/core/erasure';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { compactLocalLake } from '../../local/compact';
import { putLakeObject } from '../../local/file-lake';
import { startFromEnv } from '../../local/start';
import { eraseLocal } from '../../scripts/ops/erase';
import { expireLocalLake, main, REQUEST_LOG_FILE } from '../../scripts/ops/expire';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { occurrences } from '../support/erasure-search';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const VICTIM = '11111111-aaaa-4bbb-8ccc-00000000e001';
const OTHER = '22222222-aaaa-4bbb-8ccc-00000000e002';
const DAY = 24 * 3600 * 1000;
const NOW = new Date();
/** An hour's start `days` days before now (whole hours, so partitions are unambiguous). */
const ago = (days: number) => new Date(Math.floor((NOW.getTime() - days * DAY) / 3_600_000) * 3_600_000 + 60_000);

async function putRaw(dir: string, vehicleId: string, at: Date, tag: string): Promise<string> {
  const ids = [0, 1].map((i) => `${tag}-${i}-${vehicleId.slice(-4)}-0000-0000-000000000000`.slice(0, 36));
  const records = ids.map((id) => toLakeRecord(deliveryMessage(vehicleState(id, { vehicleId }), at.toISOString()), at));
  const key = objectKey(partitionPrefix('raw', partitionOf(records[0])), records, ids);
  await putLakeObject(dir, key, encodeNdjsonGzip(records));
  return key;
}

async function putQuarantined(dir: string, at: Date): Promise<string> {
  const iso = at.toISOString();
  const key = `quarantine/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/${iso.replace(/[-:.]/g, '')}-1n-10b-abc.ndjson.gz`;
  await putLakeObject(dir, key, gzipSync('{"bodyBase64":"e30="}\n'));
  return key;
}

/** Every file under the lake with its digest (the lock file and DuckDB's temp files aside). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.endsWith('.lock')) continue;
    const file = path.join(e.parentPath, e.name);
    files.set(
      path.relative(dir, file),
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    );
  }
  return files;
}

const keys = (m: Map<string, string>, prefix: string) => [...m.keys()].filter((k) => k.startsWith(prefix)).sort();

/** A lake with an old day (40 days ago) and a recent one (3 hours ago) of both vehicles, compacted. */
async function buildLake() {
  const dir = await mkdtemp(path.join(tmpdir(), 'expire-'));
  const raw = {
    oldVictim: await putRaw(dir, VICTIM, ago(40), 'a0'),
    oldOther: await putRaw(dir, OTHER, ago(40), 'a1'),
    newVictim: await putRaw(dir, VICTIM, ago(0.125), 'b0'),
    newOther: await putRaw(dir, OTHER, ago(0.125), 'b1'),
  };
  const quarantine = { old: await putQuarantined(dir, ago(20)), recent: await putQuarantined(dir, ago(1)) };
  await mkdir(path.join(dir, '.inspector'), { recursive: true });
  const line = (days: number, id: string) => JSON.stringify({ id, at: ago(days).toISOString(), verdict: 'stored' });
  await writeFile(path.join(dir, REQUEST_LOG_FILE), `${line(10, 'old')}\n${line(1, 'new')}\n`);
  const compacted = await compactLocalLake(dir, { now: NOW });
  expect(compacted.objects).toBe(4);
  return { dir, raw, quarantine };
}

const ARGS = ['--raw-days', '30', '--curated-days', '30'];

describe('expire on a local lake', () => {
  it('dry run: counts what would go and changes nothing', async () => {
    const { dir } = await buildLake();
    const before = await snapshot(dir);
    const r = await runInProcess('expire', () => main([...ARGS, '--dry-run', '--lake-dir', dir]), []);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/raw zone: would remove 2 object\(s\) older than 30 days/);
    expect(r.stdout).toMatch(/curated layer: would remove [1-9]\d* object\(s\)/);
    expect(r.stdout).toMatch(/quarantine: would remove 1 object\(s\) older than 14 days/);
    expect(r.stdout).toMatch(/request log: would remove 1 line\(s\) older than 7 days/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('after an erasure: removes only what is older, keeps erasures/ byte for byte, and nothing erased comes back', async () => {
    const { dir, raw, quarantine } = await buildLake();
    const receipt = await eraseLocal(dir, {
      subject: { kind: 'vehicle', id: VICTIM },
      dryRun: false,
      requestedBy: 'test',
    });
    expect(receipt.erasureId).toBeTruthy();
    const afterErase = await snapshot(dir);
    const erasures = keys(afterErase, 'erasures/');
    expect(erasures).toEqual(expect.arrayContaining(['erasures/ledger.json']));
    expect(erasures.some((k) => k.startsWith('erasures/receipts/'))).toBe(true);

    const dry = await expireLocalLake(dir, { rawDays: 30, curatedDays: 30, now: NOW, dryRun: true });
    const r = await runInProcess('expire', () => main([...ARGS, '--lake-dir', dir]), []);
    expect(r.code).toBe(0);
    const after = await snapshot(dir);

    // What a dry run counted is what the real run removed.
    const removed = [...afterErase.keys()].filter((k) => !after.has(k));
    const counted = dry.zones.reduce((n, z) => n + (z.zone === 'request log' ? 0 : z.found), 0);
    expect(removed.length).toBe(counted);
    // Old raw and quarantine objects and old curated days went; recent ones are byte for byte as they were.
    expect(after.has(raw.oldOther)).toBe(false);
    expect(after.has(raw.oldVictim)).toBe(false);
    expect(after.get(raw.newOther)).toBe(afterErase.get(raw.newOther));
    expect(after.has(quarantine.old)).toBe(false);
    expect(after.get(quarantine.recent)).toBe(afterErase.get(quarantine.recent));
    const oldDt = `dt=${ago(40).toISOString().slice(0, 10)}/`;
    expect(keys(after, 'curated/deliveries/').filter((k) => k.includes(oldDt))).toEqual([]);
    expect(keys(after, 'curated/deliveries/').length).toBeGreaterThan(0);
    // The compaction's bookkeeping and the erasure ledger and receipts are untouched.
    for (const k of [...keys(afterErase, 'curated/compaction/'), ...erasures])
      expect(after.get(k)).toBe(afterErase.get(k));
    const ledger = decodeLedger(await readFile(path.join(dir, 'erasures', 'ledger.json'), 'utf8'));
    expect(ledger.entries).toEqual([expect.objectContaining({ erasureId: receipt.erasureId, status: 'completed' })]);
    // The request log lost its old line only.
    expect(
      (await readFile(path.join(dir, REQUEST_LOG_FILE), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['new']);

    // A compaction afterwards brings back neither the erased vehicle nor the expired day.
    await compactLocalLake(dir, { now: NOW });
    expect(await occurrences(dir, [VICTIM])).toEqual([]);
    expect(keys(await snapshot(dir), 'curated/deliveries/').filter((k) => k.includes(oldDt))).toEqual([]);
  });
});

describe('expire refuses bad input, removing nothing', () => {
  it.each([
    [['--raw-days', '0'], /--raw-days must be a whole number of days from 1/],
    [['--curated-days', '1.5'], /--curated-days must be a whole number/],
    [['--quarantine-days', '-3'], /--quarantine-days/],
  ])('%p', async (argv, message) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'expire-bad-'));
    await putRaw(dir, OTHER, ago(40), 'c0');
    const before = await snapshot(dir);
    expectCleanFailure(await runInProcess('expire', () => main([...argv, '--lake-dir', dir]), []), 2, message);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('a clock behind the newest data', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'expire-clock-'));
    await putRaw(dir, OTHER, ago(40), 'd0');
    await putRaw(dir, OTHER, ago(-3), 'd1'); // three days in the future of this clock
    const before = await snapshot(dir);
    expectCleanFailure(
      await runInProcess('expire', () => main(['--raw-days', '30', '--lake-dir', dir]), []),
      1,
      /the clock .* is behind the newest data .*nothing removed/,
    );
    expect(await snapshot(dir)).toEqual(before);
  });

  it('every raw object at once, unless --all says so', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'expire-all-'));
    const key = await putRaw(dir, OTHER, ago(40), 'e0');
    const before = await snapshot(dir);
    expectCleanFailure(
      await runInProcess('expire', () => main(['--raw-days', '30', '--lake-dir', dir]), []),
      1,
      /all 1 object\(s\) are older than 30 days .*nothing removed.*--all/,
    );
    expect(await snapshot(dir)).toEqual(before);
    const r = await runInProcess('expire', () => main(['--raw-days', '30', '--all', '--lake-dir', dir]), []);
    expect(r.code).toBe(0);
    expect((await snapshot(dir)).has(key)).toBe(false);
  });
});

describe('npm start', () => {
  it('drops request-log entries older than the retention before the inspector loads them', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'expire-start-'));
    await mkdir(path.join(dir, '.inspector'), { recursive: true });
    const entry = (days: number, id: string) =>
      JSON.stringify({
        id,
        at: ago(days).toISOString(),
        verdict: 'stored',
        headers: {},
        body: '',
        bodyEncoding: 'utf8',
      });
    await writeFile(path.join(dir, REQUEST_LOG_FILE), `${entry(8, 'old')}\n${entry(6, 'new')}\n`);
    const printed: string[] = [];
    const server = await startFromEnv(
      { LOCAL_LAKE_DIR: dir, PORT: '0', SMARTCAR_MANAGEMENT_TOKEN: 'test-token-expire' },
      (t) => void printed.push(t),
    );
    try {
      expect(server.requestLog?.list().map((e) => e.id)).toEqual(['new']);
      expect(printed.join('\n')).toMatch(/request log: dropped 1 entries older than 7 days/);
    } finally {
      await server.close();
    }
  });
});
