/** Workflow task function: loads vehicle pages, records per-page results and writes the summary. */
import { executionInput, logger, workflowDeps } from '../adapters/aws-workflow';
import type { ResultsTaskEvent } from '../contract';
import { taskHandlers } from '../core/workflow';

const tasks = taskHandlers(workflowDeps(), executionInput);

export async function handler(event: ResultsTaskEvent) {
  logger.appendKeys({ task: event?.task });
  return tasks.results(event);
}
