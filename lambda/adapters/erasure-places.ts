/**
 * The deployed stack's erasure places (see lambda/core/erasure.ts), shared by `erase --stack`
 * (scripts/ops/erase-deployed.ts) and the erase state machine's function (lambda/erase): the raw zone in the
 * lake bucket (old versions included), the landing zone beside it, the state and dedupe tables, the quarantine bucket, the dead-letter
 * queues, the work bucket's run reports and the Athena results bucket. Each is idempotent (a rerun finds
 * what an interrupted run left) and touches nothing but the subject's data.
 */

import { gunzipSync, gzipSync } from 'node:zlib';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DEFAULT_LANDING_PREFIX, ERASE_LANDING_PAGE_SIZE, QUARANTINE_PREFIX } from '../contract';
import {
  type ErasureContext,
  type ErasurePlace,
  emptySweep,
  eraseFromNdjson,
  eraseRawObjects,
  type PlaceResult,
  type RawSweep,
  rawPlaceResult,
  rawZonePlace,
} from '../core/erasure';
import {
  deliveryBelongs,
  emptyLandingSweep,
  type LandingSweep,
  landingPlaceResult,
  messageBelongs,
  pruneLanding,
  pruneReport,
} from '../core/erasure-places';
import { dedupeKey } from '../core/seen-store';
import { withoutEvents } from '../core/vehicle-state';
import { decodeStateItem, encodeStateItem, isStateItem, STATE_WRITE_ATTEMPTS } from './dynamodb-state-store';
import { deleteNoncurrentVersions, type ListableObjects, s3ErasableObjects } from './erasure-stores';
import { getObjectIfThere, listVersionsUnder } from './s3-objects';

type Item = Record<string, { S: string }>;

/** Writes (deletes) in batches of 25, retrying what DynamoDB leaves unprocessed; throws when some stay. */
async function batchDelete(ddb: DynamoDBClient, table: string, keys: Item[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    let writes: { DeleteRequest: { Key: Item } }[] | undefined = keys
      .slice(i, i + 25)
      .map((Key) => ({ DeleteRequest: { Key } }));
    for (let attempt = 0; writes?.length && attempt < 8; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      const out = await ddb.send(new BatchWriteItemCommand({ RequestItems: { [table]: writes } }));
      writes = out.UnprocessedItems?.[table] as typeof writes;
    }
    if (writes?.length) throw new Error(`DynamoDB left ${writes.length} deletes unprocessed in ${table}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Raw zone
// ---------------------------------------------------------------------------------------------------

/** The whole raw zone as one place (the command's path): every object, old versions included. */
export function rawS3Place(s3: S3Client, bucket: string, rawPrefix: string): ErasurePlace {
  return rawZonePlace(s3ErasableObjects(s3, bucket), rawPrefix, `s3://${bucket}/${rawPrefix}/`);
}

/**
 * One page of the raw zone (the state machine's path): up to `pageSize` keys after `startAfter`, erased
 * into `sweep`. Returns the last key read (the next page's cursor) and whether the zone is done.
 */
export async function sweepRawPage(
  s3: S3Client,
  bucket: string,
  rawPrefix: string,
  startAfter: string | undefined,
  pageSize: number,
  context: ErasureContext,
  sweep: RawSweep = emptySweep(),
  store: ListableObjects = s3ErasableObjects(s3, bucket),
): Promise<{ sweep: RawSweep; cursor: string | undefined; done: boolean }> {
  const out = await s3.send(
    new ListObjectsV2Command({
      Bucket: bucket,
      Prefix: `${rawPrefix.replace(/^\/+|\/+$/g, '')}/`,
      StartAfter: startAfter,
      MaxKeys: pageSize,
    }),
  );
  const keys = (out.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k !== '');
  await eraseRawObjects(
    store,
    keys.filter((k) => k.endsWith('.ndjson.gz')),
    context,
    sweep,
  );
  return { sweep, cursor: keys.at(-1) ?? startAfter, done: !out.IsTruncated };
}

/**
 * The raw zone's old versions (a versioned bucket): every noncurrent version, and every version behind a
 * delete marker, that holds the subject's records is deleted. The sweep of current objects deletes the old
 * versions of what it rewrites; this finds the rest: versions left by a replay that moved records to
 * another key, by the lifecycle's expiry (a delete marker over the last version), or by an earlier
 * rewrite. An old version cannot be rewritten, only deleted: the other records in it were already gone
 * from the current lake (that is what made it old), and the `noncurrentVersions` retention would delete
 * it within days anyway.
 */
export function rawVersionsPlace(s3: S3Client, bucket: string, rawPrefix: string): ErasurePlace {
  const read = async (key: string, versionId: string) => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    const bytes = Buffer.from(
      await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    return gunzipSync(bytes).toString('utf8');
  };
  return {
    place: 'raw-versions',
    async erase(context) {
      const prefix = `${rawPrefix.replace(/^\/+|\/+$/g, '')}/`;
      // Every version of each key, newest first, as S3 lists them.
      const byKey = new Map<string, { versionId: string; latest: boolean; marker: boolean }[]>();
      for (const v of await listVersionsUnder(s3, bucket, prefix)) {
        if (!v.key.endsWith('.ndjson.gz')) continue;
        byKey.set(v.key, [
          ...(byKey.get(v.key) ?? []),
          { versionId: v.versionId, latest: v.isLatest, marker: v.deleteMarker },
        ]);
      }
      let found = 0;
      let searched = 0;
      for (const [key, versions] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
        const old = versions.filter((v) => !v.latest && !v.marker);
        if (old.length === 0) continue;
        // A key whose current object holds the subject is the sweep's: it rewrites that object and deletes
        // all its old versions (a dry run leaves them for it, so both count the same).
        const current = versions.find((v) => v.latest && !v.marker);
        if (current && eraseFromNdjson(await read(key, current.versionId), context.subject, context.erasedAt)) continue;
        for (const v of old) {
          searched++;
          if (!eraseFromNdjson(await read(key, v.versionId), context.subject, context.erasedAt)) continue;
          found++;
          if (!context.dryRun)
            await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: v.versionId }));
        }
      }
      return {
        place: 'raw-versions',
        where: `s3://${bucket}/${prefix} (old versions)`,
        unit: 'old versions',
        found,
        removed: context.dryRun ? 0 : found,
        note: `${searched} old versions searched`,
      };
    },
  };
}

