/**
 * Redrive: moves dead-lettered deliveries back to the delivery queue, where the ingest function picks
 * them up again. Each message is sent to the queue before it is deleted from the dead-letter queue, so
 * a failure half-way duplicates at worst (the lake deduplicates on event_id), never loses.
 * SQS's own `aws sqs start-message-move-task --source-arn <DLQ ARN>` does the same in the service; this
 * script is for environments without it (and is what the tests run against moto).
 *
 *   smartcar-webhooks redrive --stack NAME [--instance PREFIX] [--queue delivery|state] [--max N]
 *   smartcar-webhooks redrive --dlq-url URL --queue-url URL [--max N]
 * (in this repository: npm run redrive -- …, the same flags)
 */
import * as path from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import { Spool } from '../../local/spool';

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

/** The command: `npm run redrive -- …` or `smartcar-webhooks redrive …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.redrive, argv, async (args) => {
    const max = str(args, 'max');
    if (max !== undefined && !(Number.isInteger(Number(max)) && Number(max) > 0))
      throw new UsageError(`--max must be a whole number above 0, got "${max}"`);
    const which = str(args, 'queue') ?? 'delivery';
    if (which !== 'delivery' && which !== 'state')
      throw new UsageError(`--queue must be delivery or state, got "${which}"`);
    const resources = await Resources.of(args);
    if (!resources.deployed && !str(args, 'dlq-url') && !str(args, 'queue-url')) {
      if (str(args, 'queue') !== undefined || max !== undefined)
        throw new UsageError('--queue and --max go with --stack or --dlq-url');
      return localSpool(lakeDirOf(args));
    }
    if (str(args, 'lake-dir'))
      throw new UsageError('--lake-dir is for the local receiver, not with --stack or --dlq-url');
    const [dlqName, queueName] =
      which === 'state'
        ? (['StateDeadLetterQueueUrl', 'StateQueueUrl'] as const)
        : (['DeadLetterQueueUrl', 'DeliveryQueueUrl'] as const);
    const moved = await redrive({
      dlqUrl: resources.required('dlq-url', dlqName, `the ${which} dead-letter queue`),
      queueUrl: resources.required('queue-url', queueName, `the ${which} queue`),
      max: max === undefined ? undefined : Number(max),
    });
    console.log(`moved ${moved} message(s) back to the ${which} queue`);
    return 0;
  });
}

/**
 * The local receiver has no dead-letter queue: a delivery it could not write stays in its spool and is
 * written at its next flush (or next start). This says how many wait, so the command means the same here.
 */
async function localSpool(lakeDir: string): Promise<number> {
  const waiting = await new Spool(path.join(lakeDir, '.spool')).pending();
  console.log(
    waiting.length === 0
      ? `nothing to redrive: ${lakeDir} has no delivery waiting (the local receiver keeps none aside)`
      : `${waiting.length} delivery(ies) wait in ${path.join(lakeDir, '.spool')}; the local receiver writes them at its next flush (start it if it is not running)`,
  );
  return 0;
}
