/**
 * An erase execution stopped from the console, or timed out, never reaches the state machine's Catch:
 * Step Functions' status event makes the function give the compaction lock back, only while that
 * execution holds it.
 */
import { ConditionalCheckFailedException, DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
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
  ddb.on(DeleteItemCommand).resolves({});
  expect(await handler(ended(status))).toEqual({ released: true });
  const input = ddb.commandCalls(DeleteItemCommand)[0].args[0].input;
  expect(input).toMatchObject({
    TableName: 'lock',
    ConditionExpression: 'contains(#execution, :arn)',
    ExpressionAttributeValues: { ':arn': { S: ARN } },
  });
});

it('leaves a lock someone else took since, and ignores other statuses', async () => {
  ddb.on(DeleteItemCommand).rejects(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
  expect(await handler(ended('ABORTED'))).toEqual({ released: false });
  ddb.reset();
  expect(await handler(ended('SUCCEEDED'))).toEqual({ released: false });
  expect(ddb.commandCalls(DeleteItemCommand)).toHaveLength(0);
});
