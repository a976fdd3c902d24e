/**
 * The erasure core (lambda/core/erasure.ts): removing a subject's lines from NDJSON keeps every other line
 * byte for byte and respects the cutoff; the ledger's filter recognises erased subjects by their salted
 * hash only; parseSubject refuses bad input without repeating it.
 */
import {
  emptyLedger,
  erasedFilter,
  eraseFromNdjson,
  parseSubject,
  type Subject,
  subjectHash,
  withEntry,
} from '../../lambda/core/erasure';

const VEHICLE = 'veh-erase-0001';
const OTHER = 'veh-keep-0002';
const USER = 'usr-erase-0001';

const line = (o: Record<string, unknown>) => JSON.stringify(o);
const rec = (vehicle: string, receivedAt: string, user: string | null = null, extra = '') =>
  line({
    event_id: `e-${vehicle}-${receivedAt}`,
    vehicle_ids: [vehicle],
    user_id: user,
    received_at: receivedAt,
    body: `{"vehicleId":"${vehicle}"${extra}}`,
    body_base64: null,
  });

describe('eraseFromNdjson', () => {
  const vehicle: Subject = { kind: 'vehicle', id: VEHICLE };
  const before = new Date('2026-11-26T12:00:00.000Z');

  it('removes only the subject’s lines and keeps every other line byte for byte, in order', () => {
    // Odd spacing and key order in the kept lines: they must come back exactly as they were.
    const kept1 = ` {"event_id":"k1","vehicle_ids":["${OTHER}"],  "received_at":"2026-11-26T10:00:00.000Z","body":"x"}`;
    const kept2 = rec(OTHER, '2026-11-26T11:00:00.000Z', null, ',"note":"ünïcode"');
    const text = [
      kept1,
      rec(VEHICLE, '2026-11-26T10:30:00.000Z'),
      kept2,
      rec(VEHICLE, '2026-11-26T11:59:59.999Z'),
      '',
    ].join('\n');
    const out = eraseFromNdjson(text, vehicle, before);
    expect(out?.removed).toHaveLength(2);
    expect(out?.kept).toBe(2);
    expect(out?.text.split('\n').filter((l) => l !== '')).toEqual([kept1, kept2]);
    expect(out?.text).not.toContain(VEHICLE);
    expect(out?.removed.map((r) => r.vehicleIds)).toEqual([[VEHICLE], [VEHICLE]]);
  });

  it('keeps the subject’s records received at or after the cutoff (new data)', () => {
    const at = rec(VEHICLE, before.toISOString());
    const after = rec(VEHICLE, '2026-11-26T12:00:00.001Z');
    const text = [rec(VEHICLE, '2026-11-26T11:00:00.000Z'), at, after].join('\n');
    const out = eraseFromNdjson(text, vehicle, before);
    expect(out?.removed).toHaveLength(1);
    expect(out?.text).toBe([at, after].join('\n'));
  });

  it('gives the same text as splitting into lines and joining the kept ones, wherever the removed lines are', () => {
    const a = rec(VEHICLE, '2026-11-26T10:00:00.000Z');
    const b = rec(OTHER, '2026-11-26T10:00:00.000Z');
    for (const lines of [[a], [a, b], [b, a], [b, a, b], [a, a, b, a], [b, `${a}`, '', b]]) {
      for (const text of [lines.join('\n'), `${lines.join('\n')}\n`]) {
        const out = eraseFromNdjson(text, vehicle, before);
        const kept = text.split('\n').filter((l) => l !== a);
        expect(out?.text).toBe(kept.join('\n'));
        expect(out?.kept).toBe(kept.filter((l) => l !== '').length);
      }
    }
  });

  it('returns undefined when nothing names the subject (the common, cheap case)', () => {
    expect(eraseFromNdjson(rec(OTHER, '2026-11-26T10:00:00.000Z'), vehicle, before)).toBeUndefined();
    // The id as a mere substring of another id, not a JSON string of its own: not the subject's.
    expect(eraseFromNdjson(rec(`${VEHICLE}9`, '2026-11-26T10:00:00.000Z'), vehicle, before)).toBeUndefined();
  });

  it('matches a user by user_id or by the id in the body; a line that is not JSON but holds the id goes too', () => {
    const user: Subject = { kind: 'user', id: USER };
    const byColumn = rec(OTHER, '2026-11-26T10:00:00.000Z', USER);
    const byBody = rec(OTHER, '2026-11-26T10:01:00.000Z', null, `,"user":{"id":"${USER}"}`);
    const broken = `{not json ${USER}`;
    const keep = rec(OTHER, '2026-11-26T10:02:00.000Z', 'usr-other-0002');
    const out = eraseFromNdjson([byColumn, byBody, broken, keep].join('\n'), user, before);
    expect(out?.removed).toHaveLength(3);
    expect(out?.text).toBe(keep);
  });
});

