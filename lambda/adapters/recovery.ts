/** AWS pieces of the recovery: the quarantine bucket, the delivery queue, and the dedupe table as "already stored". */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryMessage } from '../contract';
import type { QuarantineStore } from '../core/quarantine';
import { dynamoSeenStore } from './dynamodb-seen-store';

export function s3QuarantineStore(s3: S3Client, bucket: string): QuarantineStore {
  return {
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.NextContinuationToken;
      } while (token);
      return keys;
    },
    async get(key) {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    },
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
