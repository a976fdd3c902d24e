/**
 * Current state per vehicle: shuffled and duplicated deliveries give the same state as in-order ones
 * (the pure merge, and the DynamoDB table's conditional writes against moto); a state-table failure
 * never fails ingest; the local receiver keeps the state beside the lake; rebuild-state restores it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { dynamoStateStore } from '../../lambda/adapters/dynamodb-state-store';
import type { LakeRecord } from '../../lambda/contract';
import { ingestBatch } from '../../lambda/core/ingest';
import { toLakeRecord } from '../../lambda/core/lake';
import { mergeState, recencyKey, stateOf, type VehicleState } from '../../lambda/core/vehicle-state';
import { putLakeObject } from '../../local/file-lake';
import { readStateFile } from '../../local/state-file';
import { directoryLake } from '../../scripts/ops/lake-store';
import { rebuildState } from '../../scripts/ops/rebuild-state';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { RecordingMetrics } from '../support/metrics';
import { createStateTable, type Moto, startMoto, useMoto } from '../support/moto';

const VEHICLE = '9af13248-3b73-4c9d-9a4b-d937ce6bc8e2';

/** A VEHICLE_STATE delivery with its own event id, value, OEM time and receive time. */
function record(i: number, value: number, oemUpdatedAt: number, receivedAt: number): LakeRecord {
  const body = vehicleState(`evt-${i}`, { value, oemUpdatedAt });
  const at = new Date(receivedAt).toISOString();
  return toLakeRecord(deliveryMessage(body, at), new Date(at));
}

const deliveries = fc
  .array(
    fc.record({
      value: fc.integer({ min: 0, max: 100 }),
      oem: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }),
      at: fc.integer({ min: 1_800_000_000_000, max: 1_800_000_100_000 }),
    }),
    { minLength: 1, maxLength: 12 },
  )
  .map((list) => list.map((d, i) => record(i, d.value, d.oem, d.at)));

/** The deliveries shuffled, with some delivered twice (Smartcar retries, SQS redelivers). */
const shuffledWithRepeats = (records: LakeRecord[]) =>
  fc
    .tuple(fc.shuffledSubarray(records, { minLength: records.length }), fc.subarray(records))
    .map(([all, again]) => [...all, ...again]);

const fold = (records: LakeRecord[]) =>
  records.reduce<VehicleState | undefined>((s, r) => {
    const u = stateOf(r);
    return u ? mergeState(s, u) : s;
  }, undefined);

it('property: shuffled and duplicated deliveries give the same current state as in-order ones', () => {
  fc.assert(
    fc.property(
      deliveries.chain((records) => fc.tuple(fc.constant(records), shuffledWithRepeats(records))),
      ([inOrder, shuffled]) => {
        const sorted = [...inOrder].sort((a, b) => a.received_at.localeCompare(b.received_at));
        expect(fold(shuffled)).toEqual(fold(sorted));
        // The newest reading wins by the vehicle's own time, not by arrival.
        const newest = inOrder
          .map((r) => stateOf(r)?.signals['tractionbattery-stateofcharge'])
          .filter((x): x is NonNullable<typeof x> => x !== undefined)
          .sort((a, b) => recencyKey(a).localeCompare(recencyKey(b)))
          .pop();
        expect(fold(shuffled)?.signals['tractionbattery-stateofcharge']).toEqual(newest);
      },
    ),
    { numRuns: 300 },
  );
});

