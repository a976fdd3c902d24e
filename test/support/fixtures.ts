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
