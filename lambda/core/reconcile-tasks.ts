/** Dispatch of the reconcile state machine's payloads to the core, shared by the Lambda and local adapters. */
import { RECONCILE_TASKS } from '../contract';
import type { CoreMetrics } from './metrics';
import { prepareReconcile, type ReconcileDeps, type ReconcileRun, step, summarizeReconcile } from './reconcile';
import { checkWebhookHealth } from './webhook-health';

export type ReconcileTaskEvent =
  | { task: typeof RECONCILE_TASKS.prepare; input: unknown; executionName: string }
  | { task: typeof RECONCILE_TASKS.step; run: ReconcileRun }
  | { task: typeof RECONCILE_TASKS.summarize; run: ReconcileRun }
  | { task: typeof RECONCILE_TASKS.webhookHealth };

/** What the scheduled webhook health check needs besides the reconcile deps. */
export interface WebhookHealthOptions {
  readonly metrics: CoreMetrics;
  /** The stack's callback URL; unset, the callback URI is not compared. */
  readonly expectedCallbackUrl?: string;
  /** The stack's error callback URL, when it has one. */
  readonly expectedErrorCallbackUrl?: string;
}

export function reconcileHandler(deps: ReconcileDeps, health?: WebhookHealthOptions) {
  return async (event: ReconcileTaskEvent) => {
    if (event?.task === RECONCILE_TASKS.prepare) return prepareReconcile(event.input, event.executionName, deps);
    if (event?.task === RECONCILE_TASKS.step) return step(event.run, deps);
    if (event?.task === RECONCILE_TASKS.summarize) return summarizeReconcile(event.run, deps);
    if (event?.task === RECONCILE_TASKS.webhookHealth) {
      // The configured webhook only: the schedule's input names no webhook, so nothing else can be probed.
      if (!health || !deps.defaultWebhookId) throw new Error('the webhook health check needs a configured webhookId');
      return checkWebhookHealth(
        deps.defaultWebhookId,
        { callbackUrl: health.expectedCallbackUrl, errorCallbackUrl: health.expectedErrorCallbackUrl },
        { ...deps, metrics: health.metrics },
      );
    }
    throw new Error(`unknown task ${JSON.stringify((event as { task?: unknown })?.task)}`);
  };
}
