/**
 * The Firehose delivery buffer as the bill sees it (Amazon Data Firehose pricing and quota pages, us-east-1):
 *
 * - Ingestion (Direct PUT): $0.029 per GB, each record rounded UP to the next 5 KB, so a 3 KB delivery is
 *   billed as 5 KB. Billed bytes = ceil(record bytes / 5,120) × 5,120; we divide by 10^9 bytes a GB (the
 *   dearer reading of "GB").
 * - Landing objects: Firehose writes one object when `intervalSeconds` have passed since the buffer opened
 *   or `sizeMiB` have filled, whichever first. Its buffering hints are "treated as hints, and therefore
 *   Firehose might choose to use different values when it is optimal" (API reference, BufferingHints), and
 *   it gives no bound: the worst case assumes up to {@link HINT_OVERRUN} times the objects the hints imply
 *   (an assumption, printed as such).
 * - Quota: a Direct PUT stream takes, combined for PutRecord and PutRecordBatch, 2,000 requests a second and
 *   5 MiB a second in us-east-1 (500,000 records a second); what exceeds it is throttled, and the
 *   verification function sends those deliveries to the delivery queue instead (priced as the queue path).
 */

export const FIREHOSE_BILLING_INCREMENT_BYTES = 5 * 1024;
const BYTES_PER_GB = 1e9;

/** us-east-1's Direct PUT quota per stream (most other regions: 1,000 requests/s and 1 MiB/s). */
export const FIREHOSE_QUOTA = { requestsPerSecond: 2000, bytesPerSecond: 5 * 2 ** 20 } as const;

/** Worst case: Firehose writes up to this many times the landing objects its hints imply (assumed; undocumented). */
export const HINT_OVERRUN = 2;

/** The bytes Firehose bills for one record: rounded up to the next 5 KB. */
export function firehoseBilledBytes(recordBytes: number): number {
  if (!(recordBytes >= 0)) throw new Error(`a record has a size of 0 bytes or more, not ${recordBytes}`);
  return Math.max(1, Math.ceil(recordBytes / FIREHOSE_BILLING_INCREMENT_BYTES)) * FIREHOSE_BILLING_INCREMENT_BYTES;
}

/** Dollars of Direct PUT ingestion for records of these sizes at `perGb`. */
export function firehoseIngestDollars(recordBytes: readonly number[], perGb: number): number {
  let billed = 0;
  for (const b of recordBytes) billed += firehoseBilledBytes(b);
  return (billed / BYTES_PER_GB) * perGb;
}

/**
 * Landing objects a month at a steady `ratePerSecond` of `recordBytes` records: one every interval, or
 * sooner when the size hint fills first. `overrun` multiplies it (1: the hints obeyed).
 */
export function landingObjectsPerMonth(
  ratePerSecond: number,
  recordBytes: number,
  hints: { intervalSeconds: number; sizeMiB: number },
  secondsPerMonth: number,
  overrun = 1,
): number {
  if (ratePerSecond <= 0) return 0;
  const fillSeconds = (hints.sizeMiB * 2 ** 20) / (ratePerSecond * recordBytes);
  const every = Math.min(hints.intervalSeconds, fillSeconds);
  // An interval of 0 writes each record on its own, at most.
  const objects = every > 0 ? secondsPerMonth / every : ratePerSecond * secondsPerMonth;
  return Math.min(ratePerSecond * secondsPerMonth, objects) * overrun;
}

export interface LandingGroup<T> {
  /** When Firehose writes it (ms): the interval after the buffer opened, or the record that filled it. */
  readonly writtenAt: number;
  readonly items: T[];
  readonly bytes: number;
}

/**
 * Buffers records arriving in time order as Firehose does by its hints: a buffer opens at its first record
 * and is written when the interval has passed or the size is reached. `overrun` > 1 splits each object into
 * that many (the worst case).
 */
export function landingGroups<T extends { at: number; bytes: number }>(
  records: readonly T[],
  hints: { intervalSeconds: number; sizeMiB: number },
  overrun = 1,
): LandingGroup<T>[] {
  const limit = hints.sizeMiB * 2 ** 20;
  const out: LandingGroup<T>[] = [];
  let items: T[] = [];
  let bytes = 0;
  let opened = 0;
  const write = (at: number) => {
    if (items.length === 0) return;
    const parts = Math.max(1, Math.min(overrun, items.length));
    const per = Math.ceil(items.length / parts);
    for (let i = 0; i < items.length; i += per) {
      const part = items.slice(i, i + per);
      out.push({ writtenAt: at, items: part, bytes: part.reduce((s, r) => s + r.bytes, 0) });
    }
    items = [];
    bytes = 0;
  };
  for (const r of records) {
    if (items.length > 0 && r.at - opened >= hints.intervalSeconds * 1000) write(opened + hints.intervalSeconds * 1000);
    if (items.length === 0) opened = r.at;
    items.push(r);
    bytes += r.bytes;
    if (bytes >= limit) write(r.at);
  }
  write(opened + hints.intervalSeconds * 1000);
  return out;
}

/**
 * Which records the stream refuses: per second of arrival, those beyond the quota's requests and bytes
 * (each delivery one PutRecord). Returns a flag per record (true: it falls back to the queue) and the share.
 */
export function fallbacks(
  records: readonly { at: number; bytes: number }[],
  quota: { requestsPerSecond: number; bytesPerSecond: number } = FIREHOSE_QUOTA,
): { fellBack: boolean[]; share: number } {
  const fellBack = new Array<boolean>(records.length).fill(false);
  const perSecond = new Map<number, { requests: number; bytes: number }>();
  let count = 0;
  for (const [i, r] of records.entries()) {
    const second = Math.floor(r.at / 1000);
    const used = perSecond.get(second) ?? { requests: 0, bytes: 0 };
    perSecond.set(second, used);
    if (used.requests + 1 > quota.requestsPerSecond || used.bytes + r.bytes > quota.bytesPerSecond) {
      fellBack[i] = true;
      count++;
      continue;
    }
    used.requests++;
    used.bytes += r.bytes;
  }
  return { fellBack, share: records.length ? count / records.length : 0 };
}

/**
 * The share of deliveries that falls back when `ratePerSecond` arrive evenly within each second, each of
 * `recordBytes`: the closed form of {@link fallbacks}.
 */
export function fallbackShare(
  ratePerSecond: number,
  recordBytes: number,
  quota: { requestsPerSecond: number; bytesPerSecond: number } = FIREHOSE_QUOTA,
): number {
  if (ratePerSecond <= 0) return 0;
  const accepted = Math.min(quota.requestsPerSecond, Math.floor(quota.bytesPerSecond / recordBytes));
  return Math.max(0, ratePerSecond - accepted) / ratePerSecond;
}
