/**
 * The pure parts of the deployed places of an erasure (see erasure.ts): which queued or quarantined
 * delivery is the subject's, what a workflow or reconcile report looks like without the subject's entries,
 * and what the stack cannot reach. The S3, DynamoDB and SQS calls are in lambda/adapters/erasure-places.ts,
 * shared by the `erase --stack` command and the erase state machine.
 */
import type { DeliveryMessage } from '../contract';
import { containsId, mayNameId, namesSubject, type PlaceResult, type Subject } from './erasure';
import { toLakeRecord } from './lake';

/**
 * True when a queued or quarantined delivery (`{bodyBase64, receivedAt, …}`) is the subject's and was
 * received before `before`. Extracted fields and the body are matched as the raw zone matches records.
 */
export function deliveryBelongs(
  message: Pick<DeliveryMessage, 'bodyBase64' | 'receivedAt'>,
  subject: Subject,
  before: Date,
): boolean {
  if (typeof message?.bodyBase64 !== 'string') return false;
  const decoded = Buffer.from(message.bodyBase64, 'base64').toString('utf8');
  // A first look only: JSON may spell the id with \u escapes, which only the parse below sees through.
  if (!mayNameId(decoded, subject.id)) return false;
  const receivedAt = typeof message.receivedAt === 'string' ? message.receivedAt : '';
  // A delivery without a readable time is treated as old: better a dead letter lost than an id kept.
  const at = new Date(receivedAt);
  if (!Number.isNaN(at.getTime()) && at >= before) return false;
  try {
    return namesSubject(
      toLakeRecord(
        { v: 1, bodyBase64: message.bodyBase64, receivedAt: receivedAt || before.toISOString() } as DeliveryMessage,
        new Date(),
      ),
      subject,
    );
  } catch {
    return decoded.includes(`"${subject.id}"`);
  }
}

/**
 * True when a raw request body names the subject: its envelope's fields or its JSON strings (as the raw
 * zone decides, escapes seen through), or the id as a whole token anywhere in its text (a body that is
 * not JSON, an id inside a URL).
 */
export function bodyNamesSubject(body: Buffer, subject: Subject): boolean {
  const text = body.toString('utf8');
  if (!mayNameId(text, subject.id)) return false;
  if (containsId(text, subject.id)) return true;
  try {
    const record = toLakeRecord(
      { v: 1, bodyBase64: body.toString('base64'), receivedAt: '1970-01-01T00:00:00.000Z' } as DeliveryMessage,
      new Date(0),
    );
    return namesSubject(record, subject);
  } catch {
    return false;
  }
}

/**
 * True when a dead-letter message body is the subject's: a queued delivery (DeliveryMessage) by
 * {@link deliveryBelongs}; anything else (the state queue's `{key}`, which names a lake object and no
 * person) only when its text carries the id and it was sent before `before`.
 */
export function messageBelongs(body: string, sentAt: Date | undefined, subject: Subject, before: Date): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const delivery = parsed as Partial<DeliveryMessage> | undefined;
  // The delivery's body is base64: only the decoded text can be searched.
  if (typeof delivery?.bodyBase64 === 'string') return deliveryBelongs(delivery as DeliveryMessage, subject, before);
  return containsId(body, subject.id) && sentBefore(sentAt, before);
}

const sentBefore = (sentAt: Date | undefined, before: Date) => sentAt === undefined || sentAt < before;

/** One landing object without the subject's deliveries (see {@link pruneLanding}). */
export interface PrunedLanding {
  /** The subject's deliveries dropped. */
  readonly removed: number;
  /** The deliveries kept. */
  readonly kept: number;
  /** The lines dropped, as they were (their copies in older versions of the object are the same bytes). */
  readonly dropped: readonly string[];
  /** The object's new text: the kept lines byte for byte, each newline-terminated. */
  readonly text: string;
}

/**
 * A landing object (NDJSON, one {@link DeliveryMessage} a line, as the delivery stream writes them) without
 * the subject's deliveries received before `before`, by {@link deliveryBelongs}: the rule of the dead-letter
 * queue and the local spool. A line that is not a delivery goes only when it names the id (whole ids).
 */
export function pruneLanding(text: string, subject: Subject, before: Date): PrunedLanding {
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let belongs: boolean;
    try {
      const message = JSON.parse(line) as Partial<DeliveryMessage> | null;
      belongs =
        typeof message?.bodyBase64 === 'string'
          ? deliveryBelongs(message as DeliveryMessage, subject, before)
          : containsId(line, subject.id);
    } catch {
      belongs = containsId(line, subject.id);
    }
    if (belongs) dropped.push(line);
    else kept.push(line);
  }
  return { removed: dropped.length, kept: kept.length, dropped, text: kept.map((l) => `${l}\n`).join('') };
}

/**
 * What the landing zone's erasure found so far, added to page by page (the state machine carries it from
 * step to step, as it carries the raw zone's {@link RawSweep}): counts only, no ids.
 */
