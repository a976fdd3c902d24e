/**
 * Recovery after a token mistake: re-verifies the quarantined deliveries with the current token (and the
 * previous one during its grace period), read fresh from Secrets Manager on every invocation, and sends
 * the authentic ones to the delivery queue as it reads them, where the ingest function stores them
 * (deduplicated by eventId). Invoke it with `{"since": "<ISO time>"}` (optional `until`, `dryRun`) from
 * the console, `npm run rotate-token -- --recover-function` (which waits and prints the counts), or
 * `aws lambda invoke`; `npm run recover-rejected` runs the same core from a workstation.
 *
 * It stops a minute before its timeout and answers `done: false`: invoke it again with the same input
 * and it goes on where it stopped (its progress is in the bucket, see core/quarantine.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { createLogger } from '../adapters/logger';
import { secretsManagerTokens } from '../adapters/management-token';
import { coreMetrics, metrics } from '../adapters/metrics';
import { dynamoStoredIds, queueDelivery, s3QuarantineStore } from '../adapters/recovery';
import { DEFAULT_DEDUP_TTL_SECONDS, ENV } from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { type RecoveryReport, recoverRejected, tokensToTry } from '../core/quarantine';

const logger = createLogger();
const secrets = new SecretsManagerClient({});
const secretId = requireEnv(ENV.managementTokenSecretId);
const store = s3QuarantineStore(new S3Client({}), requireEnv(ENV.quarantineBucketName));
const deliver = queueDelivery(new SQSClient({}), requireEnv(ENV.deliveryQueueUrl));
const dedupTable = process.env[ENV.dedupTableName];
const isStored = dedupTable
  ? dynamoStoredIds(new DynamoDBClient({}), dedupTable, numberEnv(ENV.dedupTtlSeconds, DEFAULT_DEDUP_TTL_SECONDS))
  : async () => new Set<string>();

/** Time kept back from the function's timeout to write the last marker and answer. */
const STOP_BEFORE_TIMEOUT_MS = 60_000;

export interface RecoverEvent {
  since?: string;
  until?: string;
  dryRun?: boolean;
}

function time(name: string, value: unknown): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new Error(`"${name}" must be an ISO 8601 time`);
  return date;
}

export async function handler(event: RecoverEvent, context?: Context): Promise<RecoveryReport> {
  if (context) logger.addContext(context);
  const since = time('since', event?.since);
  const until = time('until', event?.until);
  // A new source each time: a warm instance must not re-verify with a token cached before the fix.
  const known = await tokensToTry(secretsManagerTokens(secrets, secretId));
  try {
    return await recoverRejected({
      store,
      tokens: known,
      since,
      until,
      dryRun: Boolean(event?.dryRun),
      isStored,
      deliver,
      shouldStop: context ? () => context.getRemainingTimeInMillis() < STOP_BEFORE_TIMEOUT_MS : undefined,
      logger,
      metrics: coreMetrics,
    });
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
