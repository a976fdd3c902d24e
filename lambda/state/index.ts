/**
 * The vehicle-state updater: an SQS consumer of the keys the ingest function hands over after each lake
 * write. For each key it reads the object back, merges its VEHICLE_STATE records per vehicle (order-safe)
 * and applies them to the state table with conditional writes. A failed key is retried by the queue and,
 * after that, waits in its dead-letter queue; `npm run rebuild-state` rebuilds the table from the lake.
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
import { statesOf } from '../core/vehicle-state';

const logger = createLogger();
const s3 = new S3Client({});
const bucket = requireEnv(ENV.lakeBucketName);
const store = dynamoStateStore(new DynamoDBClient({}), requireEnv(ENV.stateTableName));

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context) logger.addContext(context);
  const failures: { itemIdentifier: string }[] = [];
  let vehicles = 0;
  for (const message of event?.Records ?? []) {
    try {
      const { key } = JSON.parse(message.body) as StateUpdateMessage;
      if (typeof key !== 'string') throw new Error('message has no object key');
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const updates = statesOf(
        decodeNdjsonGzip(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
      );
      await store.apply(updates);
      vehicles += updates.length;
    } catch (err) {
      logger.warn('could not apply an object to the vehicle state table; the queue will retry it', {
        messageId: message.messageId,
        reason: err instanceof Error ? err.message : String(err),
      });
      coreMetrics.count(METRIC.stateUpdateFailures, 1);
      failures.push({ itemIdentifier: message.messageId });
    }
  }
  logger.info('applied vehicle states', { objects: (event?.Records?.length ?? 0) - failures.length, vehicles });
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  return { batchItemFailures: failures };
}