export interface LandingSweep {
  /** Current landing objects read. */
  objects: number;
  /** The subject's deliveries found: in current objects, and (once per line) in old versions of the rest. */
  found: number;
  /** Of those, removed (0 in a dry run). */
  removed: number;
  /** Current objects rewritten without the subject, and deleted (nothing else in them). */
  rewritten: number;
  deleted: number;
  /** Old versions and delete markers deleted. */
  versionsDeleted: number;
  /** Old versions that held the subject while their current object did not (or was gone). */
  oldVersions: number;
}

export function emptyLandingSweep(): LandingSweep {
  return { objects: 0, found: 0, removed: 0, rewritten: 0, deleted: 0, versionsDeleted: 0, oldVersions: 0 };
}

/** The landing zone's place result from a sweep (every page of it). */
export function landingPlaceResult(sweep: LandingSweep, where: string): PlaceResult {
  return {
    place: 'landing',
    where,
    unit: 'deliveries',
    found: sweep.found,
    removed: sweep.removed,
    rewritten: sweep.rewritten,
    deleted: sweep.deleted,
    versionsDeleted: sweep.versionsDeleted,
    note:
      `${sweep.objects} landing objects searched` +
      (sweep.oldVersions > 0
        ? `; ${sweep.oldVersions} old versions held the subject without their current object`
        : '') +
      "; deliveries still in the delivery stream's buffer land later and are dropped by ingest's ledger filter",
  };
}

/** What {@link pruneReport} decided for one report object. */
export type PrunedReport = { action: 'keep' } | { action: 'delete' } | { action: 'rewrite'; value: unknown };

/**
 * A workflow or reconcile report (JSON) without the subject's entries. An array loses the elements that
 * name the id anywhere; an object whose own string field names it is an entry about the subject and goes
 * whole (from its parent, or the report itself when it is the report). A report left empty, or still
 * naming the id anywhere (a key, say), is deleted: these are records of past runs, not inputs of running
 * ones, and an id left behind is worse than a report lost.
 */
export function pruneReport(value: unknown, subject: Subject): PrunedReport {
  const id = subject.id;
  // Whole ids only: erasing veh-1 must not take veh-10's entries.
  const has = (text: string | undefined) => (text === undefined ? false : containsId(text, id));
  if (!has(JSON.stringify(value))) return { action: 'keep' };
  const names = (v: unknown) => has(JSON.stringify(v));
  const drop = Symbol('drop');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return has(v) ? drop : v;
    if (Array.isArray(v)) return v.filter((e) => !names(e)).map(walk);
    if (v && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.some(([, x]) => typeof x === 'string' && has(x))) return drop;
      const out: Record<string, unknown> = {};
      for (const [k, x] of entries) {
        const w = walk(x);
        if (w !== drop) out[k] = w;
      }
      return out;
    }
    return v;
  };
  const pruned = walk(value);
  if (pruned === drop) return { action: 'delete' };
  if (Array.isArray(pruned) && pruned.length === 0) return { action: 'delete' };
  if (has(JSON.stringify(pruned))) return { action: 'delete' };
  return { action: 'rewrite', value: pruned };
}

/**
 * Copies the deployed stack cannot erase, stated on every deployed receipt so that the officer knows
 * where else to ask and for how long each one lasts.
 */
export const DEPLOYED_OUTSIDE: readonly string[] = [
  'EventBridge: events already published to the bus went to its consumers (rules and their targets) and to any ' +
    'archive on it; no place here can reach them. An archive keeps events for its retention period (list them with ' +
    '`aws events list-archives`; a replay re-sends archived events, erased ones included, to the bus). Tell every ' +
    "consumer to erase the subject from its own store, and delete or let expire any archive that holds the subject's events.",
  'CloudWatch Logs: function logs carry ids of failed deliveries and request ids for their retention period ' +
    '(logRetention, one month by default); they expire and are not rewritten.',
  "Step Functions: the erase state machine's execution input holds the id for 90 days (the service keeps execution " +
    'history that long and cannot delete it sooner); the subscription and reconcile executions keep their inputs likewise.',
  'Backups: DynamoDB point-in-time recovery keeps the state and dedupe tables as they were for 35 days; a restore ' +
    'from before this erasure brings the items back (erase again after any restore). S3 replication, AWS Backup or ' +
    'copies your team added are outside this stack: erase there too.',
  "Athena: the erasure's own statements name the id, and Athena keeps query history (the statement text) for 45 " +
    'days; it cannot be deleted sooner. Query results are in the results bucket, which this erasure searched.',
  "Kinesis Data Firehose: deliveries still in the delivery stream's buffer (up to its buffering interval, 5 minutes by " +
    'default; up to 24 hours while it cannot write to S3) could not be reached; they land in landing/ afterwards, and ' +
    "ingest drops the subject's by the erasure ledger's filter.",
  'Dead-letter messages in flight (received by another reader when this ran) were not seen; ingest drops any of ' +
    "them it is handed again, by the erasure ledger's filter.",
];
