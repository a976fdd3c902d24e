/**
 * Recovery after a token mistake: re-verifies the quarantined deliveries with the current token (and the
 * previous one during its grace period) and sends the authentic ones to the delivery queue, where the
 * ingest function stores them (deduplicated by eventId). Invoke it with `{"since": "<ISO time>"}`
 * (optional `until`, `dryRun`) from the console, `npm run rotate-token -- --recover-function`, or
 * `aws lambda invoke`; `npm run recover-rejected` runs the same core from a workstation.
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
const tokens = secretsManagerTokens(new SecretsManagerClient({}), requireEnv(ENV.managementTokenSecretId));
const store = s3QuarantineStore(new S3Client({}), requireEnv(ENV.quarantineBucketName));
const deliver = queueDelivery(new SQSClient({}), requireEnv(ENV.deliveryQueueUrl));
const dedupTable = process.env[ENV.dedupTableName];
const isStored = dedupTable
  ? dynamoStoredIds(new DynamoDBClient({}), dedupTable, numberEnv(ENV.dedupTtlSeconds, DEFAULT_DEDUP_TTL_SECONDS))
  : async () => new Set<string>();

export interface RecoverEvent {
  since?: string;
  until?: string;
  dryRun?: boolean;
}

function time(name: string, value: unknown): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new Error(`"${name}" must be an ISO 8601 time, got ${JSON.stringify(value)}`);
  return date;
}

export async function handler(event: RecoverEvent, context?: Context): Promise<RecoveryReport> {
  if (context) logger.addContext(context);
  const known = await tokensToTry(tokens);
  try {
    return await recoverRejected({
      store,
      tokens: known,
      since: time('since', event?.since),
      until: time('until', event?.until),
      dryRun: Boolean(event?.dryRun),
      isStored,
      deliver,
      logger,
      metrics: coreMetrics,
    });
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
