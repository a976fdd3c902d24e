/**
 * The lake's views (lib/queries.ts, rendered for DuckDB) run on a fixture lake with duplicates, legacy
 * and current payloads, errors and test-mode events, written in the deployed layout; plus the
 * `npm run query` command.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { putLakeObject } from '../../local/file-lake';
import { type LocalLake, openLocalLake, main as queryMain } from '../../local/query';
import { runInProcess, spawnCommand } from '../support/cli';
import { fixture, vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const VEHICLE = '9af13248-3b73-4c9d-9a4b-d937ce6bc8e2';
const LEGACY_VEHICLE = '36ab27d0-fd9d-4455-823a-ce30af709ffc';
let lakeDir: string;
let lake: LocalLake;

/** A VEHICLE_STATE delivery with its own eventId, state of charge and OEM time. */
function stateOfCharge(eventId: string, value: number, oemUpdatedAt: number): string {
  return vehicleState(eventId, { value, oemUpdatedAt });
}

async function store(objectName: string, bodies: [string | Buffer, string][]) {
  const records = bodies.map(([body, at]) => toLakeRecord(deliveryMessage(body, at), new Date(at)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [objectName]), encodeNdjsonGzip(records));
}

beforeAll(async () => {
  lakeDir = mkdtempSync(path.join(tmpdir(), 'query-lake-'));
  const h21 = (m: number) => `2026-11-26T21:${String(m).padStart(2, '0')}:00.000Z`;
  await store('a', [[stateOfCharge('evt-a', 78, 1764190000000), h21(1)]]);
  await store('a-again', [[stateOfCharge('evt-a', 78, 1764190000000), h21(3)]]); // Smartcar retried it
  await store('b', [[stateOfCharge('evt-b', 80, 1764190600000), h21(10)]]); // newest reading
  await store('c', [[stateOfCharge('evt-c', 75, 1764189000000), h21(20)]]); // older reading, arrived last
  await store('variant', [[fixture('vehicle-state-variant'), h21(5)]]); // test mode, location, retrievedAt
  await store('error', [[fixture('vehicle-error'), h21(6)]]);
  await store('schedule', [[fixture('schedule-legacy'), h21(7)]]);
  await store('schedule-again', [[fixture('schedule-legacy'), h21(8)]]); // legacy duplicate: same body hash
  await store('event-based', [[fixture('event-based-legacy'), '2026-11-26T22:00:00.000Z']]);
  lake = await openLocalLake(lakeDir);
});

afterAll(() => lake?.close());

it('deliveries_deduplicated keeps one row per eventId (or body hash), the first received', async () => {
  const rows = await lake.query(
    'SELECT event_id, event_type, mode, received_at FROM deliveries_deduplicated ORDER BY received_at',
  );
  expect(rows.map((r) => r.event_id)).toEqual([
    'evt-a',
    '7f1c2d3e-4b5a-4697-8a1b-2c3d4e5f6a7b',
    'c0ffee00-1369-45da-a61c-9e67d092d6db',
    expect.stringMatching(/^sha256:/),
    'evt-b',
    'evt-c',
    expect.stringMatching(/^sha256:/),
  ]);
  expect(rows[0]).toMatchObject({ event_type: 'VEHICLE_STATE', mode: 'live', received_at: '2026-11-26T21:01:00.000Z' });
  expect(await lake.query('SELECT COUNT(*) AS n FROM deliveries')).toEqual([{ n: '9' }]);
});

it('signals flattens current signals and legacy endpoints', async () => {
  const rows = await lake.query(
    'SELECT event_id, vehicle_id, signal_code, value, unit, body_json, status_code, mode FROM signals ORDER BY event_id, signal_code',
  );
  expect(rows).toEqual([
    {
      event_id: '7f1c2d3e-4b5a-4697-8a1b-2c3d4e5f6a7b',
      vehicle_id: VEHICLE,
      signal_code: 'location-preciselocation',
      value: null,
      unit: null,
      body_json: '{"latitude":37.4292,"longitude":-122.1381}',
      status_code: null,
      mode: 'test',
    },
    {
      event_id: 'evt-a',
      vehicle_id: VEHICLE,
      signal_code: 'tractionbattery-stateofcharge',
      value: '78',
      unit: 'percent',
      body_json: '{"unit":"percent","value":78}',
      status_code: null,
      mode: 'live',
    },
    {
      event_id: 'evt-b',
      vehicle_id: VEHICLE,
      signal_code: 'tractionbattery-stateofcharge',
      value: '80',
      unit: 'percent',
      body_json: '{"unit":"percent","value":80}',
      status_code: null,
      mode: 'live',
    },
    {
      event_id: 'evt-c',
      vehicle_id: VEHICLE,
      signal_code: 'tractionbattery-stateofcharge',
      value: '75',
      unit: 'percent',
      body_json: '{"unit":"percent","value":75}',
      status_code: null,
      mode: 'live',
    },
    {
      event_id: expect.stringMatching(/^sha256:/),
      vehicle_id: LEGACY_VEHICLE,
      signal_code: '/location',
      value: null,
      unit: null,
      body_json: '{"type":"VEHICLE_STATE","code":"ASLEEP","statusCode":409}',
      status_code: 409,
      mode: 'live',
    },
    {
      event_id: expect.stringMatching(/^sha256:/),
      vehicle_id: LEGACY_VEHICLE,
      signal_code: '/odometer',
      value: null,
      unit: null,
      body_json: '{"distance":37829}',
      status_code: 200,
      mode: 'live',
    },
  ]);
  const [variant] = await lake.query(`SELECT fetched_at, oem_updated_at FROM signals WHERE mode = 'test'`);
  expect(variant).toEqual({ fetched_at: '2024-11-18 14:32:10+00', oem_updated_at: null }); // retrievedAt counts as fetchedAt
});

