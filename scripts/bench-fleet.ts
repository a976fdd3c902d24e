/**
 * The fleet's costs, printed: ingest throughput through the ingest handler against moto with the vehicle
 * state table off and on; the state table's read and write units per delivery of 19 signals, and their
 * price per million deliveries (us-east-1 on demand); and `npm run fleet` time on a generated local lake
 * of V vehicles × D days of hourly deliveries, from the raw NDJSON and after `npm run compact` from the
 * curated layer.
 *
 *   npm run bench:fleet [-- --vehicles 1000 --days 30 --batches 20 --state-vehicles 500 --state-rounds 4]
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { dynamoStateStore, emptyUsage, encodeStateItem } from '../lambda/adapters/dynamodb-state-store';
import { ingestBatch } from '../lambda/core/ingest';
import {
  decodeNdjsonGzip,
  encodeNdjsonGzip,
  objectKey,
  partitionOf,
  partitionPrefix,
  toLakeRecord,
} from '../lambda/core/lake';
import { statesOf, type VehicleState } from '../lambda/core/vehicle-state';
import { compactLocalLake } from '../local/compact';
import { putLakeObject } from '../local/file-lake';
import { fleetTable } from '../local/fleet';
import { openLocalLake } from '../local/query';
import { vehicleState } from '../test/support/fixtures';
import { createStateTable, startMoto, useMoto } from '../test/support/moto';
import { NINETEEN_SIGNALS, nineteenSignalState } from '../test/support/state-deliveries';

/** DynamoDB on demand, us-east-1 (https://aws.amazon.com/dynamodb/pricing/on-demand/): dollars per million units. */
const PRICE = { writeUnit: 0.625, readUnit: 0.125 };
/** The state table's goal: dollars per million deliveries of 19 signals, above the default configuration. */
const STATE_GOAL = 1.0;

const quiet = { info() {}, warn() {}, error() {} };

