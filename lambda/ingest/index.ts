/**
 * SQS adapter for the ingest core: writes each batch to the lake bucket and reports partial batch
 * failures, so that only the messages whose object could not be written are delivered again. A message is
 * a delivery, or S3's notification of a landing object Firehose wrote (see core/landing.ts): that object
 * is read, stored in the raw zone like a batch, and then deleted.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dynamoSeenStore } from '../adapters/dynamodb-seen-store';
import { s3LedgerStore } from '../adapters/erasure-stores';
import { createLogger } from '../adapters/logger';
import { coreMetrics, metrics } from '../adapters/metrics';
import { getObjectIfThere, listVersionsOf } from '../adapters/s3-objects';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_LANDING_PREFIX,
  DEFAULT_RAW_PREFIX,
  ENV,
  INGEST_LEDGER_TTL_SECONDS,
  type LakeRecord,
  type StateUpdateMessage,
} from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { cachedErasedFilter } from '../core/erasure';
import { EVENT_SOURCE, type EventFilter, type FleetEvent, fleetEventOf, publishEvents } from '../core/fleet-events';
import { ingestQueue } from '../core/landing';

const logger = createLogger();
const s3 = new S3Client({});

const bucket = requireEnv(ENV.lakeBucketName);
const rawPrefix = process.env[ENV.lakeRawPrefix] || DEFAULT_RAW_PREFIX;
const landingPrefix = process.env[ENV.landingPrefix] || DEFAULT_LANDING_PREFIX;
// Set with the Firehose buffer: notifications this invocation has no time for go back on it.
const deliveryQueueUrl = process.env[ENV.deliveryQueueUrl];
const dedupTable = process.env[ENV.dedupTableName];
const eventBus = process.env[ENV.eventBusName];
const eventFilter = JSON.parse(process.env[ENV.eventFilter] || '{}') as EventFilter;
// Per-batch figures only when the construct asks for them (monitoring.detailedMetrics): see IngestDeps.
const detailedMetrics = process.env[ENV.detailedMetrics] === 'true';
const events = eventBus ? new EventBridgeClient({}) : undefined;
const publish =
  eventBus && events
    ? (records: LakeRecord[], lakeKey: string) =>
        publishEvents(
          records.map((r) => fleetEventOf(r, lakeKey, eventFilter)).filter((e): e is FleetEvent => e !== null),
          async (batch) => {
            const out = await events.send(
              new PutEventsCommand({
                Entries: batch.map((e) => ({
                  EventBusName: eventBus,
                  Source: EVENT_SOURCE,
                  DetailType: e.detailType,
                  Detail: JSON.stringify(e.detail),
                })),
              }),
            );
            return batch.map((_, i) => !out.Entries?.[i]?.ErrorCode);
          },
          { logger, metrics: coreMetrics, detailedMetrics },
        )
    : undefined;
// The vehicle state table is kept by its own function; this one only hands it each object's key.
const stateQueueUrl = process.env[ENV.stateQueueUrl];
const sqs = stateQueueUrl || deliveryQueueUrl ? new SQSClient({}) : undefined;
const stateNotify =
  stateQueueUrl && sqs
    ? async (key: string) => {
        const message: StateUpdateMessage = { key };
        await sqs.send(new SendMessageCommand({ QueueUrl: stateQueueUrl, MessageBody: JSON.stringify(message) }));
      }
    : undefined;
const dynamodb = new DynamoDBClient({});
const seen = dedupTable
  ? dynamoSeenStore(dynamodb, dedupTable, numberEnv(ENV.dedupTtlSeconds, DEFAULT_DEDUP_TTL_SECONDS))
  : undefined;

// Records of erased subjects received before their erasure are dropped. The ledger is re-read at most
// every INGEST_LEDGER_TTL_SECONDS; an erasure waits that long before it sweeps the raw zone.
const erased = cachedErasedFilter(s3LedgerStore(s3, bucket), INGEST_LEDGER_TTL_SECONDS * 1000);

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const messages = (event?.Records ?? []).map((r) => ({ id: r.messageId, body: r.body }));
  const result = await ingestQueue(messages, {
    landingPrefix,
    getLanding: ({ key, versionId }) => getObjectIfThere(s3, bucket, key, versionId),
    deleteLanding: async ({ key, versionId }) => {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    },
    // A delete marker on top means someone else deleted it (ingest deletes the version it read).
    removedUnstored: async ({ key }) =>
      (await listVersionsOf(s3, bucket, key)).some((v) => v.deleteMarker && v.isLatest),
    bucket,
    defer:
      deliveryQueueUrl && sqs
        ? async (bodies) => {
            const sent = bodies.map(() => false);
            for (let i = 0; i < bodies.length; i += 10) {
              const chunk = bodies.slice(i, i + 10);
              const out = await sqs
                .send(
                  new SendMessageBatchCommand({
                    QueueUrl: deliveryQueueUrl,
                    Entries: chunk.map((MessageBody, j) => ({ Id: String(j), MessageBody })),
                  }),
                )
                .catch(() => undefined);
              for (const ok of out?.Successful ?? []) sent[i + Number(ok.Id)] = true;
            }
            return sent;
          }
        : undefined,
    remainingMs: context ? () => context.getRemainingTimeInMillis() : undefined,
    rawPrefix,
    stateNotify,
    publish,
    logger,
    metrics: coreMetrics,
    detailedMetrics,
    seen,
    erased,
    putObject: async (key, body) => {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          // A .ndjson.gz file, not a transfer encoding: clients must not unzip it on download.
          ContentType: 'application/gzip',
        }),
      );
    },
  });
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  return { batchItemFailures: result.failedIds.map((id) => ({ itemIdentifier: id })) };
}
