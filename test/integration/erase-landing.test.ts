/**
 * The landing zone's erasure in a deployed instance, against moto (a versioned lake bucket): objects the
 * delivery stream wrote and ingest has not stored yet. The subject's deliveries received before the
 * erasure go from the current objects and from every version of their keys; every other line stays byte
 * for byte; an object left empty is deleted with its versions; an old version holding the subject behind
 * a clean current object (an interrupted rewrite) is deleted; a dry run only counts. The zone is erased a
 * page of keys at a time (the erase state machine loops over the pages, `erase --stack` loops in-process):
 * a backlog larger than a page is covered whole, the counts of the pages add up to one pass's, and a page
 * stops early, cursor returned, when its call's time runs low.
 */
import {
  CreateBucketCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  deployedPlaces,
  type LandingPageOptions,
  landingPlace as landingPlaceOf,
  sweepLandingPage,
} from '../../lambda/adapters/erasure-places';
import { getObjectBytes } from '../../lambda/adapters/s3-objects';
import type { ErasureContext, PlaceResult } from '../../lambda/core/erasure';
import { emptyLandingSweep } from '../../lambda/core/erasure-places';
import { landingLine } from '../../lambda/core/landing';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { type Moto, startMoto, useMoto } from '../support/moto';

const VICTIM = 'veh-landing-1';
const OTHER = 'veh-landing-10'; // starts with the victim's id: whole ids only
const ERASED_AT = new Date('2026-12-01T00:00:00Z');
const BEFORE = '2026-11-30T23:00:00.000Z';
const AFTER = '2026-12-01T00:00:01.000Z';
const HOUR = 'landing/2026/11/30/23';

const line = (eventId: string, vehicleId: string, receivedAt = BEFORE) =>
  landingLine(deliveryMessage(vehicleState(eventId, { vehicleId }), receivedAt));
const context = (dryRun: boolean): ErasureContext => ({
  subject: { kind: 'vehicle', id: VICTIM },
  erasedAt: ERASED_AT,
  dryRun,
  vehicleIds: new Set([VICTIM]),
  eventIds: new Set(),
});

let moto: Moto;
let s3: S3Client;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  s3 = new S3Client({ forcePathStyle: true });
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

/** Every version under landing/ as key → texts, newest first. */
async function versions(bucket: string): Promise<Map<string, { latest: boolean; text: string }[]>> {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'landing/' }));
  const byKey = new Map<string, { latest: boolean; text: string }[]>();
  for (const v of out.Versions ?? []) {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
    const text = await (got.Body as { transformToString(): Promise<string> }).transformToString();
    byKey.set(v.Key as string, [...(byKey.get(v.Key as string) ?? []), { latest: v.IsLatest === true, text }]);
  }
  return byKey;
}

async function world(bucket: string) {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const objects = {
    mixed: [line('evt-a1', VICTIM), line('evt-a2', OTHER), line('evt-a3', VICTIM, AFTER), line('evt-a4', OTHER)].join(
      '',
    ),
    onlyVictim: [line('evt-b1', VICTIM), line('evt-b2', VICTIM)].join(''),
    others: line('evt-c1', OTHER),
    interrupted: [line('evt-d1', VICTIM), line('evt-d2', OTHER)].join(''),
  };
  await put(`${HOUR}/s-1-a`, objects.mixed);
  await put(`${HOUR}/s-1-b`, objects.onlyVictim);
  await put(`${HOUR}/s-1-c`, objects.others);
  // An erasure rewrote d and stopped before deleting the old version that still holds the subject.
  await put(`${HOUR}/s-1-d`, objects.interrupted);
  await put(`${HOUR}/s-1-d`, line('evt-d2', OTHER));
  // Not landing: never touched.
  await put('raw/x.ndjson', line('evt-x', VICTIM));
  return objects;
}

