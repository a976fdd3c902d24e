/**
 * What the curated layer buys, printed: on a generated local lake of N deliveries from V vehicles (hourly
 * VEHICLE_STATE deliveries, 1% retried), `latest_signals` and `deliveries_per_hour` run by DuckDB on the
 * raw NDJSON and then, after `npm run compact`, on the curated Parquet layer: bytes the process read
 * (/proc/self/io rchar, every thread) and wall time, best of R runs each, and whether the answers agree.
 *
 *   npm run bench:query [-- --deliveries 1000000 --vehicles 1000 --runs 2]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { LakeRecord } from '../lambda/contract';
import { encodeNdjsonGzip, objectKey, partitionPrefix, toLakeRecord } from '../lambda/core/lake';
import { compactLocalLake } from '../local/compact';
import { putLakeObject } from '../local/file-lake';
import { openLocalLake } from '../local/query';
import { vehicleState } from '../test/support/fixtures';

const body = (eventId: string, vehicleId: string, value: number, oemUpdatedAt: number) =>
  vehicleState(eventId, { vehicleId, value, oemUpdatedAt });

const FIXTURE_USER = '93b3ea96-ca37-43a9-9073-f4334719aaaa';

/** With `owners`, vehicle `v`'s VIN and its user's id (each vehicle its own user), as bench:erase looks for them. */
export const fleetVin = (v: number) => `5YJ3E1EA7K${String(v).padStart(7, '0')}`;
export const fleetUser = (v: number) => `93b3ea96-ca37-43a9-9073-${String(v).padStart(12, '0')}`;

/** The record the ingest function writes for this body (the shape is checked against toLakeRecord below). */
function record(
  text: string,
  eventId: string,
  vehicle: string,
  receivedAt: string,
  n: number,
  user = FIXTURE_USER,
): LakeRecord {
  return {
    event_id: eventId,
    event_type: 'VEHICLE_STATE',
    mode: 'live',
    payload_version: '4.0',
    webhook_id: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
    webhook_name: 'Battery Monitoring',
    delivery_id: '48b25f8f-9fea-42e1-9085-81043682cbb8',
    vehicle_ids: [vehicle],
    user_id: user,
    delivered_at: '2024-11-18T14:32:08.000Z',
    received_at: receivedAt,
    ingested_at: receivedAt,
    request_id: `req-${n}`,
    body: text,
    body_base64: null,
    body_json: null,
  };
}

/**
 * A local lake of `deliveries` hourly VEHICLE_STATE deliveries from `vehicles` vehicles, one object an hour
 * from 2026-10-01, 1% stored twice (Smartcar retried). Event ids are `evt-<hour>-<vehicle>`, vehicles
 * `veh-00000`…; the benchmarks of the lake (query, trace, erase) share it. With `owners`, each vehicle's
 * body also carries its VIN ({@link fleetVin}) and its own user ({@link fleetUser}).
 */
export async function generateFleetLake(
  deliveries: number,
  vehicles: number,
  options: { owners?: boolean } = {},
): Promise<{ lakeDir: string; stored: number; hours: number; start: number }> {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'bench-lake-'));
  const start = Date.parse('2026-10-01T00:00:00.000Z');
  let n = 0;
  let stored = 0;
  let hour = 0;
  for (; n < deliveries; hour++) {
    const records: LakeRecord[] = [];
    const hourStart = start + hour * 3_600_000;
    for (let v = 0; v < vehicles && n < deliveries; v++, n++) {
      const vehicle = `veh-${String(v).padStart(5, '0')}`;
      const eventId = `evt-${hour}-${v}`;
      const at = new Date(hourStart + Math.floor((v / vehicles) * 3_000_000)).toISOString();
      let text = body(eventId, vehicle, (v + hour) % 100, hourStart - 60_000 + v);
      if (options.owners)
        text = text
          .replace('"make":"TESLA"', `"vin":"${fleetVin(v)}","make":"TESLA"`)
          .replace(FIXTURE_USER, fleetUser(v));
      const r = record(text, eventId, vehicle, at, n, options.owners ? fleetUser(v) : FIXTURE_USER);
      if (n === 0) {
        const real = toLakeRecord(
          { v: 1, bodyBase64: Buffer.from(text).toString('base64'), receivedAt: at, requestId: 'req-0' },
          new Date(at),
        );
        if (JSON.stringify(real) !== JSON.stringify(r)) throw new Error('generated records drifted from toLakeRecord');
      }
      records.push(r);
      if (n % 100 === 0) records.push({ ...r, received_at: new Date(Date.parse(at) + 30_000).toISOString() });
    }
    stored += records.length;
    const dt = new Date(hourStart).toISOString();
    const prefix = partitionPrefix('raw', {
      eventType: 'VEHICLE_STATE',
      mode: 'live',
      dt: dt.slice(0, 10),
      hour: dt.slice(11, 13),
    });
    await putLakeObject(lakeDir, objectKey(prefix, records, [`hour-${hour}`]), encodeNdjsonGzip(records));
  }
  return { lakeDir, stored, hours: hour, start };
}

