/**
 * The landing zone's erasure in a deployed instance, against moto (a versioned lake bucket): objects the
 * delivery stream wrote and ingest has not stored yet. The subject's deliveries received before the
 * erasure go from the current objects and from every version of their keys; every other line stays byte
 * for byte; an object left empty is deleted with its versions; an old version holding the subject behind
 * a clean current object (an interrupted rewrite) is deleted; a dry run only counts. The erase state
 * machine's function and `erase --stack` run it as their `landing` place.
 */
import {
  CreateBucketCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { deployedPlaces, landingPlace } from '../../lambda/adapters/erasure-places';
import { getObjectBytes } from '../../lambda/adapters/s3-objects';
import type { ErasureContext, PlaceResult } from '../../lambda/core/erasure';
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

it("erases the subject's older deliveries from landing objects and their versions, and nothing else", async () => {
  const bucket = 'landing-erase';
  const objects = await world(bucket);
  const before = await versions(bucket);

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
}, 30_000);

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
