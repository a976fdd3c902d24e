/**
 * Reconciliation: keeps the application's connected vehicles subscribed to the webhook without anyone
 * pasting a token. Desired = the application's connections (management token), narrowed by selection
 * rules; actual = the webhook's v3 subscriptions (application token); the plan is their difference
 * (a pure function); apply creates and deletes, paced under the rate limit; confirm looks the accepted
 * ones up again, because creation is asynchronous (202).
 *
 * It runs unattended, so it acts only on evidence: a subscription is deleted only when its vehicle is
 * absent from a complete, well-formed, unfiltered connections listing, the deletions stay under
 * `maxPruneFraction`, and the vehicle's own connection lookup confirms it just before the delete. Anything
 * else stops the prune with a one-line reason, and the execution fails after summarizing so that the
 * failed-executions alarm fires. Every loop is bounded (cursors must advance, pages and 429 streaks have
 * ceilings), and a long run continues in a new execution before Step Functions' limits would end it.
 *
 * The state machine is a small loop around {@link step}: each call does one unit of work (a page, or as
 * many subscription requests as the pacer allows) and says how long to wait before the next one, so
 * 10,000 vehicles take a few hundred steps, and every wait is visible in the console. Bulky lists live in
 * the work store; the run state that travels between steps stays small.
 */

import { createHash } from 'node:crypto';
import {
  DEFAULT_MAX_PRUNE_FRACTION,
  DEFAULT_RECONCILE_EXECUTION_SECONDS,
  DEFAULT_RECONCILE_EXECUTION_STEPS,
  SMARTCAR_ID_PATTERN,
  WORKFLOW_ERRORS,
} from '../contract';
import type { ConnectionsPage, SubscriptionsPage } from './fleet-api';
import { DEFAULT_SMARTCAR_API, type FleetApi, fleetApi, type SmartcarApiGeneration } from './fleet-api';
import type { CoreLogger } from './logger';
import { SmartcarApiError } from './smartcar-client';
import {
  type ApplicationTokens,
  type Connection,
  type SmartcarPlatform,
  SUBSCRIPTIONS_PAGE_SIZE,
  type Subscription,
} from './smartcar-platform';
import { type StoredWebhookConfig, webhookConfigKey } from './webhook-health';
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

/**
 * The difference of desired and actual, by vehicle id. Pure: the same sets give the same plan.
 *
 * Selection decides only what to subscribe. A subscription is deleted only when `connected` (every
 * vehicle of a complete, unfiltered connections listing) is given and lacks its vehicle: a vehicle that
 * is still connected but not selected (another mode, an excluded user) keeps its subscription.
 */
export function planReconcile(
  desired: Connection[],
  actual: Subscription[],
  connected: ReadonlySet<string> | null,
): ReconcilePlan {
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
  const unsubscribe: Operation[] = connected
    ? [...have.values()]
        .filter((s) => !connected.has(s.vehicleId))
        .map((s) => ({ op: 'delete', vehicleId: s.vehicleId, subscriptionId: s.id }))
    : [];
  return { subscribe, unsubscribe, unchanged, desired: want.size };
}

/** What the listings of a run looked like: the evidence a prune must rest on. */
export interface ListingFacts {
  /** Well-formed connections listed. */
  readonly connections: number;
  /** Connection items without the documented shape. */
  readonly malformed: number;
  /** Subscriptions of this webhook listed. */
  readonly subscriptions: number;
  readonly malformedSubscriptions: number;
  /** Subscriptions of other webhooks in a listing filtered by this one. */
  readonly otherWebhook: number;
  /**
   * Connections the listing said it had (v3's `meta.totalCount`) but never listed, when it was read to its
   * end: a listing that stops short leaves vehicles out. Absent: 0.
   */
  readonly missing?: number;
}

export interface Refusal {
  readonly error: string;
  /** One line an operator woken by the alarm can act on. */
  readonly reason: string;
}

/**
 * Why a prune must not delete (null when it may): the listing is not provably complete and well-formed,
 * or it would delete more than `maxPruneFraction` of the webhook's subscriptions (or all of them on an
 * empty listing) without `allowMassPrune`. Pure.
 */
export function pruneRefusal(
  facts: ListingFacts,
  deletions: number,
  options: { maxPruneFraction: number; allowMassPrune: boolean },
): Refusal | null {
  const anomaly = listingAnomaly(facts);
  if (anomaly) return anomaly;
  if (options.allowMassPrune || deletions === 0) return null;
  if (facts.connections === 0)
    return {
      error: WORKFLOW_ERRORS.pruneStopped,
      reason: `prune stopped: the connections listing is empty while the webhook has ${facts.subscriptions} subscription(s); start a run with "allowMassPrune": true if every vehicle really is gone`,
    };
  // At least one: a fleet of nine can lose a vehicle without a nightly alarm.
  const allowed = Math.max(1, Math.floor(options.maxPruneFraction * facts.subscriptions));
  if (deletions > allowed)
    return {
      error: WORKFLOW_ERRORS.pruneStopped,
      reason: `prune stopped: it would delete ${deletions} of ${facts.subscriptions} subscriptions (${percent(deletions / facts.subscriptions)}), above maxPruneFraction ${percent(options.maxPruneFraction)}; start a run with "allowMassPrune": true to remove them on purpose`,
    };
  return null;
}

/** A listing that cannot be trusted (for any run: malformed items are vehicles nobody subscribes). */
export function listingAnomaly(facts: ListingFacts): Refusal | null {
  const reason = (what: string) => ({ error: WORKFLOW_ERRORS.listingAnomaly, reason: `listing anomaly: ${what}` });
  if (facts.malformed > 0)
    return reason(
      `${facts.malformed} connection(s) lacked vehicleId, userId, connectedAt or mode; they were neither subscribed nor counted, and nothing was deleted`,
    );
  if (facts.malformedSubscriptions > 0)
    return reason(`${facts.malformedSubscriptions} subscription(s) lacked an id or a vehicle; nothing was deleted`);
  if ((facts.missing ?? 0) > 0)
    return reason(
      `the connections listing ended ${facts.missing} connection(s) short of the total it reported; nothing was deleted`,
    );
  if (facts.otherWebhook > 0)
    return reason(
      `the subscriptions listing filtered by this webhook returned ${facts.otherWebhook} subscription(s) of other webhooks; nothing was deleted`,
    );
  return null;
}

