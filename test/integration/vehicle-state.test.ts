/**
 * Current state per vehicle: shuffled and duplicated deliveries give the same state as in-order ones
 * (the pure merge, and the DynamoDB table's conditional writes against moto); a state-table failure
 * never fails ingest; the local receiver keeps the state beside the lake; rebuild-state restores it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import {
  decodeStateItem,
  deleteLegacyStateItems,
  dynamoStateStore,
  emptyUsage,
  VERSION_INCARNATION,
} from '../../lambda/adapters/dynamodb-state-store';
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
import { nineteenSignalState } from '../support/state-deliveries';

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
  /** The test vehicle's state in one mode: its one item, decoded. */
  const stateIn = async (table: string, mode = 'live') => {
    const item = (await itemsOf(table)).get(mode);
    return item ? decodeStateItem(item) : undefined;
  };
  const socOf = (s: VehicleState | undefined) =>
    JSON.parse(s?.signals['tractionbattery-stateofcharge']?.body ?? 'null');

  it('conditional writes: out-of-order and repeated deliveries never overwrite a newer value', async () => {
    const store = dynamoStateStore(ddb, 'state');
    const t = 1_800_000_000_000;
    const newest = record(1, 80, 1_700_000_050_000, t + 1000);
    const older = record(2, 20, 1_700_000_010_000, t + 5000); // arrived last, read earlier by the car
    for (const r of [newest, older, newest, older]) await store.apply([stateOf(r) as VehicleState]);
    const items = await itemsOf('state');
    expect([...items.keys()]).toEqual(['live']); // one item per vehicle and mode
    const stored = await stateIn('state');
    expect(socOf(stored?.state)).toMatchObject({ value: 80 });
    expect(stored?.state.lastDeliveryAt).toBe(new Date(t + 5000).toISOString()); // the last delivery is by arrival
    expect(stored?.state.make).toBe('TESLA');
    expect((stored?.version ?? 0) % VERSION_INCARNATION).toBe(2); // the repeats were read and left alone
  });

  it('two writers racing on one vehicle: the loser reads again, merges, and both readings are kept', async () => {
    await createStateTable(ddb, 'state-race');
    const t = Date.parse('2026-11-26T00:00:00Z');
    // A: 19 signals read at t. B: a newer state of charge only, written while A is between its read and write.
    const nineteen = toLakeRecord(
      deliveryMessage(nineteenSignalState('evt-a', VEHICLE, t), new Date(t).toISOString()),
      new Date(t),
    );
    const updateA = stateOf(nineteen) as VehicleState;
    const updateB = stateOf(record(2, 91, t + 60_000, t + 60_000)) as VehicleState;
    const usageA = emptyUsage();
    const usageB = emptyUsage();
    const storeB = dynamoStateStore(new DynamoDBClient({}), 'state-race', { usage: usageB });
    const clientA = new DynamoDBClient({});
    let raced = false;
    clientA.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'GetItemCommand' && !raced) {
          raced = true;
          await storeB.apply([updateB]); // B writes after A has read
        }
        return out;
      },
      { step: 'initialize', name: 'raceAfterFirstRead' },
    );
    const storeA = dynamoStateStore(clientA, 'state-race', { usage: usageA, backoff: async () => {} });
    await storeA.apply([updateA]);
    expect(usageA).toMatchObject({ reads: 2, writes: 2, conflicts: 1 }); // lost once, then won
    expect(usageB).toMatchObject({ reads: 1, writes: 1, conflicts: 0 });
    const stored = await stateIn('state-race');
    expect((stored?.version ?? 0) % VERSION_INCARNATION).toBe(2);
    expect(Object.keys(stored?.state.signals ?? {})).toHaveLength(19);
    expect(socOf(stored?.state)).toMatchObject({ value: 91 }); // B's newer reading, not A's
    expect(stored?.state.signals['odometer-traveleddistance'].eventId).toBe('evt-a'); // A's others
  });

  it("a vehicle's erasure between a writer's read and write: the writer does not bring the item back", async () => {
    await createStateTable(ddb, 'state-erased');
    const t = Date.parse('2026-11-26T00:00:00Z');
    const before = toLakeRecord(
      deliveryMessage(nineteenSignalState('evt-before', VEHICLE, t), new Date(t).toISOString()),
      new Date(t),
    );
    await dynamoStateStore(ddb, 'state-erased').apply([stateOf(before) as VehicleState]);
    const client = new DynamoDBClient({});
    let erased = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'GetItemCommand' && !erased) {
          erased = true;
          const { DeleteItemCommand } = await import('@aws-sdk/client-dynamodb');
          await ddb.send(
            new DeleteItemCommand({ TableName: 'state-erased', Key: { vehicleId: { S: VEHICLE }, sk: { S: 'live' } } }),
          );
        }
        return out;
      },
      { step: 'initialize', name: 'eraseAfterFirstRead' },
    );
    const usage = emptyUsage();
    await dynamoStateStore(client, 'state-erased', { usage, backoff: async () => {} }).apply([
      stateOf(record(2, 45, t + 60_000, t + 60_000)) as VehicleState,
    ]);
    expect(usage.conflicts).toBe(1);
    const stored = await stateIn('state-erased');
    // Only the new delivery's reading: none of the 19 read before the erasure.
    expect(Object.keys(stored?.state.signals ?? {})).toEqual(['tractionbattery-stateofcharge']);
    expect(stored?.state.signals['tractionbattery-stateofcharge'].eventId).toBe('evt-2');
    expect((stored?.version ?? 0) % VERSION_INCARNATION).toBe(1);
  });

  it('rebuild-state deletes the items of the pre-0.4 shape, and only those', async () => {
    await createStateTable(ddb, 'state-legacy');
    await dynamoStateStore(ddb, 'state-legacy').apply([
      stateOf(record(1, 50, 1_700_000_000_000, 1_800_000_000_000)) as VehicleState,
    ]);
    for (const sk of ['live#vehicle', 'live#signal#a', 'simulated#signal#b'])
      await ddb.send(
        new PutItemCommand({ TableName: 'state-legacy', Item: { vehicleId: { S: VEHICLE }, sk: { S: sk } } }),
      );
    expect(await deleteLegacyStateItems(ddb, 'state-legacy')).toBe(3);
    expect([...(await itemsOf('state-legacy')).keys()]).toEqual(['live']);
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
      expect(socOf((await stateIn('state-e2e'))?.state)).toMatchObject({ value: 90 });
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
