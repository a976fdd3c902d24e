/**
 * The quarantine: deliveries answered 401 only because their signature did not match, kept outside the
 * lake so that a token mistake loses nothing (Smartcar drops a delivery after its fourth failed attempt,
 * about three minutes after the first).
 *
 * Writing: the verification function hands each such delivery to a queue (one SendMessage, like an
 * accepted delivery) and the quarantine function writes them in batches, one gzip NDJSON object per batch,
 * within a budget per clock hour for the whole stack (count and body bytes) sized from the stated peak: a
 * token mistake at the peak for a whole hour, every attempt of every delivery, fits with 25% to spare.
 * A forged flood is bounded by cost (the front door's throttle bounds the requests, the budget what is
 * stored), never by turning genuine deliveries away below the peak. What the budget turns away is counted.
 *
 * Recovery streams: it walks the quarantine in key (time) order from `since`, re-verifies each record
 * with the tokens now known, and hands the authentic ones to the normal ingest path as it reads. Its
 * progress lives beside the quarantine, one marker per object (the eventIds it settled there), so a run
 * stopped by its deadline, a crash or an operator resumes where it was, and no eventId is delivered twice
 * across objects, runs or Smartcar's retries.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  DELIVERY_MESSAGE_VERSION,
  type DeliveryMessage,
  METRIC,
  QUARANTINE_PREFIX,
  QUARANTINE_RECORD_VERSION,
  type QuarantinedDelivery,
  RECOVERY_PREFIX,
} from '../contract';
import { bodyHashId, parseBody, readEnvelope } from './envelope';
import type { CoreLogger } from './logger';
import { type CoreMetrics, noMetrics } from './metrics';
import type { TokenSource } from './receive';
import { isValidSignature } from './signature';

/** Seconds after the first attempt at which Smartcar retries a failed delivery (then it drops it). */
export const SMARTCAR_RETRY_OFFSETS_S = [25, 75, 175] as const;

export interface QuarantineCaps {
  /** Most deliveries kept per clock hour, across every writer. */
  readonly maxPerHour: number;
  /** Most body bytes kept per clock hour, across every writer. */
  readonly maxBytesPerHour: number;
}

// ---------------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------------

function stampOf(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d+)Z$/, '$1Z');
}

/** `quarantine/dt=YYYY-MM-DD/hour=HH/`: the prefix of the objects written in `at`'s clock hour. */
export function quarantineHourPrefix(at: Date): string {
  const iso = at.toISOString();
  return `${QUARANTINE_PREFIX}/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
}

/**
 * `quarantine/dt=…/hour=…/<write time>-<records>n-<bytes>b-<digest>.ndjson.gz`: in time order within the
 * hour, and carrying its record and byte counts so that the budget is a listing, not a read.
 */
export function quarantineObjectKey(at: Date, records: number, bytes: number, content: Uint8Array): string {
  const digest = createHash('sha256').update(content).digest('hex').slice(0, 20);
  return `${quarantineHourPrefix(at)}${stampOf(at)}-${records}n-${bytes}b-${digest}.ndjson.gz`;
}

/** What a quarantine key says about its object; undefined for keys outside the layout. */
export function quarantineObjectInfo(key: string): { at: Date; records: number; bytes: number } | undefined {
  const batch = /\/(\d{8})T(\d{6})(\d{3})Z-(\d+)n-(\d+)b-[0-9a-f]+\.ndjson\.gz$/.exec(key);
  // Objects written before batching: one record each, `<time>-<digest>.json`.
  const single = batch ? undefined : /\/(\d{8})T(\d{6})(\d{3})Z-[0-9a-f]+\.json$/.exec(key);
  const m = batch ?? single;
  if (!m || !key.startsWith(`${QUARANTINE_PREFIX}/`)) return undefined;
  const [d, t, ms] = [m[1], m[2], m[3]];
  const at = new Date(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4)}.${ms}Z`,
  );
  if (Number.isNaN(at.getTime())) return undefined;
  return batch ? { at, records: Number(batch[4]), bytes: Number(batch[5]) } : { at, records: 1, bytes: 0 };
}

