/**
 * `npm run trace` on a local lake: an eventId found in the raw zone (key and line of each copy) and in
 * the curated layer after compaction, one only in the quarantine, one waiting in the spool, one curated
 * by a run that never committed (which does not count), a vehicle's timeline (signal change, error
 * opened then resolved, a subscription from a workflow report), --json, and nothing found. And the
 * narrowed search of an eventId the curated layer knows: its first copy's hours and the objects not
 * compacted yet, the whole window when copies are missing there, and --full-scan.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { main as traceMain } from '../../cli/trace';
import type { LakeRecord } from '../../lambda/contract';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { landingLine } from '../../lambda/core/landing';
import { quarantineObjectKey } from '../../lambda/core/quarantine';
import { matchingLines } from '../../lambda/core/trace';
import { statesOf } from '../../lambda/core/vehicle-state';
import { compactLocalLake } from '../../local/compact';
import { putLakeObject } from '../../local/file-lake';
import { Spool } from '../../local/spool';
import { fileStateStore } from '../../local/state-file';
import { runInProcess } from '../support/cli';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const HOUR = 3_600_000;
const now = Date.now();
const VEHICLE = 'veh-trace-1';
const SIGNATURE = 'f'.repeat(64);
let lakeDir: string;
let workDir: string;
let runId: string;
let seq = 0;

const error = (eventId: string, state: 'ERROR' | 'RESOLVED') =>
  JSON.stringify({
    eventId,
    eventType: 'VEHICLE_ERROR',
    vehicleId: VEHICLE,
    data: {
      vehicle: { id: VEHICLE },
      errors: [{ type: 'COMPATIBILITY', code: 'SMARTCAR_NOT_CAPABLE', state, description: 'not capable' }],
    },
    meta: { version: '4.0', mode: 'LIVE' },
  });

/** Writes one raw object holding these deliveries (all in one partition). */
async function store(bodies: string[], at: number): Promise<LakeRecord[]> {
  const records = bodies.map((b) => toLakeRecord(deliveryMessage(b, new Date(at).toISOString()), new Date(at)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [`m${++seq}`]), encodeNdjsonGzip(records));
  return records;
}

const trace = (argv: string[]) =>
  runInProcess('trace', () => traceMain(), [...argv, '--lake-dir', lakeDir], { LOCAL_WORKFLOW_DIR: workDir });

