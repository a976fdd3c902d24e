/**
 * The erase state machine's one function (lib/erasure.ts): each task state calls it with an `action`.
 *
 * - `validate`: the execution's input → the request (subject, dryRun, reference, smartcar) and a new
 *   erasure id, or `{valid: false, reason}` (one line, never the id) for the state machine to fail with;
 * - `lock`, `begin`: the compaction lock, then the ledger's `started` entry (a real run);
 * - `sweep`: one page of the raw zone after a cursor, adding to the counts;
 * - `landing`: one page of the landing zone's keys after a cursor, adding to its counts (a backlog of
 *   thousands of objects when ingest was broken is many calls, never one that times out);
 * - `place`: one of the other places (state, dedupe, quarantine, dead-letters, reports, athena-results, and
 *   the curated and smartcar slots; `landing` too, whole, for executions started before the loop);
 * - `finish`: the ledger entry completed, the receipt in the work bucket, the lock given back;
 * - `abort`: the lock given back after a failure, and the error as one line.
 *
 * The vehicles and event ids the raw sweep finds (read by the state and dedupe places) can be too many
 * for the execution's state, and are personal: they are kept beside the receipts under
 * `erasures/pending/` (a real run's file is named by the ledger hash, so running the same request again
 * after a failure picks them up) and deleted when the erasure finishes.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  type DeployedLocations,
  deployedPlaces,
  landingWhere,
  type PlaceSlots,
  releaseCompactionLock,
  releaseLockOfExecution,
  sweepLandingPage,
  sweepRawPage,
  takeCompactionLock,
} from '../adapters/erasure-places';
import { curatedSlot, type SlotConfig, smartcarSlot } from '../adapters/erasure-slots';
import { deleteNoncurrentVersions, s3LedgerStore, s3ReceiptStore } from '../adapters/erasure-stores';
import {
  DEFAULT_LANDING_PREFIX,
  DEFAULT_RAW_PREFIX,
  ENV,
  ERASE_ENV,
  ERASE_FUNCTION_TIMEOUT_SECONDS,
  ERASE_LANDING_PAGE_SIZE,
  ERASE_PAGE_SIZE,
} from '../contract';
import {
  beginErasure,
  completeErasure,
  type ErasureContext,
  emptySweep,
  newErasureId,
  type PlaceResult,
  parseReference,
  parseSubject,
  type RawSweep,
  rawPlaceResult,
  receiptOf,
  type Subject,
  subjectHash,
} from '../core/erasure';
import { DEPLOYED_OUTSIDE, emptyLandingSweep, type LandingSweep, landingPlaceResult } from '../core/erasure-places';

/** The request as the state machine carries it from task to task (the subject, flags and the id). */
export interface ErasureRequest {
  readonly subject: Subject;
  readonly dryRun: boolean;
  readonly smartcar: boolean;
  readonly reference: string | null;
  readonly erasureId: string;
  /** Records received before this are erased. */
  readonly startedAt: string;
  /** The ledger hash (after `begin`). */
  readonly hash?: string;
}

export type EraseEvent =
  | { action: 'validate'; input: Record<string, unknown> }
  | { action: 'lock'; erasure: ErasureRequest; execution: string }
  | { action: 'begin'; erasure: ErasureRequest }
  | { action: 'sweep'; erasure: ErasureRequest; raw?: { cursor?: string | null; sweep?: RawSweep | null } }
  | {
      action: 'landing';
      erasure: ErasureRequest;
      landing?: { cursor?: string | null; sweep?: LandingSweep | null };
    }
  | { action: 'place'; erasure: ErasureRequest; place: string }
  | {
      action: 'finish';
      erasure: ErasureRequest;
      execution: string;
      sweep: RawSweep;
      /** The landing loop's counts (absent in executions started before the loop: `results.landing` then). */
      landing?: LandingSweep | null;
      results: Record<string, PlaceResult[]>;
    }
  | { action: 'abort'; erasure?: ErasureRequest; error?: { Error?: string; Cause?: string } };

/** The order of the places after the raw zone on the receipt. */
export const PLACE_ORDER = [
  'raw-versions',
  'curated',
  'state',
  'dedupe',
  'landing',
  'quarantine',
  'dead-letters',
  'reports',
  'athena-results',
  'smartcar',
];

/** How long a task of a stopped execution may still run (the function's timeout). */
export const ERASE_FUNCTION_TIMEOUT_MS = ERASE_FUNCTION_TIMEOUT_SECONDS * 1000;