function body(vehicle: number, at: number, n: number): string {
  return vehicleState(`evt-${vehicle}-${n}`, {
    vehicleId: `veh-${String(vehicle).padStart(5, '0')}`,
    value: (vehicle + n) % 100,
    oemUpdatedAt: at,
  });
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      vehicles: { type: 'string', default: '1000' },
      days: { type: 'string', default: '30' },
      batches: { type: 'string', default: '20' },
      'state-vehicles': { type: 'string', default: '500' },
      'state-rounds': { type: 'string', default: '4' },
    },
  });
  const vehicles = Number(values.vehicles);
  const days = Number(values.days);
  const batches = Number(values.batches);
  console.log(`bench:fleet on ${availableParallelism()} cores, node ${process.version}`);

  // 1. Ingest throughput against moto, state table off and on (batches of 500, as deployed).
  const moto = await startMoto();
  useMoto(moto.endpoint);
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-lake' }));
  const ddb = new DynamoDBClient({});
  await createStateTable(ddb, 'bench-state');
  const sqs = new SQSClient({});
  const stateQueue = (await sqs.send(new CreateQueueCommand({ QueueName: 'bench-state-keys' }))).QueueUrl as string;
  const keys: string[] = [];
  const rate = async (withState: boolean) => {
    let records = 0;
    const started = process.hrtime.bigint();
    for (let b = 0; b < batches; b++) {
      const messages = Array.from({ length: 500 }, (_, i) => {
        const at = Date.parse('2026-11-26T00:00:00Z') + (b * 500 + i) * 1000;
        return {
          id: `${withState}-${b}-${i}`,
          body: JSON.stringify({
            v: 1,
            bodyBase64: Buffer.from(body(i % 200, at, b * 500 + i)).toString('base64'),
            receivedAt: new Date(at).toISOString(),
          }),
        };
      });
      const result = await ingestBatch(messages, {
        rawPrefix: 'raw',
        logger: quiet,
        putObject: async (key, bytes) => {
          await s3.send(new PutObjectCommand({ Bucket: 'bench-lake', Key: key, Body: bytes }));
        },
        // As the deployed ingest function does with the table on: hand each object's key to the state queue.
        stateNotify: withState
          ? async (key) => {
              keys.push(key);
              await sqs.send(new SendMessageCommand({ QueueUrl: stateQueue, MessageBody: JSON.stringify({ key }) }));
            }
          : undefined,
      });
      records += result.recordsWritten;
    }
    return records / (Number(process.hrtime.bigint() - started) / 1e9);
  };
  const off = await rate(false);
  const on = await rate(true);
  // The state function's side, on the objects just handed over: read back, merged, conditional writes.
  const store = dynamoStateStore(ddb, 'bench-state');
  let applied = 0;
  const s0 = process.hrtime.bigint();
  for (const key of keys) {
    const object = await s3.send(new GetObjectCommand({ Bucket: 'bench-lake', Key: key }));
    const records = decodeNdjsonGzip(
      await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    await store.apply(statesOf(records));
    applied += records.length;
  }
  const stateRate = applied / (Number(process.hrtime.bigint() - s0) / 1e9);
  const units = await stateUnits(ddb, Number(values['state-vehicles']), Number(values['state-rounds']));
  // moto's process is unreferenced (test/support/moto.ts): hold the event loop open until it has exited,
  // or this process ends, silently, while waiting for it.
  const hold = setInterval(() => {}, 1000);
  await moto.stop();
  clearInterval(hold);
  console.log(
    `  ingest against moto: ${off.toFixed(0)} records/s without the state table, ${on.toFixed(0)} records/s with it ` +
      `(${Math.max(0, 100 * (1 - on / off)).toFixed(0)}% slower; goal ≤ 25%: ${on >= 0.75 * off ? 'met' : 'NOT met'})`,
  );
  console.log(
    `  state function against moto, beside ingest: ${stateRate.toFixed(0)} records/s applied to the table ` +
      `(enough for a fleet of ${Math.round(stateRate * 3600).toLocaleString('en-US')} vehicles delivering hourly; moto serializes every conditional write)`,
  );
  console.log(units);

  // 2. npm run fleet on a generated lake: one object per vehicle and day, hourly deliveries.
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'bench-fleet-'));
  const start = Date.now() - days * 24 * 3600_000;
  const genStarted = Date.now();
  let n = 0;
  for (let v = 0; v < vehicles; v++) {
    for (let d = 0; d < days; d++) {
      const records = Array.from({ length: 24 }, (_, h) => {
        const at = start + (d * 24 + h) * 3600_000;
        const iso = new Date(at).toISOString();
        return toLakeRecord(
          { v: 1, bodyBase64: Buffer.from(body(v, at, n++)).toString('base64'), receivedAt: iso },
          new Date(at),
        );
      });
      const prefix = partitionPrefix('raw', partitionOf(records[0]));
      await putLakeObject(lakeDir, objectKey(prefix, records, [`${v}-${d}`]), encodeNdjsonGzip(records));
    }
  }
  console.log(
    `  generated ${n} deliveries (${vehicles} vehicles × ${days} days, hourly) in ${((Date.now() - genStarted) / 1000).toFixed(0)} s`,
  );
  const fleetSeconds = async () => {
    const t0 = Date.now();
    const lake = await openLocalLake(lakeDir);
    const rows = await fleetTable(lake);
    lake.close();
    return { rows, seconds: (Date.now() - t0) / 1000 };
  };
  const raw = await fleetSeconds();
  console.log(`  npm run fleet on the raw NDJSON: ${raw.rows.length} vehicles in ${raw.seconds.toFixed(1)} s`);
  const c0 = Date.now();
  const compacted = await compactLocalLake(lakeDir, { now: new Date() });
  console.log(
    `  npm run compact: ${compacted.events} events into the curated layer in ${((Date.now() - c0) / 1000).toFixed(0)} s`,
  );
  const curated = await fleetSeconds();
  const same = JSON.stringify(curated.rows) === JSON.stringify(raw.rows);
  console.log(
    `  npm run fleet on the curated layer: ${curated.rows.length} vehicles in ${curated.seconds.toFixed(1)} s ` +
      `(goal < 5 s: ${curated.seconds < 5 ? 'met' : 'NOT met'}; same table as from raw: ${same ? 'yes' : 'NO'})`,
  );
}

