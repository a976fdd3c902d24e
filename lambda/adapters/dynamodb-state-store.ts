/**
 * The current-state table on DynamoDB: one item per vehicle and mode (`sk` = `<mode>`), holding every
 * signal of that vehicle in that mode. An update reads the item, merges ({@link mergeState}: the newest
 * reading of each signal wins by its own time) and writes it back only if its `version` is still the one
 * read (optimistic concurrency, {@link applyVersioned}); a writer that lost reads again and merges again.
 * So deliveries applied in any order, any number of times, by any number of writers, leave the same item.
 *
 * Why one compressed item: DynamoDB bills a write per started KB of the whole item, and a read per 4 KB.
 * 19 signals as one item per signal were ~20 writes a delivery ($6.30 per million); as a native map they
 * are ~4 KB (4 write units). Their JSON, brotli-compressed into one binary attribute, is under 1 KB for 19
 * signals (`npm run bench:fleet` prints it): one write unit and half a read unit per delivery.
 *
 * Items keep under DynamoDB's 400 KB: a signal body over {@link MAX_BODY_BYTES} is kept as a pointer
 * (`{"storedInLake":{"eventId":…,"bytes":…}}`: the signal's recency and event id stay, the value is in the
 * lake under that event, `trace <eventId>` finds it); an item still over {@link MAX_ITEM_BYTES} is refused
 * with {@link StateItemTooLargeError} (the state function fails that object, StateUpdateFailures counts it,
 * and the queue's dead-letter queue keeps it).
 *
 * Items of the old shape (`<mode>#signal#<code>`, `<mode>#vehicle`, before 0.4) are ignored by every
 * reader and deleted by `rebuild-state` ({@link deleteLegacyStateItems}).
 */
import { randomInt } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import {
  applyVersioned,
  mergeState,
  type SignalState,
  type StateStore,
  type VehicleState,
  type VersionedState,
  type VersionedStateItems,
} from '../core/vehicle-state';

type Item = Record<string, AttributeValue>;

/** A signal body longer than this (JSON text, bytes) is kept as a pointer to its delivery in the lake. */
export const MAX_BODY_BYTES = 4096;
/** DynamoDB's item size limit, less room for the key and attributes: larger items are refused. */
export const MAX_ITEM_BYTES = 400 * 1024 - 1024;
/** Conditional writes a vehicle's update may lose in a row before its object is failed for the queue to retry. */
export const STATE_WRITE_ATTEMPTS = 8;

/** A vehicle whose state would not fit in one DynamoDB item even with its large bodies left in the lake. */
export class StateItemTooLargeError extends Error {
  constructor(vehicleId: string, mode: string, bytes: number) {
    super(
      `the state of vehicle ${vehicleId} (${mode}) would be ${Math.ceil(bytes / 1024)} KB, over DynamoDB's 400 KB item limit; not written`,
    );
    this.name = 'StateItemTooLargeError';
  }
}

const isConditionFailed = (err: unknown) =>
  err instanceof ConditionalCheckFailedException ||
  (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** Whether an item is of the current shape (one per vehicle and mode), not a pre-0.4 per-signal one. */
export const isStateItem = (item: Item) => !(item.sk?.S ?? '#').includes('#');

/**
 * The compressed map: the deliveries the signals came from, once each (`[eventId, receivedAt]`; a delivery
 * carries many signals), and per signal code `[name, group, body, oemUpdatedAt, fetchedAt, delivery]`.
 */
interface Packed {
  readonly d: [string, string][];
  readonly s: Record<string, [string | null, string | null, string, number | null, number | null, number]>;
}

/** A body over the bound, as kept in the table: a pointer to the delivery (by event id) that carries it. */
function bounded(s: SignalState): string {
  const bytes = Buffer.byteLength(s.body);
  return bytes > MAX_BODY_BYTES ? JSON.stringify({ storedInLake: { eventId: s.eventId, bytes } }) : s.body;
}

/** The table's item for a state at `version`. */
export function encodeStateItem(state: VehicleState, version: number): Item {
  const packed: Packed = { d: [], s: {} };
  const delivery = new Map<string, number>();
  for (const [code, sig] of Object.entries(state.signals)) {
    const of = `${sig.eventId}\n${sig.receivedAt}`;
    if (!delivery.has(of)) delivery.set(of, packed.d.push([sig.eventId, sig.receivedAt]) - 1);
    packed.s[code] = [sig.name, sig.group, bounded(sig), sig.oemUpdatedAt, sig.fetchedAt, delivery.get(of) as number];
  }
  const json = Buffer.from(JSON.stringify(packed));
  // Quality 8 in a 64 KB window: within 10% of the smallest brotli makes here, at a tenth of a millisecond.
  const signals = brotliCompressSync(json, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 8,
      [constants.BROTLI_PARAM_LGWIN]: 16,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: json.length,
    },
  });
  const item: Item = {
    vehicleId: { S: state.vehicleId },
    sk: { S: state.mode },
    version: { N: String(version) },
    lastDeliveryAt: { S: state.lastDeliveryAt },
    signals: { B: signals },
  };
  if (state.make) item.make = { S: state.make };
  if (state.model) item.model = { S: state.model };
  if (state.year !== null) item.year = { N: String(state.year) };
  const bytes = itemBytes(item);
  if (bytes > MAX_ITEM_BYTES) throw new StateItemTooLargeError(state.vehicleId, state.mode, bytes);
  return item;
}

