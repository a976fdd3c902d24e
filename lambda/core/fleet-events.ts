/**
 * Events for other teams: one normalized EventBridge event per delivery stored in the lake, published
 * only after the record is durable, so a consumer never hears of a delivery the lake lacks. The detail
 * carries the vehicle, mode, the signals or errors, and the lake key of the raw record. A filter (event
 * types, signal names) keeps teams paying only for what they use. Publishing failures are retried and
 * counted; they never touch the lake record.
 */
import { type LakeRecord, METRIC } from '../contract';
import { normalizeTriggers } from './envelope';
import { toWellFormed } from './log-safe';
import type { CoreLogger } from './logger';
import type { CoreMetrics } from './metrics';

export const EVENT_SOURCE = 'smartcar.webhooks';

export interface EventFilter {
  /** Only these event types (e.g. VEHICLE_STATE, VEHICLE_ERROR). @default all */
  readonly eventTypes?: string[];
  /** VEHICLE_STATE events carry only these signals (by name or code), and are skipped when none is left. @default all */
  readonly signalNames?: string[];
}

export interface FleetEvent {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

function obj(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** The normalized event for one stored record, or null when the filter leaves nothing. */
export function fleetEventOf(record: LakeRecord, lakeKey: string, filter: EventFilter = {}): FleetEvent | null {
  if (filter.eventTypes && !filter.eventTypes.includes(record.event_type)) return null;
  let json: Record<string, unknown> | null = null;
  try {
    json = obj(JSON.parse(record.body_json ?? record.body ?? 'null'));
  } catch {
    json = null;
  }
  const data = obj(json?.data);
  const detail: Record<string, unknown> = {
    eventId: record.event_id,
    vehicleId: record.vehicle_ids[0] ?? null,
    vehicleIds: record.vehicle_ids,
    mode: record.mode,
    receivedAt: record.received_at,
    deliveredAt: record.delivered_at,
    webhookId: record.webhook_id,
    lakeKey,
  };
  if (record.event_type === 'VEHICLE_STATE') {
    const wanted = filter.signalNames;
    const signals = (Array.isArray(data?.signals) ? data.signals : [])
      .map(obj)
      .filter((s): s is Record<string, unknown> => s !== null)
      .filter((s) => !wanted || wanted.includes(String(s.name)) || wanted.includes(String(s.code)))
      // A signal Smartcar could not read carries `error` (or `status.error`) instead of `body`: kept as sent.
      .map((s) => ({
        code: s.code,
        name: s.name,
        group: s.group,
        body: s.body,
        meta: s.meta,
        ...(s.error === undefined ? {} : { error: s.error }),
        ...(s.status === undefined ? {} : { status: s.status }),
      }));
    if (wanted && signals.length === 0) return null;
    detail.signals = signals;
    detail.triggers = json ? normalizeTriggers(json) : null;
  } else if (record.event_type === 'VEHICLE_ERROR') {
    detail.errors = Array.isArray(data?.errors) ? data.errors : [];
  }
  return { detailType: toWellFormed(record.event_type).slice(0, 128), detail };
}

/** Publishes in batches of 10, retrying failed entries; resolves with how many could not be published. */
export async function publishEvents(
  events: FleetEvent[],
  put: (batch: FleetEvent[]) => Promise<boolean[]>,
  deps: {
    logger: CoreLogger;
    metrics: CoreMetrics;
    /** Count what was published too (a metric billed every hour a batch publishes); failures always. @default true */
    detailedMetrics?: boolean;
    attempts?: number;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<number> {
  const sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  let failed = 0;
  for (let i = 0; i < events.length; i += 10) {
    let pending = events.slice(i, i + 10);
    for (let attempt = 1; pending.length > 0 && attempt <= (deps.attempts ?? 3); attempt++) {
      if (attempt > 1) await sleep(100 * 2 ** (attempt - 2));
      try {
        const ok = await put(pending);
        pending = pending.filter((_, j) => !ok[j]);
      } catch (err) {
        deps.logger.warn('publishing events failed; retrying', { attempt, reason: String(err) });
      }
    }
    failed += pending.length;
  }
  if (deps.detailedMetrics ?? true) deps.metrics.count(METRIC.eventsPublished, events.length - failed);
  if (failed > 0) {
    deps.metrics.count(METRIC.eventPublishFailures, failed);
    deps.logger.error('could not publish events; the lake has the records', { failed });
  }
  return failed;
}