describe('erasedFilter', () => {
  it('is undefined for no ledger or an empty one', () => {
    expect(erasedFilter(undefined)).toBeUndefined();
    expect(erasedFilter(emptyLedger())).toBeUndefined();
  });

  it('names records of an erased vehicle or user received before the erasure, and nothing else', () => {
    const ledger0 = emptyLedger();
    const erasedAt = '2026-11-26T12:00:00.000Z';
    const entry = (kind: 'user' | 'vehicle', id: string) => ({
      erasureId: `x-${kind}`,
      kind,
      subject: subjectHash(ledger0.salt, kind, id),
      erasedAt,
      status: 'completed' as const,
    });
    const ledger = withEntry(withEntry(ledger0, entry('vehicle', VEHICLE)), entry('user', USER));
    expect(JSON.stringify(ledger)).not.toContain(VEHICLE);
    expect(JSON.stringify(ledger)).not.toContain(USER);
    const erased = erasedFilter(ledger);
    if (!erased) throw new Error('expected a filter');
    expect(erased({ vehicle_ids: [OTHER, VEHICLE], user_id: null, received_at: '2026-11-26T11:00:00.000Z' })).toBe(
      true,
    );
    expect(erased({ vehicle_ids: [OTHER], user_id: USER, received_at: '2026-11-26T11:00:00.000Z' })).toBe(true);
    expect(erased({ vehicle_ids: [VEHICLE], user_id: null, received_at: erasedAt })).toBe(false);
    expect(erased({ vehicle_ids: [OTHER], user_id: 'usr-other-0002', received_at: '2026-11-26T11:00:00.000Z' })).toBe(
      false,
    );
    // A user id equal to an erased vehicle's id is another subject: kinds are hashed apart.
    expect(erased({ vehicle_ids: [], user_id: VEHICLE, received_at: '2026-11-26T11:00:00.000Z' })).toBe(false);
  });
});

describe('parseSubject', () => {
  const secret = 'sensitive-id-that-must-not-echo-0123456789';
  it.each([
    [{}, /exactly one/],
    [{ userId: secret, vehicleId: secret }, /exactly one/],
    [{ userId: 'short' }, /userId must be 8/],
    [{ vehicleId: ` ${secret}` }, /vehicleId must be/],
    [{ vehicleId: `${secret}"` }, /characters no Smartcar id has/],
    [{ userId: 12345678 }, /must be a string/],
    [{ vehicleId: 'x'.repeat(201) }, /vehicleId must be/],
  ])('refuses %j with a message that never repeats the id', (input, message) => {
    let error: Error | undefined;
    try {
      parseSubject(input as { userId?: unknown; vehicleId?: unknown });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain(secret);
    expect(error?.message).not.toContain('short');
  });

  it('accepts one id of either kind', () => {
    expect(parseSubject({ userId: USER })).toEqual({ kind: 'user', id: USER });
    expect(parseSubject({ vehicleId: VEHICLE, userId: null })).toEqual({ kind: 'vehicle', id: VEHICLE });
  });
});
