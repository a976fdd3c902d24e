/**
 * Reconciliation: keeps the application's connected vehicles subscribed to the webhook without anyone
 * pasting a token. Desired = the application's connections (management token), narrowed by selection
 * rules; actual = the webhook's v3 subscriptions (application token); the plan is their difference
 * (a pure function); apply creates and deletes, paced under the rate limit; confirm lists again,
 * because creation is asynchronous (202).
 *
 * The state machine is a small loop around {@link step}: each call does one unit of work (a page, or as
 * many subscription requests as the pacer allows) and says how long to wait before the next one, so
 * 10,000 vehicles take a few hundred steps, and every wait is visible in the console. Bulky lists live in
 * the work store; the run state that travels between steps stays small.
 */

import { SMARTCAR_ID_PATTERN, WORKFLOW_ERRORS } from '../contract';
import type { CoreLogger } from './logger';
import { SmartcarApiError } from './smartcar-client';
import type { ApplicationTokens, Connection, SmartcarPlatform, Subscription } from './smartcar-platform';
import type { WorkStore } from './workflow';
import { WorkflowError } from './workflow';

export type Mode = 'live' | 'simulated' | 'all';

export interface SelectionRules {
  readonly mode: Mode;
  readonly includeUserIds?: string[];
  readonly excludeUserIds?: string[];
  readonly includeVehicleIds?: string[];
  readonly excludeVehicleIds?: string[];
}

/** Whether a connection should be subscribed under the rules. */
export function selects(rules: SelectionRules, c: Connection): boolean {
  if (rules.mode !== 'all' && c.mode !== rules.mode) return false;
  if (rules.includeUserIds && !rules.includeUserIds.includes(c.userId)) return false;
  if (rules.excludeUserIds?.includes(c.userId)) return false;
  if (rules.includeVehicleIds && !rules.includeVehicleIds.includes(c.vehicleId)) return false;
  if (rules.excludeVehicleIds?.includes(c.vehicleId)) return false;
  return true;
}

export type Operation =
  | { readonly op: 'create'; readonly vehicleId: string; readonly userId: string }
  | { readonly op: 'delete'; readonly vehicleId: string; readonly subscriptionId: string };

export interface ReconcilePlan {
  readonly subscribe: Operation[];
  readonly unsubscribe: Operation[];
  readonly unchanged: number;
  readonly desired: number;
}

/** The difference of desired and actual, by vehicle id. Pure: the same sets give the same plan. */
export function planReconcile(desired: Connection[], actual: Subscription[], prune: boolean): ReconcilePlan {
  const want = new Map<string, Connection>();
  for (const c of desired) if (!want.has(c.vehicleId)) want.set(c.vehicleId, c);
  const have = new Map<string, Subscription>();
  for (const s of actual) if (!have.has(s.vehicleId)) have.set(s.vehicleId, s);
  const subscribe: Operation[] = [];
  let unchanged = 0;
  for (const [vehicleId, c] of want) {
    if (have.has(vehicleId)) unchanged++;
    else subscribe.push({ op: 'create', vehicleId, userId: c.userId });
  }
  const unsubscribe: Operation[] = prune
    ? [...have.values()]
        .filter((s) => !want.has(s.vehicleId))
        .map((s) => ({ op: 'delete', vehicleId: s.vehicleId, subscriptionId: s.id }))
    : [];
  return { subscribe, unsubscribe, unchanged, desired: want.size };
}

// --- pacing -----------------------------------------------------------------------------------------

export interface RateLimit {
  /** Requests the bucket holds. */
  readonly capacity: number;
  /** Requests it regains per minute. */
  readonly perMinute: number;
}

export interface Pacer {
  tokens: number;
  /** Epoch ms of the last update. */
  at: number;
}

function refill(p: Pacer, limit: RateLimit, now: number): Pacer {
  return { tokens: Math.min(limit.capacity, p.tokens + ((now - p.at) / 60_000) * limit.perMinute), at: now };
}

/** Seconds until `n` requests are available. */
function secondsUntil(p: Pacer, limit: RateLimit, n: number): number {
  const missing = Math.max(0, Math.min(n, limit.capacity) - p.tokens);
  return Math.ceil((missing / limit.perMinute) * 60);
}

// --- the run ---------------------------------------------------------------------------------------

export type Phase = 'connections' | 'subscriptions' | 'plan' | 'apply' | 'confirm' | 'done';

export interface Watermark {
  /** connectedAt of the newest connection a run has seen. */
  readonly connectedAt: string;
  /** The vehicles connected at exactly that time (the next run skips them). */
  readonly vehicleIds: string[];
}

