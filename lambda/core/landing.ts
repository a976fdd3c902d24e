/**
 * The landing zone: with the Firehose buffer (the default), the verification function hands each authentic
 * delivery to a Kinesis Data Firehose stream as one NDJSON line (a {@link DeliveryMessage}); Firehose writes
 * them together into one object under `landing/` every few minutes, S3 tells the delivery queue, and the
 * ingest function reads the object, writes its deliveries to the raw zone exactly as it writes queued ones,
 * and only then deletes the object (that version, so nothing of it stays behind as a noncurrent version).
 *
 * The queue still carries deliveries themselves: the ones the verification function could not hand to
 * Firehose (a throttled stream falls back to the queue), recovered and redriven ones. So one queue message
 * is either a DeliveryMessage or an S3 event notification naming landing objects; {@link landingObjectsOf}
 * tells them apart.
 */
import { type IngestDeps, ingestBatch, type QueuedMessage } from './ingest';

export { landingLine } from './landing-line';

/** A landing object an S3 event notification names. */
export interface LandingObject {
  /** The bucket the notification names (checked against the lake bucket). */
  readonly bucket?: string;
  readonly key: string;
  /** Set when the bucket is versioned: reads and the delete after ingest use exactly this version. */
  readonly versionId?: string;
}

/**
 * What an S3 event notification on the queue names: the landing objects, `[]` for S3's test event (sent
 * once when the notification is configured) and for removal events, or `undefined` when the message is not
 * an S3 notification at all (then it is a delivery). Keys come URL-encoded with `+` for spaces.
 */
export function landingObjectsOf(body: string): LandingObject[] | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const o = json as { Records?: unknown; Event?: unknown; Service?: unknown };
  if (o.Event === 's3:TestEvent' && o.Service === 'Amazon S3') return [];
  if (!Array.isArray(o.Records) || o.Records.length === 0) return undefined;
  const objects: LandingObject[] = [];
  for (const r of o.Records as {
    eventSource?: unknown;
    eventName?: unknown;
    s3?: { object?: unknown; bucket?: { name?: unknown } };
  }[]) {
    if (r?.eventSource !== 'aws:s3') return undefined;
    if (typeof r.eventName !== 'string' || !r.eventName.startsWith('ObjectCreated:')) continue;
    const object = r.s3?.object as { key?: unknown; versionId?: unknown } | undefined;
    if (typeof object?.key !== 'string') throw new Error('S3 notification record without an object key');
    const bucket = r.s3?.bucket?.name;
    objects.push({
      bucket: typeof bucket === 'string' ? bucket : undefined,
      key: decodeURIComponent(object.key.replace(/\+/g, ' ')),
      versionId: typeof object.versionId === 'string' && object.versionId !== '' ? object.versionId : undefined,
    });
  }
  return objects;
}

/**
 * The deliveries of one landing object as queue messages. Ids derive from the key and the line number, so
 * an object ingested again after a failure writes the same raw objects (their names derive from the ids)
 * instead of adding copies. Empty lines (the trailing newline) are skipped.
 */
export function landingMessages(key: string, bytes: Uint8Array | string): QueuedMessage[] {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  const out: QueuedMessage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '') out.push({ id: `${key}#${i + 1}`, body: lines[i] });
  }
  return out;
}

/** True when `key` lies in the landing zone (`<prefix>/…`). */
export function inLanding(key: string, landingPrefix: string): boolean {
  return key.startsWith(`${landingPrefix.replace(/^\/+|\/+$/g, '')}/`);
}

export interface QueueIngestDeps extends IngestDeps {
  /** Key prefix of the landing zone (no slashes at the ends). */
  readonly landingPrefix: string;
  /**
   * Reads one landing object (the notification's version, or the current one), with the version it read;
   * undefined when it no longer exists (ingested and deleted already).
   */
  readonly getLanding: (object: LandingObject) => Promise<{ bytes: Uint8Array; versionId?: string } | undefined>;
  /**
   * Deletes one landing object once its deliveries are durably in the raw zone: the version that was read,
   * so that nothing of it stays behind as a noncurrent version (and a newer one, if any, is kept).
   */
  readonly deleteLanding: (object: LandingObject) => Promise<void>;
  /**
   * Whether a landing object that cannot be read was removed by something other than ingest (its latest
   * version is a delete marker: a person, a lifecycle rule). Ingest deletes the version it read, which
   * leaves no marker, so "gone" is "already ingested" only without one. @default gone means ingested
   */
  readonly removedUnstored?: (object: LandingObject) => Promise<boolean>;
  /** The lake bucket: a notification naming another bucket is refused (dead-letter queue). @default not checked */
  readonly bucket?: string;
  /**
   * Puts notifications this invocation has no time left for back on the queue as new messages (a fresh
   * receive count), so that a backlog of landing objects never counts as failures towards the dead-letter
   * queue; resolves to which of them were sent. @default they are reported failed (retried, counted)
   */
  readonly defer?: (bodies: string[]) => Promise<boolean[]>;
  /** Milliseconds left in this invocation. @default unlimited */
  readonly remainingMs?: () => number;
  /** Start no landing object with less than this left. @default 30,000 */
  readonly reserveMs?: number;
}

export interface QueueIngestResult {
  /** Queue messages to deliver again: failed deliveries, and notifications whose object was not fully stored. */
  readonly failedIds: string[];
  readonly recordsWritten: number;
  readonly objectsWritten: string[];
  /** Landing objects ingested and deleted. */
  readonly landingObjects: number;
  /** Notifications put back on the queue for want of time. */
  readonly deferred: number;
}

