/**
 * `npm run erase` on a local lake (scripts/ops/erase.ts, local/erase.ts): a small compacted lake with a
 * user who has two vehicles, another user's vehicle, legacy deliveries that name two vehicles and a
 * delivery whose body is not valid UTF-8, plus the state file, quarantine, spools, request log and
 * workflow reports. A dry run reports what the real run removes; afterwards the ids occur in no file
 * (gzip and Parquet contents searched), every other record is unchanged byte for byte, the ledger and
 * the receipt hold no id, and replay, recover-rejected, rebuild-state, compaction and ingest bring
 * nothing back while a delivery received after the erasure is stored.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { LakeRecord } from '../../lambda/contract';
import { type ErasureReceipt, erasedFilter } from '../../lambda/core/erasure';
import { ingestBatch } from '../../lambda/core/ingest';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { quarantineObjectKey, recoveryMarkerKey } from '../../lambda/core/quarantine';
import { COMPACTION_COMMITS } from '../../lib/queries';
import { compactLocalLake, releaseLock, takeLock } from '../../local/compact';
import { LEDGER_FILE, localLedgerStore } from '../../local/erase';
import { listLakeKeys, putLakeObject, readLake } from '../../local/file-lake';
import { openLocalLake } from '../../local/query';
import { readStateFile } from '../../local/state-file';
import { main as eraseMain } from '../../scripts/ops/erase';
import { main as rebuildMain } from '../../scripts/ops/rebuild-state';
import { main as recoverMain } from '../../scripts/ops/recover-rejected';
import { main as replayMain } from '../../scripts/ops/replay';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { occurrences } from '../support/erasure-search';
import { fixture, sign, TEST_TOKEN, vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const USER_1 = 'usr-one-11111111'; // has VEH_A and VEH_B
const USER_2 = 'usr-two-22222222'; // has VEH_C
const VEH_A = 'veh-alpha-00000001';
const VEH_B = 'veh-bravo-00000002';
const VEH_C = 'veh-charlie-00000003';
const FIXTURE_USER = '93b3ea96-ca37-43a9-9073-f4334719aaaa';
const LEGACY_VEHICLE = '36ab27d0-fd9d-4455-823a-ce30af709ffc';

const at = (hour: number, minute: number, second = 0) =>
  `2026-11-26T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}.000Z`;

function stateBody(eventId: string, vehicle: string, user: string, value: number): string {
  return vehicleState(eventId, { vehicleId: vehicle, value, oemUpdatedAt: 1764140000000 + value }).replaceAll(
    FIXTURE_USER,
    user,
  );
}

/** A legacy schedule delivery naming two vehicles (its own eventId is the hash of the body). */
function legacyTwoVehicles(first: string, second: string, n: number): string {
  const one = JSON.parse(fixture('schedule-legacy').toString());
  const v = one.payload.vehicles[0];
  one.payload.vehicles = [
    { ...v, vehicleId: first, requestId: `req-a-${n}` },
    { ...v, vehicleId: second, requestId: `req-b-${n}` },
  ];
  return JSON.stringify(one);
}

async function store(lakeDir: string, name: string, bodies: [string | Buffer, string][]) {
  const records = bodies.map(([body, when]) => toLakeRecord(deliveryMessage(body, when), new Date(when)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [name]), encodeNdjsonGzip(records));
}

const OWNER: Record<string, string> = { [VEH_A]: USER_1, [VEH_B]: USER_1, [VEH_C]: USER_2 };

