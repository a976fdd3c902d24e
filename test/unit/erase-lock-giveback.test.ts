/**
 * An erase execution stopped from the console, or timed out, never reaches the state machine's Catch:
 * Step Functions' status event makes the function give the compaction lock back, only while that
 * execution holds it (cut to after the longest its last task may still run).
 */
import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { ERASE_ENV } from '../../lambda/contract';
import { handler } from '../../lambda/erase/index';

const ddb = mockClient(DynamoDBClient);
const ARN = 'arn:aws:states:us-east-1:123456789012:execution:Erase:stopped-one';
const saved = { ...process.env };

beforeEach(() => {
  ddb.reset();
  process.env[ERASE_ENV.lakeBucketName] = 'lake';
  process.env[ERASE_ENV.workBucketName] = 'work';
  process.env[ERASE_ENV.lockTableName] = 'lock';
});
afterAll(() => {
  process.env = saved;
});

const ended = (status: string) => ({ source: 'aws.states' as const, detail: { status, executionArn: ARN } });

it.each(['ABORTED', 'TIMED_OUT'])('gives the lock back when the execution holding it ended %s', async (status) => {
  ddb.on(UpdateItemCommand).resolves({});
  expect(await handler(ended(status))).toEqual({ released: true });
  const input = ddb.commandCalls(UpdateItemCommand)[0].args[0].input;
  expect(input).toMatchObject({
    TableName: 'lock',
    ConditionExpression: 'contains(#execution, :holder) AND expiresAt > :until',
    UpdateExpression: 'SET expiresAt = :until',
  });
  // The holder is matched with its parentheses: `…:stopped-one` never matches `…:stopped-one-retry`.
  expect(input.ExpressionAttributeValues?.[':holder']).toEqual({ S: `(${ARN})` });
  // Cut to after the longest a task of the stopped execution may still run, not deleted at once.
  const until = Number(input.ExpressionAttributeValues?.[':until']?.N);
  expect(until - Date.now()).toBeGreaterThan(15 * 60_000);
  expect(until - Date.now()).toBeLessThan(17 * 60_000);
});

it('leaves a lock someone else took since, and ignores other statuses', async () => {
  ddb.on(UpdateItemCommand).rejects(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
  expect(await handler(ended('ABORTED'))).toEqual({ released: false });
  ddb.reset();
  expect(await handler(ended('SUCCEEDED'))).toEqual({ released: false });
  expect(ddb.commandCalls(UpdateItemCommand)).toHaveLength(0);
});
