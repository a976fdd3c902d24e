/**
 * The curated layer's test lake (test/integration/curated*.test.ts): a raw zone of three hours with
 * duplicates inside an object, an hour and across hours, and what every view answers over it.
 */
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { VIEWS } from '../../lib/queries';
import { putLakeObject } from '../../local/file-lake';
import { openLocalLake } from '../../local/query';
import { fixture, vehicleState } from './fixtures';
import { deliveryMessage } from './lake';

/** A VEHICLE_STATE delivery with its own eventId, state of charge and OEM time. */
export function stateOfCharge(eventId: string, value: number, oemUpdatedAt: number, vehicle = 'veh-1'): string {
  return vehicleState(eventId, { vehicleId: vehicle, value, oemUpdatedAt });
}

export async function store(lakeDir: string, objectName: string, bodies: [string | Buffer, string][]) {
  const records = bodies.map(([body, at]) => toLakeRecord(deliveryMessage(body, at), new Date(at)));
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, [objectName]), encodeNdjsonGzip(records));
}

export const at = (hour: number, minute: number) =>
  `2026-11-26T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:00.000Z`;

/** Hours 20, 21 and 22 of one day, with duplicates inside an object, an hour, and across hours. */
export async function fixtureLake(): Promise<string> {
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
export async function answers(lakeDir: string, { copies = true } = {}): Promise<Record<string, string[]>> {
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

export function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .map((f) => `${f}:${statSync(path.join(dir, f)).mtimeMs}`)
    .sort();
}

export async function count(lakeDir: string, sql: string): Promise<number> {
  const lake = await openLocalLake(lakeDir);
  try {
    return Number((await lake.query(sql))[0].n);
  } finally {
    lake.close();
  }
}
