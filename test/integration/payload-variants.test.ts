/**
 * Every documented payload variant (test/fixtures, with the page each comes from in its README) goes
 * through every reader the stack has: the lake record, current state, the fleet event, every view of a
 * local lake and the local compaction (the SQL Athena runs). None may fail, and the `triggers` column
 * says what prompted each delivery, whichever of Smartcar's shapes it came in. Curated files written
 * before the column existed still read, with the column null.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { LakeRecord } from '../../lambda/contract';
import { normalizeTriggers } from '../../lambda/core/envelope';
import { fleetEventOf } from '../../lambda/core/fleet-events';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { stateOf } from '../../lambda/core/vehicle-state';
import { VIEWS } from '../../lib/queries';
import { compactLocalLake } from '../../local/compact';
import { listLakeKeys, putLakeObject } from '../../local/file-lake';
import { openLocalLake } from '../../local/query';
import { FIXTURE_NAMES, type FixtureName, fixture } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const SOC = 'tractionbattery-stateofcharge';
const changed = (code: string) => [{ type: 'SIGNAL_UPDATED', code }];

/** What each fixture must come out as: mode, delivery time and (VEHICLE_STATE) the normalized triggers. */
const EXPECTED: Record<FixtureName, { mode: string; deliveredAt: string | null; triggers?: unknown }> = {
  'verify-legacy': { mode: 'unknown', deliveredAt: null },
  'verify-current': { mode: 'unknown', deliveredAt: '2025-10-31T07:39:11.529Z' },
  'schedule-legacy': { mode: 'live', deliveredAt: null },
  'scheduled-legacy': { mode: 'simulated', deliveredAt: null },
  'event-based-legacy': { mode: 'test', deliveredAt: null },
  // {code, name, group} under data
  'vehicle-state': { mode: 'live', deliveredAt: '2024-11-18T14:32:08.000Z', triggers: changed(SOC) },
  // {type, signal: "Group.Name"} at the top
  'vehicle-state-variant': { mode: 'test', deliveredAt: '2024-11-18T14:32:08.000Z', triggers: changed(SOC) },
  // {type, signal: {code, name, group}}
  'vehicle-state-signal-object': { mode: 'live', deliveredAt: '2025-09-23T23:05:13.000Z', triggers: changed(SOC) },
  // {code: "FIRST_DELIVERY"}
  'vehicle-state-first-delivery': {
    mode: 'simulated',
    deliveredAt: '2026-11-26T20:46:42.332Z',
    triggers: [{ type: 'FIRST_DELIVERY', code: null }],
  },
  // {type, signal: {code}}, deliveredAt in seconds
  'vehicle-state-v3': { mode: 'live', deliveredAt: '2023-11-14T22:13:20.000Z', triggers: changed(SOC) },
  'vehicle-error': { mode: 'live', deliveredAt: '2025-11-26T21:14:11.000Z' },
  'vehicle-error-resolved': { mode: 'test', deliveredAt: '2026-11-26T21:30:00.000Z' },
};

const at = (minute: number, hour = 20) => `2026-11-26T${hour}:${String(minute).padStart(2, '0')}:00.000Z`;
const recordOf = (name: FixtureName, receivedAt: string): LakeRecord =>
  toLakeRecord(deliveryMessage(fixture(name), receivedAt), new Date(receivedAt));

async function store(lakeDir: string, objectName: string, records: LakeRecord[]): Promise<void> {
  // One object per partition (event type and mode), as the ingest function writes them.
  const byPrefix = new Map<string, LakeRecord[]>();
  for (const r of records) {
    const prefix = partitionPrefix('raw', partitionOf(r));
    byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), r]);
  }
  for (const [prefix, rs] of byPrefix)
    await putLakeObject(lakeDir, objectKey(prefix, rs, [objectName]), encodeNdjsonGzip(rs));
}

type Rows = Record<string, unknown>[];

/** Every view's rows; any view that fails fails the test. */
async function everyView(lakeDir: string): Promise<Record<string, Rows>> {
  const lake = await openLocalLake(lakeDir);
  try {
    const out: Record<string, Rows> = {};
    for (const view of VIEWS) out[view.name] = await lake.query(`SELECT * FROM "${view.name}"`);
    return out;
  } finally {
    lake.close();
  }
}

/** The triggers column per event of the `signals` view (each of an event's rows says the same). */
function triggersByEvent(rows: Rows): Record<string, unknown> {
  const out: Record<string, Set<string | null>> = {};
  for (const r of rows) {
    out[String(r.event_id)] ??= new Set();
    out[String(r.event_id)].add((r.triggers as string | null) ?? null);
  }
  return Object.fromEntries(
    Object.entries(out).map(([id, set]) => {
      expect(set.size).toBe(1);
      const [text] = [...set];
      return [id, text === null ? null : JSON.parse(text)];
    }),
  );
}

