/**
 * The token-mistake drill (issue 18) on simulated time, with the real receiver core, quarantine writer,
 * hourly budget and recovery (test/support/token-mistake-drill.ts): a mistake at the stated peak for one
 * hour keeps every genuine delivery, Smartcar's retries included, and recovery, stopped as at its
 * deadline and once by a refused batch, stores each exactly once. `npm run bench:token-mistake` runs the
 * same drill at the default peak of 500 a second.
 */
import { quarantineCapsFor } from '../../lambda/contract';
import { runTokenMistakeDrill } from '../support/token-mistake-drill';

it('at the stated peak for one hour: 100% kept for recovery, then each stored exactly once', async () => {
  const r = await runTokenMistakeDrill({ rate: 2, peak: 2, objectsPerRun: 4, failDeliveryAtCall: 10 });
  expect(r.deliveries).toBe(7200);
  expect(r.attempts).toBe(28_800);
  expect(r.dropped).toBe(0);
  expect(r.quarantined).toBe(28_800);
  expect(r.kept).toBe(7200);
  expect(r.keptPercent).toBe(100);
  // The mistake spans two clock hours; a batch a minute at this rate.
  expect(r.objects).toBeGreaterThan(55);
  expect(r.objects).toBeLessThan(70);
  expect(r.recoveryRuns).toBeGreaterThan(10); // stopped every 4 objects, and once by the refused batch
  expect(r.storedOnce).toBe(7200);
  expect(r.storedTwice).toBe(0);
  expect(r.missing).toBe(0);
});

it('above the budget (a flood at twice the stated peak): what is turned away is counted, the rest is kept', async () => {
  const r = await runTokenMistakeDrill({ rate: 2, peak: 1, seconds: 3600 });
  const budget = quarantineCapsFor(1).maxPerHour; // 18,000 an hour
  expect(r.attempts).toBe(28_800);
  expect(r.quarantined + r.dropped).toBe(r.attempts);
  // Two clock hours (10:20 to 11:23): at most a budget each.
  expect(r.quarantined).toBeLessThanOrEqual(2 * budget);
  expect(r.dropped).toBeGreaterThan(0);
  expect(r.storedTwice).toBe(0);
  expect(r.storedOnce).toBe(r.kept);
});