const percent = (x: number) => `${Math.round(x * 1000) / 10}%`;

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

/**
 * How far incremental runs of one webhook, mode and selection have seen: every connection up to
 * `connectedAt` was handled, and of those at exactly that instant, `vehicleIds`. Kept in the work store
 * under `reconcile/watermarks/`, which no retention rule expires.
 */
export interface Watermark {
  readonly connectedAt: string;
  readonly vehicleIds: string[];
  /**
   * What runs have seen of the listing's order: `newest-first` (a strict decrease and nothing out of
   * order), `unordered` (an item newer than the one before it). Absent: not known yet.
   */
  readonly order?: ListingOrder;
}

export type ListingOrder = 'newest-first' | 'unordered';

/** What a run has seen of the connections listing's order so far. */
export interface RunOrder {
  /** connectedAt of the last item listed. */
  lastAt: string | null;
  /** An item was newer than the one before it. */
  violated: boolean;
  /** An item was strictly older than the one before it (evidence of newest first). */
  decreased: boolean;
  /** What earlier runs learnt (the watermark's `order`), or the generation's documented order. */
  prior: ListingOrder | null;
  /** A digest of the last page's items: a listing that repeats a page is caught whatever its paging. */
  pageDigest: string | null;
}

export interface ReconcileRun {
  /** The first execution's name; names the run's folder in the work store for every execution of it. */
  readonly runId: string;
  readonly kind: 'full' | 'incremental';
  readonly webhookId: string;
  readonly rules: SelectionRules;
  readonly prune: boolean;
  readonly allowMassPrune: boolean;
  readonly dryRun: boolean;
  /** Where the watermark of this webhook, mode and selection lives. */
  readonly watermarkKey: string;
  /** The watermark's instant when the run started (its vehicle ids stay in the store). */
  readonly watermarkAt: string | null;
  /** An incremental run with no watermark yet: it compares every connection with every subscription. */
  readonly compareAll: boolean;
  /** Why this run did nothing: another run holds the application's rate limit, or auto-enrollment (one line), or null. */
  readonly skipped: string | null;
  /** The Smartcar API generation the run lists connections with (a run keeps it to its end). */
  readonly api?: SmartcarApiGeneration;
  /**
   * Whether the connections listing has been newest first so far (the watermark's early stop relies on
   * it): the connectedAt of the previous page's last item, and a digest of that page, so a listing that
   * repeats a page is caught whatever its paging.
   */
  order?: RunOrder;
  /**
   * Whether the webhook auto-subscribes every vehicle, as the last webhook health check read it (null: no
   * recent check). True makes the run do nothing: creating or pruning would fight Smartcar's own enrollment.
   */
  readonly autoEnroll?: boolean | null;
  /** Until when this run holds the reconcile lease (epoch ms); renewed as it goes. */
  leaseUntil: number;
  phase: Phase;
  /** Listing position: the connections cursor, or the subscriptions page number. */
  cursor: string | null;
  page: number;
  /** Newest connectedAt this run has seen (the ids at it are in the store). */
  newestAt: string | null;
  /** The apply or confirm position, and the attempts of the operation there. */
  index: number;
  attempts: number;
  total: number;
  step: number;
  /** This execution of the run: its number, start and steps (a long run continues in a new execution). */
  execution: { number: number; startedAt: number; steps: number };
  /** Set when this execution hands the run to a new one. */
  handOff: { part: number; name: string } | null;
  /** 429s in a row; past {@link MAX_RATE_LIMITED_STREAK} the run fails. */
  limitedStreak: number;
  listing: ListingFacts;
  /** Why nothing was deleted, or why the listing is not to be trusted (one line). */
  refusal: Refusal | null;
  confirmBy: 'listing' | 'vehicle';
  pacer: Pacer;
  /** Seconds to wait before the next step (the state machine's Wait). */
  waitSeconds: number;
  /** Why it waits, for a person reading the execution. */
  waitReason: string | null;
  /** Smartcar requests made so far. */
  requests: number;
  counts: {
    desired: number;
    unchanged: number;
    toSubscribe: number;
    toUnsubscribe: number;
    accepted: number;
    /** Deletions skipped because the vehicle's own connection lookup found it still connected. */
    kept: number;
  };
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
  readonly allowMassPrune?: boolean;
  readonly dryRun?: boolean;
}

export interface ReconcileDeps {
  readonly platform: SmartcarPlatform;
  readonly appTokens: ApplicationTokens;
  /** Used by `smartcarApi` v2 only (connections are listed with it). */
  readonly managementToken: () => Promise<string>;
  /** Which generation of Smartcar's API lists connections. @default DEFAULT_SMARTCAR_API (v3) */
  readonly smartcarApi?: SmartcarApiGeneration;
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
  /** Largest share of the webhook's subscriptions a prune deletes without `allowMassPrune`. @default 0.1 */
  readonly maxPruneFraction?: number;
  /** Steps one execution takes before continuing in a new one. @default 1500 */
  readonly maxExecutionSteps?: number;
  /** Seconds one execution runs before continuing in a new one. @default 3 days */
  readonly maxExecutionSeconds?: number;
  /** Oldest webhook health check whose auto-enrollment answer a run heeds. @default 1 hour */
  readonly webhookConfigMaxAgeSeconds?: number;
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
  'allowMassPrune',
  'dryRun',
]);
const MAX_TRANSIENT_ATTEMPTS = 6;
/** 429s in a row (each after its Retry-After) before the run fails: the bucket is not ours alone, or never refills. */
export const MAX_RATE_LIMITED_STREAK = 20;
/** Pages any listing may take: a million connections, far beyond any application we know of. */
export const MAX_LISTING_PAGES = 10_000;
const RUN_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}$/;

const runKey = (runId: string, part: string) => `reconcile/runs/${runId}/${part}`;
const pad = (n: number) => String(n).padStart(6, '0');
const instant = (iso: string) => Date.parse(iso);