const records = FIXTURE_NAMES.map((name, i) => ({ name, record: recordOf(name, at(i + 1)) }));
const expectedTriggers = Object.fromEntries(
  records
    .filter(({ name }) => EXPECTED[name].triggers)
    .map(({ name, record }) => [record.event_id, EXPECTED[name].triggers]),
);

describe('every payload variant', () => {
  test.each(records)('$name: lake record, state and fleet event', ({ name, record }) => {
    const want = EXPECTED[name];
    const json = JSON.parse(fixture(name).toString());
    expect(record.event_type).toBe(json.eventType ?? json.eventName);
    expect(record.mode).toBe(want.mode);
    expect(record.delivered_at).toBe(want.deliveredAt);
    expect(record.body_json).toBeNull(); // the bodies are clean UTF-8: stored as sent
    expect(normalizeTriggers(json) ?? undefined).toEqual(want.triggers);

    const state = stateOf(record);
    const event = fleetEventOf(record, 'raw/key');
    expect(event?.detailType).toBe(record.event_type);
    if (record.event_type === 'VEHICLE_STATE') {
      expect(state?.vehicleId).toBe('9af13248-3b73-4c9d-9a4b-d937ce6bc8e2');
      // A signal carrying an error instead of a body never becomes the vehicle's state...
      expect(Object.values(state?.signals ?? {}).every((s) => s.body !== 'null')).toBe(true);
      expect(Object.keys(state?.signals ?? {}).length).toBeGreaterThan(0);
      // ...but the event carries it as sent, with what prompted the delivery.
      expect(event?.detail.signals).toHaveLength(json.data.signals.length);
      expect(event?.detail.triggers).toEqual(want.triggers);
    } else {
      expect(state).toBeNull();
    }
  });

  test('error-carrying signals: both shapes reach the fleet event, neither the state', () => {
    const first = records.find((r) => r.name === 'vehicle-state-first-delivery')?.record as LakeRecord;
    const object = records.find((r) => r.name === 'vehicle-state-signal-object')?.record as LakeRecord;
    expect(Object.keys(stateOf(first)?.signals ?? {})).toEqual([SOC]);
    expect(Object.keys(stateOf(object)?.signals ?? {}).sort()).toEqual(['location-preciselocation', SOC]);
    const signals = (r: LakeRecord) => fleetEventOf(r, 'k')?.detail.signals as Record<string, unknown>[];
    expect(signals(first)[1].error).toMatchObject({ code: 'VEHICLE_NOT_CAPABLE' });
    expect(signals(object)[1].status).toMatchObject({ value: 'ERROR' });
  });

  test('every view reads them before and after compaction, with triggers as a column; old curated files still read', async () => {
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'variants-lake-'));
    await store(
      lakeDir,
      'all',
      records.map((r) => r.record),
    );

    const before = await everyView(lakeDir);
    const vehicleStates = records.filter((r) => r.record.event_type === 'VEHICLE_STATE');
    expect(new Set(before.signals.map((r) => r.event_id))).toEqual(
      new Set([
        ...vehicleStates.map((r) => r.record.event_id),
        ...records.filter((r) => r.name.startsWith('schedule')).map((r) => r.record.event_id),
      ]),
    );
    const triggers = triggersByEvent(before.signals);
    for (const { record } of records.filter((r) => r.name.startsWith('schedule')))
      expect(triggers[record.event_id]).toBeNull();
    expect(Object.fromEntries(vehicleStates.map((r) => [r.record.event_id, triggers[r.record.event_id]]))).toEqual(
      expectedTriggers,
    );
    // The SQL and the TypeScript normalizer agree, to the text.
    for (const { name, record } of vehicleStates) {
      const row = before.signals.find((r) => r.event_id === record.event_id);
      expect(row?.triggers).toBe(JSON.stringify(normalizeTriggers(JSON.parse(fixture(name).toString()))));
    }
    // A signal with an error is a row of its own, with no value, and never the latest value.
    const nickname = before.signals.find((r) => r.signal_code === 'vehicleidentification-nickname');
    expect(nickname).toMatchObject({ value: null, body_json: null });
    expect(before.latest_signals.map((r) => r.signal_code)).not.toContain('vehicleidentification-nickname');
    expect(before.latest_signals.map((r) => r.signal_code)).not.toContain('location-isathome');
    expect(before.vehicle_errors.map((r) => r.state).sort()).toEqual(['ERROR', 'RESOLVED']);
    expect(new Set(before.deliveries_deduplicated.map((r) => r.mode))).toEqual(
      new Set(['live', 'test', 'simulated', 'unknown']),
    );

    // Compaction curates them all, and every view answers the same.
    const first = await compactLocalLake(lakeDir, { now: new Date('2026-11-27T06:00:00.000Z') });
    expect(first.events).toBe(records.length);
    const after = await everyView(lakeDir);
    expect(after.recent_deliveries).toHaveLength(0);
    expect(triggersByEvent(after.signals)).toEqual(triggers);
    for (const view of VIEWS.filter((v) => v.name !== 'recent_deliveries')) {
      const strip = (rows: Rows) =>
        rows
          .map(({ silent_for_seconds, age_seconds, ...rest }) =>
            JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)))),
          )
          .sort();
      expect({ view: view.name, rows: strip(after[view.name]) }).toEqual({
        view: view.name,
        rows: strip(before[view.name]),
      });
    }

    // Curated signal files written before the column existed: rewritten here without it.
    const signalFiles = (await listLakeKeys(lakeDir, 'curated/signals')).filter((k) => k.endsWith('.parquet'));
    expect(signalFiles.length).toBeGreaterThan(0);
    const instance = await DuckDBInstance.create(':memory:');
    const duck = await instance.connect();
    try {
      for (const key of signalFiles) {
        const file = path.join(lakeDir, ...key.split('/'));
        await duck.run(
          `COPY (SELECT * EXCLUDE (triggers) FROM read_parquet('${file}')) TO '${file}.old' (FORMAT parquet)`,
        );
        await duck.run(`COPY (SELECT * FROM read_parquet('${file}.old')) TO '${file}' (FORMAT parquet)`);
        const columns = (
          await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)
        ).getRowObjectsJson();
        expect(columns.map((c) => c.column_name)).not.toContain('triggers');
      }
    } finally {
      // An instance left open keeps DuckDB's reaper alive, and with it the test worker.
      duck.closeSync();
      instance.closeSync();
    }
    const onlyOld = await everyView(lakeDir);
    expect(onlyOld.signals).toHaveLength(after.signals.length);
    expect(onlyOld.signals.every((r) => r.triggers === null)).toBe(true);

    // A later run writes files with the column beside the old ones: both read, each with what it has.
    const later = recordOf('vehicle-state-first-delivery', at(5, 21));
    const retried = { ...later, event_id: 'evt-later' };
    await store(lakeDir, 'later', [retried]);
    const second = await compactLocalLake(lakeDir, { now: new Date('2026-11-27T06:00:00.000Z') });
    expect(second.events).toBe(1);
    const mixed = await everyView(lakeDir);
    const mixedTriggers = triggersByEvent(mixed.signals);
    expect(mixedTriggers['evt-later']).toEqual([{ type: 'FIRST_DELIVERY', code: null }]);
    expect(mixed.signals.filter((r) => r.event_id !== 'evt-later').every((r) => r.triggers === null)).toBe(true);
  });

  test('a signal with an error beside its body, or a null body, is no reading in the views, as in the state', async () => {
    const payload = JSON.parse(fixture('vehicle-state').toString());
    const signal = (code: string, extra: Record<string, unknown>) => ({ code, name: code, group: 'G', ...extra });
    payload.data.signals = [
      signal('g-null-body', { body: null }),
      signal('g-status-error', { body: { value: 1 }, status: { value: 'ERROR', error: { type: 'COMPATIBILITY' } } }),
      signal('g-error', { body: { value: 2 }, error: { type: 'COMPATIBILITY', code: 'VEHICLE_NOT_CAPABLE' } }),
      signal('g-error-null', { body: { value: 3, unit: 'km' }, error: null, status: { value: 'SUCCESS' } }),
    ];
    const body = JSON.stringify(payload);
    const record = toLakeRecord(deliveryMessage(body, at(10, 22)), new Date(at(10, 22)));
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'payload-readings-'));
    await store(lakeDir, 'readings', [record]);
    const check = (views: Record<string, Rows>) => {
      const byCode = Object.fromEntries(views.signals.map((r) => [r.signal_code, r]));
      for (const code of ['g-null-body', 'g-status-error', 'g-error'])
        expect(byCode[code]).toMatchObject({ value: null, unit: null, body_json: null });
      expect(byCode['g-error-null']).toMatchObject({ value: '3', unit: 'km' });
      expect(views.latest_signals.map((r) => r.signal_code)).toEqual(['g-error-null']);
    };
    check(await everyView(lakeDir));
    expect(Object.keys(stateOf(record)?.signals ?? {})).toEqual(['g-error-null']);
    await compactLocalLake(lakeDir, { now: new Date('2026-11-27T06:00:00.000Z') });
    check(await everyView(lakeDir));
  });
});