/**
 * The state table's capacity per delivery, counted as DynamoDB bills it: 19-signal deliveries of `vehicles`
 * vehicles, `rounds` times (each round a new reading of every signal), every vehicle once per batch of
 * ten objects (the worst case: nothing to merge within a batch, so one read and one write per delivery).
 * Round 1 creates the items; the later rounds are the steady state, which the figure prices.
 */
async function stateUnits(ddb: DynamoDBClient, vehicles: number, rounds: number): Promise<string> {
  await createStateTable(ddb, 'bench-state-units');
  const start = Date.parse('2026-11-26T00:00:00Z');
  let steady = emptyUsage();
  let deliveries = 0;
  let encodeMs = 0;
  for (let round = 0; round < rounds; round++) {
    const usage = emptyUsage();
    const store = dynamoStateStore(ddb, 'bench-state-units', { usage });
    const at = start + round * 3_600_000;
    const records = Array.from({ length: vehicles }, (_, v) => {
      const t = at + v * 1000;
      const iso = new Date(t).toISOString();
      const id = `${String(round).padStart(2, '0')}${String(v).padStart(6, '0')}-6f63-4c1f-9d0e-2b7f5f0c1a11`;
      const vehicle = `${String(v).padStart(8, '0')}-3b73-4c9d-9a4b-d937ce6bc8e2`;
      return toLakeRecord(
        {
          v: 1,
          bodyBase64: Buffer.from(nineteenSignalState(id, vehicle, t, v * 7 + round)).toString('base64'),
          receivedAt: iso,
        },
        new Date(t),
      );
    });
    // Batches of ten objects of 50 deliveries, as the state function receives them.
    for (let i = 0; i < records.length; i += 500) {
      const updates: VehicleState[] = statesOf(records.slice(i, i + 500));
      const e0 = process.hrtime.bigint();
      for (const u of updates) encodeStateItem(u, 1);
      encodeMs += Number(process.hrtime.bigint() - e0) / 1e6;
      await store.apply(updates);
    }
    if (round > 0) {
      deliveries += records.length;
      steady = {
        reads: steady.reads + usage.reads,
        readUnits: steady.readUnits + usage.readUnits,
        writes: steady.writes + usage.writes,
        writeUnits: steady.writeUnits + usage.writeUnits,
        conflicts: steady.conflicts + usage.conflicts,
        unchanged: steady.unchanged + usage.unchanged,
        largestItem: Math.max(steady.largestItem, usage.largestItem),
      };
    }
  }
  const rru = steady.readUnits / deliveries;
  const wru = steady.writeUnits / deliveries;
  const dollars = wru * PRICE.writeUnit + rru * PRICE.readUnit;
  const perSignal = (NINETEEN_SIGNALS.length + 1) * PRICE.writeUnit;
  return (
    `  state table, ${NINETEEN_SIGNALS.length} signals a delivery (${vehicles} vehicles × ${rounds - 1} rounds after the first, each vehicle once per batch):\n` +
    `    per delivery ${(steady.reads / deliveries).toFixed(2)} reads = ${rru.toFixed(2)} RRU (eventually consistent first, 0.5 per 4 KB), ` +
    `${(steady.writes / deliveries).toFixed(2)} writes = ${wru.toFixed(2)} WRU (1 per started KB of the larger of old and new item); ` +
    `largest item ${steady.largestItem} bytes; ${steady.conflicts} conflicts; brotli ${(encodeMs / (vehicles * rounds)).toFixed(2)} ms an item\n` +
    `    $${dollars.toFixed(2)} per million deliveries ($${PRICE.writeUnit}/M WRU, $${PRICE.readUnit}/M RRU, us-east-1 on demand; ` +
    `goal ≤ $${STATE_GOAL.toFixed(2)}: ${dollars <= STATE_GOAL ? 'met' : 'NOT met'}; one item per signal was ≥ $${perSignal.toFixed(2)}: ${NINETEEN_SIGNALS.length + 1} writes of ≥ 1 WRU)`
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
