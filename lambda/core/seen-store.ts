/**
 * Remembers which eventIds are already in the lake, so a delivery Smartcar retries (or SQS redelivers)
 * after its first copy was stored is acknowledged without being stored twice. Smartcar suggests
 * remembering eventIds for 7 days; its own retries span about 3 minutes.
 *
 * The store is advisory: a look-up that fails counts everything as new (a possible duplicate, never a
 * loss), and ids are marked only after their object is written.
 */
import { createHash } from 'node:crypto';
import { toWellFormed } from './log-safe';

/** Ids up to this many UTF-8 bytes are their own key; DynamoDB's partition key limit is 2,048 bytes. */
export const MAX_PLAIN_DEDUPE_KEY_BYTES = 512;

/**
 * The key an eventId is remembered under. An id that is too long for a DynamoDB key, or that is not
 * well-formed Unicode (a lone surrogate cannot be encoded as UTF-8), is replaced by a digest of it, so
 * any id fits and one odd id cannot fail the look-up for the genuine ids in its batch. The `#` prefix
 * keeps digests apart from plain ids and from legacy `sha256:` body-hash ids.
 */
export function dedupeKey(eventId: string): string {
  if (toWellFormed(eventId) === eventId && Buffer.byteLength(eventId, 'utf8') <= MAX_PLAIN_DEDUPE_KEY_BYTES) {
    return eventId;
  }
  // UTF-16 code units are hashed so that two ids differing only in their lone surrogates stay apart.
  return `#sha256:${createHash('sha256').update(Buffer.from(eventId, 'utf16le')).digest('hex')}`;
}

export interface SeenStore {
  /** The subset of `eventIds` not stored before. */
  unseen(eventIds: readonly string[]): Promise<Set<string>>;
  markSeen(eventIds: readonly string[]): Promise<void>;
}

/** Deduplication off: everything is new. */
export const nothingSeen: SeenStore = {
  unseen: async (ids) => new Set(ids),
  markSeen: async () => {},
};

/** In memory, with a time to live: the local receiver's store. */
export class MemorySeenStore implements SeenStore {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async unseen(eventIds: readonly string[]): Promise<Set<string>> {
    const t = this.now();
    return new Set(eventIds.filter((id) => (this.seen.get(id) ?? 0) <= t));
  }

  async markSeen(eventIds: readonly string[]): Promise<void> {
    const until = this.now() + this.ttlMs;
    for (const id of eventIds) this.seen.set(id, until);
    if (this.seen.size > 1_000_000) {
      const t = this.now();
      for (const [id, expiry] of this.seen) if (expiry <= t) this.seen.delete(id);
    }
  }
}