/** The lease the state machine holds the compaction lock for (its timeout, plus a margin). */
export const ERASE_MACHINE_LEASE_MS = (24 * 60 + 15) * 60 * 1000;

/**
 * The curated layer's and Smartcar's places, filled in by their authors (lib/erasure.ts calls the
 * function with `{place: 'curated'}` and, when asked, `{place: 'smartcar'}`); absent ones report nothing.
 */
export const slots: { -readonly [K in keyof PlaceSlots]: PlaceSlots[K] } = {};

/** The slots from the function's environment (tests may set `slots` instead). */
function configuredSlots(s3: S3Client, lakeBucket: string): PlaceSlots {
  const env = (name: string) => process.env[name] || undefined;
  const config: SlotConfig = {
    lakeBucket,
    workGroup: env(ERASE_ENV.workGroupName),
    database: env(ERASE_ENV.databaseName),
    curatedPrefix: env(ERASE_ENV.curatedPrefix),
    managementTokenSecretId: env(ERASE_ENV.managementTokenSecretId),
    clientCredentialsSecretId: env(ERASE_ENV.clientCredentialsSecretId),
    webhookId: env(ERASE_ENV.webhookId),
  };
  return {
    curated: slots.curated ?? curatedSlot(config, s3),
    smartcar: slots.smartcar ?? smartcarSlot(config),
  };
}

// Made on first use, so that the configuration (region, endpoint) is read when the function runs.
let clients: { s3: S3Client; ddb: DynamoDBClient; sqs: SQSClient } | undefined;
const aws = () => {
  clients ??= { s3: new S3Client({}), ddb: new DynamoDBClient({}), sqs: new SQSClient({}) };
  return clients;
};

function locations(): DeployedLocations & {
  lockTable?: string;
  pageSize: number;
  landingPageSize: number;
  waitSeconds: number;
} {
  const env = (name: string) => process.env[name] || undefined;
  const lakeBucket = env(ERASE_ENV.lakeBucketName);
  const workBucket = env(ERASE_ENV.workBucketName);
  if (!lakeBucket || !workBucket) throw new Error('LAKE_BUCKET_NAME and WORK_BUCKET_NAME must be set');
  return {
    lakeBucket,
    workBucket,
    rawPrefix: env(ERASE_ENV.lakeRawPrefix) ?? DEFAULT_RAW_PREFIX,
    landingPrefix: env(ENV.landingPrefix) ?? DEFAULT_LANDING_PREFIX,
    stateTable: env(ERASE_ENV.stateTableName),
    dedupTable: env(ERASE_ENV.dedupTableName),
    quarantineBucket: env(ERASE_ENV.quarantineBucketName),
    deadLetterQueueUrl: env(ERASE_ENV.deadLetterQueueUrl),
    stateDeadLetterQueueUrl: env(ERASE_ENV.stateDeadLetterQueueUrl),
    athenaResultsBucket: env(ERASE_ENV.athenaResultsBucketName),
    lockTable: env(ERASE_ENV.lockTableName),
    pageSize: Number(env(ERASE_ENV.pageSize) ?? ERASE_PAGE_SIZE),
    landingPageSize: Number(env(ERASE_ENV.landingPageSize) ?? ERASE_LANDING_PAGE_SIZE),
    waitSeconds: Number(env(ERASE_ENV.deadLetterWaitSeconds) ?? 1),
  };
}

/** What the raw sweep found for the later places, kept in the work bucket between tasks. */
interface Pending {
  vehicleIds: string[];
  eventIds: string[];
}

const pendingKey = (e: ErasureRequest) =>
  e.dryRun || !e.hash ? `erasures/pending/dry-run-${e.erasureId}.json` : `erasures/pending/${e.hash}.json`;

async function readPending(s3: S3Client, bucket: string, e: ErasureRequest): Promise<Pending> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: pendingKey(e) }));
    return JSON.parse(await (out.Body as { transformToString(): Promise<string> }).transformToString()) as Pending;
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return { vehicleIds: [], eventIds: [] };
    throw err;
  }
}

async function writePending(s3: S3Client, bucket: string, e: ErasureRequest, context: ErasureContext): Promise<void> {
  const pending: Pending = { vehicleIds: [...context.vehicleIds].sort(), eventIds: [...context.eventIds].sort() };
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: pendingKey(e),
      Body: JSON.stringify(pending),
      ContentType: 'application/json',
    }),
  );
}

