/**
 * One delivery as a landing line, in a module of its own: the verification function needs only this, and
 * importing it must not load the ingest side (core/landing.ts pulls in the lake, state and dedupe code).
 */
import type { DeliveryMessage } from '../contract';

/** The queue message's JSON, newline-terminated (JSON has no raw newlines): one line of NDJSON. */
export function landingLine(message: DeliveryMessage): string {
  return `${JSON.stringify(message)}\n`;
}
