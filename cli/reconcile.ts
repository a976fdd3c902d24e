/**
 * `smartcar-webhooks reconcile`: makes the webhook's subscriptions match the connected vehicles.
 * - With `--stack`, it starts the deployed reconcile state machine and waits for the run, following the
 *   executions it hands on to, then prints the summary (or, with `--no-wait`, the console link).
 * - Without, it runs the same synthesized state machine in this process against Smartcar's API
 *   (credentials from the environment, never from the command line), its reports and watermark kept in
 *   $LOCAL_WORKFLOW_DIR (default ./.local-workflow), as the deployed run keeps them in the work bucket.
 * The flags and the guards are the same both ways: a prune acts only on a complete listing, within the cap.
 */
import * as path from 'node:path';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DEFAULT_RATE_LIMIT, SMARTCAR_ID_PATTERN } from '../lambda/contract';
import { numberEnv } from '../lambda/core/env';
import { DEFAULT_SMARTCAR_API, isSmartcarApiGeneration, SMARTCAR_API_GENERATIONS } from '../lambda/core/fleet-api';
import type { Mode } from '../lambda/core/reconcile';
import { flag, missingDependency, type ParsedArgs, runCommand, str, UsageError } from './args';
import { SPECS } from './registry';
import { Resources } from './stack';

const MODES = ['live', 'simulated', 'all'] as const;

/** The execution input both ways, from the flags; checks every combination before anything starts. */
export function reconcileRequest(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env) {
  const mode = str(args, 'mode');
  if (mode !== undefined && !(MODES as readonly string[]).includes(mode))
    throw new UsageError(`--mode must be live, simulated or all, got "${mode}"`);
  if (flag(args, 'prune') && flag(args, 'incremental'))
    throw new UsageError('--prune needs a full run, not --incremental');
  if (flag(args, 'allow-mass-prune') && !flag(args, 'prune'))
    throw new UsageError('--allow-mass-prune goes with --prune');
  const webhookId = str(args, 'webhook-id') ?? (str(args, 'stack') ? undefined : env.SMARTCAR_WEBHOOK_ID);
  if (webhookId !== undefined && !SMARTCAR_ID_PATTERN.test(webhookId))
    throw new UsageError(`--webhook-id "${webhookId}" is not a Smartcar webhook id`);
  return {
    kind: flag(args, 'incremental') ? ('incremental' as const) : ('full' as const),
    ...(webhookId ? { webhookId } : {}),
    ...(mode ? { mode: mode as Mode } : {}),
    ...(flag(args, 'dry-run') ? { dryRun: true } : {}),
    ...(flag(args, 'prune') ? { prune: true } : {}),
    ...(flag(args, 'allow-mass-prune') ? { allowMassPrune: true } : {}),
  };
}

export interface DeployedReconcileOptions {
  readonly stateMachineArn: string;
  readonly input: Record<string, unknown>;
  readonly wait: boolean;
  readonly print: (line: string) => void;
  readonly sfn?: SFNClient;
  /** Milliseconds between two looks at a running execution. @default 5000 */
  readonly pollMs?: number;
}

/** Starts the deployed run and (with `wait`) follows it to its end; returns the exit code. */
export async function reconcileDeployed(options: DeployedReconcileOptions): Promise<number> {
  const sfn = options.sfn ?? new SFNClient({});
  const started = await sfn.send(
    new StartExecutionCommand({ stateMachineArn: options.stateMachineArn, input: JSON.stringify(options.input) }),
  );
  let arn = started.executionArn as string;
  const region = arn.split(':')[3];
  options.print(`started ${arn}`);
  options.print(
    `  console: https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${arn}`,
  );
  if (!options.wait) return 0;
  for (;;) {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    if (d.status === 'RUNNING' || d.status === 'PENDING_REDRIVE') {
      await new Promise((r) => setTimeout(r, options.pollMs ?? 5000));
      continue;
    }
    const output = d.output ? (JSON.parse(d.output) as Record<string, unknown>) : {};
    if (d.status === 'SUCCEEDED' && typeof output.name === 'string' && output.part !== undefined) {
      // The run handed on to a new execution (history limit): follow it.
      arn = `${arn.slice(0, arn.lastIndexOf(':'))}:${output.name}`;
      options.print(`  handed on to ${output.name} (part ${output.part})`);
      continue;
    }
    if (d.status === 'SUCCEEDED') {
      options.print(JSON.stringify(output, null, 2));
      return 0;
    }
    options.print(`${d.status}: ${d.error ?? 'no error name'}${d.cause ? `: ${d.cause}` : ''}`);
    return 1;
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.reconcile, argv, async (args) => {
    const input = reconcileRequest(args);
    if (str(args, 'stack')) {
      for (const local of ['api-origin', 'smartcar-api'])
        if (args.values[local] !== undefined) throw new UsageError(`--${local} is for a local run, not with --stack`);
      const resources = await Resources.of(args);
      const stateMachineArn = resources.required(undefined, 'ReconcileStateMachineArn', 'the reconcile state machine');
      return reconcileDeployed({ stateMachineArn, input, wait: !flag(args, 'no-wait'), print: (l) => console.log(l) });
    }
    if (flag(args, 'no-wait')) throw new UsageError('--no-wait goes with --stack');
    return reconcileLocally(args, input);
  });
}