export { rawPlaceResult };

// ---------------------------------------------------------------------------------------------------
// Landing zone
// ---------------------------------------------------------------------------------------------------

/**
 * The landing zone (`landing/` in the lake bucket): objects the delivery stream wrote, one authentic
 * delivery a line, that the ingest function has not stored and deleted yet: for minutes normally, until
 * stored or erased when ingest could not store one (its notification then waits in the dead-letter queue;
 * when ingest is broken for a day, thousands of them wait). Each object holding the subject's deliveries
 * received before the erasure is rewritten without them (the other lines byte for byte) or deleted when
 * none is left, and then every old version of its key goes (each is an earlier copy of it). An old version
 * whose current object does not hold the subject (an interrupted rewrite, one behind a delete marker) is
 * deleted when it holds the subject. A dry run counts.
 *
 * The zone is erased a page of keys at a time ({@link sweepLandingPage}): the state machine loops over
 * the pages one call each, so that a backlog never outlasts one call; this place (`erase --stack`) loops
 * over them in-process.
 *
 * Racing ingest: ingest may read an object while this rewrites it. The subject's records stay out of the
 * lake all the same, because ingest drops erased subjects' records by the erasure ledger, written before
 * this runs. The rewritten object raises a new notification and is ingested again (its version and line
 * numbers are new): the other deliveries in it may be stored twice, which the views absorb (they count an
 * event once). An old version deleted before ingest read it reads as "already ingested": the new version's
 * notification carries its deliveries. Objects the stream writes meanwhile have later keys (the stream
 * names them by time) and are found by a later page or, when they land after the last, hold only
 * deliveries ingest's ledger filter drops.
 */
export function landingPlace(
  s3: S3Client,
  bucket: string,
  landingPrefix = DEFAULT_LANDING_PREFIX,
  options: Pick<LandingPageOptions, 'pageSize' | 'listMaxKeys'> = {},
): ErasurePlace {
  return {
    place: 'landing',
    async erase(context) {
      const sweep = emptyLandingSweep();
      let cursor: string | undefined;
      for (;;) {
        const page = await sweepLandingPage(s3, bucket, landingPrefix, cursor, context, sweep, options);
        cursor = page.cursor;
        if (page.done) break;
      }
      return landingPlaceResult(sweep, landingWhere(bucket, landingPrefix));
    },
  };
}

/** Where the landing zone is, as its place result says (the same for every page and both paths). */
export function landingWhere(bucket: string, landingPrefix = DEFAULT_LANDING_PREFIX): string {
  return `s3://${bucket}/${landingPrefix.replace(/^\/+|\/+$/g, '')}/`;
}

/** How much of a call a landing page leaves unused when it stops early: one more key's worst case. */
export const LANDING_RESERVE_MS = 120_000;

