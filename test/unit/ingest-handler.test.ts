import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { fixture } from '../support/fixtures';
import { decodeNdjsonGzip, deliveryMessage } from '../support/lake';

process.env.LAKE_BUCKET_NAME = 'lake-bucket';
process.env.LAKE_RAW_PREFIX = 'raw';

const s3 = mockClient(S3Client);
// Imported after the environment is set: the handler reads it at module scope.
const { handler } = require('../../lambda/ingest/index') as typeof import('../../lambda/ingest/index');

function sqsEvent(bodies: Record<string, string>): SQSEvent {
  return {
    Records: Object.entries(bodies).map(([messageId, body]) => ({ messageId, body }) as SQSRecord),
  };
}

beforeEach(() => {
  s3.reset();
  // No erasure yet: the ledger does not exist (see ingest-erased.test.ts for one that does).
  s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'NoSuchKey', $metadata: {} }));
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => jest.restoreAllMocks());

it('puts one gzip NDJSON object per partition into the lake bucket', async () => {
  s3.on(PutObjectCommand).resolves({});
  const at = '2026-11-26T21:04:59.000Z';
  const res = await handler(
    sqsEvent({
      a: JSON.stringify(deliveryMessage(fixture('vehicle-state'), at)),
      b: JSON.stringify(deliveryMessage(fixture('vehicle-state-variant'), at)),
      c: JSON.stringify(deliveryMessage(fixture('event-based-legacy'), at)),
    }),
  );
  expect(res).toEqual({ batchItemFailures: [] });
  const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
  expect(puts).toHaveLength(3);
  for (const put of puts) {
    expect(put).toMatchObject({ Bucket: 'lake-bucket', ContentType: 'application/gzip' });
    expect(put.Key).toMatch(/^raw\/event_type=[^/]+\/mode=[^/]+\/dt=2026-11-26\/hour=21\/[^/]+\.ndjson\.gz$/);
  }
  const state = puts.find((p) => p.Key?.includes('VEHICLE_STATE/mode=live'));
  expect(decodeNdjsonGzip(state?.Body as Buffer)).toHaveLength(1);
});

it('reports the messages of a failed write as batch item failures', async () => {
  s3.on(PutObjectCommand).rejects(new Error('InternalError'));
  const res = await handler(
    sqsEvent({ a: JSON.stringify(deliveryMessage(fixture('vehicle-error'), '2026-11-26T01:00:00Z')) }),
  );
  expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'a' }] });
});

it('answers an empty event with no failures and no writes', async () => {
  expect(await handler({ Records: [] })).toEqual({ batchItemFailures: [] });
  expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
});
