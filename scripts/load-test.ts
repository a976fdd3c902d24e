/**
 * Bounded local load test: N signed deliveries (some sent twice, as Smartcar's retries would) pushed
 * with C concurrent connections through the local receiver (the deployed verification and ingest code,
 * with a file spool and a file lake), then every record in the lake is counted.
 *
 *   npm run load-test -- [--deliveries 1000] [--concurrency 50] [--duplicates 50]
 *
 * Prints: delivered (2xx), stored, stored twice, lost, and p50/p99/max latency of the callback.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
    options: { deliveries: { type: 'string' }, concurrency: { type: 'string' }, duplicates: { type: 'string' } },
  });
  const n = Math.min(Number(values.deliveries ?? 1000), 20_000);
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
  const deadline = Date.now() + 120_000; // bounded in time as well as count
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plan.length && Date.now() < deadline) {
        const body = plan[next++];
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
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
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
    `load test: ${plan.length} requests (${n} distinct deliveries + ${duplicates} repeated), ${concurrency} concurrent, ${seconds.toFixed(2)} s`,
  );
  console.log(`  delivered (200)   ${accepted}`);
  console.log(`  not accepted      ${failed}`);
  console.log(
    `  stored records    ${records.length} (${unique.size} distinct eventIds; ${n} distinct deliveries sent)`,
  );
  console.log(`  stored twice      ${storedTwice}`);
  console.log(`  lost              ${lost}`);
  console.log(`  latency ms        p50 ${pct(50)}  p99 ${pct(99)}  max ${latencies[latencies.length - 1].toFixed(1)}`);
  console.log(`  throughput        ${(plan.length / seconds).toFixed(0)} requests/s`);
  rmSync(lakeDir, { recursive: true, force: true });
  if (lost > 0 || failed > 0 || storedTwice > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`load-test: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
