/**
 * Turns a batch of queued deliveries into lake objects: one gzip NDJSON object per partition, written
 * concurrently. A message that cannot be decoded, or whose object could not be written, is reported as
 * failed so that only it is delivered again (and, after the queue's retries, lands in the dead-letter
 * queue): nothing is dropped silently.
 */
import type { DeliveryMessage, LakeRecord } from '../contract';
import { encodeNdjsonGzip, groupByPartition, objectKey, toLakeRecord } from './lake';
import type { CoreLogger } from './logger';

export interface QueuedMessage {
  readonly id: string;
  readonly body: string;
}

export interface IngestDeps {
  /** Writes one object; resolves once it is durable. */
  readonly putObject: (key: string, body: Buffer) => Promise<void>;
  readonly rawPrefix: string;
  readonly logger: CoreLogger;
  readonly now?: () => Date;
}

export interface IngestResult {
  readonly failedIds: string[];
  readonly recordsWritten: number;
  readonly objectsWritten: string[];
}

export async function ingestBatch(messages: readonly QueuedMessage[], deps: IngestDeps): Promise<IngestResult> {
  const now = (deps.now ?? (() => new Date()))();
  const failedIds: string[] = [];
  const decoded: { id: string; record: LakeRecord }[] = [];
  for (const m of messages) {
    try {
      decoded.push({ id: m.id, record: toLakeRecord(JSON.parse(m.body) as DeliveryMessage, now) });
    } catch (err) {
      deps.logger.error('undecodable queue message; leaving it for retry and the dead-letter queue', {
        messageId: m.id,
        reason: err instanceof Error ? err.message : String(err),
      });
      failedIds.push(m.id);
    }
  }

  const groups = groupByPartition(deps.rawPrefix, decoded);
  const objectsWritten: string[] = [];
  let recordsWritten = 0;
  await Promise.all(
    [...groups].map(async ([prefix, items]) => {
      const records = items.map((i) => i.record);
      const ids = items.map((i) => i.id);
      const key = objectKey(prefix, records, ids);
      try {
        await deps.putObject(key, encodeNdjsonGzip(records));
        objectsWritten.push(key);
        recordsWritten += records.length;
      } catch (err) {
        deps.logger.error('could not write lake object; its messages will be retried', {
          key,
          records: records.length,
          reason: err instanceof Error ? err.message : String(err),
        });
        failedIds.push(...ids);
      }
    }),
  );
  deps.logger.info('ingested batch', {
    messages: messages.length,
    recordsWritten,
    objectsWritten: objectsWritten.length,
    failed: failedIds.length,
  });
  return { failedIds, recordsWritten, objectsWritten };
}