/** The watermark's key: one per webhook, mode and selection, so runs with other rules never move it. */
export function watermarkKey(webhookId: string, rules: SelectionRules, api: SmartcarApiGeneration = 'v2'): string {
  const sorted = (v?: string[]) => (v ? [...new Set(v)].sort() : null);
  const canonical = JSON.stringify([
    rules.mode,
    sorted(rules.includeUserIds),
    sorted(rules.excludeUserIds),
    sorted(rules.includeVehicleIds),
    sorted(rules.excludeVehicleIds),
  ]);
  const digest = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  // v2's key is 0.3's; v3's connection times (meta.createdAt) are not known to equal v2's connectedAt, so a
  // switch starts from no watermark (one run compares everything) rather than from the other's instant.
  return `reconcile/watermarks/${webhookId}/${rules.mode}-${digest}${api === 'v2' ? '' : `-${api}`}.json`;
}

function isWatermark(v: unknown): v is Watermark {
  const w = v as Watermark;
  return (
    typeof w?.connectedAt === 'string' &&
    !Number.isNaN(instant(w.connectedAt)) &&
    Array.isArray(w.vehicleIds) &&
    w.vehicleIds.every((id) => typeof id === 'string')
  );
}

/** Reads a watermark: undefined when there is none yet; a store failure or a damaged object fails loudly. */
async function readWatermark(store: WorkStore, key: string): Promise<Watermark | undefined> {
  const unreadable = (why: string) =>
    new WorkflowError(
      WORKFLOW_ERRORS.watermarkUnreadable,
      `the watermark ${store.uri(key)} cannot be read (${why}); nothing was done. Fix or delete it (a full run writes a new one).`,
    );
  let value: unknown;
  try {
    value = await store.getJsonIfExists<unknown>(key);
  } catch (err) {
    throw unreadable(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }
  if (value === undefined) return undefined;
  if (!isWatermark(value)) throw unreadable('it is not {"connectedAt": <ISO time>, "vehicleIds": [...]}');
  return value;
}

/** Validates the input and starts a run, or takes over a run handed on by an earlier execution. */
export async function prepareReconcile(input: unknown, runId: string, deps: ReconcileDeps): Promise<ReconcileRun> {
  const invalid = (message: string) => new WorkflowError(WORKFLOW_ERRORS.invalidInput, message);
  const given = (input ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given))
    throw invalid('The input must be a JSON object, e.g. {"kind": "full"}.');
  const now = (deps.now ?? Date.now)();
  if ('continueRun' in given) return continueRun(given, now, deps);
  const unknown = Object.keys(given).filter((k) => !INPUT_KEYS.has(k));
  if (unknown.length)
    throw invalid(
      `Unknown input field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${[...INPUT_KEYS].join(', ')}.`,
    );
  if (!RUN_ID.test(runId)) throw invalid(`The execution name ${JSON.stringify(runId)} cannot name a run folder.`);
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
  for (const flag of ['prune', 'allowMassPrune', 'dryRun']) {
    if (given[flag] !== undefined && typeof given[flag] !== 'boolean')
      throw invalid(`"${flag}" must be true or false.`);
  }
  const prune = given.prune === true;
  if (prune && kind === 'incremental')
    throw invalid('"prune" needs a full run: an incremental run sees only new connections.');
  if (given.allowMassPrune === true && !prune)
    throw invalid('"allowMassPrune" only means something with "prune": true.');
  const rules: SelectionRules = {
    mode,
    includeUserIds: ids('includeUserIds'),
    excludeUserIds: ids('excludeUserIds'),
    includeVehicleIds: ids('includeVehicleIds'),
    excludeVehicleIds: ids('excludeVehicleIds'),
  };
  const held = await leaseHolder(deps.store, runId, now);
  if (held && kind === 'full') {
    // A full run (and its prune) must not silently miss its day: the state machine retries, then fails.
    throw new WorkflowError(
      WORKFLOW_ERRORS.busy,
      `run ${held.runId} holds the application's rate limit until ${new Date(held.until).toISOString()}; if that run has failed, delete ${deps.store.uri(LEASE_KEY)}`,
    );
  }
  if (held) {
    const skipped = `skipped: run ${held.runId} holds the application's rate limit until ${new Date(held.until).toISOString()} (one run at a time); if that run has failed, delete ${deps.store.uri(LEASE_KEY)}`;
    deps.logger.info('reconcile run skipped', { runId, kind, holder: held.runId });
    return { ...newRun({ runId, kind, webhookId, rules, dryRun: given.dryRun === true }, now, deps), skipped };
  }
  // Smartcar subscribes every vehicle itself: a run would only fight it (creating 409s, pruning what it
  // re-adds). The last health check's answer decides, without a request; a stale or absent one does not.
  const config = await deps.store.getJsonIfExists<StoredWebhookConfig>(webhookConfigKey(webhookId));
  const maxAge = (deps.webhookConfigMaxAgeSeconds ?? 3600) * 1000;
  const fresh = config && now - Date.parse(config.checkedAt) <= maxAge ? config : undefined;
  const autoEnroll = fresh?.webhook?.autoEnroll ?? null;
  if (autoEnroll === true) {
    const skipped = `skipped: auto-enrollment: webhook ${webhookId} auto-subscribes every vehicle (autoSubscribe, checked ${config?.checkedAt}); reconcile neither creates nor prunes its subscriptions`;
    deps.logger.info('reconcile run skipped', { runId, kind, webhookId, autoEnroll });
    return {
      ...newRun({ runId, kind, webhookId, rules, dryRun: given.dryRun === true }, now, deps),
      skipped,
      autoEnroll,
    };
  }
  const key = watermarkKey(webhookId, rules, deps.smartcarApi ?? DEFAULT_SMARTCAR_API);
  // Only incremental runs stop at the watermark, so only they need it (and fail on a broken one); a full run
  // sees every connection and writes a sound watermark over a broken one.
  const watermark = kind === 'incremental' ? await readWatermark(deps.store, key) : undefined;
  const compareAll = kind === 'incremental' && watermark === undefined;
  deps.logger.info('reconcile run prepared', {
    runId,
    kind,
    webhookId,
    mode,
    prune,
    dryRun: given.dryRun === true,
    watermarkAt: watermark?.connectedAt ?? null,
    compareAll,
    smartcarApi: deps.smartcarApi ?? DEFAULT_SMARTCAR_API,
  });
  const api = deps.smartcarApi ?? DEFAULT_SMARTCAR_API;
  // v2.0's listing is documented "sorted in descending order by connection date"; v3's page says only
  // "sorted by connection date", so a v3 run trusts newest first only once it has been seen (here, or by
  // an earlier run, which the watermark remembers). Either way, one item out of order ends the trust.
  const prior: ListingOrder | null = watermark?.order ?? (api === 'v2' ? 'newest-first' : null);
  return {
    ...newRun({ runId, kind, webhookId, rules, dryRun: given.dryRun === true }, now, deps),
    order: { lastAt: null, violated: false, decreased: false, prior, pageDigest: null },
    autoEnroll,
    prune,
    allowMassPrune: given.allowMassPrune === true,
    watermarkAt: kind === 'incremental' ? (watermark?.connectedAt ?? null) : null,
    compareAll,
    leaseUntil: await takeLease(deps.store, runId, now),
    phase: 'connections',
  };
}