export interface ReconcileRun {
  readonly runId: string;
  readonly kind: 'full' | 'incremental';
  readonly webhookId: string;
  readonly rules: SelectionRules;
  readonly prune: boolean;
  readonly dryRun: boolean;
  readonly watermark: Watermark | null;
  phase: Phase;
  /** Listing position: the connections cursor, or the subscriptions page number. */
  cursor: string | null;
  page: number;
  newest: Watermark | null;
  /** The apply position in the plan, and the attempts of the operation there. */
  index: number;
  attempts: number;
  total: number;
  step: number;
  pacer: Pacer;
  /** Seconds to wait before the next step (the state machine's Wait). */
  waitSeconds: number;
  /** Why it waits, for a person reading the execution. */
  waitReason: string | null;
  /** Smartcar requests made so far. */
  requests: number;
  counts: { desired: number; unchanged: number; toSubscribe: number; toUnsubscribe: number; accepted: number };
}

export interface ReconcileInput {
  readonly kind?: 'full' | 'incremental';
  readonly webhookId?: string;
  readonly mode?: Mode;
  readonly includeUserIds?: string[];
  readonly excludeUserIds?: string[];
  readonly includeVehicleIds?: string[];
  readonly excludeVehicleIds?: string[];
  readonly prune?: boolean;
  readonly dryRun?: boolean;
}

export interface ReconcileDeps {
  readonly platform: SmartcarPlatform;
  readonly appTokens: ApplicationTokens;
  readonly managementToken: () => Promise<string>;
  readonly store: WorkStore;
  readonly logger: CoreLogger;
  readonly rateLimit: RateLimit;
  readonly defaultWebhookId?: string;
  readonly allowedWebhookIds?: readonly string[];
  readonly defaultMode?: Mode;
  /** Most Smartcar requests one step makes. @default 25 */
  readonly maxRequestsPerStep?: number;
  /** Seconds between applying and confirming (creation is asynchronous). @default 60 */
  readonly confirmDelaySeconds?: number;
  readonly now?: () => number;
}

const INPUT_KEYS = new Set([
  'kind',
  'webhookId',
  'mode',
  'includeUserIds',
  'excludeUserIds',
  'includeVehicleIds',
  'excludeVehicleIds',
  'prune',
  'dryRun',
]);
const MAX_TRANSIENT_ATTEMPTS = 6;

const watermarkKey = (webhookId: string) => `reconcile/state/${webhookId}.json`;
const runKey = (runId: string, part: string) => `reconcile/runs/${runId}/${part}`;
const pad = (n: number) => String(n).padStart(6, '0');

/** Validates the input and starts a run. */
export async function prepareReconcile(input: unknown, runId: string, deps: ReconcileDeps): Promise<ReconcileRun> {
  const invalid = (message: string) => new WorkflowError(WORKFLOW_ERRORS.invalidInput, message);
  const given = (input ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given))
    throw invalid('The input must be a JSON object, e.g. {"kind": "full"}.');
  const unknown = Object.keys(given).filter((k) => !INPUT_KEYS.has(k));
  if (unknown.length)
    throw invalid(
      `Unknown input field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${[...INPUT_KEYS].join(', ')}.`,
    );
  const kind = given.kind ?? 'full';
  if (kind !== 'full' && kind !== 'incremental')
    throw invalid(`"kind" must be "full" or "incremental", got ${JSON.stringify(kind)}.`);
  const mode = given.mode ?? deps.defaultMode ?? 'live';
  if (mode !== 'live' && mode !== 'simulated' && mode !== 'all')
    throw invalid(`"mode" must be "live", "simulated" or "all", got ${JSON.stringify(mode)}.`);
  const webhookId = given.webhookId ?? deps.defaultWebhookId;
  if (typeof webhookId !== 'string' || !SMARTCAR_ID_PATTERN.test(webhookId)) {
    throw invalid('No valid webhook id: pass "webhookId" or configure the construct\'s webhookId.');
  }
  const allowed = deps.allowedWebhookIds ?? (deps.defaultWebhookId ? [deps.defaultWebhookId] : []);
  if (!allowed.includes(webhookId))
    throw invalid(
      `Webhook ${JSON.stringify(webhookId)} is not allowed for this workflow (allowed: ${allowed.join(', ') || 'none configured'}).`,
    );
  const ids = (name: string) => {
    const v = given[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !SMARTCAR_ID_PATTERN.test(x)))
      throw invalid(`"${name}" must be an array of ids.`);
    return v as string[];
  };
  for (const flag of ['prune', 'dryRun']) {
    if (given[flag] !== undefined && typeof given[flag] !== 'boolean')
      throw invalid(`"${flag}" must be true or false.`);
  }
  const prune = given.prune === true;
  if (prune && kind === 'incremental')
    throw invalid('"prune" needs a full run: an incremental run sees only new connections.');
  const rules: SelectionRules = {
    mode,
    includeUserIds: ids('includeUserIds'),
    excludeUserIds: ids('excludeUserIds'),
    includeVehicleIds: ids('includeVehicleIds'),
    excludeVehicleIds: ids('excludeVehicleIds'),
  };
  const watermark = await deps.store.getJson<Watermark>(watermarkKey(webhookId)).catch(() => null);
  const now = (deps.now ?? Date.now)();
  deps.logger.info('reconcile run prepared', { runId, kind, webhookId, mode, prune, dryRun: given.dryRun === true });
  return {
    runId,
    kind,
    webhookId,
    rules,
    prune,
    dryRun: given.dryRun === true,
    watermark: kind === 'incremental' ? watermark : null,
    phase: 'connections',
    cursor: null,
    page: 0,
    newest: null,
    index: 0,
    attempts: 0,
    total: 0,
    step: 0,
    pacer: { tokens: deps.rateLimit.capacity, at: now },
    waitSeconds: 0,
    waitReason: null,
    requests: 0,
    counts: { desired: 0, unchanged: 0, toSubscribe: 0, toUnsubscribe: 0, accepted: 0 },
  };
}

