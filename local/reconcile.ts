/**
 * The reconcile state machine run locally (`npm run subscribe -- --reconcile`): the synthesized
 * definition, the same task code as the deployed function, a directory instead of the work bucket, and
 * the credentials from the environment. Every step, wait and backoff is printed as it happens.
 */
import { DEFAULT_RATE_LIMIT } from '../lambda/contract';
import type { CoreLogger } from '../lambda/core/logger';
import type { Mode, ReconcileRun, ReconcileSummary } from '../lambda/core/reconcile';
import { reconcileHandler } from '../lambda/core/reconcile-tasks';
import { ApplicationTokens, SmartcarPlatform } from '../lambda/core/smartcar-platform';
import { directoryWorkStore } from './local-workflow';
import { runLocally, STATE_MACHINES, type TaskHandler } from './workflow-runner';

export const RECONCILE_WAIT_STATE = 'Wait (rate limit, backoff or confirmation)';

export interface LocalReconcileOptions {
  readonly definition: Record<string, unknown>;
  readonly input: Record<string, unknown>;
  /** One origin for the token, connections and subscriptions endpoints (a fake, or a proxy). @default Smartcar's */
  readonly apiOrigin?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly managementToken: string;
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
}

export async function runReconcile(
  options: LocalReconcileOptions,
): Promise<{ summary: ReconcileSummary; events: number; transitions: number }> {
  const origins = options.apiOrigin
    ? { iam: options.apiOrigin, management: options.apiOrigin, subscriptions: options.apiOrigin }
    : {};
  const platform = new SmartcarPlatform(origins);
  const handler = reconcileHandler({
    platform,
    appTokens: new ApplicationTokens(
      () => platform.applicationToken(options.clientId, options.clientSecret),
      options.now,
    ),
    managementToken: async () => options.managementToken,
    store: directoryWorkStore(options.workDir),
    logger: options.logger ?? { info() {}, warn() {}, error() {} },
    rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT,
    defaultWebhookId: options.webhookId,
    // Locally the operator holds the credentials and names the webhook: that one is allowed.
    allowedWebhookIds: [options.webhookId],
    maxRequestsPerStep: options.maxRequestsPerStep,
    confirmDelaySeconds: options.confirmDelaySeconds,
    now: options.now,
  });
  let events = 0;
  let transitions = 0; // states entered
  const { output } = await runLocally({
    definition: options.definition,
    input: options.input,
    handlers: { ReconcileFunction: handler as TaskHandler },
    executionName: options.executionName ?? `reconcile-${new Date().toISOString().replace(/[-:.]/g, '')}`,
    waitMs: options.waitMs,
    onEvent: (event) => {
      events++;
      if (event.type === 'StateEntered') transitions++;
      const state = (event as { state?: { name?: string; input?: unknown; output?: unknown } }).state;
      if (event.type === 'StateEntered' && state?.name === RECONCILE_WAIT_STATE) {
        const run = state.input as ReconcileRun;
        options.onWait?.(run.waitSeconds);
        options.print(`  waiting ${run.waitSeconds} s: ${run.waitReason ?? ''}`.trimEnd());
      }
      if (event.type === 'StateExited' && state?.name === 'Reconcile step') {
        const before = state.input as ReconcileRun;
        const after = state.output as ReconcileRun;
        const c = after.counts;
        const did =
          before.phase === 'connections'
            ? `listed connections page ${before.page + 1} (desired so far ${c.desired})`
            : before.phase === 'subscriptions'
              ? `listed subscriptions page ${before.page + 1}`
              : before.phase === 'plan'
                ? `planned: desired ${c.desired}, unchanged ${c.unchanged}, to subscribe ${c.toSubscribe}, to unsubscribe ${c.toUnsubscribe}`
                : before.phase === 'apply'
                  ? `applied ${after.index}/${after.total} (accepted ${c.accepted})`
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
    },
  });
  return { summary: output as ReconcileSummary, events, transitions };
}

export function reconcileInput(flags: {
  incremental?: boolean;
  dryRun?: boolean;
  prune?: boolean;
  mode?: Mode;
  webhookId: string;
}) {
  return {
    kind: flags.incremental ? 'incremental' : 'full',
    webhookId: flags.webhookId,
    ...(flags.mode ? { mode: flags.mode } : {}),
    ...(flags.dryRun ? { dryRun: true } : {}),
    ...(flags.prune ? { prune: true } : {}),
  };
}

export { STATE_MACHINES };
