/**
 * How Lambda's SQS event source mapping turns arriving messages into invocations, as a range where AWS
 * does not document it exactly (AWS Lambda developer guide, "Using Lambda with Amazon SQS" and "Lambda
 * parameters for Amazon SQS event source mappings"):
 *
 * - Pollers: Lambda "starts processing five batches at a time" for a standard queue, so up to five pollers
 *   read the queue at once, each forming its own batches. Best case: one poller gets every message (one
 *   batch per window); worst case: the messages spread evenly over five, five times the batches.
 * - A batch closes at `BatchSize` messages, 6 MB, or `MaximumBatchingWindowInSeconds` after it opened.
 * - Messages per ReceiveMessage: a long poll returns as soon as anything is waiting, at most 10. Best case
 *   10 a receive (a batch of n costs ceil(n/10) receives); worst case what arrives while one receive turns
 *   round (about 80 ms: the call's round trip and the poller's own work), at least one: one message a
 *   receive up to 12 a second, three at 38 a second, ten from 125 a second.
 * - Deletes: Lambda deletes a processed batch 10 messages per DeleteMessageBatch.
 */
export interface Queued {
  readonly body: string;
  readonly at: number;
}

export interface PollingCase {
  readonly name: 'best' | 'worst';
  readonly pollers: number;
}

export const POLLING_CASES: readonly PollingCase[] = [
  { name: 'best', pollers: 1 },
  { name: 'worst', pollers: 5 },
];

export interface Polled<T extends Queued> {
  readonly batches: T[][];
  readonly receives: number;
  readonly deletes: number;
}

const MAX_BATCH_BYTES = 6 * 2 ** 20;
/** How long one receive takes to turn round, so what it finds waiting in the worst case (see above). */
export const RECEIVE_TURN_SECONDS = 0.08;

export function poll<T extends Queued>(
  queued: readonly T[],
  c: PollingCase,
  batchSize: number,
  windowSeconds: number,
  /** Deliveries a second arriving at the queue (the scenario's average). */
  arrivalRate: number,
): Polled<T> {
  // Round robin: the evenest spread, the most batches.
  const perPoller: T[][] = Array.from({ length: c.pollers }, () => []);
  for (const [i, m] of queued.entries()) perPoller[i % c.pollers].push(m);
  const batches: T[][] = [];
  let receives = 0;
  // Every poller's receive finds what arrived at the whole queue while it turned round.
  const perReceive = Math.min(10, Math.max(1, Math.floor(arrivalRate * RECEIVE_TURN_SECONDS)));
  for (const messages of perPoller) {
    let current: T[] = [];
    let bytes = 0;
    const close = () => {
      if (current.length === 0) return;
      batches.push(current);
      if (c.name === 'best') receives += Math.ceil(current.length / 10);
      else receives += Math.ceil(current.length / perReceive);
      current = [];
      bytes = 0;
    };
    for (const m of messages) {
      const size = Buffer.byteLength(m.body);
      if (
        current.length > 0 &&
        (current.length >= batchSize || bytes + size > MAX_BATCH_BYTES || m.at - current[0].at > windowSeconds * 1000)
      )
        close();
      current.push(m);
      bytes += size;
    }
    close();
  }
  batches.sort((a, b) => a[0].at - b[0].at);
  const deletes = batches.reduce((n, b) => n + Math.ceil(b.length / 10), 0);
  return { batches, receives, deletes };
}
