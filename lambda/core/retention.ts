/**
 * Retention of the local lake, as a pure plan: which keys are older than their retention, counted from
 * their partition (the hour a raw or quarantine object was received in, the day of a curated file), not
 * from the file's time, which an erasure or a replay resets. Deleting is unattended, so the plan proves
 * its input sane first: whole days of at least one, a clock not behind the newest data, and (unless asked)
 * never every object of the lake's record at once. The keys are the caller's: nothing here lists or
 * deletes, and nothing under `erasures/` is ever handed in.
 */
import { ERASURES_PREFIX } from '../contract';

export const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;
/** Newer data than the clock by this much means the clock is wrong (a partition hour, plus skew). */
const CLOCK_SLACK_MS = 2 * HOUR_MS;

/** An expiry that would delete on bad input: nothing was removed. Its message is the one-line reason. */
export class ExpiryRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpiryRefused';
  }
}

/**
 * When the records a key can hold were received, as epoch ms [start, end): its `dt=…/hour=…` partition,
 * or its `dt=…` day when it has no hour (curated files); undefined for keys outside the layout.
 */
export function partitionSpan(key: string): { start: number; end: number } | undefined {
  const hour = /(?:^|\/)dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(key);
  const day = /(?:^|\/)dt=(\d{4}-\d{2}-\d{2})\//.exec(key);
  const start = hour ? Date.parse(`${hour[1]}T${hour[2]}:00:00Z`) : day ? Date.parse(`${day[1]}T00:00:00Z`) : NaN;
  if (Number.isNaN(start)) return undefined;
  return { start, end: start + (hour ? HOUR_MS : DAY_MS) };
}

/** A retention in days given on a command line or by a setting: a whole number from 1 to 36,500. */
export function retentionDays(name: string, value: string | number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 36_500)
    throw new RangeError(`${name} must be a whole number of days from 1 to 36500 (got ${JSON.stringify(value)})`);
  return n;
}

export interface ZonePlan {
  /** The zone's name in messages (`raw zone`, `curated layer`, …). */
  readonly zone: string;
  readonly days: number;
  /** Records received before this are expired. */
  readonly cutoff: Date;
  /** Keys to remove, oldest partition first. */
  readonly expired: string[];
  /** Keys in the layout that stay. */
  readonly kept: number;
  /** Keys outside the partition layout: never removed, reported. */
  readonly unplaced: string[];
  /** End of the newest partition seen. */
  readonly newest?: Date;
}

/**
 * The keys of one zone older than `days` at `now`. Refuses (throws {@link ExpiryRefused}) when a key is
 * under `erasures/`, when the newest partition is later than the clock (a clock far behind would expire
 * nothing, a clock jumping back and forth cannot be trusted to expire the right things), and, when
 * `guardAll` and not `allowAll`, when every key of a non-empty zone would go (an idle lake, or a clock far
 * ahead: say `--all` when that is meant).
 */
export function planZone(
  zone: string,
  keys: readonly string[],
  days: number,
  now: Date,
  options: { guardAll?: boolean; allowAll?: boolean } = {},
): ZonePlan {
  retentionDays(zone, days);
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  const expired: { key: string; end: number }[] = [];
  const unplaced: string[] = [];
  let kept = 0;
  let newest: number | undefined;
  let latestStart: number | undefined;
  for (const key of keys) {
    if (key === ERASURES_PREFIX || key.startsWith(`${ERASURES_PREFIX}/`))
      throw new ExpiryRefused(`${zone}: ${key} is under ${ERASURES_PREFIX}/, which retention never touches`);
    const span = partitionSpan(key);
    if (span === undefined) {
      unplaced.push(key);
      continue;
    }
    const { start, end } = span;
    latestStart = latestStart === undefined ? start : Math.max(latestStart, start);
    newest = newest === undefined ? end : Math.max(newest, end);
    if (end <= cutoff.getTime()) expired.push({ key, end });
    else kept++;
  }
  if (latestStart !== undefined && latestStart > now.getTime() + CLOCK_SLACK_MS)
    throw new ExpiryRefused(
      `${zone}: the clock (${now.toISOString()}) is behind the newest data (received from ${new Date(latestStart).toISOString()}); nothing removed: check the clock`,
    );
  if (options.guardAll && !options.allowAll && expired.length > 0 && kept === 0)
    throw new ExpiryRefused(
      `${zone}: all ${expired.length} object(s) are older than ${days} days (newest received until ${new Date(newest ?? 0).toISOString()}); nothing removed: an idle lake or a clock far ahead? pass --all if every one should go`,
    );
  expired.sort((a, b) => a.end - b.end || (a.key < b.key ? -1 : 1));
  return {
    zone,
    days,
    cutoff,
    expired: expired.map((e) => e.key),
    kept,
    unplaced,
    newest: newest === undefined ? undefined : new Date(newest),
  };
}

/** Request-log lines (NDJSON with an ISO `at`) received at or after `cutoff`; lines without a time are kept. */
export function pruneLines(text: string, cutoff: Date): { text: string; removed: number; kept: number } {
  const keep: string[] = [];
  let removed = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let at = Number.NaN;
    try {
      const entry = JSON.parse(line) as { at?: unknown };
      at = typeof entry.at === 'string' ? Date.parse(entry.at) : Number.NaN;
    } catch {
      // a line cut by a crash: not ours to judge; the request log drops it when it reads
    }
    if (!Number.isNaN(at) && at < cutoff.getTime()) removed++;
    else keep.push(line);
  }
  return { text: keep.map((l) => `${l}\n`).join(''), removed, kept: keep.length };
}
