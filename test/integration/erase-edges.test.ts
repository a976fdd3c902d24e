/**
 * The edges an adversarial review found in the first erasure, each on a small local lake:
 * - a user's erasure keeps the state another user's deliveries made for a vehicle the user once had;
 * - an erasure that stops after the raw zone is finished by running it again (what it found is pending);
 * - a body that spells the id with JSON escapes is found in the spool and the quarantine;
 * - whole ids only: erasing `…-1` keeps `…-10`'s request-log entry and workflow report;
 * - a reference that is not a ticket reference is refused.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ErasurePlace } from '../../lambda/core/erasure';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { quarantineObjectKey } from '../../lambda/core/quarantine';
import { putLakeObject } from '../../local/file-lake';
import { readStateFile } from '../../local/state-file';
import { eraseLocal, main as eraseMain } from '../../scripts/ops/erase';
import { main as rebuildMain } from '../../scripts/ops/rebuild-state';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const FIXTURE_USER = '93b3ea96-ca37-43a9-9073-f4334719aaaa';
const ALICE = 'usr-alice-0000001';
const BOB = 'usr-bob-00000002';
const SHARED = 'veh-shared-0000001'; // Alice's in October, Bob's since November
const ALICES = 'veh-alices-0000002';

function stateBody(eventId: string, vehicle: string, user: string, value: number): string {
  return vehicleState(eventId, { vehicleId: vehicle, value, oemUpdatedAt: 1760000000000 + value }).replaceAll(
    FIXTURE_USER,
    user,
  );
}

async function store(lakeDir: string, name: string, bodies: [string, string][]) {
  const records = bodies.map(([body, when]) => toLakeRecord(deliveryMessage(body, when), new Date(when)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [name]), encodeNdjsonGzip(records));
}

async function sharedVehicleLake(): Promise<string> {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'erase-edges-'));
  await store(lakeDir, 'alice', [
    [stateBody('evt-a1', SHARED, ALICE, 1), '2026-10-01T10:00:00.000Z'],
    [stateBody('evt-a2', ALICES, ALICE, 2), '2026-10-01T10:05:00.000Z'],
  ]);
  await store(lakeDir, 'bob', [[stateBody('evt-b1', SHARED, BOB, 3), '2026-11-01T10:00:00.000Z']]);
  expect((await runInProcess('rebuild-state', rebuildMain, ['--lake-dir', lakeDir])).code).toBe(0);
  return lakeDir;
}

const erase = (argv: string[], env: Record<string, string | undefined> = {}) =>
  runInProcess('erase', eraseMain, argv, { LOCAL_WORKFLOW_DIR: path.join(tmpdir(), 'no-workflow'), ...env });

it("a user's erasure keeps the state another user's later deliveries made for a vehicle the user once had", async () => {
  const lakeDir = await sharedVehicleLake();
  const before = await readStateFile(lakeDir);
  expect(before[`${SHARED}|live`].signals).toBeDefined();
  expect((await erase(['--user', ALICE, '--lake-dir', lakeDir])).code).toBe(0);
  const after = await readStateFile(lakeDir);
  // Bob's state of the shared vehicle is as it was; Alice's own vehicle is gone.
  expect(after[`${SHARED}|live`]).toEqual(before[`${SHARED}|live`]);
  expect(after[`${ALICES}|live`]).toBeUndefined();
  expect(JSON.stringify(after)).not.toContain(ALICE);
});

it('an erasure that stops after the raw zone is finished by running the same request again', async () => {
  const lakeDir = await sharedVehicleLake();
  const stop: ErasurePlace = {
    place: 'crash',
    erase: async () => {
      throw new Error('the process died here');
    },
  };
  // The first run erases the raw zone, then stops before the state file.
  await expect(
    eraseLocal(lakeDir, {
      subject: { kind: 'user', id: ALICE },
      dryRun: false,
      afterRaw: [stop],
      workDir: path.join(tmpdir(), 'no-workflow'),
    }),
  ).rejects.toThrow('the process died here');
  const pending = readdirSync(path.join(lakeDir, 'erasures', 'pending'));
  expect(pending).toHaveLength(1);
  expect((await readStateFile(lakeDir))[`${ALICES}|live`]).toBeDefined();

  // The rerun finds nothing in the raw zone any more, but knows what the first run removed.
  const rerun = await erase(['--user', ALICE, '--json', '--lake-dir', lakeDir]);
  expect(rerun.code).toBe(0);
  const receipt = JSON.parse(rerun.stdout);
  expect(receipt.places.find((p: { place: string }) => p.place === 'raw').found).toBe(0);
  expect(receipt.places.find((p: { place: string }) => p.place === 'state').removed).toBe(1);
  expect((await readStateFile(lakeDir))[`${ALICES}|live`]).toBeUndefined();
  expect(readdirSync(path.join(lakeDir, 'erasures', 'pending'))).toEqual([]);
});

it('finds an id spelled with JSON escapes in the spool and the quarantine', async () => {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'erase-escaped-'));
  const escaped = stateBody('evt-esc', ALICES, BOB, 5).replaceAll(`"${ALICES}"`, '"\\u0076eh-alices-0000002"');
  expect(escaped).not.toContain(ALICES);
  const message = deliveryMessage(escaped, '2026-11-02T00:00:00.000Z');
  mkdirSync(path.join(lakeDir, '.spool'), { recursive: true });
  writeFileSync(path.join(lakeDir, '.spool', 'one.json'), JSON.stringify(message));
  const line = JSON.stringify({ ...message, signature: 'ab'.repeat(32) });
  const body = gzipSync(`${line}\n`);
  await putLakeObject(lakeDir, quarantineObjectKey(new Date('2026-11-02T00:00:00Z'), 1, escaped.length, body), body);

  const result = await erase(['--vehicle', ALICES, '--json', '--lake-dir', lakeDir]);
  expect(result.code).toBe(0);
  const receipt = JSON.parse(result.stdout);
  const found: Record<string, number> = {};
  for (const p of receipt.places as { place: string; found: number }[])
    found[p.place] = (found[p.place] ?? 0) + p.found;
  expect(found).toMatchObject({ spool: 1, quarantine: 1 });
  expect(readdirSync(path.join(lakeDir, '.spool'))).toEqual([]);
});

it('takes whole ids only: erasing …-1 keeps the request-log entry and the report of …-10', async () => {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'erase-whole-'));
  const workDir = mkdtempSync(path.join(tmpdir(), 'erase-whole-work-'));
  const one = 'veh-prefix-1';
  const ten = 'veh-prefix-10';
  const entry = (id: string, n: number) =>
    JSON.stringify({
      id: `r-${n}`,
      at: '2026-11-02T00:00:00.000Z',
      verdict: 'stored',
      path: `/webhooks/${id}`,
      body: JSON.stringify({ vehicleId: id }),
      bodyEncoding: 'utf8',
    });
  mkdirSync(path.join(lakeDir, '.inspector'), { recursive: true });
  writeFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), `${entry(one, 1)}\n${entry(ten, 2)}\n`);
  writeFileSync(
    path.join(workDir, 'report.json'),
    JSON.stringify({ results: [{ vehicleId: one }, { vehicleId: ten, note: `see /vehicles/${ten}` }] }),
  );
  const result = await erase(['--vehicle', one, '--lake-dir', lakeDir], { LOCAL_WORKFLOW_DIR: workDir });
  expect(result.code).toBe(0);
  const log = readFileSync(path.join(lakeDir, '.inspector', 'requests.ndjson'), 'utf8');
  expect(log).toContain(ten);
  expect(log).not.toContain(`"r-1"`);
  const report = JSON.parse(readFileSync(path.join(workDir, 'report.json'), 'utf8'));
  expect(report.results).toEqual([{ vehicleId: ten, note: `see /vehicles/${ten}` }]);
});

it('refuses a reference that is not a ticket reference, before erasing anything', async () => {
  const lakeDir = await sharedVehicleLake();
  const result = await erase([
    '--user',
    ALICE,
    '--reference',
    'Alice Example <alice@example.com>',
    '--lake-dir',
    lakeDir,
  ]);
  expectCleanFailure(result, 2, /reference must be a ticket reference/);
  expect(readdirSync(lakeDir)).not.toContain('erasures');
});

it("deletes a crashed write's leftover file that holds the id, and no other", async () => {
  const lakeDir = await sharedVehicleLake();
  const dir = path.join(lakeDir, 'raw', 'event_type=VEHICLE_STATE');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'x.ndjson.gz.1234.tmp'), gzipSync(`{"user_id":"${ALICE}"}\n`));
  writeFileSync(path.join(dir, 'y.ndjson.gz.5678.tmp'), gzipSync(`{"user_id":"${BOB}"}\n`));
  expect((await erase(['--user', ALICE, '--lake-dir', lakeDir])).code).toBe(0);
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual(['y.ndjson.gz.5678.tmp']);
});
