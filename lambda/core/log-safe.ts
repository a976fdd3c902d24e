/**
 * Values from a request whose signature has not been checked yet are an attacker's to choose: logged as
 * they are, a 125 KB `eventId` becomes a 125 KB log line (CloudWatch bills every byte), and a newline in
 * an `eventType` writes a fake line into a plain-text log. These helpers bound and escape such values.
 */

/** The longest unsigned value logged, in characters. UUIDs (36) and Smartcar's event types fit. */
export const UNSIGNED_LOG_VALUE_LIMIT = 64;

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything that can end a line
// or move the cursor on a terminal.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes control characters as `\uXXXX` (`\n` and friends included), so a value is one line. */
export function escapeControl(value: string): string {
  return value.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A string cut to `limit` characters (the length noted when cut) with its control characters escaped;
 * anything that is not a string becomes undefined, so an unsigned object or array is never logged.
 */
export function logSafe(value: unknown, limit = UNSIGNED_LOG_VALUE_LIMIT): string | undefined {
  if (typeof value !== 'string') return undefined;
  const cut = value.length > limit ? `${value.slice(0, limit)}…(${value.length} chars)` : value;
  return escapeControl(toWellFormed(cut));
}

/**
 * Replaces lone UTF-16 surrogates with U+FFFD. A string with one cannot be encoded as UTF-8, so JSON
 * writers escape it as `\ud800`, which DuckDB (and other strict readers) reject outright.
 */
export function toWellFormed(value: string): string {
  return value.replace(LONE_SURROGATE, '\ufffd');
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
