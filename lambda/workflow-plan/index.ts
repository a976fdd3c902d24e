/** Workflow task function: validates the execution input and lists the user's vehicles, a page per call. */
import { executionInput, logger, workflowDeps } from '../adapters/aws-workflow';
import type { PlanTaskEvent } from '../contract';
import { taskHandlers } from '../core/workflow';

const tasks = taskHandlers(workflowDeps(), executionInput);

export async function handler(event: PlanTaskEvent) {
  logger.appendKeys({ task: event?.task });
  return tasks.plan(event);
}
