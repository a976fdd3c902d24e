/**
 * The local counterpart of the current-state table: `<lake>/state/vehicles.json`, written by the local
 * receiver after each batch is in the lake, with the same order-safe merge as the DynamoDB table.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { mergeState, type StateStore, type VehicleState } from '../lambda/core/vehicle-state';

export const STATE_FILE = path.join('state', 'vehicles.json');

export async function readStateFile(lakeDir: string): Promise<Record<string, VehicleState>> {
  const text = await readFile(path.join(lakeDir, STATE_FILE), 'utf8').catch(() => '{}');
  return JSON.parse(text) as Record<string, VehicleState>;
}

export function fileStateStore(lakeDir: string): StateStore {
  let queue: Promise<void> = Promise.resolve();
  return {
    apply(updates) {
      // One writer at a time: read, merge, replace atomically.
      queue = queue.then(async () => {
        const state = await readStateFile(lakeDir);
        for (const u of updates) {
          const key = `${u.vehicleId}|${u.mode}`;
          state[key] = mergeState(state[key], u);
        }
        const file = path.join(lakeDir, STATE_FILE);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(`${file}.tmp`, JSON.stringify(state), { flush: true });
        await rename(`${file}.tmp`, file);
      });
      return queue;
    },
  };
}
