/**
 * Bounded local load test: N signed deliveries (some sent twice, as Smartcar's retries would) pushed
 * through the local receiver (the deployed verification and ingest code, with a file spool and a file
 * lake), then every record in the lake is counted. Two ways to push:
 *
 *   npm run load-test -- [--deliveries 1000] [--concurrency 50] [--duplicates 50]   (closed loop: C at a time)
 *   npm run load-test -- --rate 300 [--seconds 20] [--duplicates 50]                 (open loop: R requests/s
 *       on a clock whatever the answers, as a fleet's top-of-the-hour burst arrives; it sustained the rate
 *       when every request was answered 200, none was lost, and the requests went out on schedule)
 *
 * Prints: delivered (2xx), stored, stored twice, lost, p50/p99/max latency, and the machine's core count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hmacHex } from '../lambda/core/signature';
import { buildEvent, type EventKind } from '../local/events';
import { readLake } from '../local/file-lake';
import { startLocalServer } from '../local/server';

const TOKEN = 'load-test-token';
const KINDS: EventKind[] = ['vehicle-state', 'vehicle-error', 'schedule', 'event-based'];
const silent = { info() {}, warn() {}, error() {} };

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      deliveries: { type: 'string' },
      concurrency: { type: 'string' },
      duplicates: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
    },
  });
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  const seconds = Number(values.seconds ?? 20);
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1 && rate <= 5000 && seconds >= 1 && seconds <= 120)) {
    throw new Error('--rate takes 1 to 5000 requests/s and --seconds 1 to 120');
  }
  const n = rate !== undefined ? rate * seconds : Math.min(Number(values.deliveries ?? 1000), 20_000);
  const concurrency = Math.min(Number(values.concurrency ?? 50), 200);
  const duplicates = Math.min(Number(values.duplicates ?? 50), n);
  if (![n, concurrency, duplicates].every((v) => Number.isInteger(v) && v >= 0) || n < 1 || concurrency < 1) {
    throw new Error('--deliveries, --concurrency and --duplicates must be whole numbers (deliveries, concurrency ≥ 1)');
  }

  const lakeDir = mkdtempSync(path.join(tmpdir(), 'load-lake-'));
  const server = await startLocalServer({
    lakeDir,
    managementToken: TOKEN,
    port: 0,
    batchWindowMs: 1000,
    logger: silent,
  });
  // Distinct events, then a few of them again (a retried delivery has the same eventId / body).
  const bodies = Array.from({ length: n }, (_, i) => buildEvent(KINDS[i % KINDS.length]).body);
  const plan = [...bodies, ...bodies.slice(0, duplicates)];
  const latencies: number[] = [];
  let accepted = 0;
  let failed = 0;
  let next = 0;
  let lateStarts = 0; // open loop: requests that went out more than 50 ms after their slot
  const deadline = Date.now() + 120_000; // bounded in time as well as count
  const started = process.hrtime.bigint();
  const send = async (body: Buffer) => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sc-signature': hmacHex(TOKEN, body) },
      body,
    }).catch(() => undefined);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await res?.arrayBuffer();
    if (res?.status === 200) accepted++;
    else failed++;
  };
  if (rate !== undefined) {
    // Open loop: request i goes out at i / rate seconds, answered or not.
    const inFlight: Promise<void>[] = [];
    const offered = plan.length / (seconds + duplicates / rate);
    for (let i = 0; i < plan.length; i++) {
      const due = Number(started) / 1e6 + (i * 1000) / offered;
      const now = Number(process.hrtime.bigint()) / 1e6;
      if (due > now) await new Promise((r) => setTimeout(r, due - now));
      else if (now - due > 50) lateStarts++;
      inFlight.push(send(plan[i]));
    }
    await Promise.all(inFlight);
  } else {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < plan.length && Date.now() < deadline) await send(plan[next++]);
      }),
    );
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await server.close(); // writes whatever is still pending

  const records = [...(await readLake(lakeDir)).values()].flat();
  const ids = records.map((r) => r.event_id);
  const unique = new Set(ids);
  const storedTwice = ids.length - unique.size;
  // A legacy body hash is the record's id; compare by body for those.
  const storedBodies = new Set(records.map((r) => r.body));
  const lost = bodies.filter((b) => !storedBodies.has(b.toString('utf8'))).length;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1);
  console.log(
    `load test on ${availableParallelism()} cores, node ${process.version}: ${plan.length} requests (${n} distinct deliveries + ${duplicates} repeated), ` +
      `${rate !== undefined ? `open loop at ${rate}/s` : `${concurrency} concurrent`}, ${elapsed.toFixed(2)} s`,
  );
  console.log(`  delivered (200)   ${accepted}`);
  console.log(`  not accepted      ${failed}`);
  console.log(
    `  stored records    ${records.length} (${unique.size} distinct eventIds; ${n} distinct deliveries sent)`,
  );
  console.log(`  stored twice      ${storedTwice}`);
  console.log(`  lost              ${lost}`);
  console.log(`  latency ms        p50 ${pct(50)}  p99 ${pct(99)}  max ${latencies[latencies.length - 1].toFixed(1)}`);
  console.log(`  throughput        ${(plan.length / elapsed).toFixed(0)} requests/s`);
  if (rate !== undefined) {
    const sustained = lost === 0 && failed === 0 && lateStarts === 0;
    console.log(
      `  sustained ${rate}/s  ${sustained ? 'yes' : 'NO'} (${lateStarts} requests sent late; every request answered 200 and stored: ${lost === 0 && failed === 0 ? 'yes' : 'no'})`,
    );
    if (!sustained) process.exitCode = 1;
  }
  rmSync(lakeDir, { recursive: true, force: true });
  if (lost > 0 || failed > 0 || storedTwice > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`load-test: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
