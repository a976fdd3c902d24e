/**
 * `subscribe --access-token TOKEN [--webhook-id ID] [--vehicle-ids a,b] [--action subscribe|unsubscribe]
 *  [--api-origin URL]` (cli/registry.ts): runs the synthesized subscription state machine locally, with the same task code
 * as the deployed functions, printing each vehicle's outcome and the final summary.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { type ParsedArgs, runCommand, str, UsageError, usageText } from '../cli/args';
import { SPECS } from '../cli/registry';
import {
  DEFAULT_SMARTCAR_API_ORIGIN,
  SMARTCAR_ID_PATTERN,
  type VehicleOutcome,
  type WorkflowInput,
  type WorkflowSummary,
} from '../lambda/contract';
import { SmartcarWebhooksStack } from '../lib/smartcar-webhooks-stack';
import { consoleLogger } from './console-logger';
import { localTaskHandlers } from './local-workflow';
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
  // What made a task fail, for the retry line: a run against an unreachable API says why, each time.
  let lastError = 'unknown error';
  const reporting = Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      async (event: never) => {
        try {
          return await handler(event);
        } catch (err) {
          lastError = describeFailure(err);
          throw err;
        }
      },
    ]),
  ) as typeof handlers;
  const { output } = await runLocally({
    definition,
    input: options.input,
    handlers: reporting,
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
        options.print(`  retrying ${state?.name ?? 'a task'} (attempt ${retry?.attempt ?? '?'}) after: ${lastError}`);
      }
      if (event.type !== 'StateExited' || state?.name !== 'Subscribe or unsubscribe vehicle') return;
      const out = state.output as VehicleOutcome;
      if (out.outcome === 'succeeded') options.print(`  ok       ${out.vehicleId}`);
      else if (out.outcome === 'failed')
        options.print(
          `  failed   ${out.vehicleId}  ${out.failure.status ?? ''} ${out.failure.type ?? ''} ${out.failure.description ?? ''}`.trimEnd(),
        );
      else if (out.outcome === 'rate_limited')
        options.print(`  waiting  ${out.vehicleId}  rate limited, retrying in ${out.retryAfterSeconds ?? '?'} s`);
      else options.print(`  ?        unexpected outcome: ${JSON.stringify(out).slice(0, 200)}`);
    },
  });
  return output as WorkflowSummary;
}

/** One line for a failed task: the error and, for a network failure, its cause (e.g. ECONNREFUSED). */
export function describeFailure(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return `${e.name ?? 'Error'}: ${(e.message ?? String(err)).split('\n')[0]}${cause ? ` (${cause})` : ''}`.slice(
    0,
    300,
  );
}

export function parseSubscribeArgs(args: ParsedArgs, env = process.env) {
  const values = args.values;
  const apiOrigin = str(args, 'api-origin') ?? env.SMARTCAR_API_ORIGIN ?? DEFAULT_SMARTCAR_API_ORIGIN;
  try {
    if (!/^https?:$/.test(new URL(apiOrigin).protocol)) throw new Error();
  } catch {
    throw new UsageError(`--api-origin "${apiOrigin}" is not an http(s) URL`);
  }
  const webhookId = str(args, 'webhook-id') ?? env.SMARTCAR_WEBHOOK_ID;
  // Everything is checked here, before the state machine is synthesized (which takes seconds).
  if (webhookId !== undefined && webhookId !== '' && !SMARTCAR_ID_PATTERN.test(webhookId)) {
    throw new UsageError(`--webhook-id "${webhookId}" is not a Smartcar webhook id`);
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
    input: input as WorkflowInput,
    apiOrigin,
    managementToken: str(args, 'management-token') ?? env.SMARTCAR_MANAGEMENT_TOKEN,
  };
}

/** The command: `npm run subscribe -- …` or `smartcar-webhooks subscribe …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.subscribe, argv, async (parsed) => {
    const args = parseSubscribeArgs(parsed);
    const workDir = path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow');
    console.log(`Running the subscription workflow locally against ${args.apiOrigin} …`);
    try {
      const summary = await runSubscribe({ ...args, workDir, print: (l) => console.log(l) });
      console.log(`\n${JSON.stringify(summary, null, 2)}`);
      return summary.failedCount === 0 ? 0 : 1;
    } catch (err) {
      if (err instanceof ExecutionFailed) {
        console.error(`\nThe run failed: ${err.name}: ${err.message}`);
        if (err.name === 'InvalidInput') console.error(`\n${usageText(SPECS.subscribe)}`);
        return 1;
      }
      throw err;
    }
  });
}
