/**
 * The state table's one item per vehicle and mode: applications that race, arrive shuffled, repeat, or
 * read a stale item leave the same item as applying the deliveries in order (optimistic concurrency on a
 * version, emulated in memory with fast-check's scheduler deciding every interleaving); 19 signals fit in
 * one write unit; large bodies become pointers and an item too large for DynamoDB is refused; the state
 * function reads and writes each vehicle once per batch and fails only the objects of a vehicle it could
 * not write.
 */
import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import {
  decodeStateItem,
  encodeStateItem,
  itemBytes,
  MAX_BODY_BYTES,
  StateItemTooLargeError,
} from '../../lambda/adapters/dynamodb-state-store';
import type { LakeRecord } from '../../lambda/contract';
import { encodeNdjsonGzip, toLakeRecord } from '../../lambda/core/lake';
import {
  applyVersioned,
  mergeState,
  StateConflictError,
  stateOf,
  type VehicleState,
  type VersionedStateItems,
} from '../../lambda/core/vehicle-state';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { nineteenSignalState } from '../support/state-deliveries';

const VEHICLE = 'veh-state-000001';

function record(body: string, receivedAt: number): LakeRecord {
  const at = new Date(receivedAt).toISOString();
  return toLakeRecord(deliveryMessage(body, at), new Date(at));
}

/** A delivery of some of the 19 signals (a subset: deliveries need not carry the same ones). */
function delivery(i: number, oem: number, received: number, keep: number): VehicleState {
  const full = stateOf(record(nineteenSignalState(`evt-${i}`, VEHICLE, oem), received)) as VehicleState;
  const codes = Object.keys(full.signals).filter((_, n) => (keep >> (n % 19)) & 1 || n === i % 19);
  return { ...full, signals: Object.fromEntries(codes.map((c) => [c, full.signals[c]])) };
}

const deliveries = fc
  .array(
    fc.record({
      oem: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_000_000 + 20 * 60_000 }),
      at: fc.integer({ min: 1_800_000_000_000, max: 1_800_000_100_000 }),
      keep: fc.integer({ min: 0, max: 2 ** 19 - 1 }),
    }),
    { minLength: 1, maxLength: 10 },
  )
  .map((list) => list.map((d, i) => delivery(i, d.oem, d.at, d.keep)));

/**
 * A table of one item in memory that checks versions like DynamoDB's condition, stores the encoded item
 * (so the codec is exercised), and serves eventually consistent reads from any version it ever held.
 * Every read and write waits for the scheduler, which picks the interleaving.
 */
function memoryTable(s: fc.Scheduler, staleness: number[]) {
  const versions: ReturnType<typeof encodeStateItem>[] = [];
  let reads = 0;
  const items: VersionedStateItems = {
    async read(_vehicleId, _mode, consistent) {
      await s.schedule(Promise.resolve('read'));
      const back = consistent ? 0 : staleness[reads++ % staleness.length];
      const item = versions[versions.length - 1 - back] ?? (back > 0 ? undefined : versions[versions.length - 1]);
      return item ? decodeStateItem(item) : undefined;
    },
    async write(next, expected) {
      await s.schedule(Promise.resolve('write'));
      if (versions.length !== expected) return false; // version N is the N-th write
      versions.push(encodeStateItem(next, expected + 1));
      return true;
    },
  };
  return { items, last: () => versions[versions.length - 1] };
}

const inOrder = (updates: VehicleState[]) =>
  updates.reduce<VehicleState | undefined>((s, u) => mergeState(s, u), undefined) as VehicleState;

it('property: racing, shuffled, repeated and stale-read applications leave the item in-order application does', async () => {
  await fc.assert(
    fc.asyncProperty(
      deliveries.chain((list) =>
        fc.tuple(
          fc.constant(list),
          // The deliveries shuffled with some repeated, dealt to 1–4 writers running at once.
          fc.shuffledSubarray(list, { minLength: list.length }),
          fc.subarray(list),
          fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 16 + 2 * list.length }),
          fc.integer({ min: 1, max: 4 }),
          fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 5 }),
        ),
      ),
      fc.scheduler(),
      async ([list, shuffled, again, dealt, writers, staleness], s) => {
        const table = memoryTable(s, staleness);
        const queues: VehicleState[][] = Array.from({ length: writers }, () => []);
        [...shuffled, ...again].forEach((u, i) => {
          queues[dealt[i % dealt.length] % writers].push(u);
        });
        const running = queues.map(async (q) => {
          for (const u of q) await applyVersioned(table.items, u, { attempts: 1000 });
        });
        await s.waitFor(Promise.all(running));
        const final = decodeStateItem(table.last());
        expect(final.state).toEqual(inOrder(list));
      },
    ),
    { numRuns: 150 },
  );
});