export interface LandingResult {
  /** Every delivery in it is durably in the raw zone (or it was gone: stored and deleted before). */
  readonly stored: boolean;
  /** It was deleted by this call. */
  readonly deleted: boolean;
  readonly recordsWritten: number;
  readonly objectsWritten: string[];
}

/**
 * Stores one landing object's deliveries in the raw zone and then deletes it. Failures are logged and
 * reported (`stored: false`); the object stays, to be ingested again into the same raw keys.
 */
export async function ingestLanding(
  object: LandingObject,
  deps: Pick<QueueIngestDeps, 'getLanding' | 'deleteLanding' | 'removedUnstored'> & IngestDeps,
): Promise<LandingResult> {
  try {
    const read = await deps.getLanding(object);
    if (read === undefined) {
      if (deps.removedUnstored && (await deps.removedUnstored(object))) {
        // Not ours to acknowledge: deliveries answered 200 may be gone. The dead-letter queue pages.
        deps.logger.error(
          'landing object was deleted before it was stored; leaving its notification for the dead-letter queue',
          {
            key: object.key,
          },
        );
        return { stored: false, deleted: false, recordsWritten: 0, objectsWritten: [] };
      }
      // Deleted by ingest after a complete store whose acknowledgement was lost (or a version an erasure
      // replaced, whose new version has its own notification): nothing left to do.
      deps.logger.info('landing object already ingested', { key: object.key });
      return { stored: true, deleted: false, recordsWritten: 0, objectsWritten: [] };
    }
    const r = await ingestBatch(landingMessages(object.key, read.bytes), deps);
    if (r.failedIds.length > 0) {
      deps.logger.error('landing object not fully stored; it will be ingested again', {
        key: object.key,
        failed: r.failedIds.length,
      });
      return { stored: false, deleted: false, recordsWritten: r.recordsWritten, objectsWritten: r.objectsWritten };
    }
    await deps.deleteLanding({ key: object.key, versionId: read.versionId ?? object.versionId });
    return { stored: true, deleted: true, recordsWritten: r.recordsWritten, objectsWritten: r.objectsWritten };
  } catch (err) {
    deps.logger.error('could not ingest landing object; it will be ingested again', {
      key: object.key,
      reason: err instanceof Error ? err.message : String(err),
    });
    return { stored: false, deleted: false, recordsWritten: 0, objectsWritten: [] };
  }
}

/**
 * One batch of the delivery queue: the deliveries in it are ingested together (as before the landing zone),
 * then each landing object a notification names, one at a time (each is up to the stream's buffer size).
 * A notification succeeds only when every object it names is stored and deleted; otherwise it is delivered
 * again, and the object (kept) is ingested again into the same raw keys.
 */
export async function ingestQueue(
  messages: readonly QueuedMessage[],
  deps: QueueIngestDeps,
): Promise<QueueIngestResult> {
  const deliveries: QueuedMessage[] = [];
  const notices: { message: QueuedMessage; objects: LandingObject[] }[] = [];
  const failedIds: string[] = [];
  for (const m of messages) {
    let objects: LandingObject[] | undefined;
    try {
      objects = landingObjectsOf(m.body);
    } catch (err) {
      deps.logger.error('malformed S3 notification; leaving it for retry and the dead-letter queue', {
        messageId: m.id,
        reason: err instanceof Error ? err.message : String(err),
      });
      failedIds.push(m.id);
      continue;
    }
    if (objects === undefined) deliveries.push(m);
    else notices.push({ message: m, objects });
  }
  const objectsWritten: string[] = [];
  let recordsWritten = 0;
  if (deliveries.length > 0) {
    const r = await ingestBatch(deliveries, deps);
    failedIds.push(...r.failedIds);
    objectsWritten.push(...r.objectsWritten);
    recordsWritten += r.recordsWritten;
  }
  let landingObjects = 0;
  const reserve = deps.reserveMs ?? 30_000;
  const later: QueuedMessage[] = [];
  for (const { message, objects } of notices) {
    if (deps.remainingMs && deps.remainingMs() < reserve) {
      later.push(message);
      continue;
    }
    let ok = true;
    for (const object of objects) {
      if (deps.bucket !== undefined && object.bucket !== undefined && object.bucket !== deps.bucket) {
        deps.logger.error('S3 notification from another bucket; leaving it for the dead-letter queue', {
          bucket: object.bucket,
        });
        ok = false;
        break;
      }
      if (!inLanding(object.key, deps.landingPrefix)) {
        // Only the stack's own notification sends these; another key means a hand-made or misrouted one.
        deps.logger.error('S3 notification for a key outside the landing zone; leaving it for the dead-letter queue', {
          key: object.key,
        });
        ok = false;
        break;
      }
      const r = await ingestLanding(object, deps);
      objectsWritten.push(...r.objectsWritten);
      recordsWritten += r.recordsWritten;
      if (!r.stored) {
        ok = false;
        break;
      }
      if (r.deleted) landingObjects++;
    }
    if (!ok) failedIds.push(message.id);
  }
  let deferred = 0;
  if (later.length > 0) {
    let sent: boolean[] = later.map(() => false);
    if (deps.defer) {
      try {
        sent = await deps.defer(later.map((m) => m.body));
      } catch (err) {
        deps.logger.warn('could not put notifications back on the queue; they will be retried', {
          reason: String(err),
        });
      }
    }
    // Only those not sent again are retried as they are (a notification sent twice is ingested twice into
    // the same raw keys: harmless, but avoided).
    later.forEach((m, i) => {
      if (sent[i]) deferred++;
      else failedIds.push(m.id);
    });
  }
  return { failedIds, recordsWritten, objectsWritten, landingObjects, deferred };
}
