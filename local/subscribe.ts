/**
 * `npm run subscribe -- --access-token TOKEN [--webhook-id ID] [--vehicle-ids a,b] [--action subscribe|unsubscribe]
 *  [--api-origin URL]`: runs the synthesized subscription state machine locally, with the same task code
 * as the deployed functions, printing each vehicle's outcome and the final summary.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { App } from 'aws-cdk-lib';
import {
  DEFAULT_RATE_LIMIT,
  DEFAULT_SMARTCAR_API_ORIGIN,
  SMARTCAR_ID_PATTERN,
  type VehicleOutcome,
  type WorkflowInput,
  type WorkflowSummary,
} from '../lambda/contract';
import { numberEnv } from '../lambda/core/env';
import type { Mode } from '../lambda/core/reconcile';
import { SmartcarWebhooksStack } from '../lib/smartcar-webhooks-stack';
import { runCli } from './cli';
import { consoleLogger } from './console-logger';
import { localTaskHandlers } from './local-workflow';
import { reconcileInput, runReconcile } from './reconcile';
import {
  type CfnTemplate,
  definitionFromTemplate,
  ExecutionFailed,
  executionArnOf,
  runLocally,
  STATE_MACHINES,
} from './workflow-runner';

let cachedTemplate: CfnTemplate | undefined;

/** A state machine definition exactly as `cdk synth` produces it (the stack is synthesized once per process). */
export function synthesizedDefinition(which: string = STATE_MACHINES.subscription): Record<string, unknown> {
  cachedTemplate ??= synthesizeTemplate();
  return definitionFromTemplate(cachedTemplate, which);
}