it('a writer that keeps losing gives up after its attempts (the queue retries the object)', async () => {
  const u = delivery(1, 1_700_000_000_000, 1_800_000_000_000, 7);
  let written = 0;
  const items: VersionedStateItems = {
    read: async () => ({ state: { ...u, signals: {} }, version: written }),
    write: async () => {
      written++; // someone else always wrote first
      return false;
    },
  };
  await expect(applyVersioned(items, u, { attempts: 3 })).rejects.toThrow(StateConflictError);
  expect(written).toBe(3);
});

it('an update the item already holds is read, not written', async () => {
  const u = delivery(1, 1_700_000_000_000, 1_800_000_000_000, 7);
  const write = jest.fn(async () => true);
  const items: VersionedStateItems = { read: async () => ({ state: u, version: 4 }), write };
  expect(await applyVersioned(items, u)).toBe('unchanged');
  expect(write).not.toHaveBeenCalled();
});

describe('the item', () => {
  const t = Date.parse('2026-11-26T00:00:00Z');
  const nineteen = stateOf(
    record(nineteenSignalState('0b6d5b3c-6f63-4c1f-9d0e-2b7f5f0c1a11', VEHICLE, t), t),
  ) as VehicleState;

  it('holds 19 signals in one write unit (under 1 KB), and reads back as it was written', () => {
    expect(Object.keys(nineteen.signals)).toHaveLength(19);
    const item = encodeStateItem(nineteen, 3);
    expect(itemBytes(item)).toBeLessThanOrEqual(1024);
    expect(decodeStateItem(item)).toEqual({ version: 3, state: nineteen });
  });

  it('keeps a body over the bound as a pointer to its delivery, with its recency', () => {
    const huge = JSON.stringify({ value: randomBytes(MAX_BODY_BYTES).toString('base64') });
    const code = 'tractionbattery-stateofcharge';
    const state = { ...nineteen, signals: { ...nineteen.signals, [code]: { ...nineteen.signals[code], body: huge } } };
    const back = decodeStateItem(encodeStateItem(state, 1)).state.signals[code];
    expect(JSON.parse(back.body)).toEqual({
      storedInLake: { eventId: nineteen.signals[code].eventId, bytes: Buffer.byteLength(huge) },
    });
    expect({ ...back, body: huge }).toEqual(state.signals[code]);
  });

  it('refuses a state over 400 KB, naming the vehicle, instead of sending it', () => {
    // 200 signal codes with 3 KB incompressible bodies (each under the pointer bound): ~450 KB compressed.
    const signals = Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [
        `custom-signal${i}`,
        {
          ...nineteen.signals['tractionbattery-stateofcharge'],
          code: `custom-signal${i}`,
          body: JSON.stringify(randomBytes(2250).toString('base64')),
        },
      ]),
    );
    expect(() => encodeStateItem({ ...nineteen, signals }, 1)).toThrow(StateItemTooLargeError);
    expect(() => encodeStateItem({ ...nineteen, signals }, 1)).toThrow(
      new RegExp(`vehicle ${VEHICLE} \\(live\\).*over DynamoDB's 400 KB`),
    );
  });
});

