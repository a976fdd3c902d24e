/**
 * Where a workflow task finds the user's access token without it ever travelling in state: the
 * execution's own input, or a Secrets Manager secret named in it. The lookup and the caching live here;
 * the AWS and local adapters supply only the two readers (DescribeExecution and GetSecretValue in Lambda,
 * maps in the local runs). Each token is cached per execution or secret with the same {@link TokenCache}
 * the receiver uses for the management token: one read per run, not one per vehicle.
 */
import { DEFAULT_ACCESS_TOKEN_TTL_SECONDS, type TokenRef } from '../contract';
import { TokenCache } from './token-cache';

export interface AccessTokenReaders {
  /** The execution's input as Step Functions recorded it (parsed JSON), or null. */
  executionInput(executionArn: string): Promise<unknown>;
  /** The secret's string value. */
  secretString(secretArn: string): Promise<string | undefined>;
}

export interface AccessTokenResolverOptions {
  /** How long a token is kept. @default DEFAULT_ACCESS_TOKEN_TTL_SECONDS */
  readonly ttlMs?: number;
  /** Most tokens kept at once; the oldest entries go first. @default 100 */
  readonly maxEntries?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

const SHAPE = 'expected the plain access token, or JSON {"accessToken": "<token>"}';

/**
 * The access token in a secret's string: the plain token, or JSON `{"accessToken": "…"}`. Errors name the
 * secret and the expected shape and never quote the value: a parser's message (V8's JSON.parse quotes the
 * text around the fault) would copy part of the token into the execution's error output and the logs.
 */
export function parseAccessTokenSecret(secretString: string | undefined, secretName: string): string {
  const value = (secretString ?? '').trim();
  if (value === '') throw new Error(`the secret ${secretName} is empty; ${SHAPE}`);
  if (!value.startsWith('{')) return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`the secret ${secretName} starts with "{" but is not valid JSON; ${SHAPE}`);
  }
  const token = (parsed as { accessToken?: unknown } | null)?.accessToken;
  if (typeof token === 'string' && token.trim() !== '') return token.trim();
  throw new Error(`the secret ${secretName} is JSON without a non-empty "accessToken" string; ${SHAPE}`);
}

/** The `accessToken` of an execution's input. */
export function accessTokenOfInput(input: unknown): string {
  const token = (input as { accessToken?: unknown } | null)?.accessToken;
  if (typeof token !== 'string' || token === '') throw new Error('the execution input has no accessToken');
  return token;
}

/** A resolver for {@link TokenRef}s, caching each token it reads. */
export function accessTokenResolver(
  readers: AccessTokenReaders,
  options: AccessTokenResolverOptions = {},
): (ref: TokenRef) => Promise<string> {
  const ttlMs = options.ttlMs ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS * 1000;
  const maxEntries = options.maxEntries ?? 100;
  const caches = new Map<string, TokenCache>();
  return (ref) => {
    const key = ref.kind === 'secret' ? `secret:${ref.secretArn}` : `execution:${ref.executionArn}`;
    let cache = caches.get(key);
    if (!cache) {
      const load =
        ref.kind === 'secret'
          ? async () => parseAccessTokenSecret(await readers.secretString(ref.secretArn), ref.secretArn)
          : async () => accessTokenOfInput(await readers.executionInput(ref.executionArn));
      // A failed read is not remembered: the next call (a later state, a retry) reads again.
      cache = new TokenCache(load, { ttlMs, failureBackoffMs: 0, now: options.now });
      if (caches.size >= maxEntries) caches.delete(caches.keys().next().value as string);
      caches.set(key, cache);
    }
    return cache.get();
  };
}
