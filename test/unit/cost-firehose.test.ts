import {
  FIREHOSE_QUOTA,
  fallbackShare,
  fallbacks,
  firehoseBilledBytes,
  firehoseIngestDollars,
  landingGroups,
  landingObjectsPerMonth,
} from '../../scripts/cost/firehose';

const MONTH = 30.4375 * 86400;
const HINTS = { intervalSeconds: 300, sizeMiB: 16 };

describe('Firehose ingestion: each record rounded up to the next 5 KB', () => {
  it('bills a 3 KB record as 5 KB, 5 KB as 5 KB, one byte more as 10 KB', () => {
    expect(firehoseBilledBytes(3000)).toBe(5120);
    expect(firehoseBilledBytes(5120)).toBe(5120);
    expect(firehoseBilledBytes(5121)).toBe(10240);
    expect(firehoseBilledBytes(12 * 1024)).toBe(15 * 1024);
  });

  it('bills an empty record as one step, and refuses a negative size', () => {
    expect(firehoseBilledBytes(0)).toBe(5120);
    expect(() => firehoseBilledBytes(-1)).toThrow(/0 bytes or more/);
  });

  it('prices a million 2.9 KB records at $0.029 per GB of billed bytes', () => {
    const records = new Array(1_000_000).fill(2900);
    expect(firehoseIngestDollars(records, 0.029)).toBeCloseTo((5120 * 1e6 * 0.029) / 1e9, 6);
  });
});

describe('landing objects a month from the buffering hints', () => {
  it('writes one object an interval while the size hint is not reached', () => {
    // 10/s of 3 KB is 9 MB in 300 s: under 16 MiB, so the interval decides.
    expect(landingObjectsPerMonth(10, 3000, HINTS, MONTH)).toBeCloseTo(MONTH / 300, 6);
  });

  it('writes sooner when 16 MiB fill before the interval', () => {
    // 1,000/s of 3,000 B fills 16 MiB in 5.59 s.
    expect(landingObjectsPerMonth(1000, 3000, HINTS, MONTH)).toBeCloseTo(MONTH / ((16 * 2 ** 20) / 3e6), 3);
  });

  it('multiplies by the overrun in the worst case, never above one object a record, and none without records', () => {
    expect(landingObjectsPerMonth(10, 3000, HINTS, MONTH, 2)).toBeCloseTo((2 * MONTH) / 300, 6);
    expect(landingObjectsPerMonth(0.001, 3000, HINTS, MONTH)).toBeCloseTo(0.001 * MONTH, 6);
    expect(landingObjectsPerMonth(0, 3000, HINTS, MONTH)).toBe(0);
  });

  it('buffers arriving records into objects by interval and by size', () => {
    const steady = Array.from({ length: 9000 }, (_, i) => ({ at: i * 100, bytes: 3000 }));
    const groups = landingGroups(steady, HINTS);
    expect(groups.map((g) => g.items.length)).toEqual([3000, 3000, 3000]);
    expect(groups[0].writtenAt).toBe(300_000);
    // Every record lands exactly once.
    expect(groups.reduce((n, g) => n + g.items.length, 0)).toBe(9000);

    const big = Array.from({ length: 12 }, (_, i) => ({ at: i, bytes: 4 * 2 ** 20 }));
    expect(landingGroups(big, HINTS).map((g) => g.items.length)).toEqual([4, 4, 4]);

    const worst = landingGroups(steady, HINTS, 2);
    expect(worst).toHaveLength(6);
    expect(worst.reduce((n, g) => n + g.items.length, 0)).toBe(9000);
  });
});

describe('the share that falls back to the queue above the stream quota', () => {
  it('is none below 2,000 requests and 5 MiB a second', () => {
    expect(fallbackShare(38, 3000)).toBe(0);
    const records = Array.from({ length: 1500 }, (_, i) => ({ at: i / 2, bytes: 3000 }));
    expect(fallbacks(records).share).toBe(0);
  });

  it('is the excess over the byte quota when records are large, over the request quota when small', () => {
    // 2,282/s (a 100 M month's hour in its first minute) of 2,900 B: 5 MiB/s takes 1,807 of them.
    const accepted = Math.floor(FIREHOSE_QUOTA.bytesPerSecond / 2900);
    expect(fallbackShare(2282, 2900)).toBeCloseTo((2282 - accepted) / 2282, 9);
    // Small records: the 2,000 requests decide.
    expect(fallbackShare(2500, 100)).toBeCloseTo(500 / 2500, 9);
  });

  it('refuses, second by second, the records beyond the quota and agrees with the closed form', () => {
    const rate = 2500;
    const records = Array.from({ length: rate * 4 }, (_, i) => ({ at: (i * 1000) / rate, bytes: 100 }));
    const { fellBack, share } = fallbacks(records);
    expect(share).toBeCloseTo(fallbackShare(rate, 100), 9);
    // Within each second the first 2,000 go to the stream.
    expect(fellBack.slice(0, 2000).some(Boolean)).toBe(false);
    expect(fellBack.slice(2000, 2500).every(Boolean)).toBe(true);
    expect(fellBack[2500]).toBe(false);
  });
});
