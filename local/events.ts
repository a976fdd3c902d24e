/**
 * Realistic test deliveries built from the project's fixtures (the documented payloads), with fresh ids
 * and timestamps so each one is a new event.
 */
import { randomUUID } from 'node:crypto';
// Imported, not read from disk: the bundled CLI (dist/cli) carries them, as the package ships no test/.
import eventBasedLegacy from '../test/fixtures/event-based-legacy.json';
import scheduleLegacy from '../test/fixtures/schedule-legacy.json';
import vehicleError from '../test/fixtures/vehicle-error.json';
import vehicleState from '../test/fixtures/vehicle-state.json';
import verifyCurrent from '../test/fixtures/verify-current.json';

export const EVENT_KINDS = ['verify', 'vehicle-state', 'vehicle-error', 'schedule', 'event-based'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const FIXTURE_OF: Record<EventKind, unknown> = {
  verify: verifyCurrent,
  'vehicle-state': vehicleState,
  'vehicle-error': vehicleError,
  schedule: scheduleLegacy,
  'event-based': eventBasedLegacy,
};

export interface BuiltEvent {
  readonly kind: EventKind;
  readonly body: Buffer;
  /** The challenge, for verify. */
  readonly challenge?: string;
  /** eventId for current payloads; undefined for legacy ones (the lake uses a body hash). */
  readonly eventId?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: fixture JSON is edited in place.
type Json = Record<string, any>;

export function buildEvent(kind: EventKind, now = new Date()): BuiltEvent {
  // A fresh copy each time: the fixture is edited in place below.
  const json = structuredClone(FIXTURE_OF[kind]) as Json;
  const ms = now.getTime();
  if (kind === 'verify') {
    const challenge = randomUUID();
    json.eventId = randomUUID();
    json.data.challenge = challenge;
    json.meta.deliveryId = randomUUID();
    json.meta.deliveredAt = ms;
    return { kind, body: Buffer.from(JSON.stringify(json)), challenge, eventId: json.eventId };
  }
  if (kind === 'vehicle-state' || kind === 'vehicle-error') {
    json.eventId = randomUUID();
    json.meta.deliveryId = randomUUID();
    json.meta.deliveredAt = ms;
    for (const signal of json.data.signals ?? []) {
      signal.meta = { ...signal.meta, oemUpdatedAt: ms - 2000, fetchedAt: ms - 1000 };
    }
    return { kind, body: Buffer.from(JSON.stringify(json)), eventId: json.eventId };
  }
  if (kind === 'schedule') {
    for (const vehicle of json.payload.vehicles) vehicle.requestId = randomUUID();
  } else {
    json.payload.eventId = randomUUID();
    json.payload.eventTime = now.toISOString();
  }
  return { kind, body: Buffer.from(JSON.stringify(json)) };
}
