/** AWS pieces of the recovery: the quarantine bucket, the delivery queue, and the dedupe table as "already stored". */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryMessage } from '../contract';
import type { QuarantineStore } from '../core/quarantine';
import { dynamoSeenStore } from './dynamodb-seen-store';
import { getObjectBytes, listAllKeys } from './s3-objects';

export function s3QuarantineStore(s3: S3Client, bucket: string): QuarantineStore {
  return {
    list: (prefix) => listAllKeys(s3, bucket, prefix),
    get: (key) => getObjectBytes(s3, bucket, key),
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

/** Sends up to 10 messages in one batch; any message SQS did not take fails the call (nothing is deleted then). */
export function queueDelivery(sqs: SQSClient, queueUrl: string): (messages: DeliveryMessage[]) => Promise<void> {
  return async (messages) => {
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: JSON.stringify(m) })),
      }),
    );
    if (out.Failed?.length) throw new Error(`SQS did not take ${out.Failed.length} of ${messages.length} messages`);
  };
}

/** eventIds the dedupe table remembers as stored. */
export function dynamoStoredIds(client: DynamoDBClient, table: string, ttlSeconds: number) {
  const seen = dynamoSeenStore(client, table, ttlSeconds);
  return async (eventIds: string[]): Promise<Set<string>> => {
    const unseen = await seen.unseen(eventIds);
    return new Set(eventIds.filter((id) => !unseen.has(id)));
  };
}