/** ~300 deliveries over three hours, compacted, and every other place the local stack keeps data. */
async function fixtureLake(): Promise<{ lakeDir: string; workDir: string }> {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'erase-lake-'));
  const workDir = mkdtempSync(path.join(tmpdir(), 'erase-work-'));
  let n = 0;
  for (const hour of [8, 9, 10]) {
    for (const part of [0, 1]) {
      const bodies: [string | Buffer, string][] = [];
      for (let i = 0; i < 48; i++) {
        const vehicle = [VEH_A, VEH_B, VEH_C][i % 3];
        bodies.push([stateBody(`evt-${n}`, vehicle, OWNER[vehicle], n % 100), at(hour, part * 30 + (i % 30), i)]);
        n++;
      }
      await store(lakeDir, `state-${hour}-${part}`, bodies);
    }
    // Legacy deliveries: one naming A and C, one naming C and the fixture's vehicle; a body that is not UTF-8.
    await store(lakeDir, `legacy-${hour}`, [
      [legacyTwoVehicles(VEH_A, VEH_C, hour), at(hour, 40)],
      [legacyTwoVehicles(VEH_C, LEGACY_VEHICLE, hour), at(hour, 41)],
    ]);
    await store(lakeDir, `odd-${hour}`, [
      [
        Buffer.concat([
          Buffer.from(`{"eventId":"odd-${hour}","eventType":"VEHICLE_STATE","vehicleId":"${VEH_A}","x":"`),
          Buffer.from([0xff]),
          Buffer.from('"}'),
        ]),
        at(hour, 50),
      ],
    ]);
  }
  await compactLocalLake(lakeDir, { now: new Date('2026-11-27T00:00:00.000Z') });
  // The state file, as the receiver (or rebuild-state) writes it.
  expect((await runInProcess('rebuild-state', rebuildMain, ['--lake-dir', lakeDir])).code).toBe(0);
  // A quarantine object with a delivery of A and one of C, and recovery's marker of it.
  const q = (body: string, when: string) => ({
    v: 1,
    bodyBase64: Buffer.from(body).toString('base64'),
    signature: 'ab'.repeat(32),
    receivedAt: when,
  });
  const quarantined = [
    q(stateBody('q-a', VEH_A, USER_1, 1), at(9, 5)),
    q(stateBody('q-c', VEH_C, USER_2, 2), at(9, 6)),
  ];
  const qBody = gzipSync(quarantined.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const qKey = quarantineObjectKey(new Date(at(9, 7)), 2, 100, qBody);
  await putLakeObject(lakeDir, qKey, qBody);
  await putLakeObject(
    lakeDir,
    recoveryMarkerKey(qKey),
    Buffer.from(JSON.stringify({ v: 1, eventIds: [], complete: false })),
  );
  // Spooled deliveries (not yet in the lake) and spooled rejections.
  for (const [dir, vehicle] of [
    ['.spool', VEH_A],
    ['.spool', VEH_C],
    ['.quarantine-spool', VEH_A],
  ] as const) {
    mkdirSync(path.join(lakeDir, dir), { recursive: true });
    const message = { ...q(stateBody(`s-${vehicle}-${dir}`, vehicle, OWNER[vehicle], 3), at(11, 0)) };
    writeFileSync(path.join(lakeDir, dir, `${Date.now()}-${dir.length}-${vehicle}.json`), JSON.stringify(message));
  }
  // The inspector's request log.
  mkdirSync(path.join(lakeDir, '.inspector'));
  const entry = (id: string, vehicle: string) =>
    JSON.stringify({
      id,
      at: at(10, 1),
      verdict: 'stored',
      vehicleId: vehicle,
      body: stateBody(id, vehicle, OWNER[vehicle], 4),
      bodyEncoding: 'utf8',
    });
  writeFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), `${entry('r1', VEH_A)}\n${entry('r2', VEH_C)}\n`);
  // The local subscription workflow's files.
  mkdirSync(path.join(workDir, 'runs', 'run-1'), { recursive: true });
  writeFileSync(
    path.join(workDir, 'runs', 'run-1', 'report.json'),
    JSON.stringify({
      runId: 'run-1',
      total: 2,
      results: [
        { vehicleId: VEH_A, status: 'subscribed' },
        { vehicleId: VEH_C, status: 'subscribed' },
      ],
    }),
  );
  writeFileSync(path.join(workDir, 'runs', 'run-1', 'page-0.json'), JSON.stringify([VEH_A, VEH_C]));
  return { lakeDir, workDir };
}