it('latest_signals picks the newest reading by OEM time, not by arrival, per vehicle, signal and mode', async () => {
  const rows = await lake.query(
    'SELECT vehicle_id, signal_code, value, body_json, mode, event_id FROM latest_signals ORDER BY vehicle_id, signal_code',
  );
  expect(rows).toEqual([
    {
      vehicle_id: LEGACY_VEHICLE,
      signal_code: '/odometer',
      value: null,
      body_json: '{"distance":37829}',
      mode: 'live',
      event_id: expect.stringMatching(/^sha256:/),
    },
    {
      vehicle_id: VEHICLE,
      signal_code: 'location-preciselocation',
      value: null,
      body_json: '{"latitude":37.4292,"longitude":-122.1381}',
      mode: 'test',
      event_id: '7f1c2d3e-4b5a-4697-8a1b-2c3d4e5f6a7b',
    },
    {
      vehicle_id: VEHICLE,
      signal_code: 'tractionbattery-stateofcharge',
      value: '80',
      body_json: '{"unit":"percent","value":80}',
      mode: 'live',
      event_id: 'evt-b',
    },
  ]);
});

it('vehicle_errors lists each error of VEHICLE_ERROR payloads', async () => {
  expect(await lake.query('SELECT vehicle_id, error_type, error_code, state, resolution FROM vehicle_errors')).toEqual([
    {
      vehicle_id: VEHICLE,
      error_type: 'COMPATIBILITY',
      error_code: 'SMARTCAR_NOT_CAPABLE',
      state: 'ERROR',
      resolution: null,
    },
  ]);
});

it('deliveries_per_hour counts deliveries and distinct events per hour, type and mode', async () => {
  expect(await lake.query('SELECT * FROM deliveries_per_hour ORDER BY dt, hour, event_type, mode')).toEqual([
    { dt: '2026-11-26', hour: '21', event_type: 'VEHICLE_ERROR', mode: 'live', deliveries: '1', distinct_events: '1' },
    { dt: '2026-11-26', hour: '21', event_type: 'VEHICLE_STATE', mode: 'live', deliveries: '4', distinct_events: '3' },
    { dt: '2026-11-26', hour: '21', event_type: 'VEHICLE_STATE', mode: 'test', deliveries: '1', distinct_events: '1' },
    { dt: '2026-11-26', hour: '21', event_type: 'schedule', mode: 'live', deliveries: '2', distinct_events: '1' },
    { dt: '2026-11-26', hour: '22', event_type: 'eventBased', mode: 'test', deliveries: '1', distinct_events: '1' },
  ]);
});

it('an empty lake has the same table and views, with no rows', async () => {
  const empty = await openLocalLake(mkdtempSync(path.join(tmpdir(), 'query-empty-')));
  try {
    expect(await empty.query('SELECT * FROM latest_signals')).toEqual([]);
  } finally {
    empty.close();
  }
});

describe('npm run query', () => {
  const run = (args: string[]) => runInProcess('query', queryMain, args, { LOCAL_LAKE_DIR: lakeDir });

  it('runs a view by name and SQL, and lists the views', async () => {
    const byName = await run(['latest_signals']);
    expect(byName.code).toBe(0);
    expect(byName.stdout).toContain('(3 rows)');
    const json = await run([
      '--json',
      "SELECT value FROM latest_signals WHERE signal_code = 'tractionbattery-stateofcharge'",
    ]);
    expect(json.stdout.trim()).toBe('{"value":"80"}');
    expect((await run(['--list'])).stdout).toContain('deliveries_per_hour');
  });

  it('answers bad SQL and missing arguments with a message, not a stack trace', async () => {
    const bad = await run(['SELECT nope FROM nowhere']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^query: .*nowhere/);
    expect(bad.stderr).not.toMatch(/^\s+at /m);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage: npm run query');
  });

  it('(spawned) prints a view as a table', async () => {
    const result = await spawnCommand('query', ['latest_signals'], { LOCAL_LAKE_DIR: lakeDir }).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(3 rows)');
  });
});
