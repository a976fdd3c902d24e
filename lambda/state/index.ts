/**
 * The vehicle-state updater: an SQS consumer of the keys the ingest function hands over after each lake
 * write. It reads every object of the batch back, merges their VEHICLE_STATE records per vehicle and mode
 * (order-safe), and applies each vehicle once: one read and one conditional write of its item, however
 * many of the batch's objects name it. An object that could not be read, or one of whose vehicles could
 * not be written, is failed alone: the queue retries it (applying it again is harmless) and, after that,
 * keeps it in its dead-letter queue; `npm run rebuild-state` rebuilds the table from the lake.
 * The ingest path never waits for any of this.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dynamoStateStore } from '../adapters/dynamodb-state-store';
import { createLogger } from '../adapters/logger';
import { coreMetrics, metrics } from '../adapters/metrics';
import { ENV, METRIC, type StateUpdateMessage } from '../contract';
import { requireEnv } from '../core/env';
import { decodeNdjsonGzip } from '../core/lake';
import { statesOf, type VehicleState } from '../core/vehicle-state';

const logger = createLogger();
const s3 = new S3Client({});
const bucket = requireEnv(ENV.lakeBucketName);
const store = dynamoStateStore(new DynamoDBClient({}), requireEnv(ENV.stateTableName));

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const failed = new Map<string, string>(); // messageId → why
  const updates: VehicleState[] = [];
  /** The messages each vehicle and mode came from: a failed vehicle fails them all. */
  const sources = new Map<string, string[]>();
  await Promise.all(
    (event?.Records ?? []).map(async (message) => {
      try {
        const { key } = JSON.parse(message.body) as StateUpdateMessage;
        if (typeof key !== 'string') throw new Error('message has no object key');
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
        for (const u of statesOf(decodeNdjsonGzip(bytes))) {
          updates.push(u);
          const id = `${u.vehicleId}|${u.mode}`;
          sources.set(id, [...(sources.get(id) ?? []), message.messageId]);
        }
      } catch (err) {
        failed.set(message.messageId, err instanceof Error ? err.message : String(err));
      }
    }),
  );
  const outcomes = await store.applyEach(updates);
  for (const { update, error } of outcomes) {
    if (!error) continue;
    for (const id of sources.get(`${update.vehicleId}|${update.mode}`) ?? []) failed.set(id, error.message);
  }
  for (const [messageId, reason] of failed) {
    logger.warn('could not apply an object to the vehicle state table; the queue will retry it', { messageId, reason });
    coreMetrics.count(METRIC.stateUpdateFailures, 1);
  }
  logger.info('applied vehicle states', {
    objects: (event?.Records?.length ?? 0) - failed.size,
    vehicles: outcomes.filter((o) => !o.error).length,
  });
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  return { batchItemFailures: [...failed.keys()].map((itemIdentifier) => ({ itemIdentifier })) };
}