/** A current-shape item back as a state and its version. */
export function decodeStateItem(item: Item): VersionedState {
  const vehicleId = item.vehicleId?.S ?? '';
  const packed: Packed = item.signals?.B
    ? (JSON.parse(brotliDecompressSync(item.signals.B).toString('utf8')) as Packed)
    : { d: [], s: {} };
  const signals: Record<string, SignalState> = {};
  for (const [code, [name, group, body, oemUpdatedAt, fetchedAt, d]] of Object.entries(packed.s)) {
    const [eventId, receivedAt] = packed.d[d];
    signals[code] = { code, name, group, body, oemUpdatedAt, fetchedAt, receivedAt, eventId };
  }
  return {
    version: Number(item.version?.N ?? 0),
    state: {
      vehicleId,
      mode: item.sk?.S ?? '',
      make: item.make?.S ?? null,
      model: item.model?.S ?? null,
      year: item.year?.N !== undefined ? Number(item.year.N) : null,
      lastDeliveryAt: item.lastDeliveryAt?.S ?? '',
      signals,
    },
  };
}

/** An item's size as DynamoDB counts it (attribute names and values; numbers by significant digits). */
export function itemBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += Buffer.byteLength(name) + valueBytes(value);
  return bytes;
}

function valueBytes(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S);
  if (v.N !== undefined)
    return Math.ceil(v.N.replace(/[-+.]/g, '').replace(/^0+/, '').replace(/0+$/, '').length / 2) + 1;
  if (v.B !== undefined) return v.B.length;
  if (v.M !== undefined)
    return 3 + Object.entries(v.M).reduce((n, [k, x]) => n + Buffer.byteLength(k) + valueBytes(x) + 1, 0);
  if (v.L !== undefined) return 3 + v.L.reduce((n, x) => n + valueBytes(x) + 1, 0);
  return 1;
}

/** Capacity the table was asked for, counted as DynamoDB bills on demand (what bench:fleet prices). */
export interface StateTableUsage {
  reads: number;
  /** 0.5 per started 4 KB for an eventually consistent read, 1 for a strongly consistent one (an absent item too). */
  readUnits: number;
  writes: number;
  /** 1 per started KB of the larger of the item before and after (a write that lost its condition too). */
  writeUnits: number;
  /** Writes that lost to another writer and were retried. */
  conflicts: number;
  /** Updates the item already said: read, not written. */
  unchanged: number;
  /** The largest item written, in bytes. */
  largestItem: number;
}

export const emptyUsage = (): StateTableUsage => ({
  reads: 0,
  readUnits: 0,
  writes: 0,
  writeUnits: 0,
  conflicts: 0,
  unchanged: 0,
  largestItem: 0,
});

/**
 * A first version: a random multiple of 2^20, plus 1, so a recreated item's versions never meet its
 * predecessor's (1 in 2^30 otherwise), and `version % 2^20` still counts the writes since it was created.
 */
export function firstVersion(): number {
  return randomInt(1, 2 ** 30) * VERSION_INCARNATION + 1;
}
export const VERSION_INCARNATION = 2 ** 20;

