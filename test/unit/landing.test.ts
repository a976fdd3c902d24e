import { ingestQueue, type LandingObject, landingMessages, landingObjectsOf } from '../../lambda/core/landing';
import type { CoreLogger } from '../../lambda/core/logger';
import { fixture } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const quiet: CoreLogger = { debug() {}, info() {}, warn() {}, error() {} };
const at = '2026-11-26T21:04:59.000Z';
const notice = (...keys: string[]) =>
  JSON.stringify({
    Records: keys.map((key) => ({
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:CompleteMultipartUpload',
      s3: { object: { key } },
    })),
  });
/** Distinct deliveries (each its own eventId), `offset` on in this list, as landing lines. */
const KINDS = [
  'vehicle-state',
  'vehicle-state-variant',
  'event-based-legacy',
  'vehicle-error',
  'schedule-legacy',
] as const;
const lines = (n: number, offset = 0) =>
  Buffer.from(
    Array.from(
      { length: n },
      (_, i) => `${JSON.stringify(deliveryMessage(fixture(KINDS[offset + i]), at, `r-${i}`))}\n`,
    ).join(''),
  );

describe('landingObjectsOf', () => {
  it('reads the keys S3 names (URL-encoded, + for a space) and the version', () => {
    expect(
      landingObjectsOf(
        JSON.stringify({
          Records: [
            {
              eventSource: 'aws:s3',
              eventName: 'ObjectCreated:Put',
              s3: { object: { key: 'landing/a+b%3Dc', versionId: 'v' } },
            },
          ],
        }),
      ),
    ).toEqual([{ key: 'landing/a b=c', versionId: 'v' }]);
  });

  it('a queued delivery, or anything that is not an S3 notification, is not one (undefined)', () => {
    expect(landingObjectsOf(JSON.stringify(deliveryMessage(fixture('vehicle-state'), at)))).toBeUndefined();
    expect(landingObjectsOf('not json')).toBeUndefined();
    expect(landingObjectsOf('[]')).toBeUndefined();
    expect(landingObjectsOf(JSON.stringify({ Records: [{ eventSource: 'aws:sqs' }] }))).toBeUndefined();
  });

  it("S3's test event and removal events name nothing to ingest", () => {
    expect(landingObjectsOf(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }))).toEqual([]);
    expect(
      landingObjectsOf(
        JSON.stringify({
          Records: [{ eventSource: 'aws:s3', eventName: 'ObjectRemoved:Delete', s3: { object: { key: 'k' } } }],
        }),
      ),
    ).toEqual([]);
  });

  it('throws on an S3 record without a key (the batch reports it failed)', () => {
    expect(() =>
      landingObjectsOf(
        JSON.stringify({ Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: {} }] }),
      ),
    ).toThrow(/without an object key/);
  });
});

describe('landingMessages', () => {
  it('one message per non-empty line, with ids from the key and the line number', () => {
    const msgs = landingMessages('landing/k', Buffer.from('{"a":1}\n\n{"b":2}\n'));
    expect(msgs).toEqual([
      { id: 'landing/k#1', body: '{"a":1}' },
      { id: 'landing/k#3', body: '{"b":2}' },
    ]);
  });
});

describe('ingestQueue', () => {
  function world(objects: Record<string, Buffer>) {
    const written = new Map<string, Buffer>();
    const deleted: string[] = [];
    return {
      written,
      deleted,
      deps: {
        rawPrefix: 'raw',
        landingPrefix: 'landing',
        logger: quiet,
        putObject: async (key: string, body: Buffer) => {
          written.set(key, body);
        },
        getLanding: async ({ key }: LandingObject) => (objects[key] ? { bytes: objects[key] } : undefined),
        deleteLanding: async ({ key }: LandingObject) => {
          deleted.push(key);
          delete objects[key];
        },
      },
    };
  }

  it('ingests the objects of a notification one by one and deletes each once stored', async () => {
    const w = world({ 'landing/a': lines(3), 'landing/b': lines(2, 3) });
    const r = await ingestQueue([{ id: 'n', body: notice('landing/a', 'landing/b') }], w.deps);
    expect(r).toMatchObject({ failedIds: [], recordsWritten: 5, landingObjects: 2, deferred: 0 });
    expect(w.deleted).toEqual(['landing/a', 'landing/b']);
  });

  it('with no time left, puts the notifications back on the queue instead of failing them', async () => {
    const w = world({ 'landing/a': lines(1), 'landing/b': lines(1) });
    const deferred: string[] = [];
    let left = 60_000;
    const r = await ingestQueue(
      [
        { id: 'n1', body: notice('landing/a') },
        { id: 'n2', body: notice('landing/b') },
      ],
      {
        ...w.deps,
        remainingMs: () => {
          const now = left;
          left = 10_000; // the first object used up the time
          return now;
        },
        defer: async (bodies) => {
          deferred.push(...bodies);
          return bodies.map(() => true);
        },
      },
    );
    expect(r).toMatchObject({ failedIds: [], landingObjects: 1, deferred: 1 });
    expect(deferred).toEqual([notice('landing/b')]);
    expect(w.deleted).toEqual(['landing/a']);
  });

  it('when putting them back fails too, they are reported failed (retried), never dropped', async () => {
    const w = world({ 'landing/a': lines(1) });
    const r = await ingestQueue([{ id: 'n1', body: notice('landing/a') }], {
      ...w.deps,
      remainingMs: () => 0,
      defer: async () => {
        throw new Error('queue down');
      },
    });
    expect(r.failedIds).toEqual(['n1']);
    expect(w.deleted).toEqual([]);
  });

  it('an undecodable line keeps the whole object (its notification fails towards the dead-letter queue)', async () => {
    const w = world({ 'landing/a': Buffer.concat([lines(2), Buffer.from('{"truncated\n')]) });
    const r = await ingestQueue([{ id: 'n', body: notice('landing/a') }], w.deps);
    expect(r.failedIds).toEqual(['n']);
    expect(w.deleted).toEqual([]);
    // What could be stored is stored (the retry rewrites the same keys).
    expect(r.recordsWritten).toBe(2);
  });
});
