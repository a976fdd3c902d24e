/**
 * The subscription workflow's steps as plain functions; the state machine wires them together and the
 * task functions adapt them to Lambda. The user's access token never enters the state: steps receive a
 * {@link TokenRef} and ask `resolveAccessToken` for the token when they call Smartcar.
 */
import {
  type ListingState,
  MAX_RATE_LIMIT_WAITS,
  type PlanTaskEvent,
  type ResultsTaskEvent,
  type RunPlan,
  SMARTCAR_ID_PATTERN,
  SUMMARY_LIST_LIMIT,
  type TokenRef,
  VEHICLE_PAGE_SIZE,
  type VehicleFailure,
  type VehicleOutcome,
  type VehicleTask,
  type VehicleTaskEvent,
  WORKFLOW_ERRORS,
  WORKFLOW_TASKS,
  type WorkflowAction,
  type WorkflowSummary,
} from '../contract';
import type { CoreLogger } from './logger';
import { SmartcarApiError, type SmartcarClient } from './smartcar-client';

/** Error names the state machine matches on; defined in the contract, re-exported for the cores' callers. */
export { WORKFLOW_ERRORS };

export class WorkflowError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Run-scoped JSON objects (vehicle pages, per-page results, the report). */
export interface WorkStore {
  putJson(key: string, value: unknown): Promise<void>;
  getJson<T>(key: string): Promise<T>;
  /** The object, or undefined when there is none; any other failure (access, a broken store) throws. */
  getJsonIfExists<T>(key: string): Promise<T | undefined>;
  listKeys(prefix: string): Promise<string[]>;
  /** Where a person finds the object, e.g. s3://bucket/key. */
  uri(key: string): string;
}

export interface WorkflowDeps {
  readonly client: SmartcarClient;
  readonly store: WorkStore;
  readonly logger: CoreLogger;
  readonly resolveAccessToken: (ref: TokenRef) => Promise<string>;
  readonly managementToken: () => Promise<string>;
  readonly defaultWebhookId?: string;
  /** Secrets named in `accessTokenSecretArn` must have names starting with this. */
  readonly accessTokenSecretPrefix?: string;
  /**
   * The only webhooks an execution may subscribe vehicles to or unsubscribe them from. Whoever may start
   * an execution acts with the application's authority (unsubscribe needs only the management token),
   * so the webhook is not theirs to choose freely. @default - only `defaultWebhookId`
   */
  readonly allowedWebhookIds?: readonly string[];
}

export interface ExecutionContext {
  readonly executionArn: string;
  /** Unique per state machine; names the run's folder in the work store. */
  readonly executionName: string;
}

const ALLOWED_INPUT_KEYS = new Set(['accessToken', 'accessTokenSecretArn', 'webhookId', 'vehicleIds', 'action']);
const ID = SMARTCAR_ID_PATTERN;
const MAX_GIVEN_VEHICLES = 10_000;

