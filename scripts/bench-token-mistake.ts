/**
 * The token-mistake drill on simulated time (test/support/token-mistake-drill.ts): a mistake at the
 * stated peak for one hour, every attempt through the real receiver core, quarantine writer and budget,
 * then the real recovery, stopped every 25 objects as at a function's deadline and once by a refused
 * batch. Prints what the quarantine kept and what recovery stored.
 *
 *   npm run bench:token-mistake                     (the default peak, 500 deliveries a second)
 *   npm run bench:token-mistake -- --rate 50 [--seconds 3600] [--peak 500]
 *
 * At the default peak that is 7.2 million attempts: about 7 CPU-minutes and 1.5 GB of memory.
 */
import { parseArgs } from 'node:util';
import { frontDoorCapacity } from '../lib/receiver';
import { runCli } from '../local/cli';
import { runTokenMistakeDrill } from '../test/support/token-mistake-drill';

const n = (x: number) => Math.round(x).toLocaleString('en-US');

export async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { rate: { type: 'string' }, seconds: { type: 'string' }, peak: { type: 'string' } },
  });
  const rate = Number(values.rate ?? 500);
  const seconds = Number(values.seconds ?? 3600);
  const peak = Number(values.peak ?? rate);
  for (const [name, v] of [
    ['--rate', rate],
    ['--seconds', seconds],
    ['--peak', peak],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) {
      console.error(`bench:token-mistake: ${name} must be a positive number`);
      return 2;
    }
  }
  const started = Date.now();
  const r = await runTokenMistakeDrill({ rate, seconds, peak, failDeliveryAtCall: 7 });
  const wall = (Date.now() - started) / 1000;
  const front = frontDoorCapacity(peak);
  console.log(
    `token mistake at ${n(rate)} deliveries/s for ${n(seconds)} s (budget sized from a peak of ${n(peak)}/s)`,
  );
  console.log(
    `  budget         ${n(r.caps.maxPerHour)} deliveries and ${(r.caps.maxBytesPerHour / 1024 ** 3).toFixed(1)} GiB an hour`,
  );
  console.log(
    `  delivered      ${n(r.deliveries)} deliveries, ${n(r.attempts)} attempts (4 each: +25 s, +50 s, +100 s)`,
  );
  console.log(
    `  quarantined    ${n(r.quarantined)} attempts in ${n(r.objects)} objects, ${n(r.dropped)} turned away by the budget`,
  );
  console.log(`  kept           ${n(r.kept)} of ${n(r.deliveries)} deliveries: ${r.keptPercent.toFixed(2)}%`);
  console.log(
    `  recovered      ${n(r.recovered)} hand-overs in ${n(r.recoveryRuns)} runs (stopped every 25 objects, one refused batch)`,
  );
  console.log(`  stored once    ${n(r.storedOnce)}; twice ${n(r.storedTwice)}; missing ${n(r.missing)}`);
  console.log(
    `  front door     the mistake sends ${n(4 * rate)} attempts/s: http-api rate limit ${n(front.rateLimit)}/s` +
      `${4 * rate > front.rateLimit ? ' (answers 429 to the rest)' : ''}; function-url reserved concurrency ` +
      `${n(front.reservedConcurrency)} (${n(front.reservedConcurrency / 0.05)}/s at 50 ms a request)`,
  );
  console.log(`  wall           ${wall.toFixed(1)} s`);
  const ok = r.keptPercent === 100 && r.storedOnce === r.deliveries && r.storedTwice === 0;
  console.log(`  goal (100% kept, each stored exactly once): ${ok ? 'met' : 'NOT met'}`);
  return ok ? 0 : 1;
}

if (require.main === module) runCli('bench:token-mistake', main);
