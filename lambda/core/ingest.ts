/**
 * Turns a batch of queued deliveries into lake objects: one gzip NDJSON object per partition, written
 * concurrently. A message that cannot be decoded, or whose object could not be written, is reported as
 * failed so that only it is delivered again (and, after the queue's retries, lands in the dead-letter
 * queue): nothing is dropped silently.
 */
import { type DeliveryMessage, type LakeRecord, METRIC } from '../contract';
import { encodeNdjsonGzip, groupByPartition, objectKey, toLakeRecord } from './lake';
import type { CoreLogger } from './logger';
import { type CoreMetrics, noMetrics } from './metrics';
import { nothingSeen, type SeenStore } from './seen-store';
import { type StateStore, statesOf } from './vehicle-state';

export interface QueuedMessage {
  readonly id: string;
  readonly body: string;
}

export interface IngestDeps {
  /** Writes one object; resolves once it is durable. */
  readonly putObject: (key: string, body: Buffer) => Promise<void>;
  readonly rawPrefix: string;
  readonly logger: CoreLogger;
  readonly metrics?: CoreMetrics;
  /**
   * Publish the batch's figures with every batch (Deliveries by EventType and Mode, RecordsWritten,
   * ObjectsWritten, DuplicatesDropped, IngestFailures, IngestLag): each name and dimension set is a custom
   * metric billed for every hour it is published, and no alarm reads them. Without, IngestFailures is
   * published only when a batch has failures (nearly free), and the log line has the same figures.
   * @default true
   */
  readonly detailedMetrics?: boolean;
  /** Which eventIds are already stored. @default nothing is remembered across batches */
  readonly seen?: SeenStore;
  /**
   * Current state per vehicle, updated after each object is durably in the lake. Its failures are logged
   * and counted, never fail or delay the batch. @default no state kept
   */
  readonly state?: StateStore;
  /**
   * Hands the key of each object just made durable to the vehicle-state updater (in AWS: a message on the
   * state queue; the state function reads the object back and applies it), so that keeping the state
   * table costs the ingest path one small message per object, not a write per vehicle and signal. Its
   * failures are logged and counted, never fail or delay the batch. @default no state kept
   */
  readonly stateNotify?: (lakeKey: string) => Promise<unknown>;
  /**
   * Publishes the normalized events of records just made durable (see fleet-events.ts); its failures are
   * retried and counted there, and never fail the batch. @default no events
   */
  readonly publish?: (records: LakeRecord[], lakeKey: string) => Promise<unknown>;
  /**
   * The erasure ledger's filter (see erasure.ts): records of an erased user or vehicle received before
   * their erasure are dropped, not stored, so a redrive, a recovery or a delivery that waited in the
   * queue while the erasure ran cannot bring them back. A ledger that cannot be read fails the batch
   * (retried, then dead-lettered): storing without knowing could undo an erasure. @default no ledger
   */
  readonly erased?: () => Promise<((record: LakeRecord) => boolean) | undefined>;
  readonly now?: () => Date;
}

export interface IngestResult {
  readonly failedIds: string[];
  readonly recordsWritten: number;
  readonly objectsWritten: string[];
  /** Messages whose eventId appeared earlier in the same batch: acknowledged, stored once. */
  readonly duplicates: number;
  /** Records of an erased subject received before its erasure: acknowledged, not stored. */
  readonly erased: number;
}

