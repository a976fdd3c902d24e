/** Workflow task function: subscribes or unsubscribes one vehicle. */
import { executionInput, logger, workflowDeps } from '../adapters/aws-workflow';
import type { VehicleTaskEvent } from '../contract';
import { taskHandlers } from '../core/workflow';

const tasks = taskHandlers(workflowDeps(), executionInput);

export async function handler(event: VehicleTaskEvent) {
  logger.appendKeys({ task: event?.task });
  return tasks.vehicle(event);
}
