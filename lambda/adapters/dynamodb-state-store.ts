/**
 * The current-state table on DynamoDB: one item per vehicle, mode and signal (`sk` = `<mode>#signal#<code>`)
 * and one per vehicle and mode (`<mode>#vehicle`). Every write is conditional on being newer than what
 * is there (the signal's recency key, or the last delivery time), so deliveries applied in any order,
 * any number of times, leave the same items: an older reading never overwrites a newer one.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { recencyKey, type StateStore, type VehicleState } from '../core/vehicle-state';

const isStale = (err: unknown) =>
  err instanceof ConditionalCheckFailedException ||
  (err as { name?: string }).name === 'ConditionalCheckFailedException';

export function dynamoStateStore(client: DynamoDBClient, table: string): StateStore {
  return {
    async apply(updates) {
      // Vehicles are independent: write several at once (each vehicle's own writes stay in order).
      let next = 0;
      const worker = async () => {
        while (next < updates.length) await applyOne(updates[next++]);
      };
      await Promise.all(Array.from({ length: Math.min(16, updates.length) }, worker));
    },
  };

  async function applyOne(u: VehicleState): Promise<void> {
    {
      for (const s of Object.values(u.signals)) {
        const recency = recencyKey(s);
        try {
          await client.send(
            new PutItemCommand({
              TableName: table,
              Item: {
                vehicleId: { S: u.vehicleId },
                sk: { S: `${u.mode}#signal#${s.code}` },
                recency: { S: recency },
                body: { S: s.body },
                receivedAt: { S: s.receivedAt },
                eventId: { S: s.eventId },
                ...(s.name ? { name: { S: s.name } } : {}),
                ...(s.group ? { signalGroup: { S: s.group } } : {}),
                ...(s.oemUpdatedAt !== null ? { oemUpdatedAt: { N: String(s.oemUpdatedAt) } } : {}),
                ...(s.fetchedAt !== null ? { fetchedAt: { N: String(s.fetchedAt) } } : {}),
              },
              ConditionExpression: 'attribute_not_exists(recency) OR recency < :recency',
              ExpressionAttributeValues: { ':recency': { S: recency } },
            }),
          );
        } catch (err) {
          if (!isStale(err)) throw err; // a newer reading is stored already
        }
      }
      const names: Record<string, string> = { '#at': 'lastDeliveryAt' };
      const values: Record<string, { S: string } | { N: string }> = { ':at': { S: u.lastDeliveryAt } };
      const sets = ['#at = :at'];
      for (const [field, value] of [
        ['make', u.make],
        ['model', u.model],
      ] as const) {
        if (value) {
          names[`#${field}`] = field;
          values[`:${field}`] = { S: value };
          sets.push(`#${field} = :${field}`);
        }
      }
      if (u.year !== null) {
        names['#year'] = 'year';
        values[':year'] = { N: String(u.year) };
        sets.push('#year = :year');
      }
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { vehicleId: { S: u.vehicleId }, sk: { S: `${u.mode}#vehicle` } },
            UpdateExpression: `SET ${sets.join(', ')}`,
            ConditionExpression: 'attribute_not_exists(#at) OR #at < :at',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
      } catch (err) {
        if (!isStale(err)) throw err;
      }
    }
  }
}