/** A run at its start, doing nothing yet (the caller sets what it will do). */
function newRun(
  r: { runId: string; kind: 'full' | 'incremental'; webhookId: string; rules: SelectionRules; dryRun: boolean },
  now: number,
  deps: ReconcileDeps,
): ReconcileRun {
  return {
    ...r,
    api: deps.smartcarApi ?? DEFAULT_SMARTCAR_API,
    order: { lastAt: null, violated: false, decreased: false, prior: null, pageDigest: null },
    prune: false,
    allowMassPrune: false,
    watermarkKey: watermarkKey(r.webhookId, r.rules, deps.smartcarApi ?? DEFAULT_SMARTCAR_API),
    watermarkAt: null,
    compareAll: false,
    skipped: null,
    autoEnroll: null,
    leaseUntil: 0,
    phase: 'done',
    cursor: null,
    page: 0,
    newestAt: null,
    index: 0,
    attempts: 0,
    total: 0,
    step: 0,
    execution: { number: 1, startedAt: now, steps: 0 },
    handOff: null,
    limitedStreak: 0,
    listing: { connections: 0, malformed: 0, subscriptions: 0, malformedSubscriptions: 0, otherWebhook: 0 },
    refusal: null,
    confirmBy: 'listing',
    pacer: { tokens: deps.rateLimit.capacity, at: now },
    waitSeconds: 0,
    waitReason: null,
    requests: 0,
    counts: { desired: 0, unchanged: 0, toSubscribe: 0, toUnsubscribe: 0, accepted: 0, kept: 0 },
  };
}

/**
 * `{"continueRun": runId, "part": n}`: the run an earlier execution saved when it handed on. Only what the
 * store holds is trusted (the input names it, nothing more), so starting one by hand can only resume a
 * run this workflow itself saved.
 */