export interface LandingPageOptions {
  /** Keys a page handles at most. @default ERASE_LANDING_PAGE_SIZE */
  readonly pageSize?: number;
  /**
   * The call's remaining time (a Lambda context's getRemainingTimeInMillis): before each key after the
   * first, the page stops when it is below `reserveMs`, returning the cursor. @default no limit
   */
  readonly remainingMs?: () => number;
  /** @default LANDING_RESERVE_MS */
  readonly reserveMs?: number;
  /** Versions per ListObjectVersions call (tests set it small to split a key's versions). @default 1000 */
  readonly listMaxKeys?: number;
}

type LandingVersion = { versionId: string; latest: boolean; marker: boolean };

/** S3 lists keys in UTF-8 byte order; landing keys are ASCII, where that is code-unit order. */
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One page of the landing zone: up to `pageSize` keys after `startAfter` (every version of each), erased
 * into `sweep` one key at a time. Returns the last key handled (the next page's cursor) and whether the
 * zone is done. Stops early, after at least one key, when the call's remaining time runs low. Only as many
 * versions are listed as the page needs (a key's versions may span listing calls: it is handled once all
 * are listed).
 */
export async function sweepLandingPage(
  s3: S3Client,
  bucket: string,
  landingPrefix: string,
  startAfter: string | undefined,
  context: ErasureContext,
  sweep: LandingSweep = emptyLandingSweep(),
  options: LandingPageOptions = {},
): Promise<{ sweep: LandingSweep; cursor: string | undefined; done: boolean }> {
  const pageSize = Math.max(1, Math.floor(options.pageSize ?? ERASE_LANDING_PAGE_SIZE));
  const reserveMs = options.reserveMs ?? LANDING_RESERVE_MS;
  const prefix = `${landingPrefix.replace(/^\/+|\/+$/g, '')}/`;
  const byKey = new Map<string, LandingVersion[]>();
  const add = (key: string, v: LandingVersion) => {
    // S3 lists only the keys after a key marker given alone; a store that lists the marker's versions again
    // (some S3-compatible ones do) must not have that key handled twice. (moto 5.2 instead skips the next
    // version when the marker's key is gone: its tests keep page ends on keys that stay.)
    if (startAfter !== undefined && byteOrder(key, startAfter) <= 0) return;
    byKey.set(key, [...(byKey.get(key) ?? []), v]);
  };
  // A key marker alone lists the keys after it; with a version marker, the rest of that key's versions.
  let keyMarker = startAfter;
  let versionMarker: string | undefined;
  let listed = false;
  // Listed until a key past the page shows up (the page's keys are then complete) or the zone ends.
  while (byKey.size <= pageSize) {
    const out = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
        MaxKeys: options.listMaxKeys ?? 1000,
      }),
    );
    for (const v of out.Versions ?? [])
      if (v.Key && v.VersionId) add(v.Key, { versionId: v.VersionId, latest: v.IsLatest === true, marker: false });
    for (const m of out.DeleteMarkers ?? [])
      if (m.Key && m.VersionId) add(m.Key, { versionId: m.VersionId, latest: m.IsLatest === true, marker: true });
    if (!out.IsTruncated) {
      listed = true;
      break;
    }
    if (!out.NextKeyMarker) throw new Error(`S3 cut the listing of s3://${bucket}/${prefix} short without a marker`);
    keyMarker = out.NextKeyMarker;
    versionMarker = out.NextVersionIdMarker;
  }
  const keys = [...byKey.keys()].sort(byteOrder);
  // When listing stopped early, the last key listed may still have versions unlisted: it is the next page's.
  const page = keys.slice(0, listed ? pageSize : Math.min(pageSize, keys.length - 1));
  let cursor = startAfter;
  for (const key of page) {
    if (cursor !== startAfter && options.remainingMs && options.remainingMs() < reserveMs)
      return { sweep, cursor, done: false };
    await eraseLandingKey(s3, bucket, key, byKey.get(key) ?? [], context, sweep);
    cursor = key;
  }
  return { sweep, cursor, done: listed && page.length === keys.length };
}