describe('against moto', () => {
  let moto: Moto;
  let ddb: DynamoDBClient;
  beforeAll(async () => {
    moto = await startMoto();
    useMoto(moto.endpoint);
    ddb = new DynamoDBClient({});
    await createStateTable(ddb, 'state');
  });
  afterAll(async () => moto?.stop());

  /** The table's items of the test vehicle, by sort key. */
  const itemsOf = async (table: string) => {
    const out = await ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'vehicleId = :v',
        ExpressionAttributeValues: { ':v': { S: VEHICLE } },
      }),
    );
    return new Map((out.Items ?? []).map((i) => [i.sk.S as string, i]));
  };

  it('conditional writes: out-of-order and repeated deliveries never overwrite a newer value', async () => {
    const store = dynamoStateStore(ddb, 'state');
    const t = 1_800_000_000_000;
    const newest = record(1, 80, 1_700_000_050_000, t + 1000);
    const older = record(2, 20, 1_700_000_010_000, t + 5000); // arrived last, read earlier by the car
    for (const r of [newest, older, newest, older]) await store.apply([stateOf(r) as VehicleState]);
    const items = await itemsOf('state');
    expect(JSON.parse(items.get('live#signal#tractionbattery-stateofcharge')?.body.S as string)).toMatchObject({
      value: 80,
    });
    const vehicle = items.get('live#vehicle');
    expect(vehicle?.lastDeliveryAt.S).toBe(new Date(t + 5000).toISOString()); // the last delivery is by arrival
    expect(vehicle?.make.S).toBe('TESLA');
  });

  it('end to end: the ingest handler hands each object to the state queue, the state handler applies it', async () => {
    const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
    const { CreateQueueCommand, ReceiveMessageCommand, SQSClient } = await import('@aws-sdk/client-sqs');
    await new S3Client({}).send(new CreateBucketCommand({ Bucket: 'state-lake' }));
    const sqs = new SQSClient({});
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'state-keys' }))).QueueUrl as string;
    await createStateTable(ddb, 'state-e2e');
    Object.assign(process.env, {
      LAKE_BUCKET_NAME: 'state-lake',
      LAKE_RAW_PREFIX: 'raw',
      STATE_QUEUE_URL: queueUrl,
      STATE_TABLE_NAME: 'state-e2e',
      POWERTOOLS_DEV: 'false',
    });
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      let ingest!: typeof import('../../lambda/ingest/index').handler;
      let state!: typeof import('../../lambda/state/index').handler;
      jest.isolateModules(() => {
        ingest = require('../../lambda/ingest/index').handler;
        state = require('../../lambda/state/index').handler;
      });
      const t = 1_800_000_000_000;
      const newer = record(11, 90, 1_700_000_090_000, t);
      const older = record(12, 10, 1_700_000_010_000, t + 60_000); // arrives later, read earlier by the car
      const message = (r: LakeRecord, id: string) => ({
        messageId: id,
        body: JSON.stringify(deliveryMessage(r.body as string, r.received_at)),
      });
      // Two batches, so two objects; the ingest handler never touches the table.
      expect(await ingest({ Records: [message(newer, 'a')] } as never)).toEqual({ batchItemFailures: [] });
      expect(await ingest({ Records: [message(older, 'b')] } as never)).toEqual({ batchItemFailures: [] });
      const handed = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
      expect(handed.Messages).toHaveLength(2);
      // The state queue may deliver them in any order.
      const records = (handed.Messages ?? []).reverse().map((m, i) => ({ messageId: `m${i}`, body: m.Body }));
      expect(await state({ Records: records } as never)).toEqual({ batchItemFailures: [] });
      const items = await itemsOf('state-e2e');
      expect(JSON.parse(items.get('live#signal#tractionbattery-stateofcharge')?.body.S as string)).toMatchObject({
        value: 90,
      });
      // A key that is not in the lake fails alone, for the queue to retry, and the log says so (captured:
      // the Lambda logger writes to the process streams, past Jest's console).
      const logged: string[] = [];
      for (const stream of [process.stdout, process.stderr])
        jest.spyOn(stream, 'write').mockImplementation((chunk) => logged.push(String(chunk)) > 0);
      const bad = await state({
        Records: [{ messageId: 'x', body: JSON.stringify({ key: 'raw/missing.ndjson.gz' }) }],
      } as never);
      expect(bad).toEqual({ batchItemFailures: [{ itemIdentifier: 'x' }] });
      expect(logged.join('')).toMatch(/could not apply an object to the vehicle state table.*"messageId":"x"/);
    } finally {
      for (const k of ['LAKE_BUCKET_NAME', 'LAKE_RAW_PREFIX', 'STATE_QUEUE_URL', 'STATE_TABLE_NAME'])
        delete process.env[k];
      jest.restoreAllMocks();
    }
  });
});

it.each([
  [
    'a state-table failure (the local store)',
    { state: { apply: async () => Promise.reject(new Error('table unavailable')) } },
  ],
  [
    'a state queue that refuses the hand-over',
    { stateNotify: async () => Promise.reject(new Error('queue unavailable')) },
  ],
])('%s does not fail or hold back the lake write', async (_label, stateDeps) => {
  const written: string[] = [];
  const metrics = new RecordingMetrics();
  const r = record(9, 50, 1_700_000_000_000, 1_800_000_000_000);
  const result = await ingestBatch(
    [{ id: 'm1', body: JSON.stringify(deliveryMessage(r.body as string, r.received_at)) }],
    {
      rawPrefix: 'raw',
      logger: { info() {}, warn() {}, error() {} },
      metrics,
      putObject: async (key) => void written.push(key),
      ...stateDeps,
    },
  );
  expect(result).toMatchObject({ failedIds: [], recordsWritten: 1 });
  expect(written).toHaveLength(1);
  expect(metrics.total('StateUpdateFailures')).toBe(1);
});

it('rebuild-state restores the local state file from the lake', async () => {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'state-lake-'));
  const t = 1_800_000_000_000;
  const records = [
    record(1, 60, 1_700_000_030_000, t),
    record(2, 70, 1_700_000_090_000, t + 1),
    record(3, 65, 1_700_000_060_000, t + 2),
  ];
  const { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix } = await import('../../lambda/core/lake');
  const prefix = partitionPrefix('raw', partitionOf(records[0]));
  await putLakeObject(lakeDir, objectKey(prefix, records, ['a']), encodeNdjsonGzip(records));
  const { fileStateStore } = await import('../../local/state-file');
  expect(await rebuildState(directoryLake(lakeDir), fileStateStore(lakeDir))).toEqual({
    erased: 0,
    objects: 1,
    records: 3,
    vehicles: 1,
  });
  const state = await readStateFile(lakeDir);
  expect(JSON.parse(state[`${VEHICLE}|live`].signals['tractionbattery-stateofcharge'].body)).toMatchObject({
    value: 70,
  });
});

it('the local receiver keeps the state beside the lake (state/vehicles.json)', async () => {
  const { startLocalServer } = await import('../../local/server');
  const { sendEvent } = await import('../../local/send-event');
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'state-local-'));
  const server = await startLocalServer({
    lakeDir,
    managementToken: 't',
    port: 0,
    batchWindowMs: 60_000,
    logger: { info() {}, warn() {}, error() {} },
  });
  try {
    expect((await sendEvent({ kind: 'vehicle-state', url: server.url, token: 't' })).ok).toBe(true);
    await server.flush();
    const state = await readStateFile(lakeDir);
    expect(Object.keys(state)).toEqual([`${VEHICLE}|live`]);
    expect(state[`${VEHICLE}|live`]).toMatchObject({ make: 'TESLA', model: 'Model 3' });
  } finally {
    await server.close();
  }
});
