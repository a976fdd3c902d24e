/**
 * The local stand-in for the SQS queue: each accepted delivery is written to its own file and flushed to
 * disk before the server answers 200, exactly as the deployed receiver waits for SQS. The batcher turns
 * spooled deliveries into lake objects and only then deletes them; deliveries left by a crash are
 * picked up at the next start. The quarantine has its own spool, of rejected deliveries, written to the
 * local quarantine in batches as the deployed quarantine queue is.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { DeliveryMessage } from '../lambda/contract';
import type { QueuedMessage } from '../lambda/core/ingest';

export class Spool<T = DeliveryMessage> {
  private seq = 0;

  constructor(private readonly dir: string) {}

  async enqueue(message: T): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Time-ordered names keep the arrival order; the counter and uuid keep them unique.
    const name = `${Date.now()}-${String(++this.seq).padStart(8, '0')}-${randomUUID()}.json`;
    await writeFile(path.join(this.dir, name), JSON.stringify(message), { flush: true });
  }

  /** Everything spooled, oldest first; the message id is the file name. */
  async pending(): Promise<QueuedMessage[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
    const out: QueuedMessage[] = [];
    for (const id of names) {
      const body = await readFile(path.join(this.dir, id), 'utf8').catch(() => undefined);
      if (body !== undefined) out.push({ id, body });
    }
    return out;
  }

  async remove(ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map((id) => rm(path.join(this.dir, id), { force: true })));
  }
}