/** One landing key: its current object rewritten or deleted, or its old versions searched (see {@link landingPlace}). */
async function eraseLandingKey(
  s3: S3Client,
  bucket: string,
  key: string,
  versions: readonly LandingVersion[],
  context: ErasureContext,
  sweep: LandingSweep,
): Promise<void> {
  /** The text of one version; undefined when ingest deleted it meanwhile. */
  const read = async (versionId: string) =>
    (await getObjectIfThere(s3, bucket, key, versionId))?.bytes.toString('utf8');
  const current = versions.find((v) => v.latest && !v.marker);
  const text = current ? await read(current.versionId) : undefined;
  if (text !== undefined) {
    sweep.objects++;
    const pruned = pruneLanding(text, context.subject, context.erasedAt);
    if (pruned.removed > 0) {
      sweep.found += pruned.removed;
      if (context.dryRun) return;
      if (pruned.kept === 0) {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        sweep.deleted++;
      } else {
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: pruned.text, ContentType: 'application/x-ndjson' }),
        );
        sweep.rewritten++;
      }
      sweep.removed += pruned.removed;
      // Every older copy of it (and the delete marker just made): the subject is in them.
      sweep.versionsDeleted += await deleteNoncurrentVersions(s3, bucket, key);
      return;
    }
  }
  // The current object is clean or gone: old versions are searched one by one.
  const dropped = new Set<string>();
  for (const v of versions.filter((x) => !x.latest && !x.marker)) {
    const old = await read(v.versionId);
    if (old === undefined) continue;
    const pruned = pruneLanding(old, context.subject, context.erasedAt);
    if (pruned.removed === 0) continue;
    sweep.oldVersions++;
    for (const line of pruned.dropped) dropped.add(line);
    if (context.dryRun) continue;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: v.versionId }));
    sweep.versionsDeleted++;
  }
  sweep.found += dropped.size;
  if (!context.dryRun) sweep.removed += dropped.size;
}

// ---------------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------------

/**
 * The vehicle-state table (partition key `vehicleId`; `sk` `<mode>`: one item per vehicle and mode holding
 * its signals, see dynamodb-state-store.ts; before 0.4 `<mode>#signal#<code>` and `<mode>#vehicle`). A
 * vehicle's erasure deletes every item of the vehicle. A user's erasure removes, among the vehicles the
 * user's removed records named, the signals that came from those records (their `eventId`) from each item,
 * written back conditional on its version (re-read and redone when the state function wrote first), and
 * the item once no signal is left: a vehicle the user's old deliveries named may be another user's today,
 * and what came from theirs stays. Items of the old shape are handled as before: their signal items, and a
 * mode's `#vehicle` item once no signal item of that mode is left.
 */
export function stateTablePlace(ddb: DynamoDBClient, table: string): ErasurePlace {
  return {
    place: 'state',
    async erase(context) {
      let found = 0;
      const vehicles = context.subject.kind === 'vehicle' ? [context.subject.id] : [...context.vehicleIds].sort();
      for (const vehicleId of vehicles) {
        const items: StateItem[] = [];
        let start: Record<string, unknown> | undefined;
        do {
          const out = await ddb.send(
            new QueryCommand({
              TableName: table,
              KeyConditionExpression: 'vehicleId = :v',
              ExpressionAttributeValues: { ':v': { S: vehicleId } },
              ProjectionExpression: context.subject.kind === 'vehicle' ? 'vehicleId, sk' : undefined,
              ConsistentRead: true,
              ExclusiveStartKey: start as never,
            }),
          );
          items.push(...((out.Items ?? []) as StateItem[]));
          start = out.LastEvaluatedKey;
        } while (start);
        let doomed = items;
        if (context.subject.kind === 'user') {
          for (const item of items.filter(isStateItem))
            found += await eraseSignals(ddb, table, item, context.eventIds, context.dryRun);
          const legacy = items.filter((item) => !isStateItem(item));
          const sk = (item: StateItem) => item.sk?.S ?? '';
          const mode = (item: StateItem) => sk(item).slice(0, sk(item).indexOf('#'));
          const isSignal = (item: StateItem) => sk(item).includes('#signal#');
          const theirs = (item: StateItem) => context.eventIds.has(item.eventId?.S ?? '');
          const signals = legacy.filter(isSignal);
          doomed = signals.filter(theirs);
          for (const m of new Set(signals.map(mode))) {
            const left = signals.filter((item) => mode(item) === m && !theirs(item));
            if (left.length === 0) doomed.push(...legacy.filter((item) => sk(item) === `${m}#vehicle`));
          }
        }
        const keys = doomed.map((item) => ({ vehicleId: item.vehicleId, sk: item.sk }) as Item);
        found += keys.length;
        if (!context.dryRun && keys.length > 0) await batchDelete(ddb, table, keys);
      }
      return {
        place: 'state',
        where: `DynamoDB table ${table}`,
        unit: context.subject.kind === 'user' ? 'signals' : 'items',
        found,
        removed: context.dryRun ? 0 : found,
        note:
          context.subject.kind === 'user'
            ? `of ${vehicles.length} vehicles: the signals from the user's removed deliveries`
            : undefined,
      };
    },
  };
}