/** Outcome of one operation, as recorded for the summary. */
export type OperationOutcome =
  | { readonly result: 'accepted' | 'exists' | 'deleted'; readonly op: Operation }
  | {
      readonly result: 'failed';
      readonly op: Operation;
      readonly status: number | null;
      readonly type: string | null;
      readonly code: string | null;
      readonly description: string | null;
      readonly requestId: string | null;
    };

/** One unit of work; returns the run with its next phase and how long to wait. */
export async function step(run: ReconcileRun, deps: ReconcileDeps): Promise<ReconcileRun> {
  const now = (deps.now ?? Date.now)();
  const r: ReconcileRun = {
    ...run,
    pacer: refill(run.pacer, deps.rateLimit, now),
    waitSeconds: 0,
    waitReason: null,
    step: run.step + 1,
  };
  const budget = deps.maxRequestsPerStep ?? 25;
  /** Takes a request from the pacer, or sets the wait for one. */
  const take = (n = 1): boolean => {
    if (r.pacer.tokens >= 1) {
      r.pacer = { ...r.pacer, tokens: r.pacer.tokens - 1 };
      r.requests++;
      return true;
    }
    r.waitSeconds = secondsUntil(r.pacer, deps.rateLimit, n);
    r.waitReason = 'pacing under the rate limit';
    return false;
  };
  /** A 429 or a transient failure: wait, keep the position. */
  const backOff = (err: SmartcarApiError): ReconcileRun => {
    if (err.rateLimited) {
      r.pacer = { tokens: 0, at: now };
      r.waitSeconds = err.retryAfterSeconds ?? 30;
      r.waitReason = `rate limited (Retry-After ${r.waitSeconds} s)`;
      return r;
    }
    r.attempts++;
    if (r.attempts >= MAX_TRANSIENT_ATTEMPTS) throw new WorkflowError(WORKFLOW_ERRORS.listingFailed, err.message);
    r.waitSeconds = Math.min(300, 5 * 2 ** (r.attempts - 1));
    r.waitReason = `transient error, backing off (${err.message})`;
    return r;
  };
  const fatal = (err: unknown) =>
    new WorkflowError(WORKFLOW_ERRORS.listingFailed, err instanceof Error ? err.message : String(err));

  if (r.phase === 'connections') {
    if (!take()) return r;
    let page: Awaited<ReturnType<SmartcarPlatform['listConnections']>>;
    try {
      page = await deps.platform.listConnections(await deps.managementToken(), {
        cursor: r.cursor,
        mode: r.rules.mode === 'all' ? undefined : r.rules.mode,
      });
    } catch (err) {
      if (err instanceof SmartcarApiError && err.retryable) return backOff(err);
      throw fatal(err);
    }
    r.attempts = 0;
    const seen = r.watermark;
    const fresh: Connection[] = [];
    let reachedWatermark = false;
    for (const c of page.connections) {
      if (
        seen &&
        (c.connectedAt < seen.connectedAt ||
          (c.connectedAt === seen.connectedAt && seen.vehicleIds.includes(c.vehicleId)))
      ) {
        reachedWatermark = true;
        continue;
      }
      fresh.push(c);
      if (!r.newest || c.connectedAt > r.newest.connectedAt)
        r.newest = { connectedAt: c.connectedAt, vehicleIds: [c.vehicleId] };
      else if (c.connectedAt === r.newest.connectedAt)
        r.newest = { ...r.newest, vehicleIds: [...r.newest.vehicleIds, c.vehicleId] };
    }
    const desired = fresh.filter((c) => selects(r.rules, c));
    await deps.store.putJson(runKey(r.runId, `desired/${pad(r.page)}.json`), desired);
    r.counts = { ...r.counts, desired: r.counts.desired + desired.length };
    r.page++;
    r.cursor = page.cursor;
    if (page.cursor === null || reachedWatermark) {
      r.phase = r.kind === 'full' ? 'subscriptions' : 'plan';
      r.cursor = null;
      r.page = 0;
    }
    return r;
  }

  if (r.phase === 'subscriptions' || r.phase === 'confirm') {
    const folder = r.phase === 'subscriptions' ? 'actual' : 'confirmed';
    if (!take()) return r;
    let page: Awaited<ReturnType<SmartcarPlatform['listSubscriptions']>>;
    try {
      page = await deps.appTokens.withToken((token) =>
        deps.platform.listSubscriptions(token, { webhookId: r.webhookId, number: r.page + 1 }),
      );
    } catch (err) {
      if (err instanceof SmartcarApiError && err.retryable) return backOff(err);
      throw fatal(err);
    }
    r.attempts = 0;
    await deps.store.putJson(runKey(r.runId, `${folder}/${pad(r.page)}.json`), page.subscriptions);
    r.page++;
    if (!page.more) {
      r.page = 0;
      r.phase = r.phase === 'subscriptions' ? 'plan' : 'done';
    }
    return r;
  }

  if (r.phase === 'plan') {
    const desired = await readAll<Connection>(deps.store, runKey(r.runId, 'desired/'));
    const actual = r.kind === 'full' ? await readAll<Subscription>(deps.store, runKey(r.runId, 'actual/')) : [];
    const plan = planReconcile(desired, actual, r.prune);
    await deps.store.putJson(runKey(r.runId, 'plan.json'), [...plan.subscribe, ...plan.unsubscribe]);
    r.counts = {
      ...r.counts,
      desired: plan.desired,
      unchanged: plan.unchanged,
      toSubscribe: plan.subscribe.length,
      toUnsubscribe: plan.unsubscribe.length,
    };
    r.total = plan.subscribe.length + plan.unsubscribe.length;
    r.index = 0;
    r.phase = r.dryRun || r.total === 0 ? 'done' : 'apply';
    deps.logger.info('reconcile plan', { runId: r.runId, ...r.counts, dryRun: r.dryRun });
    return r;
  }

  if (r.phase === 'apply') {
    const ops = await planCache(deps.store, runKey(r.runId, 'plan.json'));
    const outcomes: OperationOutcome[] = [];
    let made = 0;
    while (r.index < ops.length && made < budget) {
      if (!take(Math.min(budget, ops.length - r.index))) break;
      made++;
      const op = ops[r.index];
      try {
        if (op.op === 'create') {
          const result = await deps.appTokens.withToken((token) =>
            deps.platform.createSubscription(token, {
              webhookId: r.webhookId,
              userId: op.userId,
              vehicleId: op.vehicleId,
            }),
          );
          outcomes.push({ result, op });
          if (result === 'accepted') r.counts = { ...r.counts, accepted: r.counts.accepted + 1 };
        } else {
          await deps.appTokens.withToken((token) => deps.platform.deleteSubscription(token, op.subscriptionId));
          outcomes.push({ result: 'deleted', op });
        }
      } catch (err) {
        if (!(err instanceof SmartcarApiError)) throw err;
        if (err.retryable && (err.rateLimited || r.attempts + 1 < MAX_TRANSIENT_ATTEMPTS)) {
          backOff(err);
          break; // the same operation again after the wait
        }
        outcomes.push({
          result: 'failed',
          op,
          status: err.status,
          type: err.type,
          code: err.code,
          description: err.description,
          requestId: err.requestId,
        });
      }
      r.index++;
      r.attempts = 0;
    }
    if (outcomes.length > 0) await deps.store.putJson(runKey(r.runId, `outcomes/${pad(r.step)}.json`), outcomes);
    if (r.index >= ops.length) {
      r.phase = r.counts.accepted > 0 ? 'confirm' : 'done';
      r.page = 0;
      if (r.phase === 'confirm') {
        r.waitSeconds = Math.max(r.waitSeconds, deps.confirmDelaySeconds ?? 60);
        r.waitReason = 'letting asynchronous subscriptions appear before confirming';
      }
    } else if (r.waitSeconds === 0 && r.pacer.tokens < 1) {
      r.waitSeconds = secondsUntil(r.pacer, deps.rateLimit, Math.min(budget, ops.length - r.index));
      r.waitReason = 'pacing under the rate limit';
    }
    return r;
  }
  return r;
}

