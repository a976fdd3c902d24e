/**
 * The quarantine: deliveries answered 401 only because their signature did not match, kept outside the
 * lake so that a token mistake loses nothing (Smartcar drops a delivery after three retries in about
 * three minutes). Writing is capped per function instance, in count per minute and in body bytes per
 * hour, so a flood of forged but well-shaped requests costs at most the caps; what the caps turn away
 * is counted. Recovery re-verifies each kept delivery against the tokens now known and hands the
 * authentic ones to the normal ingest path (deduplicated by eventId); the rest stay until they expire.
 */
import { createHash } from 'node:crypto';
import {
  DELIVERY_MESSAGE_VERSION,
  type DeliveryMessage,
  METRIC,
  QUARANTINE_PREFIX,
  QUARANTINE_RECORD_VERSION,
  type QuarantinedDelivery,
} from '../contract';
import { parseBody, readEnvelope } from './envelope';
import type { CoreLogger } from './logger';
import { type CoreMetrics, noMetrics } from './metrics';
import type { TokenSource } from './receive';
import { isValidSignature } from './signature';

/** `quarantine/dt=YYYY-MM-DD/hour=HH/<time>-<digest>.json`: listable by day and hour, one object each. */
export function quarantineKey(d: QuarantinedDelivery): string {
  const at = d.receivedAt;
  const digest = createHash('sha256').update(`${d.signature}\n${d.bodyBase64}`).digest('hex').slice(0, 20);
  const stamp = at.replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '$1Z');
  return `${QUARANTINE_PREFIX}/dt=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/${stamp}-${digest}.json`;
}