beforeAll(async () => {
  lakeDir = mkdtempSync(path.join(tmpdir(), 'trace-lake-'));
  workDir = mkdtempSync(path.join(tmpdir(), 'trace-work-'));
  const other = vehicleState('evt-other', { vehicleId: 'veh-other', value: 5 });
  const records = [
    ...(await store(
      [vehicleState('evt-a', { vehicleId: VEHICLE, value: 78, oemUpdatedAt: now - 5 * HOUR })],
      now - 5 * HOUR,
    )),
    // evt-b on line 2 of its object, and a retry of it in another object.
    ...(await store(
      [other, vehicleState('evt-b', { vehicleId: VEHICLE, value: 60, oemUpdatedAt: now - 4 * HOUR })],
      now - 4 * HOUR,
    )),
    ...(await store(
      [vehicleState('evt-b', { vehicleId: VEHICLE, value: 60, oemUpdatedAt: now - 4 * HOUR })],
      now - 4 * HOUR + 25_000,
    )),
    ...(await store([error('evt-err-1', 'ERROR')], now - 3.5 * HOUR)),
    ...(await store([error('evt-err-2', 'RESOLVED')], now - 3 * HOUR)),
  ];
  await fileStateStore(lakeDir).apply(statesOf(records));
  const compacted = await compactLocalLake(lakeDir, { now: new Date(now) });
  runId = compacted.runId as string;

  // After the run: a delivery of the current hour, and one a run that never committed wrote to Parquet.
  await store([vehicleState('evt-new', { vehicleId: 'veh-new' })], now);
  const [ghost] = await store([vehicleState('evt-ghost', { vehicleId: 'veh-ghost' })], now);
  const dir = path.join(
    lakeDir,
    'curated',
    'deliveries',
    'event_type=VEHICLE_STATE',
    'mode=live',
    `dt=${ghost.received_at.slice(0, 10)}`,
  );
  mkdirSync(dir, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  await duck.run(
    `COPY (SELECT 'evt-ghost' AS event_id, 'veh-ghost' AS vehicle_id, 'ghost-run' AS run_id, 1::BIGINT AS copies, '${ghost.received_at}' AS received_at) TO '${path.join(dir, 'run-ghost-run_0.parquet')}' (FORMAT parquet)`,
  );
  duck.closeSync();
  instance.closeSync(); // an open instance keeps DuckDB's reaper, and the test worker, alive

  // Rejected for its signature: only in the quarantine.
  const rejected = {
    v: 1,
    bodyBase64: Buffer.from(vehicleState('evt-rejected', { vehicleId: 'veh-q' })).toString('base64'),
    signature: SIGNATURE,
    receivedAt: new Date(now - HOUR).toISOString(),
  };
  const body = gzipSync(`${JSON.stringify(rejected)}\n`);
  await putLakeObject(lakeDir, quarantineObjectKey(new Date(now - HOUR), 1, 100, body), body);

  // Accepted, not yet written to the lake.
  await new Spool(path.join(lakeDir, '.spool')).enqueue(
    deliveryMessage(vehicleState('evt-spooled', { vehicleId: 'veh-s' }), new Date().toISOString()),
  );

  // Accepted and in a landing object the receiver's flush wrote but has not ingested yet.
  await putLakeObject(
    lakeDir,
    `landing/2026/12/01/10/local-1-2026-12-01-10-00-00-test`,
    Buffer.from(
      [
        landingLine(
          deliveryMessage(vehicleState('evt-other-landed', { vehicleId: 'veh-o' }), new Date().toISOString()),
        ),
        landingLine(deliveryMessage(vehicleState('evt-landed', { vehicleId: 'veh-l' }), new Date().toISOString())),
      ].join(''),
    ),
  );

  // A subscription workflow's report naming the vehicle.
  mkdirSync(path.join(workDir, 'runs', 'local-20260101'), { recursive: true });
  writeFileSync(
    path.join(workDir, 'runs', 'local-20260101', 'report.json'),
    JSON.stringify({ action: 'subscribe', webhookId: 'wh', vehicleCount: 2, succeeded: [VEHICLE, 'x'], failed: [] }),
  );
}, 30_000);

it('an eventId in the raw zone: each copy by key and line, curated by the committed run, and the state it set', async () => {
  const r = await trace(['evt-b']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^trace evt-b \(as eventId\)/);
  expect(r.stdout).toMatch(
    new RegExp(
      `VEHICLE_STATE\\s+live\\s+evt-b\\s+${runId}\\s+raw/event_type=VEHICLE_STATE/mode=live/dt=[0-9-]+/hour=\\d\\d/\\S+\\.ndjson\\.gz:2`,
    ),
  );
  expect(r.stdout.match(/evt-b\s+\S+\s+raw\/\S+:\d/g)).toHaveLength(2); // the retry's copy too
  expect(r.stdout).toMatch(
    /State of vehicle veh-trace-1 \(live\).*1 of the vehicle's current signal\(s\) come from this event/,
  );
  expect(r.stdout).toMatch(/tractionbattery-stateofcharge\s+60 percent/);
});

it('an event only in the quarantine says why it was rejected, and never shows its signature', async () => {
  const r = await trace(['evt-rejected']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Quarantine: quarantine\/dt=[0-9-]+\/hour=\d\d\/\S+\.ndjson\.gz:1/);
  expect(r.stdout).toMatch(/reason: SC-Signature did not match the management token/);
  expect(r.stdout).toMatch(/recovered: no/);
  expect(r.stdout).not.toMatch(/Raw zone/);
  expect(r.stdout + r.stderr).not.toContain(SIGNATURE);
});

it('an event waiting in a landing object: accepted, not yet written to the lake', async () => {
  const r = await trace(['evt-landed', '--json']);
  expect(r.code).toBe(0);
  const rows = r.stdout.split('\n').map((l) => JSON.parse(l));
  expect(rows.find((x) => x.kind === 'waiting')).toMatchObject({
    where: expect.stringMatching(/^landing zone \S+landing \(accepted, not yet written to the lake\)$/),
    messageId: 'landing/2026/12/01/10/local-1-2026-12-01-10-00-00-test#2',
    eventId: 'evt-landed',
    vehicleIds: ['veh-l'],
  });
});

it('an event waiting in the spool, and one not compacted yet', async () => {
  const spooled = await trace(['evt-spooled']);
  expect(spooled.stdout).toMatch(/Waiting: spool \S+\.spool \(accepted, not yet written to the lake\)/);
  expect(spooled.stdout).toMatch(/VEHICLE_STATE evt-spooled, received/);
  const fresh = await trace(['evt-new', '--json']);
  const [raw] = fresh.stdout.split('\n').map((l) => JSON.parse(l));
  expect(raw).toMatchObject({ kind: 'raw', eventId: 'evt-new', line: 1, curatedBy: null, objectCompactedBy: null });
});

it('a run that never committed does not count as curating an event', async () => {
  const r = await trace(['evt-ghost', '--json']);
  const rows = r.stdout.split('\n').map((l) => JSON.parse(l));
  expect(rows.filter((x) => x.kind === 'raw')).toEqual([
    expect.objectContaining({ eventId: 'evt-ghost', curatedBy: null }),
  ]);
});

it("a vehicle's timeline: deliveries, a changed signal, an error opened then resolved, its subscription", async () => {
  const r = await trace([VEHICLE]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^trace veh-trace-1 \(as vehicleId\)/);
  const timeline = r.stdout.slice(r.stdout.indexOf('Timeline of vehicle veh-trace-1'));
  const whats = [
    ...timeline.matchAll(/^\S+Z\s+(delivery|signal changed|error opened|error resolved|subscribed)\s/gm),
  ].map((m) => m[1]);
  expect(whats).toEqual([
    'delivery',
    'delivery',
    'signal changed',
    'delivery',
    'error opened',
    'delivery',
    'error resolved',
    'subscribed',
  ]);
  expect(timeline).toMatch(/signal changed\s+StateOfCharge: 78 percent → 60 percent\s+evt-b/);
  expect(timeline).toMatch(/delivery\s+VEHICLE_STATE \(live\), 2 copies\s+evt-b/);
  expect(timeline).toMatch(/error resolved\s+COMPATIBILITY\/SMARTCAR_NOT_CAPABLE \(open since /);
  expect(timeline).toMatch(/subscribed\s+workflow run local-20260101: subscribe succeeded/);
});

it('--json prints one object per finding and timeline entry', async () => {
  const r = await trace([VEHICLE, '--json']);
  const rows = r.stdout.split('\n').map((l) => JSON.parse(l));
  expect(new Set(rows.map((x) => x.kind))).toEqual(new Set(['raw', 'state', 'timeline']));
  expect(rows.filter((x) => x.kind === 'raw')).toHaveLength(5);
  expect(rows.find((x) => x.what === 'error opened')).toMatchObject({ id: VEHICLE, eventId: 'evt-err-1' });
  expect(rows.every((x) => x.id === VEHICLE)).toBe(true);
});

it('nothing found is one line saying where it looked; --since narrows; a bad id is a usage error', async () => {
  const none = await trace(['evt-nowhere']);
  expect(none.code).toBe(0);
  expect(none.stdout.split('\n')).toHaveLength(1);
  expect(none.stdout).toMatch(
    /^nothing found for evt-nowhere since \S+; looked in: raw zone: \S+raw \(all \d+ object\(s\)/,
  );
  expect(none.stdout).toMatch(/quarantine: .*spool .*vehicle state: /);
  const later = await trace(['evt-a', '--since', new Date(now - 2 * HOUR).toISOString()]);
  expect(later.stdout).toMatch(/^nothing found for evt-a/);
  const bad = await trace(["x' OR 1=1"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/is not an eventId or a vehicleId/);
  expect((await trace(['evt-a', '--since', 'yesterday'])).code).toBe(2);
});

it('matchingLines finds every line holding the needle, with its number', () => {
  const text = Buffer.from('{"a":"x"}\n{"b":"needle"}\n\n{"c":"needle needle"}\n{"d":"needle"}');
  expect(matchingLines(text, Buffer.from('needle'))).toEqual([
    { line: 2, text: '{"b":"needle"}' },
    { line: 4, text: '{"c":"needle needle"}' },
    { line: 5, text: '{"d":"needle"}' },
  ]);
});

describe('an eventId the curated layer knows: only its hours and the objects not compacted yet are read', () => {
  // Its own lake, hours apart: H holds the first copies of evt-n, H+1 the +100 s retry.
  const base = Math.floor(now / HOUR) * HOUR - 30 * HOUR;
  let dir: string;
  let run: string;
  const at = (ms: number) => new Date(ms).toISOString();
  const put = async (eventId: string, when: number, vehicleId = 'veh-n') => {
    const records = [toLakeRecord(deliveryMessage(vehicleState(eventId, { vehicleId }), at(when)), new Date(when))];
    const key = objectKey(partitionPrefix('raw', partitionOf(records[0])), records, [`n${++seq}`]);
    await putLakeObject(dir, key, encodeNdjsonGzip(records));
  };
  const traceIn = (argv: string[]) =>
    runInProcess('trace', () => traceMain(), [...argv, '--since', at(base - HOUR), '--lake-dir', dir], {
      LOCAL_WORKFLOW_DIR: workDir,
    });
  const copiesOf = (stdout: string) =>
    stdout.split('\n').filter((l) => l.startsWith('{') && JSON.parse(l).kind === 'raw');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'trace-narrow-'));
    await put('evt-n', base + 59 * 60_000); // H
    await put('evt-n', base + 59 * 60_000 + 25_000); // H, the +25 s retry
    await put('evt-n', base + 59 * 60_000 + 100_000); // H+1, the +100 s retry
    await put('evt-x1', base + 2 * HOUR, 'veh-x');
    await put('evt-x2', base + 4 * HOUR, 'veh-x');
    await put('evt-f', base + 6 * HOUR); // H+6 …
    await put('evt-f', base + 9 * HOUR); // … and a copy three hours later, compacted by the same run
    run = (await compactLocalLake(dir, { now: new Date(base + 20 * HOUR) })).runId as string;
    // After the run: a copy of evt-n re-sent by hand, and another event: neither compacted.
    await put('evt-n', base + 22 * HOUR);
    await put('evt-x3', base + 23 * HOUR, 'veh-x');
  }, 30_000);

  it('finds every copy in the first copy’s hour and the next, and the one not compacted yet, reading 5 of 9 objects', async () => {
    const r = await traceIn(['evt-n']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/evt-n\s+\S+\s+raw\/\S+:1/g)).toHaveLength(4);
    expect(r.stdout).toContain(run);
    const hours = [base, base + HOUR].map((t) => `dt=${at(t).slice(0, 10)}/hour=${at(t).slice(11, 13)}`);
    expect(r.stdout).toContain(
      `Raw objects searched: 5 of 9 object(s): the hours of its first copy (${hours.join(', ')}) and 2 object(s) not compacted yet (--full-scan reads them all)`,
    );
    const json = await traceIn(['evt-n', '--json']);
    expect(copiesOf(json.stdout)).toHaveLength(4);
  });

  it('reads the whole window when its hours hold fewer copies than the run counted, and finds the later one', async () => {
    const r = await traceIn(['evt-f', '--json']);
    const copies = copiesOf(r.stdout).map((l) => JSON.parse(l));
    expect(copies.map((c) => c.receivedAt)).toEqual([at(base + 6 * HOUR), at(base + 9 * HOUR)]);
    expect(copies.every((c) => c.curatedBy === run)).toBe(true);
    const report = await traceIn(['evt-f']);
    expect(report.stdout).toMatch(
      /Raw objects searched: all 9 object\(s\) since \S+: the hours of its first copy \(.*\) and 2 object\(s\) not compacted yet held 1 of the 2 copies compaction counted/,
    );
  });

  it('--full-scan reads every object; a vehicle and an event unknown to the curated layer are not narrowed', async () => {
    const full = await traceIn(['evt-n', '--full-scan']);
    expect(full.stdout).toMatch(/Raw objects searched: all 9 object\(s\) since /);
    expect(full.stdout.match(/evt-n\s+\S+\s+raw\/\S+:1/g)).toHaveLength(4);
    const vehicle = await traceIn(['veh-n']);
    expect(vehicle.stdout).toMatch(/Raw objects searched: all 9 object\(s\) since /);
    const fresh = await traceIn(['evt-x3']);
    expect(fresh.stdout).toMatch(/Raw objects searched: all 9 object\(s\) since /);
  });
});