async function continueRun(given: Record<string, unknown>, now: number, deps: ReconcileDeps): Promise<ReconcileRun> {
  const invalid = (message: string) => new WorkflowError(WORKFLOW_ERRORS.invalidInput, message);
  const { continueRun: runId, part } = given;
  const keys = new Set(['continueRun', 'part', 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID']);
  if (Object.keys(given).some((k) => !keys.has(k)))
    throw invalid('A continuation input is {"continueRun": "<run id>", "part": <n>} and nothing else.');
  if (typeof runId !== 'string' || !RUN_ID.test(runId) || !Number.isInteger(part) || (part as number) < 2)
    throw invalid('"continueRun" must name a run and "part" be its execution number (2 or more).');
  const saved = await deps.store.getJsonIfExists<ReconcileRun>(runKey(runId, `handoff/${pad(part as number)}.json`));
  if (!saved || saved.runId !== runId || saved.handOff?.part !== part)
    throw invalid(`No run ${runId} was handed on as part ${part}.`);
  deps.logger.info('reconcile run continued', { runId, part, phase: saved.phase });
  return {
    ...saved,
    handOff: null,
    leaseUntil: await takeLease(deps.store, runId, now),
    execution: { number: part as number, startedAt: now, steps: 0 },
  };
}

/** Outcome of one operation, as recorded for the summary. */
export type OperationOutcome =
  | { readonly result: 'accepted' | 'exists' | 'deleted' | 'kept'; readonly op: Operation }
  | {
      readonly result: 'failed';
      readonly op: Operation;
      readonly status: number | null;
      readonly type: string | null;
      readonly code: string | null;
      readonly description: string | null;
      readonly requestId: string | null;
    };

/** One unit of work; returns the run with its next phase, how long to wait, and whether to hand on. */
export async function step(run: ReconcileRun, deps: ReconcileDeps): Promise<ReconcileRun> {
  const now = (deps.now ?? Date.now)();
  const r = await work(
    {
      ...run,
      pacer: refill(run.pacer, deps.rateLimit, now),
      waitSeconds: 0,
      waitReason: null,
      step: run.step + 1,
      execution: { ...run.execution, steps: run.execution.steps + 1 },
    },
    deps,
    now,
  );
  // The lease outlives the next wait by hours; renewed when half of it is gone (one small write).
  if (r.phase !== 'done' && now + r.waitSeconds * 1000 > r.leaseUntil - LEASE_MS / 2)
    r.leaseUntil = await takeLease(deps.store, r.runId, now + r.waitSeconds * 1000);
  // A long run continues in a new execution well before Step Functions' history (25,000 events) or the
  // state machine's timeout would end it; the run itself waits in the store, the next input only names it.
  const steps = deps.maxExecutionSteps ?? DEFAULT_RECONCILE_EXECUTION_STEPS;
  const seconds = deps.maxExecutionSeconds ?? DEFAULT_RECONCILE_EXECUTION_SECONDS;
  if (
    r.phase !== 'done' &&
    (r.execution.steps >= steps || (now - r.execution.startedAt) / 1000 + r.waitSeconds >= seconds)
  ) {
    const part = r.execution.number + 1;
    r.handOff = { part, name: `${r.runId.slice(0, 72)}-p${part}` };
    await deps.store.putJson(runKey(r.runId, `handoff/${pad(part)}.json`), r);
    deps.logger.info('reconcile run handed on', { runId: r.runId, part, phase: r.phase, steps: r.execution.steps });
  }
  return r;
}

/** The run's API: the generation it started with (runs saved before there was a choice used v2). */
function apiOf(r: ReconcileRun, deps: ReconcileDeps): FleetApi {
  return fleetApi(r.api ?? 'v2', deps.platform, deps.appTokens, deps.managementToken);
}

async function work(r: ReconcileRun, deps: ReconcileDeps, now: number): Promise<ReconcileRun> {
  const budget = deps.maxRequestsPerStep ?? 25;
  const api = apiOf(r, deps);
  /** Takes `n` requests from the pacer, or sets the wait for them. */
  const take = (n = 1, ahead = n): boolean => {
    if (r.pacer.tokens >= n) {
      r.pacer = { ...r.pacer, tokens: r.pacer.tokens - n };
      r.requests += n;
      return true;
    }
    r.waitSeconds = secondsUntil(r.pacer, deps.rateLimit, Math.max(n, ahead));
    r.waitReason = 'pacing under the rate limit';
    return false;
  };
  const succeeded = () => {
    r.attempts = 0;
    r.limitedStreak = 0;
  };
  /** A 429 or a transient failure: wait, keep the position; neither goes on for ever. */
  const backOff = (err: SmartcarApiError): ReconcileRun => {
    if (err.rateLimited) {
      r.limitedStreak++;
      if (r.limitedStreak > MAX_RATE_LIMITED_STREAK)
        throw new WorkflowError(
          WORKFLOW_ERRORS.runaway,
          `Smartcar answered 429 ${r.limitedStreak} times in a row despite pacing and Retry-After: another client may share the rate limit, or reconcile.rateLimitCapacity/rateLimitPerMinute overstate it`,
        );
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
  const runaway = (message: string) => new WorkflowError(WORKFLOW_ERRORS.runaway, message);
  const nextPage = (listing: string) => {
    r.page++;
    if (r.page >= MAX_LISTING_PAGES)
      throw runaway(`the ${listing} listing went on past ${MAX_LISTING_PAGES} pages; stopped rather than loop`);
  };

  if (r.phase === 'connections') {
    if (!take()) return r;
    // A prune rests on the complete, unfiltered listing: mode and selection never make a vehicle "gone".
    const unfiltered = r.kind === 'full' && r.prune;
    let page: ConnectionsPage;
    try {
      page = await api.listConnections({
        cursor: r.cursor,
        mode: unfiltered || r.rules.mode === 'all' ? undefined : r.rules.mode,
      });
    } catch (err) {
      if (err instanceof SmartcarApiError && err.retryable) return backOff(err);
      throw fatal(err);
    }
    succeeded();
    if (page.cursor !== null && page.cursor === r.cursor)
      throw runaway(
        `the connections listing answered page ${r.page + 1} with the cursor it was asked for; stopped rather than loop`,
      );
    // The watermark may stop the listing early only while the listing is known to be newest first (see
    // prepareReconcile); one item newer than the one before it and the run lists every page instead.
    const order: RunOrder = r.order ?? {
      lastAt: null,
      violated: false,
      decreased: false,
      prior: 'newest-first',
      pageDigest: null,
    };
    let previous = order.lastAt === null ? null : instant(order.lastAt);
    let { violated, decreased } = order;
    for (const c of page.connections) {
      const t = instant(c.connectedAt);
      if (previous !== null && t > previous) violated = true;
      if (previous !== null && t < previous) decreased = true;
      previous = t;
    }
    const pageDigest =
      page.connections.length === 0
        ? null
        : createHash('sha256')
            .update(page.connections.map((c) => `${c.vehicleId}@${c.connectedAt}`).join('\n'))
            .digest('hex')
            .slice(0, 16);
    if (pageDigest !== null && pageDigest === order.pageDigest)
      throw runaway(
        `the connections listing answered page ${r.page + 1} with the very connections of the page before; stopped rather than loop`,
      );
    if (page.connections.length + page.malformed === 0 && page.cursor !== null)
      throw runaway(`the connections listing answered page ${r.page + 1} empty yet said more would follow`);
    if (violated && !order.violated)
      deps.logger.warn('connections listing is not newest first; listing every page', { runId: r.runId });
    r.order = {
      ...order,
      lastAt: page.connections.length > 0 ? page.connections[page.connections.length - 1].connectedAt : order.lastAt,
      violated,
      decreased,
      pageDigest,
    };
    const newestFirst = !violated && order.prior !== 'unordered' && (decreased || order.prior === 'newest-first');
    const seen = r.watermarkAt === null ? null : { at: instant(r.watermarkAt), ids: await watermarkIds(deps.store, r) };
    const fresh: Connection[] = [];
    let reachedWatermark = false;
    let known = 0;
    for (const c of page.connections) {
      const t = instant(c.connectedAt);
      if (seen && t < seen.at) {
        reachedWatermark = true; // newest first: everything after this was handled by earlier runs
        continue;
      }
      if (seen && t === seen.at && seen.ids.has(c.vehicleId)) {
        known++;
        continue;
      }
      fresh.push(c);
    }
    // A page of nothing but connections the watermark knows is where earlier runs stopped (thousands may
    // share its instant); a new one at that very millisecond beyond it waits for the daily full run.
    if (known > 0 && fresh.length === 0) reachedWatermark = true;
    if (!newestFirst) reachedWatermark = false;
    // A connection dated after now (a skewed clock, bad data) is subscribed, but never moves the watermark
    // past now: that would hide every real connection from incremental runs until then.
    const dated = fresh.filter((c) => instant(c.connectedAt) <= now);
    if (dated.length > 0) {
      const newest = Math.max(...dated.map((c) => instant(c.connectedAt)));
      const ids = dated.filter((c) => instant(c.connectedAt) === newest).map((c) => c.vehicleId);
      await deps.store.putJson(runKey(r.runId, `seen/${pad(r.page)}.json`), {
        connectedAt: new Date(newest).toISOString(),
        vehicleIds: ids,
      });
      if (r.newestAt === null || newest > instant(r.newestAt)) r.newestAt = new Date(newest).toISOString();
    }
    const desired = fresh.filter((c) => selects(r.rules, c));
    await deps.store.putJson(runKey(r.runId, `desired/${pad(r.page)}.json`), desired);
    if (unfiltered)
      await deps.store.putJson(
        runKey(r.runId, `connected/${pad(r.page)}.json`),
        page.connections.map((c) => c.vehicleId),
      );
    r.listing = {
      ...r.listing,
      connections: r.listing.connections + page.connections.length,
      malformed: r.listing.malformed + page.malformed,
    };
    // Read to its end, the listing must hold every connection it said it had.
    if (page.cursor === null && !reachedWatermark && page.total !== null) {
      const listed = r.listing.connections + r.listing.malformed;
      if (listed < page.total) r.listing = { ...r.listing, missing: page.total - listed };
    }
    r.counts = { ...r.counts, desired: r.counts.desired + desired.length };
    nextPage('connections');
    if (page.cursor === null || reachedWatermark) {
      r.phase = r.kind === 'full' || r.compareAll ? 'subscriptions' : 'plan';
      r.cursor = null;
      r.page = 0;
    } else {
      r.cursor = page.cursor;
    }
    return r;
  }

  if (r.phase === 'subscriptions' || (r.phase === 'confirm' && r.confirmBy === 'listing')) {
    const folder = r.phase === 'subscriptions' ? 'actual' : 'confirmed';
    if (!take()) return r;
    let page: SubscriptionsPage;
    try {
      page = await api.listSubscriptions({ webhookId: r.webhookId, number: r.page + 1 });
    } catch (err) {
      if (err instanceof SmartcarApiError && err.retryable) return backOff(err);
      throw fatal(err);
    }
    succeeded();
    // The server's filter is not taken on trust: only items that name this webhook count.
    const mine = page.subscriptions.filter((s) => s.webhookId === r.webhookId);
    await deps.store.putJson(runKey(r.runId, `${folder}/${pad(r.page)}.json`), mine);
    if (r.phase === 'subscriptions')
      r.listing = {
        ...r.listing,
        subscriptions: r.listing.subscriptions + mine.length,
        malformedSubscriptions: r.listing.malformedSubscriptions + page.malformed,
        otherWebhook: r.listing.otherWebhook + page.subscriptions.length - mine.length,
      };
    if (page.more && page.subscriptions.length + page.malformed === 0)
      throw runaway(`the subscriptions listing answered page ${r.page + 1} empty yet said more would follow`);
    nextPage('subscriptions');
    if (!page.more) {
      r.page = 0;
      r.phase = r.phase === 'subscriptions' ? 'plan' : 'done';
    }
    return r;
  }

  if (r.phase === 'confirm') {
    // Proportional to the change: one filtered lookup per vehicle accepted.
    const ids = await cached<string[]>(deps.store, runKey(r.runId, 'to-confirm.json'));
    const found: Subscription[] = [];
    let made = 0;
    while (r.index < ids.length && made < budget) {
      if (!take(1, Math.min(budget, ids.length - r.index))) break;
      made++;
      const vehicleId = ids[r.index];
      try {
        const page = await api.listSubscriptions({ webhookId: r.webhookId, vehicleId, number: 1 });
        found.push(...page.subscriptions.filter((s) => s.webhookId === r.webhookId && s.vehicleId === vehicleId));
      } catch (err) {
        if (!(err instanceof SmartcarApiError)) throw err;
        if (err.retryable && (err.rateLimited || r.attempts + 1 < MAX_TRANSIENT_ATTEMPTS)) {
          backOff(err);
          break;
        }
        // Not confirmed: it stays pending in the summary, and the next full run finds it either way.
      }
      succeeded();
      r.index++;
    }
    if (found.length > 0) await deps.store.putJson(runKey(r.runId, `confirmed/${pad(r.step)}.json`), found);
    if (r.index >= ids.length) r.phase = 'done';
    return r;
  }

  if (r.phase === 'plan') {
    const desired = await readAll<Connection>(deps.store, runKey(r.runId, 'desired/'));
    const listed = r.kind === 'full' || r.compareAll;
    const actual = listed ? await readAll<Subscription>(deps.store, runKey(r.runId, 'actual/')) : [];
    let connected: Set<string> | null = null;
    if (r.kind === 'full' && r.prune) {
      const all = new Set(await readAll<string>(deps.store, runKey(r.runId, 'connected/')));
      const gone = planReconcile([], actual, all).unsubscribe.length;
      r.refusal = pruneRefusal(r.listing, gone, {
        maxPruneFraction: deps.maxPruneFraction ?? DEFAULT_MAX_PRUNE_FRACTION,
        allowMassPrune: r.allowMassPrune,
      });
      if (!r.refusal) connected = all;
    } else {
      r.refusal = listingAnomaly(r.listing);
    }
    const plan = planReconcile(desired, actual, connected);
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
    if (r.refusal) deps.logger.warn('reconcile refused to delete', { runId: r.runId, reason: r.refusal.reason });
    deps.logger.info('reconcile plan', { runId: r.runId, ...r.counts, dryRun: r.dryRun });
    return r;
  }

  if (r.phase === 'apply') {
    const ops = await cached<Operation[]>(deps.store, runKey(r.runId, 'plan.json'));
    const outcomes: OperationOutcome[] = [];
    let made = 0;
    while (r.index < ops.length && made < budget) {
      const op = ops[r.index];
      if (op.op === 'delete' && r.refusal) {
        // The listing was shown incomplete by an earlier lookup: no further deletion rests on it.
        outcomes.push({ result: 'kept', op });
        r.counts = { ...r.counts, kept: r.counts.kept + 1 };
        r.index++;
        continue;
      }
      // A delete first looks the vehicle's own connection up: two requests.
      const cost = op.op === 'delete' ? 2 : 1;
      if (!take(cost, Math.min(budget, ops.length - r.index))) break;
      made += cost;
      try {
        if (op.op === 'create') {
          const result = await api.createSubscription({
            webhookId: r.webhookId,
            userId: op.userId,
            vehicleId: op.vehicleId,
          });
          outcomes.push({ result, op });
          if (result === 'accepted') r.counts = { ...r.counts, accepted: r.counts.accepted + 1 };
        } else {
          const own = await api.listConnections({ vehicleId: op.vehicleId, limit: 1 });
          const stillConnected = own.connections.some((c) => c.vehicleId === op.vehicleId);
          const unfiltered = own.malformed > 0 || own.connections.some((c) => c.vehicleId !== op.vehicleId);
          if (stillConnected || unfiltered) {
            outcomes.push({ result: 'kept', op });
            r.requests--; // the delete's request was reserved, not made
            r.counts = { ...r.counts, kept: r.counts.kept + 1 };
            // Either way the listing the plan rests on is not proof any more: the rest of the deletions stop.
            r.refusal = {
              error: WORKFLOW_ERRORS.listingAnomaly,
              reason: unfiltered
                ? `listing anomaly: the connection lookup for vehicle ${op.vehicleId} was not filtered by vehicle, so no deletion could be confirmed; the remaining deletions were skipped`
                : `listing anomaly: the connections listing left out vehicle ${op.vehicleId}, which is still connected, so it was incomplete; the remaining deletions were skipped`,
            };
          } else {
            await api.deleteSubscription(op.subscriptionId);
            outcomes.push({ result: 'deleted', op });
          }
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
      succeeded();
    }
    if (outcomes.length > 0) await deps.store.putJson(runKey(r.runId, `outcomes/${pad(r.step)}.json`), outcomes);
    if (r.index >= ops.length) {
      r.page = 0;
      r.index = 0;
      if (r.counts.accepted > 0) {
        const accepted = (await readAll<OperationOutcome>(deps.store, runKey(r.runId, 'outcomes/')))
          .filter((o) => o.result === 'accepted')
          .map((o) => o.op.vehicleId);
        await deps.store.putJson(runKey(r.runId, 'to-confirm.json'), accepted);
        // Look each accepted vehicle up unless listing the whole webhook takes fewer requests.
        const listed = r.kind === 'full' || r.compareAll;
        const pages = Math.ceil((r.listing.subscriptions + accepted.length) / SUBSCRIPTIONS_PAGE_SIZE);
        r.confirmBy = !listed || accepted.length <= pages ? 'vehicle' : 'listing';
        r.phase = 'confirm';
        r.waitSeconds = Math.max(r.waitSeconds, deps.confirmDelaySeconds ?? 60);
        r.waitReason = 'letting asynchronous subscriptions appear before confirming';
      } else {
        r.phase = 'done';
      }
    } else if (r.waitSeconds === 0 && r.pacer.tokens < 1) {
      r.waitSeconds = secondsUntil(r.pacer, deps.rateLimit, Math.min(budget, ops.length - r.index));
      r.waitReason = 'pacing under the rate limit';
    }
    return r;
  }
  return r;
}

/** The vehicle ids of the run's starting watermark, read once per function instance. */
const watermarkIdCache = new Map<string, Set<string>>();
async function watermarkIds(store: WorkStore, r: ReconcileRun): Promise<Set<string>> {
  // By store location, not by run id alone: two work stores (two stacks' buckets, two local directories)
  // may hold runs of the same name, and one process may serve both.
  const cacheKey = `${r.runId}:${store.uri(r.watermarkKey)}`;
  let ids = watermarkIdCache.get(cacheKey);
  if (!ids) {
    const w = await readWatermark(store, r.watermarkKey);
    // A watermark moved by another run since this one started is not this run's: it keeps its own instant.
    ids = new Set(w && r.watermarkAt && instant(w.connectedAt) === instant(r.watermarkAt) ? w.vehicleIds : []);
    if (watermarkIdCache.size > 10) watermarkIdCache.clear();
    watermarkIdCache.set(cacheKey, ids);
  }
  return ids;
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
  /** Deletions skipped because the vehicle turned out to be still connected. */
  readonly kept: number;
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
  /** Executions the run took (a long run continues in new ones). */
  readonly executions: number;
  /** An incremental run with no watermark yet compared every connection with every subscription. */
  readonly comparedAll: boolean;
  /** The Smartcar API generation the run used, and its endpoints (one line). */
  readonly api: SmartcarApiGeneration;
  readonly endpoints: string;
  /**
   * What the run knew of the connections listing's order: `newest-first` (an incremental run may stop at
   * the watermark), `unordered` (it lists every page), `unknown` (v3 before any evidence: every page too).
   */
  readonly listingOrder: ListingOrder | 'unknown';
  /** Why the run did nothing (another run holds the rate limit, or the webhook auto-enrolls): one line, or null. */
  readonly skipped: string | null;
  /** The webhook auto-subscribes every vehicle (last health check), so the run did nothing; null: not known. */
  readonly autoEnroll: boolean | null;
  /** Why nothing was deleted, or why the listing is not to be trusted: one line, or null. */
  readonly refused: string | null;
  /** Set when the execution must fail after summarizing (an alarm), with the one-line reason. */
  readonly failure: { readonly error: string; readonly cause: string } | null;
  readonly report: string;
}

/** Ids the returned summary lists (the report has them all): the state stays far below 256 KiB. */
const SUMMARY_LIMIT = 100;

/** Reads the outcomes and confirmations, writes the report and the watermark, and returns the summary. */
export async function summarizeReconcile(run: ReconcileRun, deps: ReconcileDeps): Promise<ReconcileSummary> {
  if (!run.skipped) await releaseLease(deps.store, run.runId);
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
  const report = deps.store.uri(reportKey);
  const summary: ReconcileSummary = {
    kind: run.kind,
    mode: run.rules.mode,
    webhookId: run.webhookId,
    dryRun: run.dryRun,
    desired: run.counts.desired,
    subscribed: accepted.length - pending.length + outcomes.filter((o) => o.result === 'exists').length,
    unsubscribed: outcomes.filter((o) => o.result === 'deleted').length,
    kept: run.counts.kept,
    unchanged: run.counts.unchanged,
    pending: pending.length,
    pendingVehicleIds: pending.slice(0, SUMMARY_LIMIT),
    failed: failed.slice(0, SUMMARY_LIMIT),
    toSubscribe: run.counts.toSubscribe,
    toUnsubscribe: run.counts.toUnsubscribe,
    requests: run.requests,
    executions: run.execution.number,
    comparedAll: run.compareAll,
    api: run.api ?? 'v2',
    endpoints: apiOf(run, deps).endpoints,
    listingOrder: listingOrderOf(run),
    skipped: run.skipped,
    autoEnroll: run.autoEnroll ?? null,
    refused: run.refusal?.reason ?? null,
    failure: run.dryRun ? null : failureOf(run, failed, report),
    report,
  };
  await deps.store.putJson(reportKey, {
    ...summary,
    pendingVehicleIds: pending,
    failed,
    outcomes,
    listing: run.listing,
  });
  if (!run.dryRun && (run.newestAt !== null || learntOrder(run) !== null)) await advanceWatermark(run, deps);
  deps.logger.info('reconcile run finished', {
    runId: run.runId,
    ...summary,
    pendingVehicleIds: undefined,
    failed: failed.length,
  });
  return summary;
}

/** The order a run can vouch for: its own evidence, else what it started with. */
function listingOrderOf(run: ReconcileRun): ListingOrder | 'unknown' {
  const o = run.order;
  if (!o) return 'newest-first'; // a run saved before 0.4: v2, documented newest first
  if (o.violated || o.prior === 'unordered') return 'unordered';
  return o.decreased || o.prior === 'newest-first' ? 'newest-first' : 'unknown';
}

/** Why the execution must fail after summarizing: a refusal, or failures too many to be one odd vehicle. */
function failureOf(run: ReconcileRun, failed: ReconcileSummary['failed'], report: string): ReconcileSummary['failure'] {
  if (run.refusal) return { error: run.refusal.error, cause: `${run.refusal.reason} (report ${report})` };
  // A vehicle that cannot be subscribed stays in the report; a tenth of the desired ones is the whole setup.
  if (failed.length > 0 && failed.length >= Math.max(1, 0.1 * run.counts.desired)) {
    const f = failed[0];
    return {
      error: WORKFLOW_ERRORS.operationsFailed,
      cause: `${failed.length} subscription request(s) failed for good, ${run.counts.desired} vehicle(s) desired (first: ${f.op} ${f.vehicleId}: ${`${f.status ?? ''} ${f.type ?? ''}`.trim()}); check the client credentials, their permissions and the webhook (report ${report})`,
    };
  }
  return null;
}

/**
 * Moves the watermark to the newest connection the run saw, compared as instants; at the same instant the
 * vehicle ids are merged, so connections at exactly the watermark are neither missed nor asked for again.
 */
async function advanceWatermark(run: ReconcileRun, deps: ReconcileDeps): Promise<void> {
  const pages = await readAll<Watermark>(deps.store, runKey(run.runId, 'seen/'), true);
  // A full run saw everything: a damaged watermark is simply replaced. An incremental run read it at the start.
  const previous = await readWatermark(deps.store, run.watermarkKey).catch((err) => {
    if (run.kind === 'full') return undefined;
    throw err;
  });
  // What the run learnt of the order is kept for the runs after it; once unordered, always unordered.
  const order = previous?.order === 'unordered' ? 'unordered' : (learntOrder(run) ?? previous?.order);
  if (pages.length === 0) {
    if (previous && order !== previous.order) await deps.store.putJson(run.watermarkKey, { ...previous, order });
    return;
  }
  const newest = Math.max(...pages.map((p) => instant(p.connectedAt)));
  const ids = new Set(pages.filter((p) => instant(p.connectedAt) === newest).flatMap((p) => p.vehicleIds));
  if (previous && instant(previous.connectedAt) > newest) {
    if (order !== previous.order) await deps.store.putJson(run.watermarkKey, { ...previous, order });
    return;
  }
  if (previous && instant(previous.connectedAt) === newest) for (const id of previous.vehicleIds) ids.add(id);
  await deps.store.putJson(run.watermarkKey, {
    connectedAt: new Date(newest).toISOString(),
    vehicleIds: [...ids],
    ...(order ? { order } : {}),
  } satisfies Watermark);
}

/** What this run's own listing showed of the order (null: nothing either way). */
function learntOrder(run: ReconcileRun): ListingOrder | null {
  if (run.order?.violated) return 'unordered';
  return run.order?.decreased ? 'newest-first' : null;
}

// --- one run at a time -------------------------------------------------------------------------------

/**
 * Runs share the application's rate limit, so one runs at a time: a run holds a lease in the work store
 * (renewed as it goes, given back when it ends, lapsing 6 hours after a run that crashed), and a run that
 * finds it held by another does nothing and says why. Two runs preparing in the same instant can both
 * start; the pacer and the 429 handling keep that harmless.
 */
const LEASE_KEY = 'reconcile/lease.json';
const LEASE_MS = 6 * 3600 * 1000;

interface Lease {
  readonly runId: string;
  readonly until: number;
}

async function leaseHolder(store: WorkStore, runId: string, now: number): Promise<Lease | null> {
  const lease = await store.getJsonIfExists<Lease>(LEASE_KEY);
  return lease && lease.runId !== runId && typeof lease.until === 'number' && lease.until > now ? lease : null;
}

async function takeLease(store: WorkStore, runId: string, from: number): Promise<number> {
  const until = from + LEASE_MS;
  await store.putJson(LEASE_KEY, { runId, until } satisfies Lease);
  return until;
}

async function releaseLease(store: WorkStore, runId: string): Promise<void> {
  const lease = await store.getJsonIfExists<Lease>(LEASE_KEY);
  if (lease?.runId === runId) await store.putJson(LEASE_KEY, { runId, until: 0 } satisfies Lease);
}

async function readAll<T>(store: WorkStore, prefix: string, single = false): Promise<T[]> {
  const keys = (await store.listKeys(prefix)).sort();
  const all: T[] = [];
  for (const key of keys) {
    const value = await store.getJson<T | T[]>(key);
    if (single) all.push(value as T);
    else all.push(...(value as T[]));
  }
  return all;
}

const objects = new Map<string, unknown>();
/** A run object that does not change once written (the plan, the ids to confirm), read once per instance. */
async function cached<T>(store: WorkStore, key: string): Promise<T> {
  // By the object's whole location: another store's run of the same name is another object.
  const where = store.uri(key);
  let value = objects.get(where) as T | undefined;
  if (value === undefined) {
    value = await store.getJson<T>(key);
    if (objects.size > 10) objects.clear();
    objects.set(where, value);
  }
  return value;
}