export async function ingestBatch(messages: readonly QueuedMessage[], deps: IngestDeps): Promise<IngestResult> {
  const now = (deps.now ?? (() => new Date()))();
  const metrics = deps.metrics ?? noMetrics;
  const failedIds: string[] = [];
  const decoded: { id: string; record: LakeRecord }[] = [];
  // Smartcar retries and SQS redelivers: the same eventId can arrive twice in one batch. Keep the first;
  // the duplicate's message succeeds with it. Across batches, the seen store says what is stored already.
  const duplicatesOf = new Map<string, string[]>(); // eventId → ids of the later messages carrying it
  let duplicates = 0;
  for (const m of messages) {
    try {
      const record = toLakeRecord(JSON.parse(m.body) as DeliveryMessage, now);
      const later = duplicatesOf.get(record.event_id);
      if (later) {
        later.push(m.id);
        duplicates++;
        continue;
      }
      duplicatesOf.set(record.event_id, []);
      decoded.push({ id: m.id, record });
    } catch (err) {
      deps.logger.error('undecodable queue message; leaving it for retry and the dead-letter queue', {
        messageId: m.id,
        reason: err instanceof Error ? err.message : String(err),
      });
      failedIds.push(m.id);
    }
  }

  let erased = 0;
  if (deps.erased && decoded.length > 0) {
    let isErased: ((record: LakeRecord) => boolean) | undefined;
    try {
      isErased = await deps.erased();
    } catch (err) {
      deps.logger.error('could not read the erasure ledger; leaving the batch for retry', {
        reason: err instanceof Error ? err.message : String(err),
      });
      return { failedIds: messages.map((m) => m.id), recordsWritten: 0, objectsWritten: [], duplicates: 0, erased: 0 };
    }
    if (isErased) {
      const before = decoded.length;
      decoded.splice(0, decoded.length, ...decoded.filter((d) => !isErased(d.record)));
      erased = before - decoded.length;
      // Counts only: which subject it was is exactly what must not be written down.
      if (erased > 0) deps.logger.info('dropped records of erased subjects', { records: erased });
    }
  }

  const seen = deps.seen ?? nothingSeen;
  let fresh: Set<string>;
  try {
    fresh = await seen.unseen(decoded.map((d) => d.record.event_id));
  } catch (err) {
    deps.logger.warn('deduplication look-up failed; storing the batch as new', { reason: String(err) });
    fresh = new Set(decoded.map((d) => d.record.event_id));
  }
  const toWrite = decoded.filter((d) => fresh.has(d.record.event_id));
  duplicates += decoded.length - toWrite.length;

  const groups = groupByPartition(deps.rawPrefix, toWrite);
  const objectsWritten: string[] = [];
  let recordsWritten = 0;
  const byKind = new Map<string, { EventType: string; Mode: string; n: number }>();
  await Promise.all(
    [...groups].map(async ([prefix, items]) => {
      const records = items.map((i) => i.record);
      const ids = items.map((i) => i.id);
      const key = objectKey(prefix, records, ids);
      try {
        await deps.putObject(key, encodeNdjsonGzip(records));
        objectsWritten.push(key);
        recordsWritten += records.length;
        for (const r of records) {
          const kind = `${r.event_type}\u0000${r.mode}`;
          const k = byKind.get(kind) ?? { EventType: r.event_type.slice(0, 64), Mode: r.mode, n: 0 };
          k.n++;
          byKind.set(kind, k);
        }
        await seen.markSeen(records.map((r) => r.event_id)).catch((err: unknown) => {
          // Stored either way; at worst a later retry of these events is stored again.
          deps.logger.warn('could not remember stored eventIds', { key, reason: String(err) });
        });
        if (deps.publish) {
          await deps.publish(records, key).catch((err: unknown) => {
            deps.logger.warn('could not publish events', { key, reason: String(err) });
          });
        }
        if (deps.stateNotify && records.some((r) => r.event_type === 'VEHICLE_STATE')) {
          await deps.stateNotify(key).catch((err: unknown) => {
            // The lake has the records; `npm run rebuild-state` rebuilds the table from it.
            metrics.count(METRIC.stateUpdateFailures, 1);
            deps.logger.warn('could not hand the object to the vehicle state updater', { key, reason: String(err) });
          });
        }
        if (deps.state) {
          const updates = statesOf(records);
          if (updates.length > 0) {
            await deps.state.apply(updates).catch((err: unknown) => {
              // The lake has the records; `npm run rebuild-state` rebuilds the table from it.
              metrics.count(METRIC.stateUpdateFailures, updates.length);
              deps.logger.warn('could not update the vehicle state table', { key, reason: String(err) });
            });
          }
        }
      } catch (err) {
        deps.logger.error('could not write lake object; its messages will be retried', {
          key,
          records: records.length,
          reason: err instanceof Error ? err.message : String(err),
        });
        // A duplicate is only as safe as its first copy: retry it too.
        failedIds.push(...ids, ...records.flatMap((r) => duplicatesOf.get(r.event_id) ?? []));
      }
    }),
  );
  const failed = new Set(failedIds);
  const lag = toWrite
    .filter((d) => !failed.has(d.id))
    .reduce((max, d) => Math.max(max, now.getTime() - Date.parse(d.record.received_at)), 0);
  if (deps.detailedMetrics ?? true) {
    // Deliveries stored, by event type and mode: one metric line per kind per batch, not one per request.
    for (const { EventType, Mode, n } of byKind.values()) metrics.count(METRIC.deliveries, n, { EventType, Mode });
    metrics.count(METRIC.recordsWritten, recordsWritten);
    metrics.count(METRIC.objectsWritten, objectsWritten.length);
    metrics.count(METRIC.duplicatesDropped, duplicates);
    metrics.count(METRIC.ingestFailures, failedIds.length);
    if (recordsWritten > 0) metrics.milliseconds(METRIC.ingestLag, lag);
  } else if (failedIds.length > 0) {
    // Only a failing batch publishes: billed for the hours something failed, not for every hour of traffic.
    metrics.count(METRIC.ingestFailures, failedIds.length);
  }
  deps.logger.info('ingested batch', {
    messages: messages.length,
    recordsWritten,
    objectsWritten: objectsWritten.length,
    duplicates,
    failed: failedIds.length,
    lagMs: lag,
  });
  return { failedIds, recordsWritten, objectsWritten, duplicates, erased };
}