async function reconcileLocally(args: ParsedArgs, input: ReturnType<typeof reconcileRequest>): Promise<number> {
  const env = process.env;
  if (!input.webhookId)
    throw new UsageError(
      'a local run needs --webhook-id (or SMARTCAR_WEBHOOK_ID): the webhook to keep vehicles subscribed to',
    );
  const smartcarApi = str(args, 'smartcar-api') ?? (env.SMARTCAR_API || DEFAULT_SMARTCAR_API);
  if (!isSmartcarApiGeneration(smartcarApi))
    throw new UsageError(`--smartcar-api "${smartcarApi}" must be ${SMARTCAR_API_GENERATIONS.join(' or ')}`);
  const needed = [
    'SMARTCAR_CLIENT_ID',
    'SMARTCAR_CLIENT_SECRET',
    ...(smartcarApi === 'v2' ? ['SMARTCAR_MANAGEMENT_TOKEN'] : []),
  ];
  const missing = needed.filter((k) => !env[k]);
  if (missing.length)
    throw new UsageError(`a local run needs ${missing.join(', ')} in the environment (never on the command line)`);
  const apiOrigin = str(args, 'api-origin') ?? env.SMARTCAR_API_ORIGIN;
  if (apiOrigin !== undefined) {
    try {
      if (!/^https?:$/.test(new URL(apiOrigin).protocol)) throw new Error();
    } catch {
      throw new UsageError(`--api-origin "${apiOrigin}" is not an http(s) URL`);
    }
  }
  // Loaded here: synthesizing the state machine needs aws-cdk-lib, which a deployed run does not.
  const [{ runReconcile, webhookHealthLocally }, { synthesizedDefinition }, { ExecutionFailed, STATE_MACHINES }] =
    await Promise.all([
      import('../local/reconcile'),
      import('../local/subscribe'),
      import('../local/workflow-runner'),
    ]).catch((err) => {
      throw missingDependency(err) ?? err;
    });
  // Where the local workflows keep their reports and watermark, as the deployed ones use the work bucket.
  const workDir = path.resolve(env.LOCAL_WORKFLOW_DIR || '.local-workflow');
  console.log(
    `Reconciling locally (${input.kind}${input.dryRun ? ', dry run' : ''}, API ${smartcarApi}) against ${apiOrigin ?? "Smartcar's API"} …`,
  );
  // The webhook first: a disabled or misdirected one explains a silent fleet, and an auto-subscribing one
  // makes the run stand aside (the check leaves its answer where the run reads it).
  await webhookHealthLocally({
    apiOrigin,
    clientId: env.SMARTCAR_CLIENT_ID as string,
    clientSecret: env.SMARTCAR_CLIENT_SECRET as string,
    webhookId: input.webhookId,
    workDir,
    expectedCallbackUrl: env.SMARTCAR_CALLBACK_URL || undefined,
    expectedErrorCallbackUrl: env.SMARTCAR_ERROR_CALLBACK_URL || undefined,
    print: (l) => console.log(l),
  });
  try {
    const { summary } = await runReconcile({
      definition: synthesizedDefinition(STATE_MACHINES.reconcile),
      input,
      apiOrigin,
      clientId: env.SMARTCAR_CLIENT_ID as string,
      clientSecret: env.SMARTCAR_CLIENT_SECRET as string,
      managementToken: env.SMARTCAR_MANAGEMENT_TOKEN ?? '',
      smartcarApi,
      webhookId: input.webhookId,
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