function bytesRead(): number {
  const m = /rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

interface Measure {
  seconds: number;
  bytes: number;
  answer: string;
}

async function measure(lakeDir: string, sql: string, runs: number): Promise<Measure> {
  let best: Measure | undefined;
  for (let r = 0; r < runs; r++) {
    const lake = await openLocalLake(lakeDir);
    try {
      const b0 = bytesRead();
      const t0 = process.hrtime.bigint();
      const rows = await lake.query(sql);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = { seconds, bytes: bytesRead() - b0, answer: JSON.stringify(rows) };
      if (!best || m.seconds < best.seconds) best = m;
    } finally {
      lake.close();
    }
  }
  return best as Measure;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      deliveries: { type: 'string', default: '1000000' },
      vehicles: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
    },
  });
  const deliveries = Number(values.deliveries);
  const vehicles = Number(values.vehicles);
  const runs = Number(values.runs);
  console.log(`bench:query on ${availableParallelism()} cores, node ${process.version}, DuckDB (in process)`);

  const t0 = Date.now();
  const { lakeDir, stored } = await generateFleetLake(deliveries, vehicles);
  console.log(
    `  generated ${deliveries} deliveries (${stored} records with retries) from ${vehicles} vehicles in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${lakeDir}`,
  );

  const queries = {
    latest_signals: 'SELECT * FROM latest_signals ORDER BY vehicle_id, signal_code, mode',
    deliveries_per_hour: 'SELECT * FROM deliveries_per_hour ORDER BY dt, hour, event_type, mode',
  };
  const raw: Record<string, Measure> = {};
  for (const [name, sql] of Object.entries(queries)) raw[name] = await measure(lakeDir, sql, runs);

  const c0 = Date.now();
  const compacted = await compactLocalLake(lakeDir, { now: new Date('2100-01-01T00:00:00.000Z') });
  console.log(
    `  npm run compact: ${compacted.objects} objects → ${compacted.events} events in ${((Date.now() - c0) / 1000).toFixed(0)} s`,
  );
  let ok = true;
  for (const [name, sql] of Object.entries(queries)) {
    const curated = await measure(lakeDir, sql, runs);
    const r = raw[name];
    const fewer = r.bytes / curated.bytes;
    const faster = r.seconds / curated.seconds;
    const same = r.answer === curated.answer;
    ok &&= same && fewer >= 10 && faster >= 5;
    console.log(
      `  ${name.padEnd(20)} raw ${r.seconds.toFixed(2)} s, ${mib(r.bytes)} read · curated ${curated.seconds.toFixed(2)} s, ${mib(curated.bytes)} read · ` +
        `${fewer.toFixed(1)}× fewer bytes (goal ≥ 10×), ${faster.toFixed(1)}× faster (goal ≥ 5×), same answer: ${same ? 'yes' : 'NO'}`,
    );
  }
  if (!values.keep) rmSync(lakeDir, { recursive: true, force: true });
  console.log(ok ? '  goals met' : '  GOALS NOT MET');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