export interface ReconcileSummary {
  readonly kind: 'full' | 'incremental';
  readonly mode: Mode;
  readonly webhookId: string;
  readonly dryRun: boolean;
  readonly desired: number;
  /** Newly subscribed and confirmed, or already subscribed (409). */
  readonly subscribed: number;
  readonly unsubscribed: number;
  readonly unchanged: number;
  /** Accepted (202) but not listed yet when the run confirmed. */
  readonly pending: number;
  readonly pendingVehicleIds: string[];
  readonly failed: {
    vehicleId: string;
    op: string;
    status: number | null;
    type: string | null;
    description: string | null;
    requestId: string | null;
  }[];
  /** What a dry run would do. */
  readonly toSubscribe: number;
  readonly toUnsubscribe: number;
  readonly requests: number;
  readonly report: string;
}

const SUMMARY_LIMIT = 1000;

/** Reads the outcomes, confirms, writes the report and the watermark, and returns the console summary. */
export async function summarizeReconcile(run: ReconcileRun, deps: ReconcileDeps): Promise<ReconcileSummary> {
  const outcomes = await readAll<OperationOutcome>(deps.store, runKey(run.runId, 'outcomes/'));
  const confirmed = new Set(
    (await readAll<Subscription>(deps.store, runKey(run.runId, 'confirmed/'))).map((s) => s.vehicleId),
  );
  const accepted = outcomes.filter((o) => o.result === 'accepted');
  const pending = accepted.filter((o) => !confirmed.has(o.op.vehicleId)).map((o) => o.op.vehicleId);
  const failed = outcomes
    .filter((o): o is Extract<OperationOutcome, { result: 'failed' }> => o.result === 'failed')
    .map((o) => ({
      vehicleId: o.op.vehicleId,
      op: o.op.op,
      status: o.status,
      type: o.type,
      description: o.description,
      requestId: o.requestId,
    }));
  const reportKey = runKey(run.runId, 'report.json');
  const summary: ReconcileSummary = {
    kind: run.kind,
    mode: run.rules.mode,
    webhookId: run.webhookId,
    dryRun: run.dryRun,
    desired: run.counts.desired,
    subscribed: accepted.length - pending.length + outcomes.filter((o) => o.result === 'exists').length,
    unsubscribed: outcomes.filter((o) => o.result === 'deleted').length,
    unchanged: run.counts.unchanged,
    pending: pending.length,
    pendingVehicleIds: pending.slice(0, SUMMARY_LIMIT),
    failed: failed.slice(0, SUMMARY_LIMIT),
    toSubscribe: run.counts.toSubscribe,
    toUnsubscribe: run.counts.toUnsubscribe,
    requests: run.requests,
    report: deps.store.uri(reportKey),
  };
  await deps.store.putJson(reportKey, { ...summary, pendingVehicleIds: pending, failed, outcomes });
  if (!run.dryRun && run.newest) {
    const previous = run.watermark;
    const next = !previous || run.newest.connectedAt > previous.connectedAt ? run.newest : previous;
    await deps.store.putJson(watermarkKey(run.webhookId), next);
  }
  deps.logger.info('reconcile run finished', {
    runId: run.runId,
    ...summary,
    pendingVehicleIds: undefined,
    failed: failed.length,
  });
  return summary;
}

async function readAll<T>(store: WorkStore, prefix: string): Promise<T[]> {
  const keys = (await store.listKeys(prefix)).sort();
  const all: T[] = [];
  for (const key of keys) all.push(...(await store.getJson<T[]>(key)));
  return all;
}

const plans = new Map<string, Operation[]>();
/** The plan of a run, read once per function instance (it does not change during the run). */
async function planCache(store: WorkStore, key: string): Promise<Operation[]> {
  let ops = plans.get(key);
  if (!ops) {
    ops = await store.getJson<Operation[]>(key);
    if (plans.size > 10) plans.clear();
    plans.set(key, ops);
  }
  return ops;
}
