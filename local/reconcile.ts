/**
 * The reconcile state machine run locally (`npm run subscribe -- --reconcile`): the synthesized
 * definition, the same task code as the deployed function, a directory instead of the work bucket, and
 * the credentials from the environment. Every step, wait and backoff is printed as it happens.
 */
import { DEFAULT_RATE_LIMIT } from '../lambda/contract';
import type { SmartcarApiGeneration } from '../lambda/core/fleet-api';
import type { CoreLogger } from '../lambda/core/logger';
import { noMetrics } from '../lambda/core/metrics';
import type { Mode, ReconcileRun, ReconcileSummary } from '../lambda/core/reconcile';
import { reconcileHandler } from '../lambda/core/reconcile-tasks';
import { ApplicationTokens, SmartcarPlatform } from '../lambda/core/smartcar-platform';
import { checkWebhookHealth, formatWebhookHealth, type WebhookHealthReport } from '../lambda/core/webhook-health';
import { directoryWorkStore } from './local-workflow';
import { allStates, ExecutionFailed, runLocally, STATE_MACHINES, type TaskHandler } from './workflow-runner';

export const RECONCILE_WAIT_STATE = 'Wait (rate limit, backoff or confirmation)';

export interface LocalReconcileOptions {
  readonly definition: Record<string, unknown>;
  readonly input: Record<string, unknown>;
  /** One origin for the token, connections and subscriptions endpoints (a fake, or a proxy). @default Smartcar's */
  readonly apiOrigin?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly managementToken: string;
  /** Which generation of Smartcar's API lists connections. @default 'v3' (DEFAULT_SMARTCAR_API) */
  readonly smartcarApi?: SmartcarApiGeneration;
  readonly webhookId: string;
  readonly workDir: string;
  readonly print: (line: string) => void;
  readonly rateLimit?: { capacity: number; perMinute: number };
  readonly maxRequestsPerStep?: number;
  readonly confirmDelaySeconds?: number;
  /** Clock of the run (the bench and tests pass simulated time). @default Date.now */
  readonly now?: () => number;
  /** Called with the seconds of every Wait state (simulated time moves on). */
  readonly onWait?: (seconds: number) => void;
  /** Milliseconds every Wait really takes. @default as defined */
  readonly waitMs?: number;
  readonly executionName?: string;
  readonly logger?: CoreLogger;
  /** @default 0.1, as deployed */
  readonly maxPruneFraction?: number;
  /** Steps before an execution hands on (tests and the bench make it small to exercise that). */
  readonly maxExecutionSteps?: number;
}

export interface LocalReconcileResult {
  readonly summary: ReconcileSummary;
  /** Events the local runner logged for the whole run. */
  readonly events: number;
  /**
   * History events Step Functions would log for the largest execution (each Task state logs 5, a Choice,
   * Wait or Succeed 2, plus the execution's start and end); an execution may have 25,000.
   */
  readonly maxExecutionEvents: number;
  readonly transitions: number;
  readonly executions: number;
  /** Bytes of the largest state any step returned (Step Functions allows 256 KiB). */
  readonly largestStateBytes: number;
  /** The error the last execution failed with after summarizing (the summary's `failure`), if it did. */
  readonly failedWith: string | null;
}

/**
 * Runs a reconcile to its end, as Step Functions would: every execution it hands on to is started in turn
 * with the input the "Continue in a new execution" state sends. When the run refuses something (a prune
 * stopped, an untrustworthy listing), the last execution fails after its summary: the summary is returned
 * with `failure` set. Any other failure rejects with {@link ExecutionFailed}.
 */
