/**
 * The fleet views over a lake written relative to now: activity and silent vehicles (a vehicle that
 * stops reporting becomes silent past three of its own typical gaps, and recovers when it reports),
 * the vehicle error register (opened, resolved, time to resolve), and `npm run fleet`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { putLakeObject } from '../../local/file-lake';
import { main as fleetMain, fleetTable } from '../../local/fleet';
import { type LocalLake, openLocalLake } from '../../local/query';
import { runInProcess } from '../support/cli';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const HOUR = 3_600_000;
const now = Date.now();
let lakeDir: string;
let lake: LocalLake;
let seq = 0;

function state(vehicleId: string, at: number, soc: number): string {
  return vehicleState(`evt-${++seq}`, { vehicleId, value: soc, oemUpdatedAt: at });
}

function error(
  vehicleId: string,
  type: string,
  code: string,
  errorState: 'ERROR' | 'RESOLVED',
  resolution: string | null,
) {
  return JSON.stringify({
    eventId: `err-${++seq}`,
    eventType: 'VEHICLE_ERROR',
    vehicleId,
    data: {
      vehicle: { id: vehicleId, make: 'FORD', model: 'F-150', year: 2023 },
      errors: [
        { type, code, state: errorState, description: `${type} ${errorState}`, resolution: { type: resolution } },
      ],
    },
    meta: { version: '4.0', mode: 'LIVE', webhookId: 'wh' },
  });
}

async function store(bodies: [string, number][]) {
  for (const [body, at] of bodies) {
    const iso = new Date(at).toISOString();
    const record = toLakeRecord(deliveryMessage(body, iso), new Date(at));
    const prefix = partitionPrefix('raw', partitionOf(record));
    await putLakeObject(lakeDir, objectKey(prefix, [record], [`m${++seq}`]), encodeNdjsonGzip([record]));
  }
}

const hourly = (vehicle: string, fromHoursAgo: number, toHoursAgo: number): [string, number][] => {
  const out: [string, number][] = [];
  for (let h = fromHoursAgo; h >= toHoursAgo; h--) out.push([state(vehicle, now - h * HOUR, 50 + h), now - h * HOUR]);
  return out;
};

beforeAll(async () => {
  lakeDir = mkdtempSync(path.join(tmpdir(), 'fleet-lake-'));
  await store([
    ...hourly('veh-reporting', 10, 0.5), // hourly, last half an hour ago
    ...hourly('veh-stopped', 15, 5), // hourly until five hours ago
    ...hourly('veh-recovered', 15, 5),
    [state('veh-recovered', now - 0.1 * HOUR, 42), now - 0.1 * HOUR], // reported again just now
    [state('veh-once', now - 48 * HOUR, 10), now - 48 * HOUR], // one delivery, two days ago
    [error('veh-reporting', 'COMPATIBILITY', 'SMARTCAR_NOT_CAPABLE', 'ERROR', null), now - 6 * HOUR],
    [error('veh-reporting', 'COMPATIBILITY', 'SMARTCAR_NOT_CAPABLE', 'RESOLVED', null), now - 4 * HOUR],
    // Error deliveries are deliveries too: these come before veh-stopped went quiet.
    [error('veh-stopped', 'AUTHENTICATION', 'ACCESS_REVOKED', 'ERROR', 'REAUTHENTICATE'), now - 7 * HOUR],
    [error('veh-stopped', 'AUTHENTICATION', 'ACCESS_REVOKED', 'ERROR', 'REAUTHENTICATE'), now - 6 * HOUR], // still failing
  ]);
  lake = await openLocalLake(lakeDir);
});
afterAll(() => lake?.close());

it('vehicle_activity learns each vehicle’s typical gap from its own deliveries', async () => {
  const rows = await lake.query(
    "SELECT vehicle_id, deliveries, round(typical_gap_seconds) AS gap FROM vehicle_activity WHERE mode = 'live' ORDER BY vehicle_id",
  );
  expect(rows).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ vehicle_id: 'veh-reporting', gap: 3600 }),
      expect.objectContaining({ vehicle_id: 'veh-stopped', gap: 3600 }),
      expect.objectContaining({ vehicle_id: 'veh-once', deliveries: '1', gap: null }),
    ]),
  );
});

it('silent_vehicles: stopped past three typical gaps, or a day without a known gap; recovered ones are not', async () => {
  const rows = await lake.query('SELECT vehicle_id FROM silent_vehicles ORDER BY vehicle_id');
  expect(rows.map((r) => r.vehicle_id)).toEqual(['veh-once', 'veh-stopped']);
});

it('open_vehicle_errors: resolved errors are closed; open ones carry their age and what the user must do', async () => {
  const rows = await lake.query(
    'SELECT vehicle_id, error_type, error_code, resolution, round(age_seconds / 3600) AS age_hours FROM open_vehicle_errors',
  );
  expect(rows).toEqual([
    {
      vehicle_id: 'veh-stopped',
      error_type: 'AUTHENTICATION',
      error_code: 'ACCESS_REVOKED',
      resolution: 'REAUTHENTICATE',
      age_hours: 7,
    },
  ]);
  // The list of vehicles whose user must reconnect is one query away:
  expect(await lake.query("SELECT vehicle_id FROM open_vehicle_errors WHERE resolution = 'REAUTHENTICATE'")).toEqual([
    { vehicle_id: 'veh-stopped' },
  ]);
});

it('error_resolution_times: time from ERROR to RESOLVED per code', async () => {
  expect(
    await lake.query(
      'SELECT error_code, resolved, round(median_seconds) AS median_seconds FROM error_resolution_times',
    ),
  ).toEqual([{ error_code: 'SMARTCAR_NOT_CAPABLE', resolved: '1', median_seconds: 7200 }]);
});

it('npm run fleet prints the fleet table, and --json one object per vehicle', async () => {
  const rows = await fleetTable(lake);
  const byId = Object.fromEntries(rows.map((r) => [r.vehicle_id, r]));
  expect(byId['veh-stopped']).toMatchObject({
    silent: true,
    open_errors: ['AUTHENTICATION/ACCESS_REVOKED (REAUTHENTICATE)'],
  });
  expect(byId['veh-recovered']).toMatchObject({ silent: false, signals: { StateOfCharge: '42 percent' } });
  const text = await runInProcess('fleet', fleetMain, [], { LOCAL_LAKE_DIR: lakeDir });
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/veh-stopped\s+live\s+.*SILENT\s+AUTHENTICATION\/ACCESS_REVOKED/);
  expect(text.stdout).toContain('(4 vehicles, 2 silent, 1 with open errors)');
  const json = await runInProcess('fleet', fleetMain, ['--json'], { LOCAL_LAKE_DIR: lakeDir });
  expect(
    json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).vehicle_id)
      .sort(),
  ).toEqual(['veh-once', 'veh-recovered', 'veh-reporting', 'veh-stopped']);
});

it('the scheduled fleet check counts silent vehicles in one statement that needs no catalog views', async () => {
  const { withViews, duckdbDialect, FLEET_CHECK_SELECT, SILENT_REPORT_SELECT } = await import('../../lib/queries');
  expect(await lake.query(withViews(duckdbDialect, FLEET_CHECK_SELECT))).toEqual([{ silent: '2', fleet: '4' }]);
  const report = await lake.query(withViews(duckdbDialect, SILENT_REPORT_SELECT));
  expect(report.map((r) => r.vehicle_id)).toEqual(['veh-once', 'veh-stopped']);
});

it('a legacy schedule delivery counts for each vehicle it names, raw and curated', async () => {
  const legacyDir = mkdtempSync(path.join(tmpdir(), 'fleet-legacy-'));
  const vehicles = ['36ab27d0-fd9d-4455-823a-ce30af709ffc', '5c2b1f3e-7d4a-4e8b-9c1d-2f3a4b5c6d7e'];
  const body = JSON.stringify({
    version: '2.0',
    webhookId: '5a8e5e38-1e12-4011-a36d-56f120053f9e',
    eventName: 'schedule',
    mode: 'live',
    payload: {
      vehicles: vehicles.map((vehicleId) => ({
        vehicleId,
        requestId: `req-${vehicleId.slice(0, 4)}`,
        data: [{ path: '/odometer', code: 200, body: { distance: 37829 }, headers: {} }],
      })),
    },
  });
  const at = Date.parse('2026-11-26T10:00:00Z');
  const record = toLakeRecord(deliveryMessage(body, new Date(at).toISOString()), new Date(at));
  const prefix = partitionPrefix('raw', partitionOf(record));
  await putLakeObject(legacyDir, objectKey(prefix, [record], ['legacy-1']), encodeNdjsonGzip([record]));
  const attributed = async () => {
    const local = await openLocalLake(legacyDir);
    try {
      return (await fleetTable(local)).map((r) => [r.vehicle_id, Number(r.deliveries)]).sort();
    } finally {
      local.close();
    }
  };
  expect(await attributed()).toEqual(vehicles.map((v) => [v, 1]).sort());
  // Once compacted, the curated row (which has no single vehicle_id) is attributed the same way.
  const { compactLocalLake } = await import('../../local/compact');
  expect((await compactLocalLake(legacyDir, { now: new Date('2026-11-27T00:00:00Z') })).events).toBe(1);
  expect(await attributed()).toEqual(vehicles.map((v) => [v, 1]).sort());
});