/** Deletes the pending ids, every version of them (the work bucket may be versioned). */
async function dropPending(s3: S3Client, bucket: string, e: ErasureRequest): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: pendingKey(e) }));
  await deleteNoncurrentVersions(s3, bucket, pendingKey(e));
}

async function contextOf(s3: S3Client, bucket: string, e: ErasureRequest): Promise<ErasureContext> {
  const pending = await readPending(s3, bucket, e);
  const context: ErasureContext = {
    subject: e.subject,
    erasedAt: new Date(e.startedAt),
    dryRun: e.dryRun,
    vehicleIds: new Set([...(e.subject.kind === 'vehicle' ? [e.subject.id] : []), ...pending.vehicleIds]),
    eventIds: new Set(pending.eventIds),
    // The sweep persists what it found before it rewrites anything: a step that times out half-way
    // loses none of it (the next attempt, or a rerun of the same request, reads it back).
    persist: () => writePending(s3, bucket, e, context),
  };
  return context;
}

/** The one line a failure ends with: a Lambda error's message (its Cause is JSON), else the cause as given. */
export function oneLine(error: { Error?: string; Cause?: string } | undefined): { error: string; cause: string } {
  let cause = error?.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (typeof parsed?.errorMessage === 'string') cause = parsed.errorMessage;
  } catch {
    // not JSON: as given
  }
  return { error: error?.Error ?? 'Erasure.Failed', cause: cause.split('\n')[0].slice(0, 500) };
}

/** Step Functions' own event when an execution of the erase state machine was stopped or timed out. */
interface ExecutionEnded {
  readonly source: 'aws.states';
  readonly detail?: { readonly status?: string; readonly executionArn?: string };
}

/** What the function uses of Lambda's context: the time left, so that a landing page stops before the timeout. */
interface CallContext {
  getRemainingTimeInMillis(): number;
}

