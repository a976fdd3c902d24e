/**
 * Rebuilds the current-state table from the lake (after enabling it, or after state-update failures):
 * every stored VEHICLE_STATE record is merged, order-safely, into the state of its vehicle, then written
 * with the same versioned, conditional writes as the state function (so a run concurrent with it is safe).
 * On DynamoDB it then deletes the items of the pre-0.4 shape (one per signal, `<mode>#signal#<code>`, and
 * `<mode>#vehicle`), which nothing reads any more: run it once after upgrading from 0.3.
 *
 *   smartcar-webhooks rebuild-state [--lake-dir local-lake]     (the local lake's state/vehicles.json)
 *   smartcar-webhooks rebuild-state --stack NAME [--instance PREFIX]
 *   smartcar-webhooks rebuild-state --bucket <lake bucket> --table <vehicle state table> [--prefix raw]
 * (in this repository: npm run rebuild-state -- …, the same flags)
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import { deleteLegacyStateItems, dynamoStateStore } from '../../lambda/adapters/dynamodb-state-store';
import { s3LedgerStore } from '../../lambda/adapters/erasure-stores';
import { DEFAULT_RAW_PREFIX } from '../../lambda/contract';
import { type Attributable, erasedFilter } from '../../lambda/core/erasure';
import { decodeNdjsonGzip } from '../../lambda/core/lake';
import { mergeState, type StateStore, stateOf, type VehicleState } from '../../lambda/core/vehicle-state';
import { localLedgerStore } from '../../local/erase';
import { fileStateStore } from '../../local/state-file';
import { directoryLake, type LakeStore, s3Lake } from './lake-store';

/** `erased`: the erasure ledger's filter; records it names are skipped (counted in `erased`). */
export async function rebuildState(
  lake: LakeStore,
  store: StateStore,
  rawPrefix = DEFAULT_RAW_PREFIX,
  erased?: (record: Attributable) => boolean,
) {
  const states = new Map<string, VehicleState>();
  let records = 0;
  let skipped = 0;
  const keys = (await lake.list(`${rawPrefix.replace(/\/+$/, '')}/event_type=VEHICLE_STATE/`)).filter((k) =>
    k.endsWith('.ndjson.gz'),
  );
  for (const key of keys) {
    for (const record of decodeNdjsonGzip(await lake.get(key))) {
      records++;
      if (erased?.(record)) {
        skipped++;
        continue;
      }
      const update = stateOf(record);
      if (!update) continue;
      const id = `${update.vehicleId}|${update.mode}`;
      states.set(id, mergeState(states.get(id), update));
    }
  }
  await store.apply([...states.values()]);
  return { objects: keys.length, records, vehicles: states.size, erased: skipped };
}

/** The command: `npm run rebuild-state -- …` or `smartcar-webhooks rebuild-state …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS['rebuild-state'], argv, async (args) => {
    if (str(args, 'lake-dir') && (str(args, 'stack') || str(args, 'bucket') || str(args, 'table')))
      throw new UsageError('pass either --lake-dir or --stack/--bucket');
    if (!str(args, 'stack') && Boolean(str(args, 'bucket')) !== Boolean(str(args, 'table')))
      throw new UsageError('--bucket and --table go together (the lake bucket and the vehicle state table)');
    const resources = await Resources.of(args);
    const lakeDir = lakeDirOf(args);
    const deployed = resources.deployed || str(args, 'bucket') !== undefined;
    const bucket = deployed ? resources.required('bucket', 'LakeBucketName', 'the lake bucket') : undefined;
    const lake = bucket ? s3Lake(bucket) : directoryLake(lakeDir);
    const ledger = bucket ? s3LedgerStore(new S3Client({}), bucket) : localLedgerStore(lakeDir);
    const table = deployed
      ? resources.required('table', 'StateTableName', 'the vehicle state table (is the state table turned on?)')
      : undefined;
    const ddb = new DynamoDBClient({});
    const store = table ? dynamoStateStore(ddb, table) : fileStateStore(lakeDir);
    const erased = erasedFilter(await ledger.read());
    const report = await rebuildState(lake, store, resources.optional('prefix', 'RawPrefix'), erased);
    console.log(
      `${lake.describe()}: ${report.records} records in ${report.objects} objects, state of ${report.vehicles} vehicles written` +
        (report.erased > 0 ? ` (${report.erased} records of erased subjects skipped)` : ''),
    );
    if (table) {
      const legacy = await deleteLegacyStateItems(ddb, table);
      if (legacy > 0) console.log(`${legacy} items of the pre-0.4 shape (one per signal) deleted from ${table}`);
    }
    return 0;
  });
}
