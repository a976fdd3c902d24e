/**
 * Current state per vehicle: for each vehicle and mode, the latest value of each signal by the signal's
 * own time (oemUpdatedAt, then fetchedAt/retrievedAt, then receipt, then eventId), its last delivery,
 * and make/model where known. Smartcar delivers at least once and in no order, so "latest" is decided
 * by comparing these keys, never by arrival: applying the same deliveries shuffled or duplicated gives
 * the same state ({@link mergeState} is commutative and idempotent).
 */
import type { LakeRecord } from '../contract';

export interface SignalState {
  readonly code: string;
  readonly name: string | null;
  readonly group: string | null;
  /** The signal's body as JSON text (value, unit, and whatever else it carries). */
  readonly body: string;
  readonly oemUpdatedAt: number | null;
  readonly fetchedAt: number | null;
  readonly receivedAt: string;
  readonly eventId: string;
}

export interface VehicleState {
  readonly vehicleId: string;
  readonly mode: string;
  readonly make: string | null;
  readonly model: string | null;
  readonly year: number | null;
  readonly lastDeliveryAt: string;
  readonly signals: Record<string, SignalState>;
}

const pad = (n: number | null) =>
  n === null ? ''.padStart(16, '0') : String(Math.max(0, Math.floor(n))).padStart(16, '0');

/** A string that sorts like the signal's recency: the key DynamoDB conditions compare. */
export function recencyKey(s: Pick<SignalState, 'oemUpdatedAt' | 'fetchedAt' | 'receivedAt' | 'eventId'>): string {
  return `${pad(s.oemUpdatedAt)}|${pad(s.fetchedAt)}|${s.receivedAt}|${s.eventId}`;
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return null;
}