export async function handler(event: EraseEvent | ExecutionEnded, call?: CallContext): Promise<unknown> {
  const { s3, ddb, sqs } = aws();
  if ('source' in event && event.source === 'aws.states') {
    // An execution stopped from the console or timed out never reached its Catch: give its lock back.
    const where = locations();
    const arn = event.detail?.executionArn;
    const ended = event.detail?.status === 'ABORTED' || event.detail?.status === 'TIMED_OUT';
    if (!where.lockTable || !arn || !ended) return { released: false };
    // A task of the stopped execution may still run for up to the function's timeout: the lease ends after it.
    return { released: await releaseLockOfExecution(ddb, where.lockTable, arn, ERASE_FUNCTION_TIMEOUT_MS + 60_000) };
  }
  event = event as EraseEvent;
  switch (event.action) {
    case 'validate': {
      const input = event.input ?? {};
      try {
        const subject = parseSubject(input);
        if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean')
          throw new Error('dryRun must be true or false');
        if (input.smartcar !== undefined && typeof input.smartcar !== 'boolean')
          throw new Error('smartcar must be true or false');
        const reference = parseReference(input.reference);
        const unknown = Object.keys(input).filter(
          (k) => !['userId', 'vehicleId', 'dryRun', 'smartcar', 'reference'].includes(k),
        );
        if (unknown.length) throw new Error(`unknown input field ${JSON.stringify(unknown[0].slice(0, 40))}`);
        const now = new Date();
        const request: ErasureRequest = {
          subject,
          dryRun: input.dryRun === true,
          smartcar: input.smartcar === true,
          reference: reference ?? null,
          erasureId: newErasureId(now),
          startedAt: now.toISOString(),
        };
        return { valid: true, erasure: request };
      } catch (err) {
        return { valid: false, reason: `${(err as Error).message}; nothing was erased.` };
      }
    }
    case 'lock': {
      const where = locations();
      if (!where.lockTable) return { locked: false };
      const e = event.erasure;
      await takeCompactionLock(
        ddb,
        where.lockTable,
        e.erasureId,
        `erasure ${e.erasureId} (${event.execution})`,
        ERASE_MACHINE_LEASE_MS,
      );
      return { locked: true };
    }
    case 'begin': {
      const where = locations();
      const e = event.erasure;
      const ledger = s3LedgerStore(s3, where.lakeBucket);
      if (e.dryRun) {
        const current = await ledger.read();
        return current ? subjectHash(current.salt, e.subject.kind, e.subject.id) : '(no ledger yet)';
      }
      const { entry } = await beginErasure(ledger, e.subject, e.erasureId, new Date(e.startedAt));
      return entry.subject;
    }
    case 'sweep': {
      const where = locations();
      const e = event.erasure;
      const context = await contextOf(s3, where.workBucket, e);
      const page = await sweepRawPage(
        s3,
        where.lakeBucket,
        where.rawPrefix,
        event.raw?.cursor ?? undefined,
        where.pageSize,
        context,
        event.raw?.sweep ?? emptySweep(),
      );
      await writePending(s3, where.workBucket, e, context);
      return { cursor: page.cursor ?? null, done: page.done, sweep: page.sweep };
    }
    case 'landing': {
      const where = locations();
      const page = await sweepLandingPage(
        s3,
        where.lakeBucket,
        where.landingPrefix ?? DEFAULT_LANDING_PREFIX,
        event.landing?.cursor ?? undefined,
        await contextOf(s3, where.workBucket, event.erasure),
        event.landing?.sweep ?? emptyLandingSweep(),
        {
          pageSize: where.landingPageSize,
          remainingMs: call ? () => call.getRemainingTimeInMillis() : undefined,
        },
      );
      // The cursor is a key the delivery stream generated (a time and a uuid): it names no one.
      return { cursor: page.cursor ?? null, done: page.done, sweep: page.sweep };
    }
    case 'place': {
      const where = locations();
      const e = event.erasure;
      const places = deployedPlaces(where, { s3, ddb, sqs }, configuredSlots(s3, where.lakeBucket), {
        waitSeconds: where.waitSeconds,
      });
      const place = places.get(event.place);
      if (event.place === 'smartcar' && !e.smartcar) return [];
      if (!place && event.place === 'smartcar')
        throw new Error('"smartcar": true, but this stack gives the erase function no management token secret');
      if (!place) return [];
      const out = await place.erase(await contextOf(s3, where.workBucket, e));
      return Array.isArray(out) ? out : [out];
    }
    case 'finish': {
      const where = locations();
      const e = event.erasure;
      const landing = event.landing
        ? [landingPlaceResult(event.landing, landingWhere(where.lakeBucket, where.landingPrefix))]
        : undefined;
      const places = [
        rawPlaceResult(event.sweep, `s3://${where.lakeBucket}/${where.rawPrefix}/`),
        // The state machine's result paths spell `dead-letters` as `dead_letters` (JSONPath).
        ...PLACE_ORDER.flatMap((p) =>
          p === 'landing' && landing ? landing : (event.results?.[p.replaceAll('-', '_')] ?? event.results?.[p] ?? []),
        ),
      ];
      const ledger = s3LedgerStore(s3, where.lakeBucket);
      const finishedAt = new Date();
      const receipt = receiptOf({
        erasureId: e.erasureId,
        dryRun: e.dryRun,
        subject: e.subject,
        subjectHash: e.hash ?? '(no ledger yet)',
        ledger: ledger.describe(),
        reference: e.reference ?? undefined,
        requestedBy: `Step Functions execution ${event.execution} (CloudTrail's StartExecution event names who started it)`,
        erasedAt: new Date(e.startedAt),
        startedAt: new Date(e.startedAt),
        finishedAt,
        places,
        outside: DEPLOYED_OUTSIDE,
      });
      let receiptKey: string | undefined;
      if (!e.dryRun) {
        const current = await ledger.read();
        const entry = current?.entries.find((x) => x.erasureId === e.erasureId);
        if (!entry) throw new Error(`the ledger at ${ledger.describe()} lost this erasure's entry`);
        await completeErasure(ledger, entry, places, finishedAt);
        receiptKey = await s3ReceiptStore(s3, where.workBucket).put(e.erasureId, receipt);
      }
      await dropPending(s3, where.workBucket, e);
      if (where.lockTable) await releaseCompactionLock(ddb, where.lockTable, e.erasureId);
      // The output is the summary: counts per place, no ids.
      return {
        erasureId: e.erasureId,
        dryRun: e.dryRun,
        found: receipt.found,
        removed: receipt.removed,
        receipt: receiptKey ?? null,
        places: places.map((p) => ({ place: p.place, where: p.where, found: p.found, removed: p.removed })),
      };
    }
    case 'abort': {
      const where = locations();
      const e = event.erasure;
      if (e && where.lockTable) await releaseCompactionLock(ddb, where.lockTable, e.erasureId);
      if (e?.dryRun) await dropPending(s3, where.workBucket, e);
      return oneLine(event.error);
    }
    default:
      throw new Error(`unknown action ${JSON.stringify((event as { action?: unknown }).action)}`);
  }
}