function synthesizeTemplate(): CfnTemplate {
  const outdir = mkdtempSync(path.join(tmpdir(), 'smartcar-synth-'));
  try {
    // Only the definition is needed: skip bundling the functions (the handlers run in this process).
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new SmartcarWebhooksStack(app, 'Local');
    const assembly = app.synth();
    return JSON.parse(readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8'));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export interface SubscribeOptions {
  readonly input: WorkflowInput;
  readonly apiOrigin: string;
  readonly managementToken?: string;
  readonly workDir: string;
  /** Print a line per vehicle. */
  readonly print: (line: string) => void;
  /** Shortens Wait states (tests only). @default as defined */
  readonly waitMs?: number;
  readonly retryMs?: number;
  readonly definition?: Record<string, unknown>;
}

export async function runSubscribe(options: SubscribeOptions): Promise<WorkflowSummary> {
  const definition = options.definition ?? synthesizedDefinition();
  const executionName = `local-${new Date().toISOString().replace(/[-:.]/g, '')}`;
  const inputs = new Map<string, unknown>([[executionArnOf(executionName), options.input]]);
  const handlers = localTaskHandlers({
    workDir: options.workDir,
    apiOrigin: options.apiOrigin,
    inputs,
    managementToken: options.managementToken,
    // Locally the operator holds the tokens and names the webhook on the command line: that one is allowed.
    allowedWebhookIds: options.input.webhookId ? [options.input.webhookId] : [],
    logger: consoleLogger({ quiet: true }),
  });
  const { output } = await runLocally({
    definition,
    input: options.input,
    handlers,
    executionName,
    waitMs: options.waitMs,
    retryMs: options.retryMs,
    onEvent: (event) => {
      const state = (event as { state?: { name?: string; type?: string; input?: unknown; output?: unknown } }).state;
      // Every wait and every retry is printed as it starts: a run against a slow or unreachable API
      // says what it is doing instead of going silent for minutes.
      if (event.type === 'StateEntered' && state?.type === 'Wait') {
        const input = state.input as { retryAfterSeconds?: number; vehicleId?: string };
        options.print(
          `  waiting  ${input.retryAfterSeconds ?? '?'} s (${state.name}${input.vehicleId ? `, ${input.vehicleId}` : ''})`,
        );
      }
      if (event.type === 'StateRetried') {
        const retry = (event as { retry?: { attempt?: number } }).retry;
        options.print(
          `  retrying ${state?.name ?? 'a task'} after a transient error (attempt ${retry?.attempt ?? '?'}), backing off`,
        );
      }
      if (event.type !== 'StateExited' || state?.name !== 'Subscribe or unsubscribe vehicle') return;
      const out = state.output as VehicleOutcome;
      if (out.outcome === 'succeeded') options.print(`  ok       ${out.vehicleId}`);
      else if (out.outcome === 'failed')
        options.print(
          `  failed   ${out.vehicleId}  ${out.failure.status ?? ''} ${out.failure.type ?? ''} ${out.failure.description ?? ''}`.trimEnd(),
        );
      else options.print(`  waiting  ${out.vehicleId}  rate limited, retrying in ${out.retryAfterSeconds}s`);
    },
  });
  return output as WorkflowSummary;
}

const USAGE = `usage: npm run subscribe -- --access-token TOKEN [--webhook-id ID] [--vehicle-ids ID,ID,...]
                           [--action subscribe|unsubscribe] [--api-origin URL] [--management-token TOKEN]
       npm run subscribe -- --reconcile [--incremental] [--dry-run] [--prune [--allow-mass-prune]] [--mode live|simulated|all]
                           [--webhook-id ID] [--api-origin URL]
         (reads SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET and SMARTCAR_MANAGEMENT_TOKEN from the environment)

  --access-token TOKEN      the user's access token from Smartcar Connect
  --webhook-id ID           the webhook to subscribe to (default $SMARTCAR_WEBHOOK_ID)
  --vehicle-ids IDS         only these vehicles (comma-separated); default all of the user's
  --action ACTION           subscribe (default) or unsubscribe
  --api-origin URL          Smartcar API base (default $SMARTCAR_API_ORIGIN or ${DEFAULT_SMARTCAR_API_ORIGIN})
  --management-token TOKEN  for unsubscribe (default $SMARTCAR_MANAGEMENT_TOKEN)`;

export class UsageError extends Error {}

export function parseSubscribeArgs(argv: string[], env = process.env) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'access-token': { type: 'string' },
        'webhook-id': { type: 'string' },
        'vehicle-ids': { type: 'string' },
        action: { type: 'string' },
        'api-origin': { type: 'string' },
        'management-token': { type: 'string' },
        reconcile: { type: 'boolean' },
        incremental: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        prune: { type: 'boolean' },
        'allow-mass-prune': { type: 'boolean' },
        mode: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new UsageError('');
  const apiOrigin =
    (values['api-origin'] as string | undefined) ?? env.SMARTCAR_API_ORIGIN ?? DEFAULT_SMARTCAR_API_ORIGIN;
  try {
    if (!/^https?:$/.test(new URL(apiOrigin).protocol)) throw new Error();
  } catch {
    throw new UsageError(`--api-origin "${apiOrigin}" is not an http(s) URL`);
  }
  const webhookId = (values['webhook-id'] as string | undefined) ?? env.SMARTCAR_WEBHOOK_ID;
  // Everything is checked here, before the state machine is synthesized (which takes seconds).
  if (webhookId !== undefined && webhookId !== '' && !SMARTCAR_ID_PATTERN.test(webhookId)) {
    throw new UsageError(`--webhook-id "${webhookId}" is not a Smartcar webhook id`);
  }
  if (values.reconcile) {
    if (!webhookId)
      throw new UsageError(
        '--reconcile needs --webhook-id (or SMARTCAR_WEBHOOK_ID): the webhook to keep vehicles subscribed to',
      );
    const mode = values.mode as string | undefined;
    if (mode !== undefined && !['live', 'simulated', 'all'].includes(mode))
      throw new UsageError(`--mode must be live, simulated or all, got "${mode}"`);
    if (values.prune && values.incremental) throw new UsageError('--prune needs a full run, not --incremental');
    if (values['allow-mass-prune'] && !values.prune) throw new UsageError('--allow-mass-prune goes with --prune');
    for (const flag of ['access-token', 'vehicle-ids', 'action']) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} is for the per-user workflow, not --reconcile`);
    }
    const missing = ['SMARTCAR_CLIENT_ID', 'SMARTCAR_CLIENT_SECRET', 'SMARTCAR_MANAGEMENT_TOKEN'].filter(
      (k) => !env[k],
    );
    if (missing.length)
      throw new UsageError(`--reconcile needs ${missing.join(', ')} in the environment (never on the command line)`);
    return {
      kind: 'reconcile' as const,
      apiOrigin: values['api-origin'] as string | undefined,
      webhookId,
      input: reconcileInput({
        webhookId,
        incremental: Boolean(values.incremental),
        dryRun: Boolean(values['dry-run']),
        prune: Boolean(values.prune),
        allowMassPrune: Boolean(values['allow-mass-prune']),
        mode: mode as Mode | undefined,
      }),
      clientId: env.SMARTCAR_CLIENT_ID as string,
      clientSecret: env.SMARTCAR_CLIENT_SECRET as string,
      managementToken: env.SMARTCAR_MANAGEMENT_TOKEN as string,
    };
  }
  for (const flag of ['incremental', 'dry-run', 'prune', 'allow-mass-prune', 'mode']) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --reconcile`);
  }
  if (!webhookId) throw new UsageError('no webhook id: pass --webhook-id (or set SMARTCAR_WEBHOOK_ID)');
  const input: Record<string, unknown> = {};
  if (values['access-token'] !== undefined) input.accessToken = values['access-token'];
  if (webhookId) input.webhookId = webhookId;
  if (values['vehicle-ids'] !== undefined)
    input.vehicleIds = String(values['vehicle-ids'])
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  if (values.action !== undefined) input.action = values.action;
  return {
    kind: 'subscribe' as const,
    input: input as WorkflowInput,
    apiOrigin,
    managementToken: (values['management-token'] as string | undefined) ?? env.SMARTCAR_MANAGEMENT_TOKEN,
  };
}