/** Every raw line (inflated), by whether it names one of `ids`. */
async function rawLines(lakeDir: string, ids: readonly string[]): Promise<{ others: string[]; theirs: number }> {
  const others: string[] = [];
  let theirs = 0;
  for (const key of await listLakeKeys(lakeDir, 'raw')) {
    for (const line of gunzipSync(readFileSync(path.join(lakeDir, key)))
      .toString('utf8')
      .split('\n')) {
      if (line === '') continue;
      if (ids.some((id) => line.includes(id))) theirs++;
      else others.push(line);
    }
  }
  return { others: others.sort(), theirs };
}

async function curatedCounts(lakeDir: string): Promise<Record<string, number>> {
  const lake = await openLocalLake(lakeDir);
  try {
    const out: Record<string, number> = {};
    for (const t of ['curated_deliveries', 'curated_signals', COMPACTION_COMMITS])
      out[t] = Number((await lake.query(`SELECT COUNT(*) AS n FROM "${t}"`))[0].n);
    return out;
  } finally {
    lake.close();
  }
}

const erase = (argv: string[], workDir: string) =>
  runInProcess('erase', eraseMain, argv, { LOCAL_WORKFLOW_DIR: workDir, SMARTCAR_MANAGEMENT_TOKEN: undefined });

const byPlace = (r: ErasureReceipt, field: 'found' | 'removed') => {
  const out: Record<string, number> = {};
  for (const p of r.places) out[p.place] = (out[p.place] ?? 0) + p[field];
  return out;
};

