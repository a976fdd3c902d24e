/**
 * `erase --stack`: one user's or vehicle's records erased from a deployed instance, from a workstation.
 * The same places as the erase state machine (lambda/adapters/erasure-places.ts), run in one process:
 *
 * 1. take the compaction lock (no compaction, and no other erasure, rewrites the lake meanwhile);
 * 2. write the ledger entry (a real run): from then on ingest, replay, redrive, recovery and compaction
 *    drop the subject's older records;
 * 3. wait out the ingest function's cached view of the ledger, so that no record a container with the old
 *    view writes can land after the raw zone is swept;
 * 4. sweep the raw zone (old object versions included), then the curated layer, the state and dedupe
 *    tables, the quarantine, the dead-letter queues, the run reports and the Athena results;
 * 5. complete the ledger entry, store the receipt in the work bucket, give the lock back.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Resources } from '../../cli/stack';
import {
  type DeadLetterOptions,
  type DeployedLocations,
  deployedPlaces,
  type PlaceSlots,
  rawS3Place,
  releaseCompactionLock,
  takeCompactionLock,
} from '../../lambda/adapters/erasure-places';
import { curatedSlot, type SlotConfig, smartcarSlot } from '../../lambda/adapters/erasure-slots';
import { s3LedgerStore, s3PendingStore, s3ReceiptStore } from '../../lambda/adapters/erasure-stores';
import { ERASE_INGEST_WAIT_SECONDS } from '../../lambda/contract';
import {
  describePlace,
  type ErasurePlace,
  type ErasureReceipt,
  newErasureId,
  runErasure,
  type Subject,
} from '../../lambda/core/erasure';
import { DEPLOYED_OUTSIDE } from '../../lambda/core/erasure-places';

/** How long the command holds the compaction lock at most (a crashed run blocks compaction this long). */
export const ERASE_LEASE_MS = 6 * 60 * 60 * 1000;

export interface EraseDeployedOptions {
  readonly subject: Subject;
  readonly dryRun: boolean;
  readonly reference?: string;
  /** Also remove the connection at Smartcar (the `smartcar` slot). */
  readonly smartcar: boolean;
  readonly log: (line: string) => void;
  /** Waits out the ingest function's ledger cache; tests pass one that returns at once. */
  readonly wait?: (ms: number) => Promise<void>;
  /** The curated layer and Smartcar places; by default built from the stack's outputs (tests pass their own). */
  readonly slots?: PlaceSlots;
  /** The webhook whose subscriptions `--smartcar` removes (`--webhook-id`, else SMARTCAR_WEBHOOK_ID). */
  readonly webhookId?: string;
  /** The curated layer's prefix. @default curated */
  readonly curatedPrefix?: string;
  /** Dead-letter sweep options (tests: no long polling). */
  readonly deadLetters?: DeadLetterOptions;
  readonly clients?: { s3?: S3Client; ddb?: DynamoDBClient; sqs?: SQSClient; sts?: STSClient };
}

/** The deployed instance's data locations, from the stack's outputs (or the flags that stand in for them). */
export function deployedLocations(resources: Resources): DeployedLocations & { lockTable?: string } {
  return {
    lakeBucket: resources.required(undefined, 'LakeBucketName', 'the lake bucket'),
    rawPrefix: resources.optional(undefined, 'RawPrefix') ?? 'raw',
    workBucket: resources.required(undefined, 'WorkBucketName', 'the work bucket, where receipts go'),
    stateTable: resources.optional(undefined, 'StateTableName'),
    dedupTable: resources.optional(undefined, 'DedupTableName'),
    quarantineBucket: resources.optional(undefined, 'QuarantineBucketName'),
    deadLetterQueueUrl: resources.optional(undefined, 'DeadLetterQueueUrl'),
    stateDeadLetterQueueUrl: resources.optional(undefined, 'StateDeadLetterQueueUrl'),
    athenaResultsBucket: resources.optional(undefined, 'AthenaResultsBucketName'),
    lockTable: resources.optional(undefined, 'CompactionLockTableName'),
  };
}

