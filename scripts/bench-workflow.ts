/**
 * Wall time of a local run of the synthesized subscription state machine (aws-local-stepfunctions, the
 * real task code) against the fake Smartcar API on 127.0.0.1, for 23 and 1,000 vehicles. Waits and
 * retry intervals are shortened to 5 ms / 1 ms; the fake pages at 50 and rate-limits a little.
 *
 *   npm run bench:workflow
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { WorkflowSummary } from '../lambda/contract';
import { SmartcarWebhooksStack } from '../lib/smartcar-webhooks-stack';
import { localTaskHandlers } from '../local/local-workflow';
import { definitionFromTemplate, executionArnOf, runLocally } from '../local/workflow-runner';
import { FakeSmartcar } from '../test/support/fake-smartcar';

const silent = { info() {}, warn() {}, error() {} };

async function main() {
  const outdir = mkdtempSync(path.join(tmpdir(), 'bench-synth-'));
  const app = new App({ outdir });
  const stack = new SmartcarWebhooksStack(app, 'Bench');
  const assembly = app.synth();
  const definition = definitionFromTemplate(
    JSON.parse(readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8')),
  );

  for (const count of [23, 1000]) {
    const vehicles = Array.from({ length: count }, (_, i) => `veh-${i}`);
    const fake = new FakeSmartcar({
      vehicles,
      accessToken: 'tok',
      managementToken: 'amt',
      webhookId: 'wh',
      rateLimit: { capacity: 50, refillPerSecond: 1000, retryAfterSeconds: 1 },
      transient: { 'veh-3': [500], 'veh-7': [502] },
      permanent: { 'veh-5': 404 },
    });
    const origin = await fake.start();
    const workDir = mkdtempSync(path.join(tmpdir(), 'bench-work-'));
    const inputs = new Map<string, unknown>();
    const input = { accessToken: 'tok', webhookId: 'wh' };
    const executionName = `bench-${count}`;
    inputs.set(executionArnOf(executionName), input);
    const handlers = localTaskHandlers({ workDir, apiOrigin: origin, inputs, logger: silent });
    const started = process.hrtime.bigint();
    const { output } = await runLocally({ definition, input, handlers, executionName, waitMs: 5, retryMs: 1 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const s = output as WorkflowSummary;
    const once =
      [...fake.subscribed.values()].every((n) => n === 1) &&
      fake.subscribed.size === s.succeededCount &&
      s.succeededCount + s.failedCount === count;
    console.log(
      `${String(count).padStart(5)} vehicles: ${ms.toFixed(0).padStart(6)} ms wall, ` +
        `${s.succeededCount} subscribed, ${s.failedCount} reported, ${fake.rateLimited} × 429 waited out, ` +
        `${fake.calls.length} API calls, every vehicle subscribed once or reported: ${once}`,
    );
    await fake.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  rmSync(outdir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
