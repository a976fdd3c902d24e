/**
 * The token-mistake drill on simulated time: Smartcar signs with a new token the receiver does not hold
 * yet, at `rate` deliveries a second for `seconds`, each delivery tried four times (+25 s, +50 s,
 * +100 s) as Smartcar does. Every attempt goes through the real receiver core (answered 401, handed to
 * the quarantine queue), the queue is drained as the event source mapping does (a batch when it holds
 * 6 MB or 10,000 messages, or when its oldest message has waited the 60-second window) into the real
 * quarantine writer and its hourly budget. Then the token is fixed and the real recovery runs against
 * the same store, stopping every few objects as a function near its timeout does (and, optionally,
 * crashing once), until it is done. The lake counts every eventId it receives, with no deduplication,
 * so a delivery handed over twice shows.
 *
 * Used by test/integration/token-mistake.test.ts and `npm run bench:token-mistake`.
 */

import type { MetricName } from '../../lambda/contract';
import { type QuarantinedDelivery, quarantineCapsFor, SMARTCAR_ATTEMPTS } from '../../lambda/contract';
import type { CoreLogger } from '../../lambda/core/logger';
import type { CoreMetrics } from '../../lambda/core/metrics';
import {
  decodeQuarantineObject,
  type ListKeys,
  type QuarantineCaps,
  type QuarantineStore,
  QuarantineWriter,
  recoverRejected,
  SMARTCAR_RETRY_OFFSETS_S,
} from '../../lambda/core/quarantine';
import { receive } from '../../lambda/core/receive';
import { hmacHex } from '../../lambda/core/signature';

/** Totals only: millions of attempts would make a list of every emission the bottleneck. */
class CountingMetrics implements CoreMetrics {
  private readonly totals = new Map<MetricName, number>();
  count(name: MetricName, value = 1) {
    this.totals.set(name, (this.totals.get(name) ?? 0) + value);
  }
  milliseconds() {}
  total(name: MetricName): number {
    return this.totals.get(name) ?? 0;
  }
}

const OLD = 'drill-old-token';
const NEW = 'drill-new-token';
const silent: CoreLogger = { info() {}, warn() {}, error() {} };
/** The event source mapping's limits: 10,000 messages or 6 MB per invocation, a 60-second window. */
const BATCH_RECORDS = 10_000;
const BATCH_BYTES = 6 * 1024 * 1024;
const WINDOW_S = 60;

export interface DrillOptions {
  /** Deliveries a second during the mistake. */
  readonly rate: number;
  /** How long the mistake lasts. @default 3600 */
  readonly seconds?: number;
  /** The budget. @default sized from `peak` */
  readonly caps?: QuarantineCaps;
  /** The stated peak the budget is sized from. @default rate */
  readonly peak?: number;
  /** Body of each delivery: a realistic one (the vehicle-state fixture's size) or a small one (benches). @default 'small' */
  readonly body?: (eventId: string, attempt: number) => string;
  /** Recovery stops (as at its deadline) after reading this many objects, then runs again. @default 25 */
  readonly objectsPerRun?: number;
  /** Recovery's delivery fails once at this call (SQS refusing a batch), and the run is started again. @default never */
  readonly failDeliveryAtCall?: number;
  /** When the mistake starts. @default 2026-11-27T10:20:00Z (so that it spans two clock hours) */
  readonly start?: Date;
}

export interface DrillResult {
  deliveries: number;
  attempts: number;
  /** Attempts kept in the quarantine, and turned away by the budget. */
  quarantined: number;
  dropped: number;
  objects: number;
  /** Deliveries with at least one attempt kept. */
  kept: number;
  keptPercent: number;
  /** Hand-overs to ingest by recovery, over all its runs (a delivery handed over twice counts twice). */
  recovered: number;
  recoveryRuns: number;
  /** eventIds the lake holds once, more than once, and not at all. */
  storedOnce: number;
  storedTwice: number;
  missing: number;
  caps: QuarantineCaps;
}

export function smallBody(eventId: string, attempt: number): string {
  return `{"eventId":"${eventId}","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"veh-${eventId}"}},"meta":{"deliveryId":"${eventId}-${attempt}","mode":"LIVE","version":"4.0"}}`;
}

/** An in-memory bucket: sorted keys, as ListObjectsV2 returns them. */
export class MemoryBucket implements QuarantineStore {
  readonly objects = new Map<string, Buffer>();
  private sorted: string[] = [];
  private dirty = false;
  gets = 0;

  readonly keys: ListKeys = async function* (this: MemoryBucket, prefix: string, startAfter?: string) {
    if (this.dirty) {
      this.sorted = [...this.objects.keys()].sort();
      this.dirty = false;
    }
    const snapshot = this.sorted;
    let i = startAfter === undefined ? 0 : upperBound(snapshot, startAfter);
    for (; i < snapshot.length; i++) {
      const key = snapshot[i];
      if (key.startsWith(prefix)) yield key;
      else if (key > prefix && !key.startsWith(prefix)) break;
    }
  }.bind(this);

  /** Reads of quarantine objects (not of recovery's markers). */
  async get(key: string): Promise<Buffer> {
    if (key.startsWith('quarantine/')) this.gets++;
    const body = this.objects.get(key);
    if (!body) throw new Error(`NoSuchKey ${key}`);
    return body;
  }
  async put(key: string, body: Buffer): Promise<void> {
    if (!this.objects.has(key)) this.dirty = true;
    this.objects.set(key, body);
  }
  async delete(key: string): Promise<void> {
    if (this.objects.delete(key)) this.dirty = true;
  }
}

function upperBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export async function runTokenMistakeDrill(options: DrillOptions): Promise<DrillResult> {
  const seconds = options.seconds ?? 3600;
  const caps = options.caps ?? quarantineCapsFor(options.peak ?? options.rate);
  const body = options.body ?? smallBody;
  const start = (options.start ?? new Date('2026-11-27T10:20:00Z')).getTime();
  let now = start;
  const bucket = new MemoryBucket();
  const metrics = new CountingMetrics();
  const writer = new QuarantineWriter({
    put: (key, b) => bucket.put(key, b),
    list: bucket.keys,
    caps,
    metrics,
    now: () => now,
  });
  const receiverToken = { get: async () => OLD, refresh: async () => undefined, previous: async () => undefined };

  // The quarantine queue: messages with the time they were sent.
  let queue: { at: number; bytes: number; record: QuarantinedDelivery }[] = [];
  let queuedBytes = 0;
  const drain = async (force: boolean) => {
    while (queue.length > 0) {
      const full = queue.length >= BATCH_RECORDS || queuedBytes >= BATCH_BYTES;
      if (!force && !full && now - queue[0].at < WINDOW_S * 1000) return;
      let n = 0;
      let bytes = 0;
      while (n < queue.length && n < BATCH_RECORDS && bytes + queue[n].bytes <= BATCH_BYTES) bytes += queue[n++].bytes;
      const batch = queue.slice(0, n);
      queue = queue.slice(n);
      queuedBytes -= bytes;
      await writer.write(batch.map((m) => m.record));
    }
  };

  const deliveries = Math.round(options.rate * seconds);
  const offsets = [0, ...SMARTCAR_RETRY_OFFSETS_S];
  const lastAttempt = seconds + offsets[offsets.length - 1];
  let attempts = 0;
  for (let second = 0; second <= lastAttempt; second++) {
    for (let attempt = 0; attempt < SMARTCAR_ATTEMPTS; attempt++) {
      const first = second - offsets[attempt]; // the second this delivery was first tried
      if (first < 0 || first >= seconds) continue;
      const from = Math.round(first * options.rate);
      const to = Math.round((first + 1) * options.rate);
      for (let i = from; i < to; i++) {
        now = start + second * 1000 + Math.floor(((i - from) / (to - from)) * 1000);
        const raw = Buffer.from(body(`e-${i}`, attempt));
        attempts++;
        const res = await receive(
          { body: raw, headers: { 'sc-signature': hmacHex(NEW, raw) }, receivedAt: new Date(now) },
          {
            token: receiverToken,
            logger: silent,
            metrics,
            enqueue: async () => {
              throw new Error('nothing is accepted during the mistake');
            },
            quarantine: async (record) => {
              const bytes = Buffer.byteLength(JSON.stringify(record)) + 500; // the SQS record around it
              queue.push({ at: now, bytes, record });
              queuedBytes += bytes;
            },
          },
        );
        if (res.statusCode !== 401) throw new Error(`attempt answered ${res.statusCode}, expected 401`);
      }
    }
    now = start + (second + 1) * 1000;
    await drain(false);
  }
  now += WINDOW_S * 1000;
  await drain(true);

  // Which deliveries the quarantine holds, read back from the objects.
  const keptIds = new Set<string>();
  for (const [key, bytes] of bucket.objects) {
    for (const r of decodeQuarantineObject(key, bytes)) {
      if (r) keptIds.add(JSON.parse(Buffer.from(r.bodyBase64, 'base64').toString()).eventId);
    }
  }
  const objects = bucket.objects.size;

  // The fix, then recovery until it says it is done.
  const lake = new Map<string, number>();
  let calls = 0;
  let runs = 0;
  let failed = false;
  for (;;) {
    runs++;
    if (runs > 100_000) throw new Error('recovery does not finish');
    const readAtStart = bucket.gets;
    const perRun = options.objectsPerRun ?? 25;
    try {
      const report = await recoverRejected({
        store: bucket,
        tokens: [NEW, OLD],
        isStored: async () => new Set<string>(), // no dedupe table: a second hand-over would show in the lake
        deliver: async (messages) => {
          calls++;
          if (!failed && calls === options.failDeliveryAtCall) {
            failed = true;
            throw new Error('SQS refused the batch');
          }
          for (const m of messages) {
            const id = JSON.parse(Buffer.from(m.bodyBase64, 'base64').toString()).eventId as string;
            lake.set(id, (lake.get(id) ?? 0) + 1);
          }
        },
        shouldStop: () => bucket.gets - readAtStart >= perRun,
        logger: silent,
      });
      if (report.done) break;
    } catch (err) {
      if ((err as Error).message !== 'SQS refused the batch') throw err;
    }
  }
  let storedOnce = 0;
  let storedTwice = 0;
  for (const n of lake.values()) {
    if (n === 1) storedOnce++;
    else storedTwice++;
  }
  return {
    deliveries,
    attempts,
    quarantined: metrics.total('Quarantined'),
    dropped: metrics.total('QuarantineDropped'),
    objects,
    kept: keptIds.size,
    keptPercent: deliveries === 0 ? 100 : (100 * keptIds.size) / deliveries,
    recovered: [...lake.values()].reduce((a, b) => a + b, 0),
    recoveryRuns: runs,
    storedOnce,
    storedTwice,
    missing: deliveries - lake.size,
    caps,
  };
}
