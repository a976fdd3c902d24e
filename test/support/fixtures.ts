/** Real payload fixtures (one file per documented variant) and signing helpers shared by every test. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { hmacHex } from '../../lambda/core/signature';

export const FIXTURE_NAMES = [
  'verify-legacy',
  'verify-current',
  'schedule-legacy',
  'event-based-legacy',
  'vehicle-state',
  'vehicle-state-variant',
  'vehicle-error',
  'vehicle-error-resolved',
  'vehicle-state-signal-object',
  'vehicle-state-first-delivery',
  'vehicle-state-v3',
  'scheduled-legacy',
] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/** The management token of the reference test vectors. */
export const TEST_TOKEN = 'test-amt-00000000-0000-0000-0000-000000000000';

/** The fixture's bytes exactly as stored (whitespace and newlines included). */
export function fixture(name: FixtureName): Buffer {
  return readFileSync(path.join(__dirname, '..', 'fixtures', `${name}.json`));
}

export function sign(body: Uint8Array | string, token = TEST_TOKEN): string {
  return hmacHex(token, body);
}

let vehicleStateTemplate: string | undefined;

/**
 * The vehicle-state fixture as another delivery: its own eventId and, when given, its vehicle (every
 * mention), state of charge and OEM time. Read once, so benches can make a million of them.
 */
export function vehicleState(
  eventId: string,
  o: { vehicleId?: string; value?: number; oemUpdatedAt?: number } = {},
): string {
  vehicleStateTemplate ??= fixture('vehicle-state').toString();
  let body = vehicleStateTemplate.replace('550e8400-e29b-41d4-a716-446655440000', eventId);
  if (o.vehicleId !== undefined) body = body.replaceAll('9af13248-3b73-4c9d-9a4b-d937ce6bc8e2', o.vehicleId);
  if (o.value !== undefined) body = body.replace('"value":78', `"value":${o.value}`);
  if (o.oemUpdatedAt !== undefined)
    body = body.replace('"oemUpdatedAt":1731940328000', `"oemUpdatedAt":${o.oemUpdatedAt}`);
  return body;
}
