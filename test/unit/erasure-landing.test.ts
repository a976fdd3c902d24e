/**
 * The landing zone's erasure, locally (`<lake>/landing/`, the receiver's stand-in for the delivery stream's
 * objects) and the pure rule both worlds share: the subject's deliveries received before the erasure go,
 * every other line stays byte for byte, an object left empty is deleted, a dry run only counts. And
 * leftovers: a crashed write's `*.tmp` under landing/ holding other people's deliveries is not deleted
 * whole (the landing place rewrites it line by line).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ErasureContext, PlaceResult, Subject } from '../../lambda/core/erasure';
import { pruneLanding } from '../../lambda/core/erasure-places';
import { landingLine } from '../../lambda/core/landing';
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