export async function runReconcile(options: LocalReconcileOptions): Promise<LocalReconcileResult> {
  const origins = options.apiOrigin
    ? {
        iam: options.apiOrigin,
        management: options.apiOrigin,
        subscriptions: options.apiOrigin,
        vehicle: options.apiOrigin,
      }
    : {};
  const platform = new SmartcarPlatform(origins);
  const handler = reconcileHandler({
    platform,
    appTokens: new ApplicationTokens(
      () => platform.applicationToken(options.clientId, options.clientSecret),
      options.now,
    ),
    managementToken: async () => options.managementToken,
    smartcarApi: options.smartcarApi,
    store: directoryWorkStore(options.workDir),
    logger: options.logger ?? { info() {}, warn() {}, error() {} },
    rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT,
    defaultWebhookId: options.webhookId,
    // Locally the operator holds the credentials and names the webhook: that one is allowed.
    allowedWebhookIds: [options.webhookId],
    maxRequestsPerStep: options.maxRequestsPerStep,
    confirmDelaySeconds: options.confirmDelaySeconds,
    maxPruneFraction: options.maxPruneFraction,
    maxExecutionSteps: options.maxExecutionSteps,
    now: options.now,
  });
  let events = 0;
  let maxExecutionEvents = 0;
  let transitions = 0; // states entered
  let largestStateBytes = 0;
  let summary: ReconcileSummary | undefined;
  const types = new Map([...allStates(options.definition)].map(([name, state]) => [name, String(state.Type)]));
  const historyEvents = (name: string | undefined) => (types.get(name ?? '') === 'Task' ? 5 : 2);
  let input: unknown = options.input;
  let executionName = options.executionName ?? `reconcile-${new Date().toISOString().replace(/[-:.]/g, '')}`;
  for (let executions = 1; ; executions++) {
    let handedOn: { name: string; input: unknown } | undefined;
    let executionEvents = 2; // ExecutionStarted, and how it ended
    try {
      await runLocally({
        definition: options.definition,
        input,
        handlers: {
          ReconcileFunction: handler as TaskHandler,
          // Stands in for states:startExecution: the next execution starts when this one has ended.
          startExecution: (async (request: { Name: string; Input: unknown }) => {
            handedOn = { name: request.Name, input: request.Input };
            return {};
          }) as TaskHandler,
        },
        executionName,
        waitMs: options.waitMs,
        retryMs: options.waitMs,
        onEvent: (event) => {
          events++;
          const state = (event as { state?: { name?: string; input?: unknown; output?: unknown } }).state;
          if (event.type === 'StateEntered') {
            transitions++;
            executionEvents += historyEvents(state?.name);
          }
          if (event.type === 'StateExited' && state?.name === 'Summarize reconcile run')
            summary = state.output as ReconcileSummary;
          if (event.type === 'StateExited' && state?.output)
            largestStateBytes = Math.max(largestStateBytes, Buffer.byteLength(JSON.stringify(state.output)));
          if (event.type === 'StateEntered' && state?.name === RECONCILE_WAIT_STATE) {
            const run = state.input as ReconcileRun;
            options.onWait?.(run.waitSeconds);
            options.print(`  waiting ${run.waitSeconds} s: ${run.waitReason ?? ''}`.trimEnd());
          }
          if (event.type === 'StateExited' && state?.name === 'Reconcile step') printStep(options, state);
        },
      });
    } catch (err) {
      maxExecutionEvents = Math.max(maxExecutionEvents, executionEvents);
      if (err instanceof ExecutionFailed && summary?.failure?.error === err.name) {
        return {
          summary,
          events,
          maxExecutionEvents,
          transitions,
          executions,
          largestStateBytes,
          failedWith: err.name,
        };
      }
      throw err;
    }
    maxExecutionEvents = Math.max(maxExecutionEvents, executionEvents);
    if (!handedOn) {
      if (!summary) throw new Error('the reconcile execution ended without a summary');
      return { summary, events, maxExecutionEvents, transitions, executions, largestStateBytes, failedWith: null };
    }
    options.print(`  continuing in a new execution: ${handedOn.name}`);
    executionName = handedOn.name;
    input = handedOn.input;
  }
}

function printStep(options: LocalReconcileOptions, state: { input?: unknown; output?: unknown }) {
  const before = state.input as ReconcileRun;
  const after = state.output as ReconcileRun;
  const c = after.counts;
  const did =
    before.phase === 'connections'
      ? `listed connections page ${before.page + 1} (desired so far ${c.desired})`
      : before.phase === 'subscriptions'
        ? `listed subscriptions page ${before.page + 1}`
        : before.phase === 'plan'
          ? `planned: desired ${c.desired}, unchanged ${c.unchanged}, to subscribe ${c.toSubscribe}, to unsubscribe ${c.toUnsubscribe}` +
            (after.refusal ? `\n  ${after.refusal.reason}` : '')
          : before.phase === 'apply'
            ? `applied ${after.phase === 'apply' ? after.index : after.total}/${after.total} (accepted ${c.accepted})`
            : after.confirmBy === 'vehicle'
              ? `confirming: looked up ${after.phase === 'done' ? 'every accepted vehicle' : `${after.index} accepted vehicle(s)`}`
              : `confirming: listed subscriptions page ${before.page + 1}`;
  if (
    after.waitSeconds === 0 ||
    before.phase !== after.phase ||
    after.index !== before.index ||
    after.page !== before.page
  ) {
    options.print(`  ${did}; requests ${after.requests}`);
  }
}

/**
 * The deployed webhook health check, run locally before a reconcile: one GET /webhooks/:id, its one line
 * printed, and the configuration kept in the work directory (where the run that follows reads whether
 * the webhook auto-subscribes every vehicle). Nothing is published; the line is the result.
 */
export async function webhookHealthLocally(options: {
  readonly apiOrigin?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly webhookId: string;
  readonly workDir: string;
  /** The callback URL the webhook should point at. @default - not compared */
  readonly expectedCallbackUrl?: string;
  /** The error callback URL it may send vehicle errors to. @default - only the callback URL */
  readonly expectedErrorCallbackUrl?: string;
  readonly print: (line: string) => void;
  readonly now?: () => number;
}): Promise<WebhookHealthReport> {
  const platform = new SmartcarPlatform(
    options.apiOrigin ? { iam: options.apiOrigin, subscriptions: options.apiOrigin } : {},
  );
  const report = await checkWebhookHealth(
    options.webhookId,
    { callbackUrl: options.expectedCallbackUrl, errorCallbackUrl: options.expectedErrorCallbackUrl },
    {
      platform,
      appTokens: new ApplicationTokens(
        () => platform.applicationToken(options.clientId, options.clientSecret),
        options.now,
      ),
      store: directoryWorkStore(options.workDir),
      logger: { info() {}, warn() {}, error() {} },
      metrics: noMetrics,
      now: options.now,
    },
  );
  options.print(formatWebhookHealth(report));
  return report;
}

export function reconcileInput(flags: {
  incremental?: boolean;
  dryRun?: boolean;
  prune?: boolean;
  allowMassPrune?: boolean;
  mode?: Mode;
  webhookId: string;
}) {
  return {
    kind: flags.incremental ? 'incremental' : 'full',
    webhookId: flags.webhookId,
    ...(flags.mode ? { mode: flags.mode } : {}),
    ...(flags.dryRun ? { dryRun: true } : {}),
    ...(flags.prune ? { prune: true } : {}),
    ...(flags.allowMassPrune ? { allowMassPrune: true } : {}),
  };
}

export { STATE_MACHINES };