it.each<[string, Pick<LandingPageOptions, 'pageSize' | 'listMaxKeys'>]>([
  ['one page', {}],
  // Pages of three keys, one version a listing call: every key's versions span calls (erase --stack's loop).
  // Page ends fall on surviving keys: moto 5.2, given a key marker alone whose key is gone, skips the next
  // version instead of the keys up to the marker (S3 lists only the keys after it).
  ['three keys a page', { pageSize: 3, listMaxKeys: 1 }],
])(
  "erases the subject's older deliveries from landing objects and their versions, and nothing else (%s)",
  async (name, options) => {
    const bucket = `landing-erase-${name.replaceAll(' ', '-')}`;
    const objects = await world(bucket);
    const before = await versions(bucket);
    const landingPlace = (client: S3Client, b: string) => landingPlaceOf(client, b, undefined, options);

    const dry = (await landingPlace(s3, bucket).erase(context(true))) as PlaceResult;
    // a: 1, b: 2, d's old version: 1.
    expect(dry).toMatchObject({ place: 'landing', unit: 'deliveries', found: 4, removed: 0, versionsDeleted: 0 });
    expect(await versions(bucket)).toEqual(before);

    const real = (await landingPlace(s3, bucket).erase(context(false))) as PlaceResult;
    expect(real).toMatchObject({ found: 4, removed: 4, rewritten: 1, deleted: 1 });
    // a: its old version; b: its version and the delete marker; d: its old version.
    expect(real.versionsDeleted).toBe(4);
    expect(real.note).toMatch(/^4 landing objects searched; 1 old versions held the subject/);

    const after = await versions(bucket);
    expect(after.get(`${HOUR}/s-1-a`)).toEqual([
      { latest: true, text: [line('evt-a2', OTHER), line('evt-a3', VICTIM, AFTER), line('evt-a4', OTHER)].join('') },
    ]);
    expect(after.has(`${HOUR}/s-1-b`)).toBe(false);
    const markers = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `${HOUR}/s-1-b` }));
    expect(markers.DeleteMarkers ?? []).toEqual([]);
    expect(after.get(`${HOUR}/s-1-c`)).toEqual([{ latest: true, text: objects.others }]);
    expect(after.get(`${HOUR}/s-1-d`)).toEqual([{ latest: true, text: line('evt-d2', OTHER) }]);
    expect((await getObjectBytes(s3, bucket, 'raw/x.ndjson')).toString()).toBe(line('evt-x', VICTIM));

    // Idempotent: a second run finds nothing.
    expect(await landingPlace(s3, bucket).erase(context(false))).toMatchObject({ found: 0, versionsDeleted: 0 });
  },
  30_000,
);

it('is one of the deployed places (erase --stack and the state machine), before the quarantine', () => {
  const places = [
    ...deployedPlaces(
      { lakeBucket: 'l', rawPrefix: 'raw', workBucket: 'w', quarantineBucket: 'q' },
      { s3, ddb: {} as never, sqs: {} as never },
    ).keys(),
  ];
  expect(places.indexOf('landing')).toBeGreaterThan(0);
  expect(places.indexOf('landing')).toBeLessThan(places.indexOf('quarantine'));
});