type StateItem = Record<string, AttributeValue>;

/**
 * Removes the signals that came from `eventIds` from one vehicle-and-mode item (the whole item when none
 * is left), conditional on the item's version; when the state function wrote in between, reads it again
 * and redoes it. Returns how many signals it removed (found, on a dry run).
 */
async function eraseSignals(
  ddb: DynamoDBClient,
  table: string,
  first: StateItem,
  eventIds: ReadonlySet<string>,
  dryRun: boolean,
): Promise<number> {
  let item: StateItem | undefined = first;
  for (let attempt = 0; attempt < STATE_WRITE_ATTEMPTS && item; attempt++) {
    const { state, version } = decodeStateItem(item);
    const left = withoutEvents(state, eventIds);
    const removed = Object.keys(state.signals).length - (left ? Object.keys(left.signals).length : 0);
    if (removed === 0 || dryRun) return removed;
    const condition = {
      ConditionExpression: '#version = :expected',
      ExpressionAttributeNames: { '#version': 'version' },
      ExpressionAttributeValues: { ':expected': { N: String(version) } },
    };
    try {
      if (left)
        await ddb.send(
          new PutItemCommand({ TableName: table, Item: encodeStateItem(left, version + 1), ...condition }),
        );
      else
        await ddb.send(
          new DeleteItemCommand({ TableName: table, Key: { vehicleId: item.vehicleId, sk: item.sk }, ...condition }),
        );
      return removed;
    } catch (err) {
      if (
        !(err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException')
      )
        throw err;
      const again: { Item?: StateItem } = await ddb.send(
        new GetItemCommand({ TableName: table, Key: { vehicleId: item.vehicleId, sk: item.sk }, ConsistentRead: true }),
      );
      item = again.Item;
    }
  }
  if (item) throw new Error(`the state item of ${item.vehicleId?.S} (${item.sk?.S}) kept changing; erase again`);
  return 0;
}

/**
 * The dedupe table: counts the items of the removed records' event ids and keeps them (see the note): the
 * receipt says they are there and why.
 */
export function dedupeTablePlace(ddb: DynamoDBClient, table: string): ErasurePlace {
  return {
    place: 'dedupe',
    async erase(context) {
      const keys = [...new Set([...context.eventIds].map(dedupeKey))].sort();
      let found = 0;
      // Only what is there counts: an item may have expired already.
      for (let i = 0; i < keys.length; i += 100) {
        const { BatchGetItemCommand } = await import('@aws-sdk/client-dynamodb');
        let ask: Item[] | undefined = keys.slice(i, i + 100).map((k) => ({ eventId: { S: k } }));
        const present: Item[] = [];
        for (let attempt = 0; ask?.length && attempt < 8; attempt++) {
          const out = await ddb.send(
            new BatchGetItemCommand({ RequestItems: { [table]: { Keys: ask, ProjectionExpression: 'eventId' } } }),
          );
          present.push(...((out.Responses?.[table] ?? []) as Item[]));
          ask = out.UnprocessedKeys?.[table]?.Keys as Item[] | undefined;
        }
        if (ask?.length) throw new Error(`DynamoDB left ${ask.length} keys unprocessed in ${table}`);
        found += present.length;
      }
      // Kept on purpose: an item is a random event id and its expiry, nothing about a person, and while it
      // lasts a redelivery of an erased event is dropped as a duplicate instead of stored as new data.
      return {
        place: 'dedupe',
        where: `DynamoDB table ${table}`,
        unit: 'items',
        found,
        removed: 0,
        note:
          found > 0
            ? 'kept on purpose: event ids only (no personal data), expiring within the deduplication window; while they last, a redelivery of an erased event is dropped as a duplicate'
            : undefined,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Buckets: quarantine, reports, Athena results
// ---------------------------------------------------------------------------------------------------

/**
 * The quarantine bucket: each object's deliveries (base64 bodies, decoded to be searched) that are the
 * subject's go; an object left with others is rewritten (their lines byte for byte), one left empty is
 * deleted, and the old versions of both go. Recovery's markers hold event ids only and are left alone.
 */
export function quarantinePlace(s3: S3Client, bucket: string): ErasurePlace {
  const store = s3ErasableObjects(s3, bucket);
  return {
    place: 'quarantine',
    async erase(context) {
      const result = { found: 0, rewritten: 0, deleted: 0, versionsDeleted: 0 };
      for (const key of await store.list(`${QUARANTINE_PREFIX}/`)) {
        const batch = key.endsWith('.ndjson.gz');
        if (!batch && !key.endsWith('.json')) continue;
        const bytes = await store.get(key);
        const text = batch ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
        const lines = batch ? text.split('\n') : [text];
        const kept: string[] = [];
        let removed = 0;
        for (const line of lines) {
          if (line === '') {
            kept.push(line);
            continue;
          }
          let belongs = false;
          try {
            belongs = deliveryBelongs(JSON.parse(line), context.subject, context.erasedAt);
          } catch {
            belongs = line.includes(context.subject.id);
          }
          if (belongs) removed++;
          else kept.push(line);
        }
        if (removed === 0) continue;
        result.found += removed;
        if (context.dryRun) continue;
        if (kept.every((l) => l === '')) {
          await store.delete(key);
          result.deleted++;
        } else {
          await store.put(key, gzipSync(Buffer.from(kept.join('\n'), 'utf8')));
          result.rewritten++;
        }
        result.versionsDeleted += (await store.deleteNoncurrentVersions?.(key)) ?? 0;
      }
      return {
        place: 'quarantine',
        where: `s3://${bucket}/${QUARANTINE_PREFIX}/`,
        unit: 'deliveries',
        found: result.found,
        removed: context.dryRun ? 0 : result.found,
        rewritten: result.rewritten,
        deleted: result.deleted,
        versionsDeleted: result.versionsDeleted,
      };
    },
  };
}

/**
 * The work bucket's run reports (`runs/` of the subscription workflow, `reconcile/` of reconcile): each
 * JSON object naming the id loses the entries that name it (see {@link pruneReport}) or is deleted when
 * nothing else is left. Counts objects.
 */
export function reportsPlace(s3: S3Client, bucket: string, prefixes = ['runs/', 'reconcile/']): ErasurePlace {
  const store = s3ErasableObjects(s3, bucket);
  return {
    place: 'reports',
    async erase(context) {
      let found = 0;
      let rewritten = 0;
      let deleted = 0;
      let versionsDeleted = 0;
      for (const prefix of prefixes) {
        for (const key of await store.list(prefix)) {
          const text = (await store.get(key)).toString('utf8');
          if (!text.includes(context.subject.id)) continue;
          let decision: ReturnType<typeof pruneReport>;
          try {
            decision = pruneReport(JSON.parse(text), context.subject);
          } catch {
            decision = { action: 'delete' }; // not JSON, and it names the id
          }
          if (decision.action === 'keep') continue;
          found++;
          if (context.dryRun) continue;
          if (decision.action === 'delete') {
            await store.delete(key);
            deleted++;
          } else {
            await store.put(key, Buffer.from(JSON.stringify(decision.value), 'utf8'));
            rewritten++;
          }
          versionsDeleted += (await store.deleteNoncurrentVersions?.(key)) ?? 0;
        }
      }
      return {
        place: 'reports',
        where: `s3://${bucket}/{${prefixes.join(',')}}`,
        unit: 'objects',
        found,
        removed: context.dryRun ? 0 : found,
        rewritten,
        deleted,
        versionsDeleted,
        note: "entries naming the id removed; a rewritten report's totals still count them",
      };
    },
  };
}

/**
 * The Athena results bucket: query results and the silent-vehicles reports are caches (they expire and
 * can be produced again), so any object carrying the id is deleted whole.
 */
export function athenaResultsPlace(s3: S3Client, bucket: string): ErasurePlace {
  const store = s3ErasableObjects(s3, bucket);
  return {
    place: 'athena-results',
    async erase(context) {
      let found = 0;
      let versionsDeleted = 0;
      for (const key of await store.list('')) {
        let bytes = await store.get(key);
        if (key.endsWith('.gz')) bytes = gunzipSync(bytes);
        if (!bytes.includes(context.subject.id)) continue;
        found++;
        if (context.dryRun) continue;
        await store.delete(key);
        versionsDeleted += (await store.deleteNoncurrentVersions?.(key)) ?? 0;
      }
      return {
        place: 'athena-results',
        where: `s3://${bucket}/`,
        unit: 'objects',
        found,
        removed: context.dryRun ? 0 : found,
        deleted: context.dryRun ? 0 : found,
        versionsDeleted,
        note: 'query results and silent-vehicles reports (caches)',
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Dead-letter queues
// ---------------------------------------------------------------------------------------------------

export interface DeadLetterQueue {
  /** A name for the receipt (delivery, state). */
  readonly name: string;
  readonly url: string;
}

export interface DeadLetterOptions {
  /** How long received messages stay hidden while the sweep runs. @default 600 */
  readonly visibilitySeconds?: number;
  /** Long-poll seconds of each receive (long polling asks every SQS server, not a sample). @default 1 */
  readonly waitSeconds?: number;
}

/**
 * The dead-letter queues: every message is received (and so hidden for `visibilitySeconds`), the
 * subject's older ones are deleted, and the others are made visible again at the end, untouched.
 */
export function deadLettersPlace(
  sqs: SQSClient,
  queues: readonly DeadLetterQueue[],
  options: DeadLetterOptions = {},
): ErasurePlace {
  return {
    place: 'dead-letters',
    async erase(context) {
      const results: PlaceResult[] = [];
      for (const queue of queues) {
        const seen = new Set<string>();
        const keep: { Id: string; ReceiptHandle: string }[] = [];
        const doomed: { Id: string; ReceiptHandle: string }[] = [];
        for (;;) {
          const out = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queue.url,
              MaxNumberOfMessages: 10,
              VisibilityTimeout: options.visibilitySeconds ?? 600,
              WaitTimeSeconds: options.waitSeconds ?? 1,
              MessageSystemAttributeNames: ['SentTimestamp'],
            }),
          );
          const messages = out.Messages ?? [];
          if (messages.length === 0) break;
          for (const m of messages) {
            if (!m.MessageId || !m.ReceiptHandle || seen.has(m.MessageId)) continue;
            seen.add(m.MessageId);
            const sent = m.Attributes?.SentTimestamp ? new Date(Number(m.Attributes.SentTimestamp)) : undefined;
            const entry = { Id: String(seen.size), ReceiptHandle: m.ReceiptHandle };
            if (messageBelongs(m.Body ?? '', sent, context.subject, context.erasedAt)) doomed.push(entry);
            else keep.push(entry);
          }
        }
        const found = doomed.length;
        if (context.dryRun) keep.push(...doomed);
        else
          for (let i = 0; i < doomed.length; i += 10) {
            const out = await sqs.send(
              new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: doomed.slice(i, i + 10) }),
            );
            if (out.Failed?.length)
              throw new Error(`SQS did not delete ${out.Failed.length} messages of ${queue.name}`);
          }
        for (let i = 0; i < keep.length; i += 10) {
          await sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queue.url,
              Entries: keep.slice(i, i + 10).map((e) => ({ ...e, VisibilityTimeout: 0 })),
            }),
          );
        }
        results.push({
          place: 'dead-letters',
          where: `SQS queue ${queue.name} (${queue.url})`,
          unit: 'messages',
          found,
          removed: context.dryRun ? 0 : found,
          note: `${seen.size} messages read; messages another reader held meanwhile were not seen (ingest's ledger filter drops them if redriven)`,
        });
      }
      return results;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The compaction lock
// ---------------------------------------------------------------------------------------------------

/** The compaction lock's one item (lib/compaction.ts). */
const LOCK_KEY = { pk: { S: 'compaction' } };

export class LockBusyError extends Error {
  constructor(holder: string, until: string) {
    super(
      `the compaction lock is held by ${holder} until ${until} at the latest; start the erasure again after it ends`,
    );
    this.name = 'Erasure.LockBusy';
  }
}

/**
 * Takes the compaction's lease (the item compaction takes, by the same condition) so that no compaction
 * runs while the erasure rewrites the lake, and no second erasure either. `holder` is what compaction's
 * "Who holds the lock?" shows. Throws {@link LockBusyError} naming the holder when it is taken.
 */
export async function takeCompactionLock(
  ddb: DynamoDBClient,
  table: string,
  owner: string,
  holder: string,
  leaseMs: number,
  now = Date.now(),
): Promise<void> {
  try {
    await ddb.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          ...LOCK_KEY,
          owner: { S: owner },
          execution: { S: holder },
          expiresAt: { N: String(now + leaseMs) },
        },
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
        ExpressionAttributeValues: { ':now': { N: String(now) } },
      }),
    );
  } catch (err) {
    if (
      !(err instanceof ConditionalCheckFailedException) &&
      (err as { name?: string }).name !== 'ConditionalCheckFailedException'
    )
      throw err;
    const out = await ddb.send(new GetItemCommand({ TableName: table, Key: LOCK_KEY, ConsistentRead: true }));
    const until = out.Item?.expiresAt?.N ? new Date(Number(out.Item.expiresAt.N)).toISOString() : 'now';
    throw new LockBusyError(out.Item?.execution?.S ?? 'a run that has just ended', until);
  }
}

