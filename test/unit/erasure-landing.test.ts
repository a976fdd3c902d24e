/**
 * The landing zone's erasure, locally (`<lake>/landing/`, the receiver's stand-in for the delivery stream's
 * objects) and the pure rule both worlds share: the subject's deliveries received before the erasure go,
 * every other line stays byte for byte, an object left empty is deleted, a dry run only counts. And
 * leftovers: a crashed write's `*.tmp` under landing/ holding other people's deliveries is not deleted
 * whole (the landing place rewrites it line by line). And the erase function's landing step (S3 mocked):
 * one page of keys a call, stopping early when the call's time runs low, its counts carried to the receipt.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  NoSuchKey,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { ERASE_ENV } from '../../lambda/contract';
import type { ErasureContext, PlaceResult, Subject } from '../../lambda/core/erasure';
import {
  emptyLandingSweep,
  type LandingSweep,
  landingPlaceResult,
  pruneLanding,
} from '../../lambda/core/erasure-places';
import { landingLine } from '../../lambda/core/landing';
import { handler } from '../../lambda/erase/index';
import { landingPlace, leftoversPlace, localErasurePlaces } from '../../local/erase';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const VICTIM = 'veh-landing-1';
// Longer ids that start with the victim's: whole ids only.
const OTHER = 'veh-landing-10';
const ERASED_AT = new Date('2026-12-01T00:00:00Z');
const BEFORE = '2026-11-30T23:00:00.000Z';
const AFTER = '2026-12-01T00:00:01.000Z';

const line = (eventId: string, vehicleId: string, receivedAt = BEFORE) =>
  landingLine(deliveryMessage(vehicleState(eventId, { vehicleId }), receivedAt));

function context(dryRun: boolean, subject: Subject = { kind: 'vehicle', id: VICTIM }): ErasureContext {
  return { subject, erasedAt: ERASED_AT, dryRun, vehicleIds: new Set([subject.id]), eventIds: new Set() };
}

describe('pruneLanding', () => {
  it("drops the subject's older deliveries and keeps every other line byte for byte", () => {
    const text = [
      line('evt-1', VICTIM),
      line('evt-2', OTHER),
      line('evt-3', VICTIM, AFTER), // received after the erasure began: new data
      'not json naming someone else\n',
      `not json naming ${VICTIM}\n`,
    ].join('');
    const pruned = pruneLanding(text, { kind: 'vehicle', id: VICTIM }, ERASED_AT);
    expect([pruned.removed, pruned.kept]).toEqual([2, 3]);
    expect(pruned.text).toBe(
      [line('evt-2', OTHER), line('evt-3', VICTIM, AFTER), 'not json naming someone else\n'].join(''),
    );
    expect(pruned.dropped).toEqual([line('evt-1', VICTIM).trimEnd(), `not json naming ${VICTIM}`]);
  });
});

describe('the local landing zone', () => {
  let lakeDir: string;
  const file = (...parts: string[]) => path.join(lakeDir, 'landing', '2026', '11', '30', '23', ...parts);
  const mixed = () => [line('evt-a1', VICTIM), line('evt-a2', OTHER), line('evt-a3', VICTIM, AFTER)].join('');
  const onlyVictim = () => [line('evt-b1', VICTIM), line('evt-b2', VICTIM)].join('');
  const others = () => line('evt-c1', OTHER);

  beforeEach(async () => {
    lakeDir = mkdtempSync(path.join(tmpdir(), 'landing-erase-'));
    await mkdir(file(), { recursive: true });
    writeFileSync(file('local-1-a'), mixed());
    writeFileSync(file('local-1-b'), onlyVictim());
    writeFileSync(file('local-1-c'), others());
    // A flush that crashed mid-write: another person's delivery beside a line naming the victim in plain text.
    writeFileSync(file('local-1-d.1234.tmp'), [line('evt-d1', OTHER), `{"v":1,"note":"${VICTIM}"\n`].join(''));
  });

  it("a dry run counts the subject's deliveries and changes nothing", async () => {
    const result = (await landingPlace(lakeDir).erase(context(true))) as PlaceResult;
    expect(result).toMatchObject({ place: 'landing', unit: 'deliveries', found: 4, removed: 0 });
    expect(readFileSync(file('local-1-a'), 'utf8')).toBe(mixed());
    expect(readFileSync(file('local-1-b'), 'utf8')).toBe(onlyVictim());
  });

  it("rewrites or deletes the objects holding the subject's older deliveries; every other line stays", async () => {
    const result = (await landingPlace(lakeDir).erase(context(false))) as PlaceResult;
    expect(result).toMatchObject({ found: 4, removed: 4, rewritten: 2, deleted: 1 });
    expect(readFileSync(file('local-1-a'), 'utf8')).toBe(
      [line('evt-a2', OTHER), line('evt-a3', VICTIM, AFTER)].join(''),
    );
    expect(readdirSync(file()).sort()).toEqual(['local-1-a', 'local-1-c', 'local-1-d.1234.tmp']);
    expect(readFileSync(file('local-1-c'), 'utf8')).toBe(others());
    expect(readFileSync(file('local-1-d.1234.tmp'), 'utf8')).toBe(line('evt-d1', OTHER));
    // Run again: nothing left to find.
    expect(await landingPlace(lakeDir).erase(context(false))).toMatchObject({ found: 0 });
  });

  it("leftovers leaves landing/ alone, so a crashed write's other deliveries survive", async () => {
    const result = (await leftoversPlace(lakeDir).erase(context(false))) as PlaceResult;
    expect(result.found).toBe(0);
    expect(readFileSync(file('local-1-d.1234.tmp'), 'utf8')).toContain(line('evt-d1', OTHER));
  });

  it('is one of the local places, before the quarantine', () => {
    const names = localErasurePlaces(lakeDir, { workDir: lakeDir }).map((p) => p.place);
    expect(names.indexOf('landing')).toBeGreaterThan(0);
    expect(names.indexOf('landing')).toBeLessThan(names.indexOf('quarantine'));
  });
});

describe("the landing zone's counts across pages", () => {
  it('are the sum of the pages, with the note the one pass gave', () => {
    const sweep: LandingSweep = {
      ...emptyLandingSweep(),
      objects: 120,
      found: 3,
      removed: 3,
      rewritten: 1,
      deleted: 1,
    };
    expect(landingPlaceResult({ ...sweep, versionsDeleted: 3, oldVersions: 1 }, 's3://lake/landing/')).toEqual({
      place: 'landing',
      where: 's3://lake/landing/',
      unit: 'deliveries',
      found: 3,
      removed: 3,
      rewritten: 1,
      deleted: 1,
      versionsDeleted: 3,
      note: expect.stringMatching(
        /^120 landing objects searched; 1 old versions held the subject without their current object; /,
      ),
    });
    expect(landingPlaceResult(emptyLandingSweep(), 's3://lake/landing/').note).toMatch(
      /^0 landing objects searched; deliveries/,
    );
  });
});

describe("the erase function's landing step", () => {
  const s3 = mockClient(S3Client);
  const saved = { ...process.env };
  const KEYS = ['landing/2026/11/30/23/s-1-a', 'landing/2026/11/30/23/s-1-b', 'landing/2026/11/30/23/s-1-c'];
  const erasure = {
    subject: { kind: 'vehicle' as const, id: VICTIM },
    dryRun: true,
    smartcar: false,
    reference: null,
    erasureId: 'e-1',
    startedAt: ERASED_AT.toISOString(),
  };
  /** Every key after the marker, one version each (S3's rule for a key marker given alone). */
  const listAfter = (marker: string | undefined) => ({
    IsTruncated: false,
    Versions: KEYS.filter((k) => marker === undefined || k > marker).map((Key) => ({
      Key,
      VersionId: `v-${Key.slice(-1)}`,
      IsLatest: true,
    })),
  });
  const text = (bytes: string) => ({ transformToByteArray: async () => new Uint8Array(Buffer.from(bytes)) });

  beforeEach(() => {
    s3.reset();
    Object.assign(process.env, { [ERASE_ENV.lakeBucketName]: 'lake', [ERASE_ENV.workBucketName]: 'work' });
    delete process.env[ERASE_ENV.landingPageSize];
    s3.on(ListObjectVersionsCommand).callsFake((input) => listAfter(input.KeyMarker));
    // No ids pending from the raw sweep.
    s3.on(GetObjectCommand, { Bucket: 'work' }).rejects(new NoSuchKey({ message: 'no', $metadata: {} }));
    s3.on(GetObjectCommand, { Bucket: 'lake' }).callsFake((input) => ({
      Body: text(input.Key.endsWith('b') ? line('evt-b', VICTIM) : line(`evt-${input.Key.slice(-1)}`, OTHER)),
    }));
  });
  afterAll(() => {
    process.env = saved;
  });

  const landingCalls = () => s3.commandCalls(GetObjectCommand, { Bucket: 'lake' }).map((c) => c.args[0].input.Key);

  it("stops after one key when the call's time is low, and returns the cursor to go on from", async () => {
    const low = { getRemainingTimeInMillis: () => 30_000 };
    const first = (await handler({ action: 'landing', erasure }, low)) as {
      cursor: string;
      done: boolean;
      sweep: LandingSweep;
    };
    expect(first).toEqual({ cursor: KEYS[0], done: false, sweep: { ...emptyLandingSweep(), objects: 1 } });
    expect(landingCalls()).toEqual([KEYS[0]]);

    // The state machine hands the cursor and the counts back: the next keys, the counts added to.
    const plenty = { getRemainingTimeInMillis: () => 800_000 };
    const rest = await handler({ action: 'landing', erasure, landing: first }, plenty);
    expect(s3.commandCalls(ListObjectVersionsCommand).at(-1)?.args[0].input).toMatchObject({
      Prefix: 'landing/',
      KeyMarker: KEYS[0],
    });
    expect(rest).toEqual({ cursor: KEYS[2], done: true, sweep: { ...emptyLandingSweep(), objects: 3, found: 1 } });
    expect(landingCalls()).toEqual(KEYS);
  });

  it('handles at most ERASE_LANDING_PAGE_SIZE keys a call', async () => {
    process.env[ERASE_ENV.landingPageSize] = '2';
    const page = await handler({ action: 'landing', erasure });
    expect(page).toMatchObject({ cursor: KEYS[1], done: false, sweep: { objects: 2, found: 1 } });
    expect(landingCalls()).toEqual(KEYS.slice(0, 2));
  });

  it("never handles a key twice when the store lists the marker's versions again", async () => {
    // Some S3-compatible stores treat the key marker as inclusive.
    s3.on(ListObjectVersionsCommand).callsFake((input) => listAfter(input.KeyMarker ? KEYS[0] : undefined));
    const page = await handler({ action: 'landing', erasure, landing: { cursor: KEYS[1], sweep: null } });
    expect(page).toMatchObject({ cursor: KEYS[2], done: true, sweep: { objects: 1 } });
    expect(landingCalls()).toEqual([KEYS[2]]);
  });

  it("puts the loop's counts on the receipt as the landing place", async () => {
    s3.on(DeleteObjectCommand).resolves({});
    s3.on(ListObjectVersionsCommand).resolves({ IsTruncated: false });
    const summary = (await handler({
      action: 'finish',
      erasure,
      execution: 'arn:aws:states:us-east-1:123456789012:execution:Erase:x',
      sweep: { objectsRead: 0, recordsFound: 0, recordsRemoved: 0, rewritten: 0, deleted: 0, versionsDeleted: 0 },
      landing: { ...emptyLandingSweep(), objects: 120, found: 7 },
      results: { quarantine: [{ place: 'quarantine', where: 'q', unit: 'deliveries', found: 1, removed: 0 }] },
    })) as { found: number; places: { place: string; where: string; found: number }[] };
    expect(summary.places.map((p) => [p.place, p.found])).toEqual([
      ['raw', 0],
      ['landing', 7],
      ['quarantine', 1],
    ]);
    expect(summary.places[1].where).toBe('s3://lake/landing/');
    expect(summary.found).toBe(8);
  });
});