/** Validates the execution input, stages given vehicle ids, and returns the first listing state. */
export async function prepare(input: unknown, ctx: ExecutionContext, deps: WorkflowDeps): Promise<ListingState> {
  const invalid = (message: string) => new WorkflowError(WORKFLOW_ERRORS.invalidInput, message);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('The input must be a JSON object such as {"accessToken": "...", "action": "subscribe"}.');
  }
  const given = input as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => !ALLOWED_INPUT_KEYS.has(k));
  if (unknown.length > 0) {
    throw invalid(
      `Unknown input field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${[...ALLOWED_INPUT_KEYS].join(', ')}.`,
    );
  }

  const action = (given.action ?? 'subscribe') as WorkflowAction;
  if (action !== 'subscribe' && action !== 'unsubscribe') {
    throw invalid(`"action" must be "subscribe" or "unsubscribe", got ${JSON.stringify(given.action)}.`);
  }

  const webhookId = given.webhookId ?? deps.defaultWebhookId;
  if (webhookId === undefined || webhookId === '') {
    throw invalid('No webhook id: pass "webhookId" (Smartcar Dashboard → Webhooks) or deploy with -c webhookId=<id>.');
  }
  if (typeof webhookId !== 'string' || !ID.test(webhookId)) {
    throw invalid(`"webhookId" must be a Smartcar webhook id, got ${JSON.stringify(webhookId)}.`);
  }
  const allowed = deps.allowedWebhookIds ?? (deps.defaultWebhookId ? [deps.defaultWebhookId] : []);
  if (!allowed.includes(webhookId)) {
    throw invalid(
      `Webhook ${JSON.stringify(webhookId)} is not allowed for this workflow (allowed: ${
        allowed.length > 0 ? allowed.join(', ') : 'none configured'
      }). Add it to the construct option subscriptionWorkflow.allowedWebhookIds (default: the configured webhookId) and redeploy.`,
    );
  }

  let vehicleIds: string[] | undefined;
  if (given.vehicleIds !== undefined) {
    if (!Array.isArray(given.vehicleIds) || given.vehicleIds.some((v) => typeof v !== 'string' || !ID.test(v))) {
      throw invalid('"vehicleIds" must be an array of Smartcar vehicle ids.');
    }
    if (given.vehicleIds.length === 0) {
      throw invalid('"vehicleIds" is empty; leave it out to use all of the user\'s vehicles.');
    }
    vehicleIds = [...new Set(given.vehicleIds as string[])];
    if (vehicleIds.length > MAX_GIVEN_VEHICLES) {
      throw invalid(`"vehicleIds" lists ${vehicleIds.length} vehicles; at most ${MAX_GIVEN_VEHICLES} per execution.`);
    }
  }

  const hasToken = given.accessToken !== undefined;
  const hasSecret = given.accessTokenSecretArn !== undefined;
  if (hasToken && hasSecret) throw invalid('Pass either "accessToken" or "accessTokenSecretArn", not both.');
  if (hasToken && (typeof given.accessToken !== 'string' || given.accessToken.trim() === '')) {
    throw invalid('"accessToken" must be a non-empty string.');
  }
  // Unsubscribing named vehicles needs only the management token; everything else needs the user's.
  const needsUserToken = !(action === 'unsubscribe' && vehicleIds);
  if (!hasToken && !hasSecret && needsUserToken) {
    throw invalid('No access token: pass "accessToken" (from Smartcar Connect) or "accessTokenSecretArn".');
  }

  let tokenRef: TokenRef = { kind: 'executionInput', executionArn: ctx.executionArn };
  if (hasSecret) {
    const arn = given.accessTokenSecretArn;
    const prefix = deps.accessTokenSecretPrefix ?? '';
    const name =
      typeof arn === 'string' ? /^arn:aws[a-z-]*:secretsmanager:[^:]+:\d{12}:secret:(.+)$/.exec(arn)?.[1] : undefined;
    if (!name?.startsWith(prefix)) {
      throw invalid(
        `"accessTokenSecretArn" must be the ARN of a Secrets Manager secret whose name starts with "${prefix}" (the workflow may read only those).`,
      );
    }
    tokenRef = { kind: 'secret', secretArn: arn as string };
    try {
      await deps.resolveAccessToken(tokenRef);
    } catch (err) {
      throw invalid(
        `Could not read the access token from "accessTokenSecretArn": ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  const plan: RunPlan = {
    runId: ctx.executionName,
    action,
    webhookId,
    tokenRef,
    vehiclesGiven: vehicleIds !== undefined,
  };
  deps.logger.info('run prepared', {
    runId: plan.runId,
    action,
    webhookId,
    vehiclesGiven: plan.vehiclesGiven,
    tokenFrom: tokenRef.kind,
  });
  if (!vehicleIds) return { plan, nextOffset: 0, done: false, vehicleCount: 0, pageOffsets: [], rateLimitWaits: 0 };

  const pageOffsets: number[] = [];
  for (let offset = 0; offset < vehicleIds.length; offset += VEHICLE_PAGE_SIZE) {
    await deps.store.putJson(pageKey(plan.runId, offset), vehicleIds.slice(offset, offset + VEHICLE_PAGE_SIZE));
    pageOffsets.push(offset);
  }
  return { plan, done: true, vehicleCount: vehicleIds.length, pageOffsets, rateLimitWaits: 0 };
}

/** Lists one page of the user's vehicles and stores it; asks for a wait on 429. */
export async function listPage(state: ListingState, deps: WorkflowDeps): Promise<ListingState> {
  const offset = state.nextOffset ?? 0;
  const { plan } = state;
  let page: Awaited<ReturnType<SmartcarClient['listVehicles']>>;
  try {
    const token = await deps.resolveAccessToken(plan.tokenRef);
    page = await deps.client.listVehicles(token, { limit: VEHICLE_PAGE_SIZE, offset });
  } catch (err) {
    if (err instanceof SmartcarApiError && err.rateLimited) {
      const waits = state.rateLimitWaits + 1;
      if (waits > MAX_RATE_LIMIT_WAITS) {
        throw new WorkflowError(
          WORKFLOW_ERRORS.listingFailed,
          `Listing vehicles was rate limited ${waits} times in a row: ${err.message}`,
        );
      }
      deps.logger.warn('listing rate limited', { runId: plan.runId, offset, retryAfterSeconds: err.retryAfterSeconds });
      return { ...state, retryAfterSeconds: err.retryAfterSeconds ?? undefined, rateLimitWaits: waits };
    }
    if (err instanceof SmartcarApiError && err.retryable)
      throw new WorkflowError(WORKFLOW_ERRORS.retryable, err.message);
    throw new WorkflowError(WORKFLOW_ERRORS.listingFailed, err instanceof Error ? err.message : String(err));
  }
  const pageOffsets = [...state.pageOffsets];
  if (page.vehicles.length > 0) {
    await deps.store.putJson(pageKey(plan.runId, offset), page.vehicles);
    pageOffsets.push(offset);
  }
  const next = offset + page.vehicles.length;
  const done = page.vehicles.length === 0 || next >= page.count;
  deps.logger.info('listed vehicles', { runId: plan.runId, offset, vehicles: page.vehicles.length, total: page.count });
  return {
    plan,
    nextOffset: done ? undefined : next,
    done,
    vehicleCount: done ? next : 0,
    pageOffsets,
    rateLimitWaits: 0,
  };
}

/** The vehicle ids of one stored page. */
export async function loadPage(input: { plan: RunPlan; offset: number }, deps: WorkflowDeps) {
  const vehicleIds = await deps.store.getJson<string[]>(pageKey(input.plan.runId, input.offset));
  return { plan: input.plan, offset: input.offset, vehicleIds };
}

/** One attempt to subscribe or unsubscribe one vehicle. */
export async function processVehicle(task: VehicleTask, deps: WorkflowDeps): Promise<VehicleOutcome> {
  const { plan, vehicleId } = task;
  try {
    if (plan.action === 'subscribe') {
      await deps.client.subscribe(await deps.resolveAccessToken(plan.tokenRef), vehicleId, plan.webhookId);
    } else {
      await deps.client.unsubscribe(await deps.managementToken(), vehicleId, plan.webhookId);
    }
    deps.logger.info(`${plan.action}d vehicle`, { runId: plan.runId, vehicleId });
    return { outcome: 'succeeded', vehicleId };
  } catch (err) {
    if (!(err instanceof SmartcarApiError)) throw err;
    if (err.rateLimited && task.rateLimitWaits < MAX_RATE_LIMIT_WAITS) {
      deps.logger.warn('rate limited', { runId: plan.runId, vehicleId, retryAfterSeconds: err.retryAfterSeconds });
      return {
        outcome: 'rate_limited',
        vehicleId,
        retryAfterSeconds: err.retryAfterSeconds ?? 30,
        rateLimitWaits: task.rateLimitWaits + 1,
        plan,
      };
    }
    if (err.retryable && !err.rateLimited) throw new WorkflowError(WORKFLOW_ERRORS.retryable, err.message);
    deps.logger.warn(`could not ${plan.action} vehicle`, {
      runId: plan.runId,
      vehicleId,
      status: err.status,
      type: err.type,
      requestId: err.requestId,
    });
    return { outcome: 'failed', vehicleId, failure: failureOf(vehicleId, err) };
  }
}

/** Stores one page's outcomes, so the summary never needs them all in state at once. */
export async function recordPage(
  input: { plan: RunPlan; offset: number; results: VehicleOutcome[] },
  deps: WorkflowDeps,
) {
  await deps.store.putJson(resultKey(input.plan.runId, input.offset), input.results);
  const succeeded = input.results.filter((r) => r.outcome === 'succeeded').length;
  return { offset: input.offset, succeeded, failed: input.results.length - succeeded };
}

/** Reads every page's outcomes, writes the full report, and returns the (bounded) summary. */
export async function summarize(
  input: { plan: RunPlan; vehicleCount: number },
  deps: WorkflowDeps,
): Promise<WorkflowSummary> {
  const { plan } = input;
  const keys = (await deps.store.listKeys(`runs/${plan.runId}/results/`)).sort();
  const succeeded: string[] = [];
  const failed: VehicleFailure[] = [];
  for (const key of keys) {
    for (const r of await deps.store.getJson<VehicleOutcome[]>(key)) {
      if (r.outcome === 'succeeded') succeeded.push(r.vehicleId);
      else if (r.outcome === 'failed') failed.push(r.failure);
      else failed.push(rateLimitedFailure(r.vehicleId));
    }
  }
  const reportKey = `runs/${plan.runId}/report.json`;
  const full = { action: plan.action, webhookId: plan.webhookId, vehicleCount: input.vehicleCount, succeeded, failed };
  await deps.store.putJson(reportKey, full);
  const truncated = succeeded.length > SUMMARY_LIST_LIMIT || failed.length > SUMMARY_LIST_LIMIT;
  deps.logger.info('run finished', {
    runId: plan.runId,
    vehicleCount: input.vehicleCount,
    succeeded: succeeded.length,
    failed: failed.length,
  });
  return {
    action: plan.action,
    webhookId: plan.webhookId,
    vehicleCount: input.vehicleCount,
    succeededCount: succeeded.length,
    failedCount: failed.length,
    succeeded: succeeded.slice(0, SUMMARY_LIST_LIMIT),
    failed: failed.slice(0, SUMMARY_LIST_LIMIT),
    truncated,
    report: deps.store.uri(reportKey),
  };
}

export function pageKey(runId: string, offset: number): string {
  return `runs/${runId}/pages/${String(offset).padStart(7, '0')}.json`;
}

export function resultKey(runId: string, offset: number): string {
  return `runs/${runId}/results/${String(offset).padStart(7, '0')}.json`;
}

function failureOf(vehicleId: string, err: SmartcarApiError): VehicleFailure {
  return {
    vehicleId,
    status: err.status,
    type: err.type,
    code: err.code,
    description: err.description,
    requestId: err.requestId,
  };
}

function rateLimitedFailure(vehicleId: string): VehicleFailure {
  return {
    vehicleId,
    status: 429,
    type: 'RATE_LIMIT',
    code: null,
    description: `still rate limited after ${MAX_RATE_LIMIT_WAITS} waits`,
    requestId: null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Task dispatch: the payloads (contract.ts) the state machine sends to each task function
// ---------------------------------------------------------------------------------------------------

/** The three task functions of the state machine, given their dependencies. */
export function taskHandlers(deps: WorkflowDeps, readExecutionInput: (executionArn: string) => Promise<unknown>) {
  const unknownTask = (event: { task?: unknown }) => new Error(`unknown task ${JSON.stringify(event?.task)}`);
  return {
    plan: async (event: PlanTaskEvent): Promise<ListingState> => {
      if (event?.task === WORKFLOW_TASKS.prepare)
        return prepare(await readExecutionInput(event.executionArn), event, deps);
      if (event?.task === WORKFLOW_TASKS.listPage) return listPage(event.state, deps);
      throw unknownTask(event);
    },
    vehicle: async (event: VehicleTaskEvent): Promise<VehicleOutcome> => {
      if (event?.task === WORKFLOW_TASKS.processVehicle) return processVehicle(event.vehicle, deps);
      throw unknownTask(event);
    },
    results: async (event: ResultsTaskEvent) => {
      if (event?.task === WORKFLOW_TASKS.loadPage) return loadPage(event.page, deps);
      if (event?.task === WORKFLOW_TASKS.recordPage) return recordPage(event, deps);
      if (event?.task === WORKFLOW_TASKS.summarize) return summarize(event, deps);
      throw unknownTask(event);
    },
  };
}