/** Who asked: the caller's ARN, or a stand-in (with a line saying why) when STS does not answer. */
async function callerOf(sts: STSClient, log: (line: string) => void): Promise<string> {
  try {
    const out = await sts.send(new GetCallerIdentityCommand({}));
    if (out.Arn) return out.Arn;
  } catch (err) {
    log(`note: could not read the caller's identity (${(err as Error).name}); the receipt says "unknown caller"`);
    return 'unknown caller';
  }
  log('note: STS returned no caller ARN; the receipt says "unknown caller"');
  return 'unknown caller';
}

export async function eraseDeployed(resources: Resources, options: EraseDeployedOptions): Promise<ErasureReceipt> {
  const where = deployedLocations(resources);
  const s3 = options.clients?.s3 ?? new S3Client({});
  const ddb = options.clients?.ddb ?? new DynamoDBClient({});
  const sqs = options.clients?.sqs ?? new SQSClient({});
  const sts = options.clients?.sts ?? new STSClient({});
  const log = options.log;
  if (options.smartcar && !options.slots?.smartcar && !resources.optional(undefined, 'ManagementTokenSecretArn'))
    throw new Error(
      '--smartcar needs the management token secret (output ManagementTokenSecretArn); nothing was erased',
    );
  const requestedBy = await callerOf(sts, log);
  const erasureId = newErasureId(new Date());
  const ledger = s3LedgerStore(s3, where.lakeBucket);
  const config: SlotConfig = {
    lakeBucket: where.lakeBucket,
    workGroup: resources.optional(undefined, 'AthenaWorkGroup'),
    database: resources.optional(undefined, 'GlueDatabase'),
    curatedPrefix: options.curatedPrefix ?? 'curated',
    managementTokenSecretId: resources.optional(undefined, 'ManagementTokenSecretArn'),
    clientCredentialsSecretId: resources.optional(undefined, 'ClientCredentialsSecretName'),
    webhookId: options.webhookId,
  };
  const slots: PlaceSlots = {
    curated: options.slots?.curated ?? curatedSlot(config, s3),
    smartcar: options.smartcar ? (options.slots?.smartcar ?? smartcarSlot(config)) : undefined,
  };
  if (!slots.curated)
    log(
      'note: the stack names no Athena workgroup or Glue database (AthenaWorkGroup, GlueDatabase): the curated layer is not searched',
    );
  const rest = deployedPlaces(where, { s3, ddb, sqs }, slots, options.deadLetters);
  const raw = rawS3Place(s3, where.lakeBucket, where.rawPrefix);
  const wait = options.wait ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // Runs once the ledger entry is written (runErasure writes it before the first place): ingest
  // containers re-read the ledger at most every INGEST_LEDGER_TTL_SECONDS, and a batch started before
  // that may still be writing for INGEST_TIMEOUT_SECONDS.
  const waitForIngest: ErasurePlace = {
    place: 'wait',
    async erase(context) {
      if (!context.dryRun) {
        const ms = ERASE_INGEST_WAIT_SECONDS * 1000;
        log(`waiting ${ms / 1000} s for the ingest function to see the ledger entry…`);
        await wait(ms);
      }
      return [];
    },
  };
  if (where.lockTable) {
    await takeCompactionLock(ddb, where.lockTable, erasureId, `erasure ${erasureId} by ${requestedBy}`, ERASE_LEASE_MS);
  } else {
    log(
      'note: the stack names no compaction lock table (CompactionLockTableName); nothing keeps a compaction from running meanwhile',
    );
  }
  try {
    return await runErasure({
      subject: options.subject,
      dryRun: options.dryRun,
      places: [waitForIngest, raw, ...rest.values()],
      ledger,
      receipts: s3ReceiptStore(s3, where.workBucket),
      pending: s3PendingStore(s3, where.workBucket),
      requestedBy,
      reference: options.reference,
      outside: DEPLOYED_OUTSIDE,
      erasureId,
      onPlace: (r) => log(describePlace(r, options.dryRun)),
    });
  } finally {
    if (where.lockTable) await releaseCompactionLock(ddb, where.lockTable, erasureId);
  }
}
