/**
 * SeenStore on a DynamoDB table (partition key `eventId`, TTL attribute `expiresAt`). Items are keyed by
 * {@link dedupeKey}, so ids of any length or content fit DynamoDB's key rules.
 */
import { BatchGetItemCommand, BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dedupeKey, type SeenStore } from '../core/seen-store';

export function dynamoSeenStore(client: DynamoDBClient, table: string, ttlSeconds: number): SeenStore {
  return {
    async unseen(eventIds) {
      const unique = [...new Set(eventIds.map(dedupeKey))];
      const found = new Set<string>();
      for (let i = 0; i < unique.length; i += 100) {
        let keys: Record<string, { S: string }>[] | undefined = unique
          .slice(i, i + 100)
          .map((id) => ({ eventId: { S: id } }));
        for (let attempt = 0; keys?.length && attempt < 5; attempt++) {
          const out = await client.send(
            new BatchGetItemCommand({
              RequestItems: { [table]: { Keys: keys, ProjectionExpression: 'eventId, expiresAt' } },
            }),
          );
          const now = Date.now() / 1000;
          for (const item of out.Responses?.[table] ?? []) {
            // TTL deletion lags; an expired item counts as not seen.
            if (Number(item.expiresAt?.N ?? 0) > now && item.eventId?.S) found.add(item.eventId.S);
          }
          keys = out.UnprocessedKeys?.[table]?.Keys as typeof keys;
        }
        if (keys?.length) throw new Error(`DynamoDB left ${keys.length} keys unprocessed`);
      }
      return new Set(eventIds.filter((id) => !found.has(dedupeKey(id))));
    },
    async markSeen(eventIds) {
      const expiresAt = String(Math.floor(Date.now() / 1000) + ttlSeconds);
      const unique = [...new Set(eventIds.map(dedupeKey))];
      for (let i = 0; i < unique.length; i += 25) {
        let writes: { PutRequest: { Item: Record<string, { S: string } | { N: string }> } }[] | undefined = unique
          .slice(i, i + 25)
          .map((id) => ({ PutRequest: { Item: { eventId: { S: id }, expiresAt: { N: expiresAt } } } }));
        for (let attempt = 0; writes?.length && attempt < 5; attempt++) {
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: writes } }));
          writes = out.UnprocessedItems?.[table] as typeof writes;
        }
        if (writes?.length) throw new Error(`DynamoDB left ${writes.length} writes unprocessed`);
      }
    },
  };
}
