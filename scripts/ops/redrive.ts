/**
 * Redrive: moves dead-lettered deliveries back to the delivery queue, where the ingest function picks
 * them up again. Each message is sent to the queue before it is deleted from the dead-letter queue, so
 * a failure half-way duplicates at worst (the lake deduplicates on event_id), never loses.
 * SQS's own `aws sqs start-message-move-task --source-arn <DLQ ARN>` does the same in the service; this
 * script is for environments without it (and is what the tests run against moto).
 *
 *   npm run redrive -- --dlq-url URL --queue-url URL [--max N]
 */
import { parseArgs } from 'node:util';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { runCli } from '../../local/cli';

export async function redrive(options: {
  dlqUrl: string;
  queueUrl: string;
  max?: number;
  sqs?: SQSClient;
}): Promise<number> {
  const sqs = options.sqs ?? new SQSClient({});
  const max = options.max ?? Number.POSITIVE_INFINITY;
  let moved = 0;
  while (moved < max) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.dlqUrl,
        MaxNumberOfMessages: Math.min(10, max - moved),
        WaitTimeSeconds: 1,
        VisibilityTimeout: 60,
      }),
    );
    if (!out.Messages?.length) break;
    for (const m of out.Messages) {
      await sqs.send(new SendMessageCommand({ QueueUrl: options.queueUrl, MessageBody: m.Body as string }));
      await sqs.send(new DeleteMessageCommand({ QueueUrl: options.dlqUrl, ReceiptHandle: m.ReceiptHandle }));
      moved++;
    }
  }
  return moved;
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { 'dlq-url': { type: 'string' }, 'queue-url': { type: 'string' }, max: { type: 'string' } },
    }));
    if (!values['dlq-url'] || !values['queue-url'])
      throw new Error('pass --dlq-url and --queue-url (stack outputs DeadLetterQueueUrl and the delivery queue)');
    if (values.max !== undefined && !(Number(values.max) > 0))
      throw new Error(`--max must be a positive number, got "${values.max}"`);
  } catch (err) {
    console.error(
      `redrive: ${(err as Error).message}\nusage: npm run redrive -- --dlq-url URL --queue-url URL [--max N]`,
    );
    return 2;
  }
  const moved = await redrive({
    dlqUrl: String(values['dlq-url']),
    queueUrl: String(values['queue-url']),
    max: values.max === undefined ? undefined : Number(values.max),
  });
  console.log(`moved ${moved} message(s) back to the delivery queue`);
  return 0;
}

if (require.main === module) runCli('redrive', main);
