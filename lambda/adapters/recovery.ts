/** AWS pieces of the quarantine and its recovery: the bucket, the delivery queue, and the dedupe table as "already stored". */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryMessage } from '../contract';
import type { ListKeys, QuarantineStore } from '../core/quarantine';
import { dynamoSeenStore } from './dynamodb-seen-store';
import { getObjectBytes } from './s3-objects';

/** Keys under `prefix` after `startAfter`, one ListObjectsV2 page at a time (the caller may stop early). */
export function s3Keys(s3: S3Client, bucket: string): ListKeys {
  return async function* (prefix, startAfter) {
    let token: string | undefined;
    do {
      const out = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ContinuationToken: token,
          StartAfter: token ? undefined : startAfter,
        }),
      );
      for (const o of out.Contents ?? []) if (o.Key) yield o.Key;
      token = out.NextContinuationToken;
    } while (token);
  };
}

export function s3QuarantineStore(s3: S3Client, bucket: string): QuarantineStore {
  return {
    keys: s3Keys(s3, bucket),
    get: (key) => getObjectBytes(s3, bucket, key),
    async put(key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

/** Sends up to 10 messages in one batch; any message SQS did not take fails the call (nothing is marked done then). */
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