/** Gives the lease back, only if this erasure still holds it (an expired one may be someone else's now). */
export async function releaseCompactionLock(ddb: DynamoDBClient, table: string, owner: string): Promise<void> {
  try {
    await ddb.send(
      new DeleteItemCommand({
        TableName: table,
        Key: LOCK_KEY,
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': { S: owner } },
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
  }
}

/**
 * After the execution that holds the lease was stopped or timed out (neither runs the state machine's
 * Catch): the lease is cut to `graceMs` from now rather than deleted, because a task of that execution may
 * still be running (stopping an execution does not stop its Lambda call; the erase function's timeout
 * bounds it). Only while that very execution holds it: the holder names it as `(<arn>)`, matched with the
 * parentheses so that `…:erase-7` never matches `…:erase-7-retry`. Returns whether it cut one.
 */
export async function releaseLockOfExecution(
  ddb: DynamoDBClient,
  table: string,
  executionArn: string,
  graceMs: number,
  now = Date.now(),
): Promise<boolean> {
  try {
    await ddb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: LOCK_KEY,
        UpdateExpression: 'SET expiresAt = :until',
        ConditionExpression: 'contains(#execution, :holder) AND expiresAt > :until',
        ExpressionAttributeNames: { '#execution': 'execution' },
        ExpressionAttributeValues: { ':holder': { S: `(${executionArn})` }, ':until': { N: String(now + graceMs) } },
      }),
    );
    return true;
  } catch (err) {
    if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------------

/** Where a deployed instance keeps data; an absent one is a part turned off. */
export interface DeployedLocations {
  readonly lakeBucket: string;
  readonly rawPrefix: string;
  /** The landing zone's prefix in the lake bucket. @default DEFAULT_LANDING_PREFIX */
  readonly landingPrefix?: string;
  readonly workBucket: string;
  readonly stateTable?: string;
  readonly dedupTable?: string;
  readonly quarantineBucket?: string;
  readonly deadLetterQueueUrl?: string;
  readonly stateDeadLetterQueueUrl?: string;
  readonly athenaResultsBucket?: string;
}

export interface DeployedClients {
  readonly s3: S3Client;
  readonly ddb: DynamoDBClient;
  readonly sqs: SQSClient;
}

/**
 * Places that belong to other parts of the erasure: the curated layer (Athena) and Smartcar's connection.
 * Absent ones are skipped; `smartcar` runs only when the request asks for it.
 */
export interface PlaceSlots {
  readonly curated?: ErasurePlace;
  readonly smartcar?: ErasurePlace;
}

/**
 * The places after the raw zone, in order, by name (the state machine runs them one task each): the
 * curated layer (slot), state, dedupe, landing, quarantine, dead letters, reports, Athena results, Smartcar (slot).
 */
export function deployedPlaces(
  where: DeployedLocations,
  clients: DeployedClients,
  slots: PlaceSlots = {},
  deadLetters: DeadLetterOptions = {},
): Map<string, ErasurePlace> {
  const places = new Map<string, ErasurePlace>();
  places.set('raw-versions', rawVersionsPlace(clients.s3, where.lakeBucket, where.rawPrefix));
  if (slots.curated) places.set('curated', slots.curated);
  if (where.stateTable) places.set('state', stateTablePlace(clients.ddb, where.stateTable));
  if (where.dedupTable) places.set('dedupe', dedupeTablePlace(clients.ddb, where.dedupTable));
  // Always: with the queue buffer too, objects an earlier Firehose configuration left may still wait there.
  places.set('landing', landingPlace(clients.s3, where.lakeBucket, where.landingPrefix));
  if (where.quarantineBucket) places.set('quarantine', quarantinePlace(clients.s3, where.quarantineBucket));
  const queues = [
    where.deadLetterQueueUrl ? { name: 'delivery dead letters', url: where.deadLetterQueueUrl } : undefined,
    where.stateDeadLetterQueueUrl ? { name: 'state dead letters', url: where.stateDeadLetterQueueUrl } : undefined,
  ].filter((q): q is DeadLetterQueue => q !== undefined);
  if (queues.length) places.set('dead-letters', deadLettersPlace(clients.sqs, queues, deadLetters));
  places.set('reports', reportsPlace(clients.s3, where.workBucket));
  if (where.athenaResultsBucket)
    places.set('athena-results', athenaResultsPlace(clients.s3, where.athenaResultsBucket));
  if (slots.smartcar) places.set('smartcar', slots.smartcar);
  return places;
}