describe('npm run erase (local lake)', () => {
  let lakeDir: string;
  let workDir: string;
  beforeAll(async () => {
    ({ lakeDir, workDir } = await fixtureLake());
  });

  it('erases a vehicle everywhere: dry-run counts equal the real run, no trace left, all else unchanged', async () => {
    const before = await rawLines(lakeDir, [VEH_A]);
    const curatedBefore = await curatedCounts(lakeDir);
    const stateBefore = Object.keys(await readStateFile(lakeDir)).sort();
    const statesOfA = stateBefore.filter((k) => k.startsWith(`${VEH_A}|`));
    expect(statesOfA).toContain(`${VEH_A}|live`);
    expect(before.theirs).toBe(3 * 32 + 3 + 3); // 32 state deliveries an hour, one legacy, one odd

    const dry = await erase(['--vehicle', VEH_A, '--dry-run', '--json', '--lake-dir', lakeDir], workDir);
    expect(dry.code).toBe(0);
    const dryReceipt = JSON.parse(dry.stdout) as ErasureReceipt;
    expect(dryReceipt.removed).toBe(0);
    // A dry run writes nothing: the id is where it was, no ledger, no receipt.
    expect((await rawLines(lakeDir, [VEH_A])).theirs).toBe(before.theirs);
    expect(readdirSync(lakeDir)).not.toContain('erasures');

    const real = await erase(['--vehicle', VEH_A, '--reference', 'DPO-42', '--json', '--lake-dir', lakeDir], workDir);
    expect(real.code).toBe(0);
    const receipt = JSON.parse(real.stdout) as ErasureReceipt;
    expect(byPlace(receipt, 'removed')).toEqual(byPlace(dryReceipt, 'found'));
    expect(byPlace(receipt, 'found')).toEqual(byPlace(dryReceipt, 'found'));
    expect(byPlace(receipt, 'removed')).toMatchObject({
      raw: before.theirs,
      state: statesOfA.length,
      quarantine: 1,
      spool: 2,
      'request-log': 1,
      reports: 2,
    });
    expect(byPlace(receipt, 'removed').curated).toBeGreaterThan(before.theirs); // deliveries and their signal rows

    // No file under the lake or the workflow folder holds the id: paths, bytes, gzip and Parquet contents.
    expect(await occurrences(lakeDir, [VEH_A])).toEqual([]);
    expect(await occurrences(workDir, [VEH_A])).toEqual([]);
    // Everything else byte for byte; the curated tables lost exactly what was removed.
    const after = await rawLines(lakeDir, [VEH_A]);
    expect(after).toEqual({ others: before.others, theirs: 0 });
    const curatedAfter = await curatedCounts(lakeDir);
    expect(curatedAfter.curated_deliveries + curatedAfter.curated_signals).toBe(
      curatedBefore.curated_deliveries + curatedBefore.curated_signals - byPlace(receipt, 'removed').curated,
    );
    expect(curatedAfter[COMPACTION_COMMITS]).toBe(curatedBefore[COMPACTION_COMMITS]);
    expect(Object.keys(await readStateFile(lakeDir)).sort()).toEqual(stateBefore.filter((k) => !statesOfA.includes(k)));
    expect(readdirSync(path.join(lakeDir, '.spool'))).toHaveLength(1); // C's
    expect(readFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), 'utf8')).toContain('"r2"');
    expect(JSON.parse(readFileSync(path.join(workDir, 'runs', 'run-1', 'page-0.json'), 'utf8'))).toEqual([VEH_C]);

    // The ledger and the receipt: a hash, counts, the reference; no id.
    const ledgerText = readFileSync(path.join(lakeDir, LEDGER_FILE), 'utf8');
    expect(JSON.parse(ledgerText).entries).toEqual([
      expect.objectContaining({
        kind: 'vehicle',
        subject: expect.stringMatching(/^[0-9a-f]{64}$/),
        status: 'completed',
      }),
    ]);
    const receiptText = readFileSync(String(receipt.receiptKey), 'utf8');
    expect(JSON.parse(receiptText)).toMatchObject({ reference: 'DPO-42', removed: receipt.removed, dryRun: false });
    expect(receipt.requestedBy).toMatch(/.+@.+/);
  });

  it('nothing brings the erased records back; a delivery received after the erasure is new data', async () => {
    // A copy of A's old records reappears in the raw zone (a restored backup): replay and rebuild-state
    // must skip it, and replay removes it.
    await store(lakeDir, 'restored', [
      [stateBody('evt-restored', VEH_A, USER_1, 5), at(9, 59)],
      [stateBody('evt-restored-c', VEH_C, USER_2, 6), at(9, 59, 1)],
    ]);
    const rebuilt = await runInProcess('rebuild-state', rebuildMain, ['--lake-dir', lakeDir]);
    expect(rebuilt.stdout).toContain('1 records of erased subjects skipped');
    expect(Object.keys(await readStateFile(lakeDir))).not.toContain(`${VEH_A}|live`);
    const replayed = await runInProcess('replay', replayMain, [
      '--from',
      '2026-11-26T00',
      '--to',
      '2026-11-27T00',
      '--lake-dir',
      lakeDir,
    ]);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('"recordsErased":1');
    // A rejected delivery of A from before the erasure, signed right: recovery does not store it.
    const old = stateBody('q-late-a', VEH_A, USER_1, 7);
    const fresh = stateBody('q-late-c', VEH_C, USER_2, 8);
    const rejected = [old, fresh].map((b, i) => ({
      v: 1,
      bodyBase64: Buffer.from(b).toString('base64'),
      signature: sign(b, TEST_TOKEN),
      receivedAt: at(10, 20 + i),
    }));
    const body = gzipSync(rejected.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await putLakeObject(lakeDir, quarantineObjectKey(new Date(at(10, 22)), 2, 100, body), body);
    const recovered = await runInProcess('recover-rejected', recoverMain, ['--lake-dir', lakeDir], {
      SMARTCAR_MANAGEMENT_TOKEN: TEST_TOKEN,
    });
    expect(recovered.code).toBe(0);
    const stored = [...(await readLake(lakeDir)).values()].flat().map((r) => r.event_id);
    expect(stored).toContain('q-late-c');
    expect(stored).not.toContain('q-late-a');
    // Compaction afterwards, and ingest with the ledger's filter: an old delivery dropped, a new one stored.
    await compactLocalLake(lakeDir, { now: new Date('2026-11-28T00:00:00.000Z') });
    const ledger = localLedgerStore(lakeDir);
    const now = new Date();
    const result = await ingestBatch(
      [
        { id: 'old', body: JSON.stringify(deliveryMessage(stateBody('evt-old-a', VEH_A, USER_1, 9), at(11, 0))) },
        {
          id: 'new',
          body: JSON.stringify(deliveryMessage(stateBody('evt-new-a', VEH_A, USER_1, 9), now.toISOString())),
        },
      ],
      {
        rawPrefix: 'raw',
        logger: { info() {}, warn() {}, error() {} },
        putObject: (key, b) => putLakeObject(lakeDir, key, b),
        erased: async () => erasedFilter(await ledger.read()),
      },
    );
    expect(result.erased).toBe(1);
    const records: LakeRecord[] = [...(await readLake(lakeDir)).values()].flat();
    expect(records.filter((r) => r.vehicle_ids.includes(VEH_A)).map((r) => r.event_id)).toEqual(['evt-new-a']);
    const left = (await occurrences(lakeDir, [VEH_A])).filter((o) => !o.file.startsWith('raw/') || o.how !== 'gzip');
    expect(left).toEqual([]);
  });

  it('a second identical erasure finds nothing; a user erasure takes both of their vehicles’ records and state', async () => {
    const again = await erase(['--vehicle', VEH_A, '--dry-run', '--json', '--lake-dir', lakeDir], workDir);
    // Only the delivery received after the first erasure: new data, which a new request erases.
    expect(JSON.parse(again.stdout).found).toBe(1);

    const user = await erase(['--user', USER_1, '--lake-dir', lakeDir], workDir);
    expect(user.code).toBe(0);
    expect(user.stdout).toMatch(/^raw +removed \d+ records/m);
    expect(user.stdout).toMatch(/receipt: .+\.json/);
    expect(user.stdout).not.toContain(USER_1);
    expect(await occurrences(lakeDir, [USER_1, VEH_A, VEH_B])).toEqual([]);
    expect(Object.keys(await readStateFile(lakeDir)).filter((k) => !k.startsWith(`${VEH_C}|`))).toEqual([]);
    expect(Object.keys(await readStateFile(lakeDir))).toContain(`${VEH_C}|live`);
    const twice = await erase(['--user', USER_1, '--dry-run', '--json', '--lake-dir', lakeDir], workDir);
    expect(JSON.parse(twice.stdout).found).toBe(0);
    // C and its user are untouched.
    expect((await rawLines(lakeDir, [VEH_C])).theirs).toBeGreaterThan(96);
  });

  it('bad input exits 2 with a clear line that never repeats the id; a busy lock exits 1 saying who holds it', async () => {
    const both = await erase(['--user', USER_2, '--vehicle', VEH_C, '--lake-dir', lakeDir], workDir);
    expectCleanFailure(both, 2, /pass exactly one of --user ID or --vehicle ID/);
    expectCleanFailure(
      await erase(['--lake-dir', lakeDir], workDir),
      2,
      /pass exactly one of --user ID or --vehicle ID/,
    );
    const short = await erase(['--vehicle', 'veh-1', '--lake-dir', lakeDir], workDir);
    expectCleanFailure(short, 2, /--vehicle must be 8–200 characters/);
    expect(short.stderr).not.toContain('veh-1 ');
    expect(both.stderr).not.toContain(USER_2);

    const lock = await takeLock(lakeDir, 'compaction-in-progress', 60_000);
    try {
      const busy = await erase(['--vehicle', VEH_C, '--lake-dir', lakeDir], workDir);
      expectCleanFailure(busy, 1, /locked by compaction-in-progress \(pid \d+/);
      expect((await rawLines(lakeDir, [VEH_C])).theirs).toBeGreaterThan(96);
    } finally {
      await releaseLock(lakeDir, lock);
    }
  });
});
