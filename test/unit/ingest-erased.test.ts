/**
 * The ingest function drops the records of erased subjects received before their erasure, reading the
 * ledger from the lake bucket (cached), and leaves the batch for retry when the ledger cannot be read.
 */

import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { ERASURE_LEDGER_KEY } from '../../lambda/contract';
import { emptyLedger, type Ledger, subjectHash } from '../../lambda/core/erasure';
import { vehicleState } from '../support/fixtures';
import { decodeNdjsonGzip, deliveryMessage } from '../support/lake';

process.env.LAKE_BUCKET_NAME = 'lake-bucket';
process.env.LAKE_RAW_PREFIX = 'raw';

const s3 = mockClient(S3Client);
const ERASED = 'aaaaaaaa-0000-4000-8000-00000000000e';
const KEPT = 'bbbbbbbb-0000-4000-8000-00000000000b';

// Imported after the environment is set: the handler reads it at module scope. Its ledger filter is
// cached once read, so the test that cannot read it runs first.
const { handler } = require('../../lambda/ingest/index') as typeof import('../../lambda/ingest/index');

function event(records: [string, string, string][]): SQSEvent {
  return {
    Records: records.map(([messageId, vehicleId, at]) => ({
      messageId,
      body: JSON.stringify(deliveryMessage(vehicleState(`ev-${messageId}`, { vehicleId }), at)),
    })) as SQSRecord[],
  };
}

/** What the SDK's stream offers the ledger store (it reads the body as text). */
const body = (text: string) => ({ transformToString: async () => text }) as never;

beforeEach(() => {
  s3.reset();
  s3.on(PutObjectCommand).resolves({});
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => jest.restoreAllMocks());

it('leaves the whole batch for retry when the ledger cannot be read (storing could undo an erasure)', async () => {
  s3.on(GetObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
  const res = await handler(event([['a', KEPT, '2026-11-26T11:00:00.000Z']]));
  expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'a' }] });
  expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
});

it("drops an erased vehicle's records received before its erasure, and keeps later ones and others", async () => {
  const base = emptyLedger();
  const ledger: Ledger = {
    ...base,
    entries: [
      {
        erasureId: 'e1',
        kind: 'vehicle',
        subject: subjectHash(base.salt, 'vehicle', ERASED),
        erasedAt: '2026-11-26T12:00:00.000Z',
        status: 'completed',
      },
    ],
  };
  s3.on(GetObjectCommand, { Bucket: 'lake-bucket', Key: ERASURE_LEDGER_KEY }).callsFake(async () => ({
    Body: body(JSON.stringify(ledger)),
  }));
  const res = await handler(
    event([
      ['old', ERASED, '2026-11-26T11:00:00.000Z'],
      ['new', ERASED, '2026-11-26T13:00:00.000Z'],
      ['other', KEPT, '2026-11-26T11:00:00.000Z'],
    ]),
  );
  expect(res).toEqual({ batchItemFailures: [] });
  const stored = s3
    .commandCalls(PutObjectCommand)
    .flatMap((c) => decodeNdjsonGzip(c.args[0].input.Body as Buffer))
    .map((r) => r.event_id)
    .sort();
  expect(stored).toEqual(['ev-new', 'ev-other']);
  // The second batch within the cache's lifetime reads the ledger no more.
  await handler(event([['again', ERASED, '2026-11-26T11:30:00.000Z']]));
  expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
});
