/**
 * Reconciliation at fleet scale, in simulated time: 10,000 connections against the fake platform's token
 * bucket (Smartcar's default: 120 requests, 2 a minute), run through the synthesized reconcile state
 * machine with the real task code. Prints the API requests made, requests per subscribed vehicle, state
 * transitions per vehicle, the run's simulated duration against the bound the rate limit sets, and the
 * requests of a rerun with nothing to do.
 *
 *   npm run bench:reconcile [-- --vehicles 10000]
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { App } from 'aws-cdk-lib';
import { DEFAULT_RATE_LIMIT } from '../lambda/contract';
import { SmartcarWebhooksStack } from '../lib/smartcar-webhooks-stack';
import { runReconcile } from '../local/reconcile';
import { definitionFromTemplate, STATE_MACHINES } from '../local/workflow-runner';
import { connections, FakePlatform } from '../test/support/fake-platform';

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { vehicles: { type: 'string', default: '10000' } },
  });
  const n = Number(values.vehicles);
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new SmartcarWebhooksStack(app, 'Bench');
  const template = app.synth().getStackByName(stack.stackName).template;
  const definition = definitionFromTemplate(template, STATE_MACHINES.reconcile);

  const limit = DEFAULT_RATE_LIMIT;
  const fake = new FakePlatform({
    clientId: 'c',
    clientSecret: 's',
    managementToken: 'amt',
    webhookId: 'wh',
    connections: connections(n),
    rateLimit: { ...limit },
  });
  const origin = await fake.start();
  const workDir = mkdtempSync(path.join(tmpdir(), 'bench-reconcile-'));
  const run = async (input: Record<string, unknown>) => {
    const before = { api: fake.counts().api, token: fake.counts().token, at: fake.now(), limited: fake.rateLimited };
    const started = Date.now();
    const { summary, transitions } = await runReconcile({
      definition,
      input: { webhookId: 'wh', ...input },
      apiOrigin: origin,
      clientId: 'c',
      clientSecret: 's',
      managementToken: 'amt',
      webhookId: 'wh',
      workDir,
      rateLimit: limit,
      now: () => fake.now(),
      onWait: (s) => fake.advance(s),
      waitMs: 0,
      print: () => {},
    });
    return {
      summary,
      transitions,
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
  const ratio = full.simulatedSeconds / boundSeconds;
  const transitions = full.transitions / subscribed;
  const rerun = await run({ kind: 'incremental' });
  const hours = (s: number) => `${(s / 3600).toFixed(1)} h`;
  console.log(
    `reconcile ${n} connections, rate limit ${limit.capacity} requests + ${limit.perMinute}/min (simulated time), ${availableParallelism()} cores`,
  );
  console.log(`  subscribed ${subscribed}, pending ${full.summary.pending}, failed ${full.summary.failed.length}`);
  console.log(`  API requests ${full.api} (429s ${full.limited}), token requests ${full.token}`);
  console.log(
    `  requests per subscribed vehicle ${perVehicle.toFixed(3)}  (goal ≤ 1.1: ${perVehicle <= 1.1 ? 'met' : 'NOT met'})`,
  );
  console.log(`  state transitions per vehicle ${transitions.toFixed(2)}`);
  console.log(
    `  simulated duration ${hours(full.simulatedSeconds)}, bound ${hours(boundSeconds)} (${needed} requests at the rate limit): ` +
      `${ratio.toFixed(3)}× (goal ≤ 1.1: ${ratio <= 1.1 ? 'met' : 'NOT met'})`,
  );
  console.log(`  wall time ${full.wallSeconds.toFixed(1)} s`);
  console.log(
    `  rerun with nothing to do (incremental): ${rerun.api} API requests (goal ≤ 3: ${rerun.api <= 3 ? 'met' : 'NOT met'})`,
  );
  await fake.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
