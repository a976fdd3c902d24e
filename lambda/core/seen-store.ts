/**
 * Remembers which eventIds are already in the lake, so a delivery Smartcar retries (or SQS redelivers)
 * after its first copy was stored is acknowledged without being stored twice. Smartcar suggests
 * remembering eventIds for 7 days; its own retries span about 3 minutes.
 *
 * The store is advisory: a look-up that fails counts everything as new (a possible duplicate, never a
 * loss), and ids are marked only after their object is written.
 */
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