/** The command, as `npm run` runs it: reads process.argv and process.env, returns the exit code. */
export async function main(): Promise<number> {
  let args: ReturnType<typeof parseSubscribeArgs>;
  try {
    args = parseSubscribeArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) console.error(`subscribe: ${err.message}\n`);
    console.error(USAGE);
    return 2;
  }
  const workDir = path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow');
  if (args.kind === 'reconcile') {
    console.log(
      `Reconciling locally (${args.input.kind}${args.input.dryRun ? ', dry run' : ''}) against ${args.apiOrigin ?? "Smartcar's API"} …`,
    );
    try {
      const { summary } = await runReconcile({
        definition: synthesizedDefinition(STATE_MACHINES.reconcile),
        input: args.input,
        apiOrigin: args.apiOrigin,
        clientId: args.clientId,
        clientSecret: args.clientSecret,
        managementToken: args.managementToken,
        webhookId: args.webhookId,
        workDir,
        print: (l) => console.log(l),
        // The same knobs as the deployed function's environment, for other rate limits and for tests.
        rateLimit: {
          capacity: numberEnv('SMARTCAR_RATE_CAPACITY', DEFAULT_RATE_LIMIT.capacity),
          perMinute: numberEnv('SMARTCAR_RATE_PER_MINUTE', DEFAULT_RATE_LIMIT.perMinute),
        },
        confirmDelaySeconds: numberEnv('RECONCILE_CONFIRM_DELAY_SECONDS', 60),
      });
      console.log(`\n${JSON.stringify(summary, null, 2)}`);
      if (summary.refused) console.error(`\n${summary.refused}`);
      return summary.failed.length === 0 && !summary.failure ? 0 : 1;
    } catch (err) {
      if (err instanceof ExecutionFailed) {
        console.error(`\nThe run failed: ${err.name}: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }
  console.log(`Running the subscription workflow locally against ${args.apiOrigin} …`);
  try {
    const summary = await runSubscribe({ ...args, workDir, print: (l) => console.log(l) });
    console.log(`\n${JSON.stringify(summary, null, 2)}`);
    return summary.failedCount === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof ExecutionFailed) {
      console.error(`\nThe run failed: ${err.name}: ${err.message}`);
      if (err.name === 'InvalidInput') console.error(`\n${USAGE}`);
      return 1;
    }
    throw err;
  }
}

if (require.main === module) runCli('subscribe', main);
