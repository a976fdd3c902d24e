/**
 * The local retention plan: partitions by hour or day, the cutoff, and the refusals that keep an
 * unattended expiry from deleting on bad input.
 */
import { ExpiryRefused, partitionSpan, planZone, pruneLines, retentionDays } from '../../lambda/core/retention';

const raw = (dt: string, hour: string) => `raw/event_type=VEHICLE_STATE/mode=LIVE/dt=${dt}/hour=${hour}/x.ndjson.gz`;
const curated = (dt: string) => `curated/deliveries/event_type=VEHICLE_STATE/mode=LIVE/dt=${dt}/run-1.parquet`;

describe('partitionSpan', () => {
  it('is the hour of a raw or quarantine key and the day of a curated file', () => {
    expect(partitionSpan(raw('2026-11-01', '05'))).toEqual({
      start: Date.parse('2026-11-01T05:00:00Z'),
      end: Date.parse('2026-11-01T06:00:00Z'),
    });
    expect(partitionSpan('quarantine/dt=2026-11-01/hour=23/a.ndjson.gz')?.end).toBe(Date.parse('2026-11-02T00:00:00Z'));
    expect(partitionSpan(curated('2026-11-01'))?.end).toBe(Date.parse('2026-11-02T00:00:00Z'));
    expect(partitionSpan('raw/misplaced.ndjson.gz')).toBeUndefined();
  });
});

describe('planZone', () => {
  const now = new Date('2026-12-04T00:30:00Z');

  it('expires a partition only once all of it is older than the retention', () => {
    const plan = planZone(
      'raw zone',
      [raw('2026-11-04', '00'), raw('2026-11-03', '23'), raw('2026-11-05', '00')],
      30,
      now,
    );
    // cutoff 2026-11-04T00:30: the hour 2026-11-04T00 still holds records after it.
    expect(plan.expired).toEqual([raw('2026-11-03', '23')]);
    expect(plan.kept).toBe(2);
  });

  it("takes today's curated day, written just after midnight, as data of now, not of the future", () => {
    expect(() => planZone('curated layer', [curated('2026-12-04'), curated('2026-10-01')], 30, now)).not.toThrow();
  });

  it('refuses a clock behind the newest data, a key under erasures/, and every object at once', () => {
    expect(() => planZone('raw zone', [raw('2026-12-05', '03')], 30, now)).toThrow(ExpiryRefused);
    expect(() => planZone('raw zone', ['erasures/ledger.json'], 30, now)).toThrow(/erasures\//);
    const all = [raw('2026-10-01', '00')];
    expect(() => planZone('raw zone', all, 30, now, { guardAll: true })).toThrow(/pass --all/);
    expect(planZone('raw zone', all, 30, now, { guardAll: true, allowAll: true }).expired).toEqual(all);
  });

  it('keeps keys outside the layout and reports them', () => {
    expect(planZone('raw zone', ['raw/stray.ndjson.gz'], 30, now).unplaced).toEqual(['raw/stray.ndjson.gz']);
  });
});

describe('retentionDays and pruneLines', () => {
  it.each(['0', '-1', '1.5', 'abc', '', '36501'])('refuses %p days', (v) => {
    expect(() => retentionDays('--raw-days', v)).toThrow(/whole number of days from 1/);
  });

  it('drops only lines older than the cutoff, keeping lines it cannot date', () => {
    const text = ['{"at":"2026-11-01T00:00:00Z","id":"old"}', '{"at":"2026-12-01T00:00:00Z","id":"new"}', '{cut'].join(
      '\n',
    );
    const r = pruneLines(text, new Date('2026-11-15T00:00:00Z'));
    expect(r).toMatchObject({ removed: 1, kept: 2 });
    expect(r.text).not.toContain('"old"');
  });
});