/** One vehicle and mode's item of the table, read and written with a version check. */
export function dynamoVersionedItems(
  client: DynamoDBClient,
  table: string,
  usage?: StateTableUsage,
): VersionedStateItems {
  // The size of the item each key was last read at: a write is billed on the larger of before and after.
  const readSize = new Map<string, number>();
  return {
    async read(vehicleId, mode, consistent) {
      const out = await client.send(
        new GetItemCommand({
          TableName: table,
          Key: { vehicleId: { S: vehicleId }, sk: { S: mode } },
          ConsistentRead: consistent,
        }),
      );
      const bytes = out.Item ? itemBytes(out.Item) : 0;
      readSize.set(`${vehicleId}|${mode}`, bytes);
      if (usage) {
        usage.reads++;
        usage.readUnits += (consistent ? 1 : 0.5) * Math.max(1, Math.ceil(bytes / 4096));
      }
      return out.Item ? decodeStateItem(out.Item) : undefined;
    },
    async write(next, expected) {
      // A new item starts at a random version, never at 1: an item deleted (an erasure) and created again
      // must not take a version a writer who read the old one still holds, or that writer's conditional
      // put would pass and bring the erased readings back (the ABA problem).
      const item = encodeStateItem(next, expected === 0 ? firstVersion() : expected + 1);
      const bytes = itemBytes(item);
      if (usage) {
        usage.writes++;
        usage.writeUnits += Math.max(
          1,
          Math.ceil(Math.max(bytes, readSize.get(`${next.vehicleId}|${next.mode}`) ?? 0) / 1024),
        );
        usage.largestItem = Math.max(usage.largestItem, bytes);
      }
      try {
        await client.send(
          new PutItemCommand({
            TableName: table,
            Item: item,
            // Not `attribute_not_exists(version) OR version = :expected`: an item deleted since the read (a
            // vehicle's erasure) must not come back with what was read before it.
            ExpressionAttributeNames: { '#version': 'version' },
            ...(expected === 0
              ? { ConditionExpression: 'attribute_not_exists(#version)' }
              : {
                  ConditionExpression: '#version = :expected',
                  ExpressionAttributeValues: { ':expected': { N: String(expected) } },
                }),
          }),
        );
        return true;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        if (usage) usage.conflicts++;
        return false;
      }
    },
  };
}

/** How each update fared: undefined when applied, else why not. */
export type StateOutcome = { readonly update: VehicleState; readonly error?: Error };

export interface DynamoStateStore extends StateStore {
  /** Applies each update (one read and at most one write per vehicle and mode) and says which failed. */
  applyEach(updates: VehicleState[]): Promise<StateOutcome[]>;
}

export function dynamoStateStore(
  client: DynamoDBClient,
  table: string,
  options: { usage?: StateTableUsage; attempts?: number; backoff?: (attempt: number) => Promise<void> } = {},
): DynamoStateStore {
  const items = dynamoVersionedItems(client, table, options.usage);
  // Losers of a race wait a little, at random, so two writers of one vehicle do not collide again.
  const backoff =
    options.backoff ??
    ((attempt: number) => new Promise<void>((r) => setTimeout(r, Math.random() * 10 * 2 ** attempt)));
  const attempts = options.attempts ?? STATE_WRITE_ATTEMPTS;

  async function applyEach(updates: VehicleState[]): Promise<StateOutcome[]> {
    // All updates of one vehicle and mode become one: one read and one write for the batch.
    const merged = new Map<string, VehicleState>();
    for (const u of updates)
      merged.set(`${u.vehicleId}|${u.mode}`, mergeState(merged.get(`${u.vehicleId}|${u.mode}`), u));
    const list = [...merged.values()];
    const outcomes: StateOutcome[] = [];
    // Vehicles are independent: several at once.
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const update = list[next++];
        try {
          const result = await applyVersioned(items, update, { attempts, backoff });
          if (result === 'unchanged' && options.usage) options.usage.unchanged++;
          outcomes.push({ update });
        } catch (err) {
          outcomes.push({ update, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, list.length) }, worker));
    return outcomes;
  }

  return {
    applyEach,
    async apply(updates) {
      const failed = (await applyEach(updates)).find((o) => o.error);
      if (failed?.error) throw failed.error;
    },
  };
}

/**
 * Deletes the items of the pre-0.4 shape (`<mode>#signal#<code>`, `<mode>#vehicle`), which no reader uses
 * any more: `rebuild-state` runs it after writing the current shape. Returns how many it deleted.
 */
export async function deleteLegacyStateItems(client: DynamoDBClient, table: string): Promise<number> {
  let deleted = 0;
  let start: Item | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        ProjectionExpression: 'vehicleId, sk',
        FilterExpression: 'contains(sk, :hash)',
        ExpressionAttributeValues: { ':hash': { S: '#' } },
        ExclusiveStartKey: start,
      }),
    );
    const keys = (page.Items ?? []).filter((i) => /#(signal#.+|vehicle)$/.test(i.sk?.S ?? ''));
    for (let i = 0; i < keys.length; i += 25) {
      let writes = keys.slice(i, i + 25).map((k) => ({ DeleteRequest: { Key: { vehicleId: k.vehicleId, sk: k.sk } } }));
      for (let attempt = 0; writes.length > 0; attempt++) {
        if (attempt >= 8) throw new Error(`DynamoDB left ${writes.length} deletes unprocessed in ${table}`);
        if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: writes } }));
        writes = (out.UnprocessedItems?.[table] ?? []) as typeof writes;
      }
      deleted += Math.min(25, keys.length - i);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return deleted;
}
