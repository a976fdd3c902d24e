/**
 * Realistic test deliveries built from the project's fixtures (the documented payloads), with fresh ids
 * and timestamps so each one is a new event.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export const EVENT_KINDS = ['verify', 'vehicle-state', 'vehicle-error', 'schedule', 'event-based'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const FIXTURE_OF: Record<EventKind, string> = {
  verify: 'verify-current',
  'vehicle-state': 'vehicle-state',
  'vehicle-error': 'vehicle-error',
  schedule: 'schedule-legacy',
  'event-based': 'event-based-legacy',
};

const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures');

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
  const json = JSON.parse(readFileSync(path.join(FIXTURES, `${FIXTURE_OF[kind]}.json`), 'utf8')) as Json;
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
