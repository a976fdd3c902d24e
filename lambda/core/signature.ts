/**
 * Smartcar's two uses of HMAC-SHA256 keyed with the application management token: answering a VERIFY
 * challenge, and authenticating every other delivery by its `SC-Signature` header over the raw body bytes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Lowercase hex HMAC-SHA256 of `message` keyed with `key`. */
export function hmacHex(key: string, message: string | Uint8Array): string {
  return createHmac('sha256', key).update(message).digest('hex');
}

/** The value to return as `{"challenge": ...}` for a VERIFY request. */
export function challengeResponse(managementToken: string, challenge: string): string {
  return hmacHex(managementToken, challenge);
}

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Whether `signature` is the HMAC of exactly these body bytes. Never throws: a missing, short, long or
 * non-hex header is simply not valid. The comparison is constant-time over the decoded digest.
 */
export function isValidSignature(
  managementToken: string,
  rawBody: Uint8Array,
  signature: string | undefined | null,
): boolean {
  if (typeof signature !== 'string') return false;
  const candidate = signature.trim();
  if (!HEX_SHA256.test(candidate)) return false;
  const expected = createHmac('sha256', managementToken).update(rawBody).digest();
  const given = Buffer.from(candidate, 'hex');
  // Both are 32 bytes here (the regex fixed the length), so timingSafeEqual cannot throw.
  return timingSafeEqual(expected, given);
}

/** Case-insensitive header lookup: HTTP API payload 2.0 lowercases names, other front ends may not. */
export function headerValue(
  headers: Record<string, string | undefined> | null | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}
