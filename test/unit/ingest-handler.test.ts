import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
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

describe('landing objects (the Firehose buffer)', () => {
  const at = '2026-11-26T21:04:59.000Z';
  const KEY = 'landing/2026/11/26/21/stream-1-2026-11-26-21-09-59-0a1b';
  /** S3's event notification of one landing object, as it arrives on the delivery queue (key URL-encoded). */
  const notice = (key: string, versionId?: string) =>
    JSON.stringify({
      Records: [
        {
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: 'lake-bucket' }, object: { key: encodeURIComponent(key), size: 1, versionId } },
        },
      ],
    });
  const landingObject = () =>
    Buffer.from(
      [fixture('vehicle-state'), fixture('vehicle-state-variant'), fixture('event-based-legacy')]
        .map((b) => `${JSON.stringify(deliveryMessage(b, at))}\n`)
        .join(''),
    );
  /** A GetObject body: what the handler reads of it. */
  const stream = (bytes: Buffer) => ({ transformToByteArray: async () => new Uint8Array(bytes) }) as never;
  const ledgerMissing = new NoSuchKey({ message: 'NoSuchKey', $metadata: {} });

  beforeEach(() => {
    s3.on(GetObjectCommand, { Key: 'erasures/ledger.json' }).rejects(ledgerMissing);
    s3.on(DeleteObjectCommand).resolves({});
  });

  it('stores every line of the object it names, then deletes exactly that version', async () => {
    const body = landingObject();
    s3.on(GetObjectCommand, { Key: KEY }).resolves({ Body: stream(body), VersionId: 'v1' });
    s3.on(PutObjectCommand).resolves({});
    const res = await handler(sqsEvent({ n: notice(KEY, 'v1') }));
    expect(res).toEqual({ batchItemFailures: [] });
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input)).toContainEqual({
      Bucket: 'lake-bucket',
      Key: KEY,
      VersionId: 'v1',
    });
    const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(puts.flatMap((p) => decodeNdjsonGzip(p.Body as Buffer))).toHaveLength(3);
    expect(s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'lake-bucket', Key: KEY, VersionId: 'v1' },
    ]);
  });

  it('keeps the object and retries its notification when a raw write fails; the retry writes the same keys', async () => {
    const body = landingObject();
    s3.on(GetObjectCommand, { Key: KEY }).callsFake(() => ({ Body: stream(body) }));
    let failNext = true;
    s3.on(PutObjectCommand).callsFake(() => {
      if (!failNext) return {};
      failNext = false;
      throw new Error('InternalError');
    });
    const first = await handler(sqsEvent({ n: notice(KEY) }));
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: 'n' }] });
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
    const firstKeys = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key);
    s3.resetHistory();
    const second = await handler(sqsEvent({ n: notice(KEY) }));
    expect(second).toEqual({ batchItemFailures: [] });
    expect(
      s3
        .commandCalls(PutObjectCommand)
        .map((c) => c.args[0].input.Key)
        .sort(),
    ).toEqual(firstKeys.sort());
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(1);
  });

  it('an object already ingested and deleted (a lost acknowledgement: no version, no delete marker) is done', async () => {
    s3.on(GetObjectCommand, { Key: KEY }).rejects(new NoSuchKey({ message: 'NoSuchKey', $metadata: {} }));
    s3.on(ListObjectVersionsCommand).resolves({});
    expect(await handler(sqsEvent({ n: notice(KEY) }))).toEqual({ batchItemFailures: [] });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it('an object someone else deleted before it was stored (a delete marker on top) is a failure, for the dead-letter queue', async () => {
    s3.on(GetObjectCommand, { Key: KEY }).rejects(new NoSuchKey({ message: 'NoSuchKey', $metadata: {} }));
    s3.on(ListObjectVersionsCommand).resolves({
      DeleteMarkers: [{ Key: KEY, VersionId: 'dm', IsLatest: true }],
      Versions: [{ Key: KEY, VersionId: 'v1', IsLatest: false }],
    });
    expect(await handler(sqsEvent({ n: notice(KEY) }))).toEqual({ batchItemFailures: [{ itemIdentifier: 'n' }] });
    expect(s3.commandCalls(ListObjectVersionsCommand)[0].args[0].input).toMatchObject({
      Bucket: 'lake-bucket',
      Prefix: KEY,
    });
  });

  it("a notification naming another bucket is refused, and that bucket's object never read", async () => {
    const other = notice(KEY).replace('"lake-bucket"', '"someone-elses-bucket"');
    expect(await handler(sqsEvent({ o: other }))).toEqual({ batchItemFailures: [{ itemIdentifier: 'o' }] });
    expect(s3.commandCalls(GetObjectCommand).filter((c) => c.args[0].input.Key === KEY)).toHaveLength(0);
  });

  it("S3's test event is acknowledged; a notification for a key outside landing/ is left for the dead-letter queue", async () => {
    const test = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'lake-bucket' });
    const res = await handler(sqsEvent({ t: test, x: notice('raw/event_type=X/evil') }));
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'x' }] });
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('deliveries and notifications in one batch are both stored', async () => {
    s3.on(GetObjectCommand, { Key: KEY }).resolves({ Body: stream(landingObject()) });
    s3.on(PutObjectCommand).resolves({});
    const res = await handler(
      sqsEvent({ d: JSON.stringify(deliveryMessage(fixture('vehicle-error'), at)), n: notice(KEY) }),
    );
    expect(res).toEqual({ batchItemFailures: [] });
    const records = s3.commandCalls(PutObjectCommand).flatMap((c) => decodeNdjsonGzip(c.args[0].input.Body as Buffer));
    expect(records).toHaveLength(4);
  });
});
