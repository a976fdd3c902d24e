/**
 * Reconciliation at fleet scale, in simulated time: a fleet of connections against the fake platform's
 * token bucket (Smartcar's default, 120 requests and 2 a minute, unless raised), run through the
 * synthesized reconcile state machine with the real task code, continuing in new executions as deployed.
 * Prints the API requests made, requests per subscribed vehicle, the largest state a step returned, the
 * executions and the history events of the largest one (Step Functions allows 256 KiB and 25,000), the
 * run's simulated duration against the bound the rate limit sets, and what incremental runs cost: with
 * nothing new in the fleet, and with one new vehicle in a fleet of 10,000. It runs once per generation of
 * Smartcar's API (v3 connections, v2.0 management connections) and says whether the figures are the same.
 *
 *   npm run bench:reconcile [-- --connections 10000] [--rate-capacity 120 --rate-per-minute 2]
 *   npm run bench:reconcile -- --connections 100000 --rate-capacity 10000 --rate-per-minute 10000
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { App } from 'aws-cdk-lib';
import { DEFAULT_RATE_LIMIT } from '../lambda/contract';
import { SMARTCAR_API_GENERATIONS, type SmartcarApiGeneration } from '../lambda/core/fleet-api';
import { SmartcarWebhooksStack } from '../lib/smartcar-webhooks-stack';
import { runReconcile } from '../local/reconcile';
import { definitionFromTemplate, STATE_MACHINES } from '../local/workflow-runner';
import { connections, FakePlatform } from '../test/support/fake-platform';

const GOALS = { requestsPerVehicle: 1.05, stateBytes: 64 * 1024, historyEvents: 20_000, incrementalOneNew: 5 };

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      connections: { type: 'string', default: '10000' },
      vehicles: { type: 'string' },
      'rate-capacity': { type: 'string', default: String(DEFAULT_RATE_LIMIT.capacity) },
      'rate-per-minute': { type: 'string', default: String(DEFAULT_RATE_LIMIT.perMinute) },
    },
  });
  const n = Number(values.vehicles ?? values.connections);
  const limit = { capacity: Number(values['rate-capacity']), perMinute: Number(values['rate-per-minute']) };
  if (![n, limit.capacity, limit.perMinute].every((x) => Number.isInteger(x) && x > 0))
    throw new Error('--connections, --rate-capacity and --rate-per-minute take positive integers');
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new SmartcarWebhooksStack(app, 'Bench');
  const template = app.synth().getStackByName(stack.stackName).template;
  const definition = definitionFromTemplate(template, STATE_MACHINES.reconcile);
  const figures = new Map<SmartcarApiGeneration, { perVehicle: number; rerun: number; oneNew: number }>();
  for (const api of SMARTCAR_API_GENERATIONS) figures.set(api, await bench(api, n, limit, definition));
  const [a, b] = SMARTCAR_API_GENERATIONS.map(
    (api) => figures.get(api) as { perVehicle: number; rerun: number; oneNew: number },
  );
  const same = a.perVehicle.toFixed(3) === b.perVehicle.toFixed(3) && a.rerun === b.rerun && a.oneNew === b.oneNew;
  console.log(
    `both generations: requests per vehicle ${SMARTCAR_API_GENERATIONS.map((api, i) => `${api} ${[a, b][i].perVehicle.toFixed(3)}`).join(', ')}; ` +
      `no-op rerun ${SMARTCAR_API_GENERATIONS.map((api, i) => `${api} ${[a, b][i].rerun}`).join(', ')} request(s)  (goal: the same: ${same ? 'met' : 'NOT met'})`,
  );
}

async function bench(
  api: SmartcarApiGeneration,
  n: number,
  limit: { capacity: number; perMinute: number },
  definition: Record<string, unknown>,
) {
  const fake = new FakePlatform({
    clientId: 'c',
    clientSecret: 's',
    managementToken: 'amt',
    webhookId: 'wh',
    connections: connections(n),
    rateLimit: { ...limit },
  });
  const origin = await fake.start();
  let workDir = mkdtempSync(path.join(tmpdir(), 'bench-reconcile-'));
  let seq = 0;
  const run = async (input: Record<string, unknown>) => {
    const before = { api: fake.counts().api, token: fake.counts().token, at: fake.now(), limited: fake.rateLimited };
    const started = Date.now();
    const result = await runReconcile({
      definition,
      input: { webhookId: 'wh', ...input },
      apiOrigin: origin,
      clientId: 'c',
      clientSecret: 's',
      managementToken: 'amt',
      webhookId: 'wh',
      smartcarApi: api,
      workDir,
      rateLimit: limit,
      now: () => fake.now(),
      onWait: (s) => fake.advance(s),
      waitMs: 0,
      executionName: `bench-${++seq}`,
      print: () => {},
    });
    return {
      ...result,
      api: fake.counts().api - before.api,
      token: fake.counts().token - before.token,
      limited: fake.rateLimited - before.limited,
      simulatedSeconds: (fake.now() - before.at) / 1000,
      wallSeconds: (Date.now() - started) / 1000,
    };
  };

  const full = await run({ kind: 'full' });
  const subscribed = full.summary.subscribed;
  const needed = full.api - full.limited; // the requests the run had to make
  const boundSeconds = Math.max(0, ((needed - limit.capacity) / limit.perMinute) * 60);
  const perVehicle = full.api / subscribed;
  const ratio = boundSeconds > 0 ? full.simulatedSeconds / boundSeconds : 1;
  const rerun = await run({ kind: 'incremental' });

  // One new vehicle in a subscribed fleet of 10,000 (its watermark written by a full run).
  fake.reset({ ...fake.options, connections: connections(10_000) });
  for (const c of fake.options.connections) fake.subscribe(c.vehicleId, c.userId);
  workDir = mkdtempSync(path.join(tmpdir(), 'bench-reconcile-'));
  await run({ kind: 'full' });
  fake.advance(3600);
  fake.connect(...connections(1, 20_000));
  const oneNew = await run({ kind: 'incremental' });

  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const hours = (s: number) => `${(s / 3600).toFixed(1)} h`;
  console.log(
    `reconcile ${n} connections with Smartcar API ${api} (${api === 'v3' ? 'vehicle.api /v3/connections, application token' : 'v2.0 management connections, management token'}), rate limit ${limit.capacity} requests + ${limit.perMinute}/min (simulated time), ${availableParallelism()} cores`,
  );
  console.log(`  subscribed ${subscribed}, pending ${full.summary.pending}, failed ${full.summary.failed.length}`);
  console.log(`  API requests ${full.api} (429s ${full.limited}), token requests ${full.token}`);
  console.log(
    `  requests per subscribed vehicle ${perVehicle.toFixed(3)}  (goal ≤ ${GOALS.requestsPerVehicle}: ${met(perVehicle <= GOALS.requestsPerVehicle)})`,
  );
  console.log(
    `  largest state ${(full.largestStateBytes / 1024).toFixed(1)} KiB  (goal < ${GOALS.stateBytes / 1024} KiB: ${met(full.largestStateBytes < GOALS.stateBytes)})`,
  );
  console.log(
    `  executions ${full.executions}, history events of the largest ${full.maxExecutionEvents}  (goal ≤ ${GOALS.historyEvents}: ${met(full.maxExecutionEvents <= GOALS.historyEvents)})`,
  );
  console.log(`  state transitions per vehicle ${(full.transitions / subscribed).toFixed(2)}`);
  console.log(
    `  simulated duration ${hours(full.simulatedSeconds)}, bound ${hours(boundSeconds)} (${needed} requests at the rate limit): ${ratio.toFixed(3)}×`,
  );
  console.log(`  wall time ${full.wallSeconds.toFixed(1)} s`);
  console.log(`  incremental rerun with nothing new: ${rerun.api} API request(s)`);
  console.log(
    `  incremental run with 1 new vehicle in a fleet of 10,000: ${oneNew.api} API requests, subscribed ${oneNew.summary.subscribed}  (goal ≤ ${GOALS.incrementalOneNew}: ${met(oneNew.api <= GOALS.incrementalOneNew && oneNew.summary.subscribed === 1)})`,
  );
  await fake.stop();
  return { perVehicle, rerun: rerun.api, oneNew: oneNew.api };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