/** The key of recovery's marker for a quarantine object. */
export function recoveryMarkerKey(objectKey: string): string {
  return `${RECOVERY_PREFIX}/${objectKey}.json`;
}

function isQuarantinedDelivery(value: unknown): value is QuarantinedDelivery {
  const v = value as QuarantinedDelivery;
  return (
    v?.v === QUARANTINE_RECORD_VERSION &&
    typeof v.bodyBase64 === 'string' &&
    typeof v.signature === 'string' &&
    typeof v.receivedAt === 'string'
  );
}

/** One queued rejection (the quarantine queue's message body); throws when it is not one. */
export function decodeQuarantined(text: string | Uint8Array): QuarantinedDelivery {
  const value = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  if (!isQuarantinedDelivery(value)) throw new Error('not a quarantined delivery');
  return value;
}

/** The records of a quarantine object, in order; a line that is not a record is `undefined`. */
export function decodeQuarantineObject(key: string, bytes: Uint8Array): (QuarantinedDelivery | undefined)[] {
  const text = key.endsWith('.gz') ? gunzipSync(bytes).toString('utf8') : Buffer.from(bytes).toString('utf8');
  const lines = key.endsWith('.ndjson.gz') ? text.split('\n').filter((l) => l !== '') : [text];
  return lines.map((line) => {
    try {
      return decodeQuarantined(line);
    } catch {
      return undefined;
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------

/** Keys under `prefix` after `startAfter`, in key order (S3 ListObjectsV2, or a folder). */
export type ListKeys = (prefix: string, startAfter?: string) => AsyncIterable<string>;

/**
 * The stack-wide tally of the current clock hour, read from the object keys (each carries its counts).
 * Each look lists only what was written since the last one, less a minute for writes that finished out
 * of order; concurrent writers can each pass the budget by at most the batch they are writing.
 */
export class QuarantineBudget {
  private prefix = '';
  private readonly counted = new Map<string, { records: number; bytes: number }>();
  private records = 0;
  private bytes = 0;
  private newest: Date | undefined;

  constructor(
    private readonly caps: QuarantineCaps,
    private readonly list: ListKeys,
  ) {}

  /** How many of the deliveries of `sizes` (body bytes, in order) still fit the hour of `now`. */
  async admit(sizes: readonly number[], now: Date): Promise<number> {
    const prefix = quarantineHourPrefix(now);
    if (prefix !== this.prefix) {
      this.prefix = prefix;
      this.counted.clear();
      this.records = 0;
      this.bytes = 0;
      this.newest = undefined;
    }
    const startAfter = this.newest ? `${prefix}${stampOf(new Date(this.newest.getTime() - 60_000))}` : undefined;
    for await (const key of this.list(prefix, startAfter)) this.count(key);
    let admitted = 0;
    let records = this.records;
    let bytes = this.bytes;
    for (const size of sizes) {
      if (records + 1 > this.caps.maxPerHour || bytes + size > this.caps.maxBytesPerHour) break;
      records++;
      bytes += size;
      admitted++;
    }
    return admitted;
  }

  /** Counts an object (one this writer just wrote, or one a listing found). */
  count(key: string): void {
    if (!key.startsWith(this.prefix) || this.counted.has(key)) return;
    const info = quarantineObjectInfo(key);
    if (!info) return;
    this.counted.set(key, info);
    this.records += info.records;
    this.bytes += info.bytes;
    if (!this.newest || info.at > this.newest) this.newest = info.at;
  }
}

export interface QuarantineWriterDeps {
  readonly put: (key: string, body: Buffer) => Promise<void>;
  readonly list: ListKeys;
  readonly caps: QuarantineCaps;
  readonly metrics?: CoreMetrics;
  readonly logger?: CoreLogger;
  /** Clock, for tests and simulations. */
  readonly now?: () => number;
}

export interface WriteResult {
  stored: number;
  dropped: number;
  /** The object written, if any. */
  key?: string;
}

/** Writes batches of rejected deliveries as quarantine objects, within the hourly budget. */
export class QuarantineWriter {
  private readonly budget: QuarantineBudget;
  private readonly now: () => number;

  constructor(private readonly deps: QuarantineWriterDeps) {
    this.budget = new QuarantineBudget(deps.caps, deps.list);
    this.now = deps.now ?? (() => Date.now());
  }

  /**
   * Keeps as many of `records` (in order) as the hour's budget allows, in one object. Resolves once
   * the object is stored; rejects when it could not be (the caller retries the whole batch).
   */
  async write(records: readonly QuarantinedDelivery[]): Promise<WriteResult> {
    if (records.length === 0) return { stored: 0, dropped: 0 };
    const at = new Date(this.now());
    const sizes = records.map((r) => Buffer.byteLength(r.bodyBase64, 'base64'));
    const admitted = await this.budget.admit(sizes, at);
    const kept = records.slice(0, admitted);
    const dropped = records.length - admitted;
    const metrics = this.deps.metrics ?? noMetrics;
    if (dropped > 0) {
      metrics.count(METRIC.quarantineDropped, dropped);
      this.deps.logger?.warn('quarantine budget for this hour reached: rejected deliveries not kept', {
        dropped,
        maxPerHour: this.deps.caps.maxPerHour,
        maxBytesPerHour: this.deps.caps.maxBytesPerHour,
      });
    }
    if (kept.length === 0) return { stored: 0, dropped };
    const bytes = sizes.slice(0, admitted).reduce((a, b) => a + b, 0);
    const body = gzipSync(Buffer.from(kept.map((r) => `${JSON.stringify(r)}\n`).join('')));
    const key = quarantineObjectKey(at, kept.length, bytes, body);
    await this.deps.put(key, body);
    this.budget.count(key);
    metrics.count(METRIC.quarantined, kept.length);
    this.deps.logger?.info('quarantined rejected deliveries', { key, records: kept.length, bytes });
    return { stored: kept.length, dropped, key };
  }
}

// ---------------------------------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------------------------------

/** The quarantine as recovery sees it: a bucket, or a folder beside the local lake. */
export interface QuarantineStore {
  /** Keys under `prefix` after `startAfter`, in key order, page by page. */
  readonly keys: ListKeys;
  get(key: string): Promise<Buffer>;
  put(key: string, body: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
}

/** The tokens a quarantined delivery may be re-verified with: the current one, and the previous one during its grace period. */
export async function tokensToTry(source: TokenSource): Promise<string[]> {
  const current = await source.get();
  const previous = await source.previous?.();
  return previous ? [current, previous] : [current];
}

export interface RecoveryOptions {
  readonly store: QuarantineStore;
  /** The tokens to re-verify with: the current one, and the previous one while it is known. */
  readonly tokens: readonly string[];
  /** Only deliveries received at or after this time. @default all */
  readonly since?: Date;
  /** Only deliveries received before this time. @default all */
  readonly until?: Date;
  /** Count, verify and report, but hand nothing to ingest and change nothing. */
  readonly dryRun?: boolean;
  /** Which of these eventIds the lake already holds. */
  readonly isStored: (eventIds: string[]) => Promise<Set<string>>;
  /** Hands up to 10 authentic deliveries to the normal ingest path; resolves once that path has them durably. */
  readonly deliver: (messages: DeliveryMessage[]) => Promise<void>;
  /** Asked between steps: true stops the run where it is (e.g. the function's time is nearly up). @default never */
  readonly shouldStop?: () => boolean;
  /** Deliveries handed over between two progress markers (in calls of 10, run concurrently). @default 100 */
  readonly groupSize?: number;
  readonly logger: CoreLogger;
  readonly metrics?: CoreMetrics;
}

export interface RecoveryReport {
  /** Quarantined deliveries re-verified in this run. */
  examined: number;
  /** Authentic ones handed to ingest in this run. */
  recovered: number;
  /** Ones that still do not verify (forgeries, or a token not known yet): they stay until they expire. */
  stillRejected: number;
  /** Authentic ones whose eventId the lake (or an earlier recovery) already has: not handed over again. */
  alreadyStored: number;
  /** Records or objects that are not quarantined deliveries (left in place). */
  unreadable: number;
  /** False when the run stopped early (`shouldStop`): run it again to go on where it stopped. */
  done: boolean;
}

/** Progress of recovery in one quarantine object. */
interface Marker {
  v: 1;
  /** eventIds of this object's authentic records that are in the lake (handed over or already there). */
  eventIds: string[];
  /** Every record of the object is settled: it need not be read again (and was deleted). */
  complete: boolean;
}

/** Smartcar retries a delivery for about three minutes; batches and queues add a few more: markers this far back count. */
const RETRY_LOOKBACK_MS = 15 * 60_000;

/**
 * Re-verifies the quarantined deliveries received in the time range, streaming: objects are read in key
 * (write time) order and their authentic records handed over as they are read, 100 at a time; after
 * each group the object's marker records what is settled. Authentic records whose eventId is already
 * settled (Smartcar's retries, an earlier run, or the lake itself) are not handed over again. An object
 * whose records are all settled is deleted; forgeries stay until they expire.
 *
 * Stopped (deadline, crash), a run resumes from the markers: nothing already handed over is handed over
 * again, except after a crash between the queue taking a group and its marker being written (at most
 * one group, which the eventId deduplication downstream keeps once).
 */
export async function recoverRejected(options: RecoveryOptions): Promise<RecoveryReport> {
  if (options.tokens.length === 0) throw new Error('no token to re-verify with');
  const { store, since, until, dryRun } = options;
  const groupSize = Math.max(10, options.groupSize ?? 100);
  const shouldStop = options.shouldStop ?? (() => false);
  const report: RecoveryReport = {
    examined: 0,
    recovered: 0,
    stillRejected: 0,
    alreadyStored: 0,
    unreadable: 0,
    done: false,
  };
  const settled = new Set<string>(); // eventIds in the lake, or on their way there

  // Objects from since's hour on (a record is written after it is received); markers from a little
  // earlier, so that the retries of a delivery recovered from just before `since` are known.
  const objects = store
    .keys(`${QUARANTINE_PREFIX}/`, since ? quarantineHourPrefix(since) : undefined)
    [Symbol.asyncIterator]();
  const markers = store
    .keys(
      `${RECOVERY_PREFIX}/${QUARANTINE_PREFIX}/`,
      since ? `${RECOVERY_PREFIX}/${quarantineHourPrefix(new Date(since.getTime() - RETRY_LOOKBACK_MS))}` : undefined,
    )
    [Symbol.asyncIterator]();
  let nextMarker = await markers.next();

  const readMarker = async (markerKey: string): Promise<Marker | undefined> => {
    try {
      const m = JSON.parse((await store.get(markerKey)).toString('utf8')) as Marker;
      if (m?.v !== 1 || !Array.isArray(m.eventIds)) return undefined;
      for (const id of m.eventIds) settled.add(id);
      return m;
    } catch {
      return undefined; // unreadable: the object is read again; the lake's deduplication remains
    }
  };

  for (let next = await objects.next(); !next.done; next = await objects.next()) {
    const key = next.value;
    const info = quarantineObjectInfo(key);
    if (!info) continue;
    // Every marker up to this object: earlier objects' settled eventIds, and this object's own.
    let marker: Marker | undefined;
    const ownMarker = recoveryMarkerKey(key);
    while (!nextMarker.done && nextMarker.value <= ownMarker) {
      const m = await readMarker(nextMarker.value);
      if (nextMarker.value === ownMarker) marker = m;
      nextMarker = await markers.next();
    }
    if (marker?.complete) {
      if (!dryRun) await store.delete(key); // settled, but a crash came between its marker and its deletion
      continue;
    }
    if (shouldStop()) return finish(report, options, false);

    const bytes = await store.get(key);
    let records: (QuarantinedDelivery | undefined)[];
    try {
      records = decodeQuarantineObject(key, bytes);
    } catch {
      report.unreadable++;
      continue;
    }
    const ownIds = new Set(marker?.eventIds ?? []);
    let complete = true;
    let pending: { eventId: string; message: DeliveryMessage }[] = [];

    const flush = async () => {
      const group = pending;
      pending = [];
      if (group.length === 0) return;
      const stored = await options.isStored(group.map((g) => g.eventId));
      const fresh = group.filter((g) => !stored.has(g.eventId));
      report.alreadyStored += group.length - fresh.length;
      for (const g of group) if (stored.has(g.eventId)) ownIds.add(g.eventId);
      if (dryRun) {
        report.recovered += fresh.length;
        return;
      }
      const calls: (typeof fresh)[] = [];
      for (let i = 0; i < fresh.length; i += 10) calls.push(fresh.slice(i, i + 10));
      const results = await Promise.allSettled(calls.map((c) => options.deliver(c.map((g) => g.message))));
      let failure: unknown;
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') {
          report.recovered += calls[i].length;
          for (const g of calls[i]) ownIds.add(g.eventId);
        } else {
          failure ??= r.reason;
          for (const g of calls[i]) {
            // Not handed over: still to do, and not settled for this object's retries of it either.
            settled.delete(g.eventId);
            ownIds.delete(g.eventId);
          }
        }
      });
      await store.put(ownMarker, markerBody(ownIds, false));
      if (failure !== undefined) throw failure;
    };

    for (const record of records) {
      if (!record) {
        report.unreadable++;
        complete = false;
        continue;
      }
      const receivedAt = new Date(record.receivedAt);
      if ((since && receivedAt < since) || (until && receivedAt >= until)) {
        complete = false;
        continue;
      }
      report.examined++;
      const body = Buffer.from(record.bodyBase64, 'base64');
      if (!options.tokens.some((token) => isValidSignature(token, body, record.signature))) {
        report.stillRejected++;
        complete = false;
        continue;
      }
      const eventId = eventIdOf(body);
      if (settled.has(eventId)) {
        report.alreadyStored++;
        ownIds.add(eventId);
        continue;
      }
      settled.add(eventId);
      pending.push({
        eventId,
        message: {
          v: DELIVERY_MESSAGE_VERSION,
          bodyBase64: record.bodyBase64,
          receivedAt: record.receivedAt,
          requestId: record.requestId,
        },
      });
      if (pending.length >= groupSize) {
        await flush();
        if (shouldStop()) return finish(report, options, false);
      }
    }
    await flush();
    if (dryRun) continue;
    // The marker first, so that the eventIds stay known after the object is gone.
    await store.put(ownMarker, markerBody(ownIds, complete));
    if (complete) await store.delete(key);
  }
  return finish(report, options, true);
}

function finish(report: RecoveryReport, options: RecoveryOptions, done: boolean): RecoveryReport {
  report.done = done;
  if (!options.dryRun) (options.metrics ?? noMetrics).count(METRIC.recovered, report.recovered);
  options.logger.info(done ? 'recovery finished' : 'recovery stopped; run it again to go on', {
    ...report,
    dryRun: Boolean(options.dryRun),
  });
  return report;
}

function markerBody(eventIds: Set<string>, complete: boolean): Buffer {
  const marker: Marker = { v: 1, eventIds: [...eventIds], complete };
  return Buffer.from(JSON.stringify(marker));
}

function eventIdOf(body: Buffer): string {
  const parsed = parseBody(body);
  return parsed.ok ? readEnvelope(parsed.json, body).fields.eventId : bodyHashId(body);
}
