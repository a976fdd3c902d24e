/**
 * Rebuilds the current-state table from the lake (after enabling it, or after state-update failures):
 * every stored VEHICLE_STATE record is merged, order-safely, into the state of its vehicle, then written
 * with the same conditional writes as the ingest function (so a run concurrent with ingest is safe).
 *
 *   npm run rebuild-state -- --lake-dir local-lake                  (the local lake's state/vehicles.json)
 *   npm run rebuild-state -- --bucket <LakeBucketName> --table <VehicleStateTable> [--prefix raw]
 */
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoStateStore } from '../../lambda/adapters/dynamodb-state-store';
import { DEFAULT_RAW_PREFIX } from '../../lambda/contract';
import { decodeNdjsonGzip } from '../../lambda/core/lake';
import { mergeState, type StateStore, stateOf, type VehicleState } from '../../lambda/core/vehicle-state';
import { runCli } from '../../local/cli';
import { fileStateStore } from '../../local/state-file';
import { directoryLake, type LakeStore, s3Lake } from './lake-store';

export async function rebuildState(lake: LakeStore, store: StateStore, rawPrefix = DEFAULT_RAW_PREFIX) {
  const states = new Map<string, VehicleState>();
  let records = 0;
  const keys = (await lake.list(`${rawPrefix.replace(/\/+$/, '')}/event_type=VEHICLE_STATE/`)).filter((k) =>
    k.endsWith('.ndjson.gz'),
  );
  for (const key of keys) {
    for (const record of decodeNdjsonGzip(await lake.get(key))) {
      records++;
      const update = stateOf(record);
      if (!update) continue;
      const id = `${update.vehicleId}|${update.mode}`;
      states.set(id, mergeState(states.get(id), update));
    }
  }
  await store.apply([...states.values()]);
  return { objects: keys.length, records, vehicles: states.size };
}

export async function main(): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        'lake-dir': { type: 'string' },
        bucket: { type: 'string' },
        table: { type: 'string' },
        prefix: { type: 'string' },
      },
    }) as never);
    if (Boolean(values.bucket) === Boolean(values['lake-dir']))
      throw new Error('pass either --lake-dir or --bucket with --table');
    if (values.bucket && !values.table) throw new Error('--bucket needs --table (the vehicle state table)');
  } catch (err) {
    console.error(
      `rebuild-state: ${(err as Error).message}\nusage: npm run rebuild-state -- (--lake-dir DIR | --bucket NAME --table NAME) [--prefix raw]`,
    );
    return 2;
  }
  const lake = values.bucket ? s3Lake(values.bucket) : directoryLake(String(values['lake-dir']));
  const store = values.table
    ? dynamoStateStore(new DynamoDBClient({}), values.table)
    : fileStateStore(String(values['lake-dir']));
  const report = await rebuildState(lake, store, values.prefix);
  console.log(
    `${lake.describe()}: ${report.records} records in ${report.objects} objects, state of ${report.vehicles} vehicles written`,
  );
  return 0;
}

if (require.main === module) runCli('rebuild-state', main);
