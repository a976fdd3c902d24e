/** Dispatch of the reconcile state machine's payloads to the core, shared by the Lambda and local adapters. */
import { RECONCILE_TASKS } from '../contract';
import { prepareReconcile, type ReconcileDeps, type ReconcileRun, step, summarizeReconcile } from './reconcile';

export type ReconcileTaskEvent =
  | { task: typeof RECONCILE_TASKS.prepare; input: unknown; executionName: string }
  | { task: typeof RECONCILE_TASKS.step; run: ReconcileRun }
  | { task: typeof RECONCILE_TASKS.summarize; run: ReconcileRun };

export function reconcileHandler(deps: ReconcileDeps) {
  return async (event: ReconcileTaskEvent) => {
    if (event?.task === RECONCILE_TASKS.prepare) return prepareReconcile(event.input, event.executionName, deps);
    if (event?.task === RECONCILE_TASKS.step) return step(event.run, deps);
    if (event?.task === RECONCILE_TASKS.summarize) return summarizeReconcile(event.run, deps);
    throw new Error(`unknown task ${JSON.stringify((event as { task?: unknown })?.task)}`);
  };
}
