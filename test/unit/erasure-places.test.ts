/** The pure parts of the deployed erasure places: report pruning and which queued message is the subject's. */
import { deliveryBelongs, messageBelongs, pruneReport } from '../../lambda/core/erasure-places';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const subject = { kind: 'vehicle' as const, id: 'aaaaaaaa-0000-4000-8000-00000000000e' };
const OTHER = 'bbbbbbbb-0000-4000-8000-00000000000b';
const erasedAt = new Date('2026-11-26T12:00:00.000Z');

describe('pruneReport', () => {
  it('keeps a report that does not name the id, untouched', () => {
    expect(pruneReport({ runId: 'r', results: [{ vehicleId: OTHER }] }, subject)).toEqual({ action: 'keep' });
  });

  it("removes the subject's entries and keeps the rest as they were", () => {
    const report = {
      runId: 'r',
      total: 2,
      results: [
        { vehicleId: OTHER, ok: true },
        { vehicleId: subject.id, ok: false },
      ],
    };
    expect(pruneReport(report, subject)).toEqual({
      action: 'rewrite',
      value: { runId: 'r', total: 2, results: [{ vehicleId: OTHER, ok: true }] },
    });
    expect(pruneReport([OTHER, subject.id], subject)).toEqual({ action: 'rewrite', value: [OTHER] });
  });

  it('deletes a report that is only about the subject, or that still names it after pruning', () => {
    expect(pruneReport([subject.id], subject)).toEqual({ action: 'delete' });
    expect(pruneReport({ vehicleId: subject.id, status: 'ok' }, subject)).toEqual({ action: 'delete' });
    expect(pruneReport({ byVehicle: { [subject.id]: 1, [OTHER]: 2 } }, subject)).toEqual({ action: 'delete' });
  });
});

describe('which queued message is the subject', () => {
  const message = (vehicleId: string, at: string) => deliveryMessage(vehicleState('ev-1', { vehicleId }), at);

  it("matches a queued delivery's decoded body, only when received before the erasure", () => {
    expect(deliveryBelongs(message(subject.id, '2026-11-26T11:00:00Z'), subject, erasedAt)).toBe(true);
    expect(deliveryBelongs(message(subject.id, '2026-11-26T13:00:00Z'), subject, erasedAt)).toBe(false);
    expect(deliveryBelongs(message(OTHER, '2026-11-26T11:00:00Z'), subject, erasedAt)).toBe(false);
    expect(
      messageBelongs(JSON.stringify(message(subject.id, '2026-11-26T11:00:00Z')), undefined, subject, erasedAt),
    ).toBe(true);
  });

  it("leaves the state queue's messages (a lake key, no id) alone, and matches other text by the id and send time", () => {
    const key = JSON.stringify({ key: 'raw/dt=2026-11-26/hour=11/x.ndjson.gz' });
    expect(messageBelongs(key, new Date('2026-11-26T11:00:00Z'), subject, erasedAt)).toBe(false);
    const text = `not json ${subject.id}`;
    expect(messageBelongs(text, new Date('2026-11-26T11:00:00Z'), subject, erasedAt)).toBe(true);
    expect(messageBelongs(text, new Date('2026-11-26T13:00:00Z'), subject, erasedAt)).toBe(false);
  });
});
