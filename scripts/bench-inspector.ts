/**
 * `tsx scripts/bench-inspector.ts [--entries N]`: the inspector page's first paint and first rows with
 * 10,000 requests in its log, and how long a delivery takes to appear after its 200, in Debian's chromium
 * (CHROMIUM_PATH or /usr/bin/chromium). Goals (issue 20): first paint ≤ 300 ms, a delivery shown ≤ 500 ms.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { RequestLog } from '../local/inspector/request-log';
import { startLocalServer } from '../local/server';
import { sign, vehicleState } from '../test/support/fixtures';

async function main() {
  const n = Number(process.argv[process.argv.indexOf('--entries') + 1]) || 10_000;
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'bench-inspector-'));
  const seed = await RequestLog.open({ lakeDir });
  for (let i = 0; i < n; i++)
    seed.add({
      at: new Date(Date.now() - (n - i) * 1000).toISOString(),
      verdict: i % 10 === 0 ? 'rejected' : 'stored',
      reason: i % 10 === 0 ? 'invalid SC-Signature' : null,
      status: i % 10 === 0 ? 401 : 200,
      method: 'POST',
      path: '/webhooks',
      eventType: 'VEHICLE_STATE',
      eventId: `ev-${i}`,
      vehicleId: `veh-${i % 200}`,
      mode: 'live',
      ms: 2,
      headers: { 'content-type': 'application/json', 'sc-signature': 'x' },
      bodyRaw: Buffer.from(vehicleState(`ev-${i}`, { vehicleId: `veh-${i % 200}` })),
      response: { status: 200, body: { status: 'received' } },
      replayOf: null,
    });
  await seed.flushed();
  const token = 'bench-token';
  const server = await startLocalServer({
    lakeDir,
    managementToken: token,
    port: 0,
    logger: { info() {}, warn() {}, error() {} },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(server.inspectorUrl as string); // sets the cookie
    const runs: { paint: number; rows: number }[] = [];
    for (let i = 0; i < 5; i++) {
      await page.reload();
      await page.locator('#rows tr').first().waitFor();
      const [paint, rows] = await page.evaluate(() =>
        ['first-contentful-paint', 'inspector-rows'].map(
          (n) => performance.getEntriesByName(n)[0]?.startTime ?? Number.NaN,
        ),
      );
      runs.push({ paint, rows });
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`entries in the log            ${n}`);
    console.log(
      `first contentful paint        ${median(runs.map((r) => r.paint)).toFixed(0)} ms (median of 5; goal ≤ 300)`,
    );
    console.log(
      `first rows shown after load   ${median(runs.map((r) => r.rows)).toFixed(0)} ms (median of 5, from navigation start)`,
    );
    const shown: number[] = [];
    for (let i = 0; i < 5; i++) {
      const body = vehicleState(`ev-live-${i}`);
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sc-signature': sign(body, token) },
        body,
      });
      const answered = Date.now();
      if (res.status !== 200) throw new Error(`delivery answered ${res.status}`);
      await page.locator('#rows tr', { hasText: `ev-live-${i}` }).waitFor();
      shown.push(Date.now() - answered);
    }
    console.log(`delivery shown after its 200  ${median(shown)} ms (median of 5; goal ≤ 500)`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