function obj(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** Whether a payload's signal carries a value rather than an error. */
function hasReading(s: Record<string, unknown>): boolean {
  if (s.body === undefined || s.body === null) return false;
  if (s.error !== undefined && s.error !== null) return false;
  // Case-insensitive, as the views read it (lib/queries.ts signalRows).
  const status = obj(s.status)?.value;
  return !(typeof status === 'string' && status.toUpperCase() === 'ERROR');
}

/** The state one stored delivery says (current VEHICLE_STATE payloads), or null when it says none. */
export function stateOf(record: LakeRecord): VehicleState | null {
  if (record.event_type !== 'VEHICLE_STATE') return null;
  const text = record.body_json ?? record.body;
  if (!text) return null;
  let json: Record<string, unknown> | null;
  try {
    json = obj(JSON.parse(text));
  } catch {
    return null;
  }
  const data = obj(json?.data);
  const vehicle = obj(data?.vehicle);
  const vehicleId =
    (typeof json?.vehicleId === 'string' && json.vehicleId) || (typeof vehicle?.id === 'string' && vehicle.id) || null;
  if (!vehicleId) return null;
  const signals: Record<string, SignalState> = {};
  for (const raw of Array.isArray(data?.signals) ? data.signals : []) {
    const s = obj(raw);
    const code = typeof s?.code === 'string' ? s.code : null;
    if (!s || !code) continue;
    // A signal Smartcar could not read carries `error` (or `status: {value: "ERROR"}`) instead of a body:
    // it says nothing about the value, so the last known one stays (the lake keeps the error).
    if (!hasReading(s)) continue;
    const meta = obj(s.meta);
    const signal: SignalState = {
      code,
      name: typeof s.name === 'string' ? s.name : null,
      group: typeof s.group === 'string' ? s.group : null,
      body: JSON.stringify(s.body ?? null),
      oemUpdatedAt: num(meta?.oemUpdatedAt),
      fetchedAt: num(meta?.fetchedAt) ?? num(meta?.retrievedAt),
      receivedAt: record.received_at,
      eventId: record.event_id,
    };
    if (!signals[code] || recencyKey(signal) > recencyKey(signals[code])) signals[code] = signal;
  }
  return {
    vehicleId,
    mode: record.mode,
    make: typeof vehicle?.make === 'string' ? vehicle.make : null,
    model: typeof vehicle?.model === 'string' ? vehicle.model : null,
    year: num(vehicle?.year),
    lastDeliveryAt: record.received_at,
    signals,
  };
}

/** Merges what a delivery says into what is known; never lets an older reading replace a newer one. */
export function mergeState(current: VehicleState | undefined, update: VehicleState): VehicleState {
  if (!current) return update;
  const signals = { ...current.signals };
  for (const [code, s] of Object.entries(update.signals)) {
    if (!signals[code] || recencyKey(s) > recencyKey(signals[code])) signals[code] = s;
  }
  const newer = update.lastDeliveryAt > current.lastDeliveryAt;
  return {
    vehicleId: current.vehicleId,
    mode: current.mode,
    // Make and model from the newest delivery that names them.
    make: (newer ? (update.make ?? current.make) : (current.make ?? update.make)) ?? null,
    model: (newer ? (update.model ?? current.model) : (current.model ?? update.model)) ?? null,
    year: (newer ? (update.year ?? current.year) : (current.year ?? update.year)) ?? null,
    lastDeliveryAt: newer ? update.lastDeliveryAt : current.lastDeliveryAt,
    signals,
  };
}

/** One merged update per vehicle and mode for a set of records (the merge is order-safe), not one per record. */
export function statesOf(records: readonly LakeRecord[]): VehicleState[] {
  const merged = new Map<string, VehicleState>();
  for (const r of records) {
    const u = stateOf(r);
    if (u) merged.set(`${u.vehicleId}|${u.mode}`, mergeState(merged.get(`${u.vehicleId}|${u.mode}`), u));
  }
  return [...merged.values()];
}

/** Where current state is kept: DynamoDB in AWS (conditional writes), a file beside the local lake. */
export interface StateStore {
  apply(updates: VehicleState[]): Promise<void>;
}

/** Whether two states say the same (same signals by recency, same last delivery and vehicle facts). */
export function sameState(a: VehicleState, b: VehicleState): boolean {
  if (a.lastDeliveryAt !== b.lastDeliveryAt || a.make !== b.make || a.model !== b.model || a.year !== b.year)
    return false;
  const codes = Object.keys(a.signals);
  if (codes.length !== Object.keys(b.signals).length) return false;
  return codes.every((c) => b.signals[c] !== undefined && recencyKey(a.signals[c]) === recencyKey(b.signals[c]));
}

/** The state without the signals that came from `eventIds` (a user's erasure), or null when none is left. */
export function withoutEvents(state: VehicleState, eventIds: ReadonlySet<string>): VehicleState | null {
  const kept = Object.entries(state.signals).filter(([, s]) => !eventIds.has(s.eventId));
  return kept.length === 0 ? null : { ...state, signals: Object.fromEntries(kept) };
}

/** One stored state item and the version its next conditional write must find. */
export interface VersionedState {
  readonly state: VehicleState;
  readonly version: number;
}

/**
 * What optimistic concurrency needs of a table holding one item per vehicle and mode: read it (cheaply,
 * possibly stale, or consistently), and write it only if its version is still `expected` (0: no item).
 */
export interface VersionedStateItems {
  read(vehicleId: string, mode: string, consistent: boolean): Promise<VersionedState | undefined>;
  /** Writes `next` as version `expected + 1`; false when another writer moved the version first. */
  write(next: VehicleState, expected: number): Promise<boolean>;
}

/** A vehicle's update lost the race to other writers `attempts` times: the caller fails it for the queue to retry. */
export class StateConflictError extends Error {
  constructor(vehicleId: string, mode: string, attempts: number) {
    super(`the state of vehicle ${vehicleId} (${mode}) changed under ${attempts} attempts to write it; retry later`);
    this.name = 'StateConflictError';
  }
}

/**
 * Applies one update with optimistic concurrency: read, merge ({@link mergeState}), write back only if
 * nobody wrote since the read; on losing, read again (consistently) and merge again. The first read may
 * be stale (half the price): a stale read can only make the write lose, never land on a newer item.
 * Nothing is written when the item already says as much (a duplicate costs one read). Readings are never
 * lost or regressed: every write is a merge of the latest item and the update.
 */
export async function applyVersioned(
  items: VersionedStateItems,
  update: VehicleState,
  options: { attempts?: number; backoff?: (attempt: number) => Promise<void> } = {},
): Promise<'written' | 'unchanged'> {
  const attempts = options.attempts ?? 8;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await options.backoff?.(attempt);
    const current = await items.read(update.vehicleId, update.mode, attempt > 0);
    const merged = mergeState(current?.state, update);
    if (current && sameState(current.state, merged)) return 'unchanged';
    if (await items.write(merged, current?.version ?? 0)) return 'written';
  }
  throw new StateConflictError(update.vehicleId, update.mode, attempts);
}
