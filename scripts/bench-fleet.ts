/**
 * The fleet's costs, printed: ingest throughput through the ingest handler against moto with the vehicle
 * state table off and on, and `npm run fleet` time on a generated local lake of V vehicles × D days of
 * hourly deliveries, from the raw NDJSON and after `npm run compact` from the curated layer.
 *
 *   npm run bench:fleet [-- --vehicles 1000 --days 30 --batches 20]
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { dynamoStateStore } from '../lambda/adapters/dynamodb-state-store';
import { ingestBatch } from '../lambda/core/ingest';
import {
  decodeNdjsonGzip,
  encodeNdjsonGzip,
  objectKey,
  partitionOf,
  partitionPrefix,
  toLakeRecord,
} from '../lambda/core/lake';
import { statesOf } from '../lambda/core/vehicle-state';
import { compactLocalLake } from '../local/compact';
import { putLakeObject } from '../local/file-lake';
import { fleetTable } from '../local/fleet';
import { openLocalLake } from '../local/query';
import { vehicleState } from '../test/support/fixtures';
import { createStateTable, startMoto, useMoto } from '../test/support/moto';

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
  await moto.stop();
  console.log(
    `  ingest against moto: ${off.toFixed(0)} records/s without the state table, ${on.toFixed(0)} records/s with it ` +
      `(${Math.max(0, 100 * (1 - on / off)).toFixed(0)}% slower; goal ≤ 25%: ${on >= 0.75 * off ? 'met' : 'NOT met'})`,
  );
  console.log(
    `  state function against moto, beside ingest: ${stateRate.toFixed(0)} records/s applied to the table ` +
      `(enough for a fleet of ${Math.round(stateRate * 3600).toLocaleString('en-US')} vehicles delivering hourly; moto serializes every conditional write)`,
  );

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

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