/** The receive time a quarantine key was written for, or undefined for keys outside the layout. */
export function quarantineKeyTime(key: string): Date | undefined {
  const m = /\/(\d{8})T(\d{6})(\d{3})Z-[0-9a-f]+\.json$/.exec(key);
  if (!m) return undefined;
  const [d, t, ms] = [m[1], m[2], m[3]];
  const date = new Date(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4)}.${ms}Z`,
  );
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export function decodeQuarantined(bytes: Uint8Array): QuarantinedDelivery {
  const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as QuarantinedDelivery;
  if (
    value?.v !== QUARANTINE_RECORD_VERSION ||
    typeof value.bodyBase64 !== 'string' ||
    typeof value.signature !== 'string'
  ) {
    throw new Error('not a quarantined delivery');
  }
  return value;
}

export interface QuarantineCaps {
  /** Most deliveries kept per minute (a token bucket: bursts up to this many). */
  readonly maxPerMinute: number;
  /** Most body bytes kept per clock hour. */
  readonly maxBytesPerHour: number;
}

/** Writes quarantined deliveries within the caps; one per function instance (or local server). */
export class QuarantineWriter {
  private tokens: number;
  private refilledAt: number;
  private hour = -1;
  private bytesThisHour = 0;
  private readonly now: () => number;

  constructor(
    private readonly put: (key: string, body: Buffer) => Promise<void>,
    private readonly caps: QuarantineCaps,
    private readonly metrics: CoreMetrics = noMetrics,
    private readonly logger?: CoreLogger,
    now?: () => number,
  ) {
    this.now = now ?? (() => Date.now());
    this.tokens = caps.maxPerMinute;
    this.refilledAt = this.now();
  }

  /** Keeps the delivery unless a cap says no. Resolves once it is stored (or turned away). */
  async offer(d: QuarantinedDelivery): Promise<'stored' | 'dropped'> {
    const now = this.now();
    this.tokens = Math.min(
      this.caps.maxPerMinute,
      this.tokens + ((now - this.refilledAt) / 60_000) * this.caps.maxPerMinute,
    );
    this.refilledAt = now;
    const hour = Math.floor(now / 3_600_000);
    if (hour !== this.hour) {
      this.hour = hour;
      this.bytesThisHour = 0;
    }
    const bytes = Buffer.byteLength(d.bodyBase64, 'base64');
    if (this.tokens < 1 || this.bytesThisHour + bytes > this.caps.maxBytesPerHour) {
      this.metrics.count(METRIC.quarantineDropped);
      return 'dropped';
    }
    this.tokens -= 1;
    this.bytesThisHour += bytes;
    await this.put(quarantineKey(d), Buffer.from(JSON.stringify(d)));
    this.metrics.count(METRIC.quarantined);
    this.logger?.info('quarantined a delivery rejected for its signature', { requestId: d.requestId, bytes });
    return 'stored';
  }
}

/** The quarantine as recovery sees it: a bucket, or a folder beside the local lake. */
export interface QuarantineStore {
  /** Keys under `prefix`. */
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Buffer>;
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
  /** Count, verify and report, but hand nothing to ingest and delete nothing. */
  readonly dryRun?: boolean;
  /** Which of these eventIds the lake already holds. */
  readonly isStored: (eventIds: string[]) => Promise<Set<string>>;
  /** Hands authentic deliveries to the normal ingest path; resolves once that path has them durably. */
  readonly deliver: (messages: DeliveryMessage[]) => Promise<void>;
  readonly logger: CoreLogger;
  readonly metrics?: CoreMetrics;
}

export interface RecoveryReport {
  examined: number;
  recovered: number;
  stillRejected: number;
  alreadyStored: number;
  /** Objects that were not quarantined deliveries (left in place). */
  unreadable: number;
}

/**
 * Re-verifies every quarantined delivery in the time range. Authentic ones not yet in the lake go to
 * ingest and then leave the quarantine; authentic ones already stored just leave it; the others stay
 * (they expire with the quarantine's lifecycle). Running it twice stores nothing twice: the second run
 * finds them gone, or, if a deletion failed, already stored.
 */
export async function recoverRejected(options: RecoveryOptions): Promise<RecoveryReport> {
  if (options.tokens.length === 0) throw new Error('no token to re-verify with');
  const report: RecoveryReport = { examined: 0, recovered: 0, stillRejected: 0, alreadyStored: 0, unreadable: 0 };
  const keys = (await options.store.list(`${QUARANTINE_PREFIX}/`)).filter((key) => {
    const at = quarantineKeyTime(key);
    if (!at) return false;
    return (!options.since || at >= options.since) && (!options.until || at < options.until);
  });
  const authentic: { key: string; eventId: string; message: DeliveryMessage }[] = [];
  for (const key of keys.sort()) {
    let delivery: QuarantinedDelivery;
    try {
      delivery = decodeQuarantined(await options.store.get(key));
    } catch {
      report.unreadable++;
      continue;
    }
    report.examined++;
    const body = Buffer.from(delivery.bodyBase64, 'base64');
    if (!options.tokens.some((token) => isValidSignature(token, body, delivery.signature))) {
      report.stillRejected++;
      continue;
    }
    const parsed = parseBody(body);
    const eventId = parsed.ok ? readEnvelope(parsed.json, body).fields.eventId : `unparsed:${key}`;
    authentic.push({
      key,
      eventId,
      message: {
        v: DELIVERY_MESSAGE_VERSION,
        bodyBase64: delivery.bodyBase64,
        receivedAt: delivery.receivedAt,
        requestId: delivery.requestId,
      },
    });
  }
  const stored = authentic.length > 0 ? await options.isStored(authentic.map((a) => a.eventId)) : new Set<string>();
  const fresh = new Map<string, (typeof authentic)[number]>(); // eventId → first copy (Smartcar retried it)
  const done: string[] = [];
  for (const a of authentic) {
    if (stored.has(a.eventId) || fresh.has(a.eventId)) {
      report.alreadyStored++;
      done.push(a.key);
    } else {
      fresh.set(a.eventId, a);
    }
  }
  report.recovered = fresh.size;
  if (!options.dryRun) {
    const toDeliver = [...fresh.values()];
    for (let i = 0; i < toDeliver.length; i += 10) {
      const batch = toDeliver.slice(i, i + 10);
      await options.deliver(batch.map((a) => a.message));
      done.push(...batch.map((a) => a.key));
    }
    // Only what ingest has (or the lake had) leaves the quarantine.
    for (const key of done) await options.store.delete(key);
    (options.metrics ?? noMetrics).count(METRIC.recovered, report.recovered);
  }
  options.logger.info('recovery finished', { ...report, dryRun: Boolean(options.dryRun) });
  return report;
}
