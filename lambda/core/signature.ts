/**
 * Smartcar's two uses of HMAC-SHA256 keyed with the application management token: answering a VERIFY
 * challenge, and authenticating every other delivery by its `SC-Signature` header over the raw body bytes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Lowercase hex HMAC-SHA256 of `message` keyed with `key`. */
export function hmacHex(key: string, message: string | Uint8Array): string {
  return createHmac('sha256', key).update(message).digest('hex');
}

/**
 * The challenges the receiver answers: letters, digits and `-_.~`, 1 to {@link MAX_CHALLENGE_LENGTH}
 * characters. Smartcar's challenges are random strings of that kind (UUIDs in every example).
 *
 * Why the rule exists: the VERIFY answer is `HMAC(token, challenge)` and a delivery's `SC-Signature` is
 * `HMAC(token, body)`, the same function. Answering any challenge would sign any body an attacker chose
 * (send the forged body as the challenge, then post it with the answer as its signature). A delivery
 * must be a JSON object, which starts with `{`; no string in this character set can be one, so no
 * answer can ever serve as a valid signature.
 */
export const CHALLENGE_PATTERN = /^[A-Za-z0-9\-_.~]+$/;
export const MAX_CHALLENGE_LENGTH = 256;

/** Whether a VERIFY challenge may be answered (see {@link CHALLENGE_PATTERN}). */
export function isAnswerableChallenge(challenge: string): boolean {
  return challenge.length <= MAX_CHALLENGE_LENGTH && CHALLENGE_PATTERN.test(challenge);
}

/**
 * The value to return as `{"challenge": ...}` for a VERIFY request. Refuses (throws) for a challenge
 * outside the answerable format, so no caller can turn it into a signing oracle by mistake.
 */
export function challengeResponse(managementToken: string, challenge: string): string {
  if (!isAnswerableChallenge(challenge)) throw new Error('refusing to answer a challenge outside the allowed format');
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