describe('the state function', () => {
  const s3 = mockClient(S3Client);
  const ddb = mockClient(DynamoDBClient);
  let handler: typeof import('../../lambda/state/index').handler;
  beforeAll(() => {
    Object.assign(process.env, { LAKE_BUCKET_NAME: 'lake', STATE_TABLE_NAME: 'state', POWERTOOLS_DEV: 'false' });
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    handler = require('../../lambda/state/index').handler;
  });
  afterEach(() => {
    s3.reset();
    ddb.reset();
  });
  afterAll(() => {
    for (const k of ['LAKE_BUCKET_NAME', 'STATE_TABLE_NAME']) delete process.env[k];
    jest.restoreAllMocks();
  });

  const objectOf = (...bodies: string[]) => {
    const bytes = encodeNdjsonGzip(bodies.map((b, i) => record(b, 1_800_000_000_000 + i)));
    return { Body: { transformToByteArray: async () => bytes } } as never;
  };
  const message = (id: string) => ({ messageId: id, body: JSON.stringify({ key: `raw/${id}.ndjson.gz` }) });

  it('reads and writes each vehicle once per batch, however many objects name it', async () => {
    s3.on(GetObjectCommand, { Key: 'raw/a.ndjson.gz' }).resolves(
      objectOf(vehicleState('e1', { vehicleId: 'v1', value: 10 })),
    );
    s3.on(GetObjectCommand, { Key: 'raw/b.ndjson.gz' }).resolves(
      objectOf(
        vehicleState('e2', { vehicleId: 'v1', value: 20, oemUpdatedAt: 1_731_940_400_000 }),
        vehicleState('e3', { vehicleId: 'v2' }),
      ),
    );
    ddb.on(GetItemCommand).resolves({});
    ddb.on(PutItemCommand).resolves({});
    expect(await handler({ Records: [message('a'), message('b')] } as never)).toEqual({ batchItemFailures: [] });
    expect(ddb.commandCalls(GetItemCommand)).toHaveLength(2);
    const puts = ddb.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(puts.map((p) => p.Item?.vehicleId.S).sort()).toEqual(['v1', 'v2']);
    const v1 = decodeStateItem(puts.find((p) => p.Item?.vehicleId.S === 'v1')?.Item as never);
    expect(JSON.parse(v1.state.signals['tractionbattery-stateofcharge'].body)).toMatchObject({ value: 20 });
    // A first write needs no item; a later one, the version it read (a deleted item must not come back).
    expect(puts[0]).toMatchObject({ ConditionExpression: 'attribute_not_exists(#version)' });
  });

  it('fails only the objects of a vehicle it could not write', async () => {
    s3.on(GetObjectCommand, { Key: 'raw/a.ndjson.gz' }).resolves(objectOf(vehicleState('e1', { vehicleId: 'v1' })));
    s3.on(GetObjectCommand, { Key: 'raw/b.ndjson.gz' }).resolves(objectOf(vehicleState('e2', { vehicleId: 'v2' })));
    ddb.on(GetItemCommand).resolves({});
    ddb.on(PutItemCommand).resolves({});
    ddb
      .on(PutItemCommand, { Item: { vehicleId: { S: 'v2' } } } as never)
      .rejects(new ConditionalCheckFailedException({ message: 'lost', $metadata: {} }));
    const out = await handler({ Records: [message('a'), message('b')] } as never);
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: 'b' }] });
    expect(ddb.commandCalls(PutItemCommand).filter((c) => c.args[0].input.Item?.vehicleId.S === 'v2')).toHaveLength(8);
  });
});

it("an item erased and created again between a writer's read and its write does not take the version that writer holds (ABA)", async () => {
  // A table honouring the adapter's two conditions, whose eventually consistent read may still return a
  // snapshot from before the erasure.
  const table = new Map<string, Record<string, { S?: string; N?: string; B?: Uint8Array }>>();
  let stale: (typeof table extends Map<string, infer V> ? V : never) | undefined;
  const key = (k: { vehicleId: { S: string }; sk: { S: string } }) => `${k.vehicleId.S}|${k.sk.S}`;
  const client = {
    async send(command: { constructor: { name: string }; input: Record<string, never> }) {
      const i = command.input as Record<string, never> & {
        Key?: never;
        Item?: never;
        ConsistentRead?: boolean;
        ConditionExpression?: string;
        ExpressionAttributeValues?: Record<string, { N: string }>;
      };
      if (command.constructor.name === 'GetItemCommand')
        return { Item: !i.ConsistentRead && stale ? stale : table.get(key(i.Key as never)) };
      const current = table.get(key((i.Item ?? i.Key) as never));
      const ok =
        i.ConditionExpression === 'attribute_not_exists(#version)'
          ? !current
          : current?.version?.N === i.ExpressionAttributeValues?.[':expected'].N;
      if (!ok) throw new ConditionalCheckFailedException({ message: 'conditional', $metadata: {} });
      table.set(key(i.Item as never), i.Item as never);
      return {};
    },
  } as unknown as DynamoDBClient;
  const { dynamoVersionedItems } = await import('../../lambda/adapters/dynamodb-state-store');
  const w1 = dynamoVersionedItems(client, 'state');
  const w2 = dynamoVersionedItems(client, 'state');
  const first = delivery(0, 1_700_000_000_000, 1_800_000_000_000, 1);
  await applyVersioned(w1, first); // created
  stale = table.get(`${VEHICLE}|live`); // what W1's next eventually consistent read still sees
  table.delete(`${VEHICLE}|live`); // the owner's erasure deletes the item
  const saved = stale;
  stale = undefined;
  await applyVersioned(w2, delivery(1, 1_700_000_060_000, 1_800_000_060_000, 2)); // a new owner's delivery
  stale = saved;
  await applyVersioned(w1, delivery(2, 1_700_000_120_000, 1_800_000_120_000, 4)); // W1 read the erased item
  const after = decodeStateItem(table.get(`${VEHICLE}|live`) as never);
  // Nothing of the erased delivery came back: every signal is from the two later ones.
  expect(new Set(Object.values(after.state.signals).map((s) => s.eventId))).toEqual(new Set(['evt-1', 'evt-2']));
});