describe('a landing backlog larger than a page', () => {
  const KEYS = 7;
  /** Seven objects (ingest broken for a while): the victim's in 0, 2, 4 (4 only theirs), 6, and an old version of 5. */
  async function backlog(bucket: string) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    for (let i = 0; i < KEYS; i++) {
      const key = `${HOUR}/s-1-${i}`;
      if (i === 4) await put(key, [line(`evt-${i}a`, VICTIM), line(`evt-${i}b`, VICTIM)].join(''));
      else if (i % 2 === 0) await put(key, [line(`evt-${i}a`, VICTIM), line(`evt-${i}b`, OTHER)].join(''));
      else if (i === 5) {
        // An interrupted rewrite: the old version still holds the victim.
        await put(key, [line(`evt-${i}a`, VICTIM), line(`evt-${i}b`, OTHER)].join(''));
        await put(key, line(`evt-${i}b`, OTHER));
      } else await put(key, line(`evt-${i}b`, OTHER));
    }
  }

  /** Pages until done, as the state machine does: the counts and the cursor of every page. */
  async function loop(bucket: string, ctx: ErasureContext, options: LandingPageOptions) {
    let cursor: string | undefined;
    let sweep = emptyLandingSweep();
    const cursors: (string | undefined)[] = [];
    for (let pages = 1; pages <= 50; pages++) {
      const page = await sweepLandingPage(s3, bucket, 'landing', cursor, ctx, sweep, options);
      // Through JSON, as the state machine carries the cursor and the counts from call to call.
      ({ cursor, sweep } = JSON.parse(JSON.stringify({ cursor: page.cursor, sweep: page.sweep })));
      cursors.push(cursor);
      if (page.done) return { sweep, cursors };
    }
    throw new Error('the landing loop did not end');
  }

  it('covers every key, page by page, and the pages add up to one pass', async () => {
    const bucket = 'landing-backlog';
    await backlog(bucket);
    const before = await versions(bucket);

    const whole = (await sweepLandingPage(s3, bucket, 'landing', undefined, context(true))).sweep;
    const dry = await loop(bucket, context(true), { pageSize: 2, listMaxKeys: 3 });
    // 7 keys at 2 a page: 4 pages, each cursor the last key it handled.
    expect(dry.cursors).toEqual([`${HOUR}/s-1-1`, `${HOUR}/s-1-3`, `${HOUR}/s-1-5`, `${HOUR}/s-1-6`]);
    // 0, 2, 6: 1 each; 4: 2; 5's old version: 1.
    expect(dry.sweep).toEqual({ ...whole, found: 6, removed: 0, objects: 7, oldVersions: 1 });
    expect(await versions(bucket)).toEqual(before);

    const real = await loop(bucket, context(false), { pageSize: 2, listMaxKeys: 3 });
    expect(real.sweep).toEqual({
      objects: 7,
      found: 6,
      removed: 6,
      rewritten: 3,
      deleted: 1,
      // 0, 2, 6: the old version each; 4: its version and the delete marker; 5: its old version.
      versionsDeleted: 3 + 2 + 1,
      oldVersions: 1,
    });
    const after = await versions(bucket);
    for (const [key, texts] of after)
      for (const v of texts) expect({ key, victim: v.text.includes(VICTIM) }).toEqual({ key, victim: false });
    // 4 held only the victim's deliveries: gone with its versions.
    expect([...after.keys()].sort()).toEqual([0, 1, 2, 3, 5, 6].map((i) => `${HOUR}/s-1-${i}`));
    for (const i of [0, 1, 2, 3, 5, 6])
      expect(after.get(`${HOUR}/s-1-${i}`)).toEqual([{ latest: true, text: line(`evt-${i}b`, OTHER) }]);
  }, 30_000);

  it("stops early, after at least one key, when the call's time runs low; the loop still covers every key", async () => {
    const bucket = 'landing-deadline';
    await backlog(bucket);
    let asked = 0;
    // Always low: each page handles one key (never none, so the loop ends) and returns its cursor.
    const low = {
      pageSize: 50,
      remainingMs: () => {
        asked++;
        return 1_000;
      },
      reserveMs: 120_000,
    };
    const dry = await loop(bucket, context(true), low);
    expect(dry.cursors).toEqual(Array.from({ length: KEYS }, (_, i) => `${HOUR}/s-1-${i}`));
    expect(asked).toBe(KEYS - 1); // asked before each further key of a page, never before its first
    expect(dry.sweep).toMatchObject({ objects: 7, found: 6, oldVersions: 1 });

    // Plenty of time: one page.
    const plenty = await loop(bucket, context(true), { pageSize: 50, remainingMs: () => 600_000 });
    expect(plenty.cursors).toEqual([`${HOUR}/s-1-6`]);
    expect(plenty.sweep).toEqual(dry.sweep);
  }, 30_000);

  it('an empty landing zone is one page, done, cursor unchanged', async () => {
    const bucket = 'landing-empty';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const page = await sweepLandingPage(s3, bucket, 'landing', undefined, context(false));
    expect(page).toEqual({ sweep: emptyLandingSweep(), cursor: undefined, done: true });
  });
});
