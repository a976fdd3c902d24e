/**
 * The application management token, read from wherever the deployment keeps it and cached in memory.
 * A Secrets Manager call per delivery would cost $5 per million deliveries and add latency, so the value
 * is kept for a TTL; a signature that fails may force an early re-read (the token may have been
 * rotated). Those re-reads come from a small bucket (`refreshBurst`, refilled one per
 * `minRefreshIntervalMs`): the first deliveries signed with a newly rotated token are accepted at once,
 * while a flood of forged requests costs at most one Secrets Manager call per interval.
 */
import { PLACEHOLDER_SECRET_KEY } from '../contract';

/** The secret exists but nobody has put the real token in it yet. */
export class TokenNotConfiguredError extends Error {
  constructor(message = 'the management token secret still holds its placeholder value') {
    super(message);
    this.name = 'TokenNotConfiguredError';
  }
}

/**
 * Reads the token out of a secret string. The plain token is the documented form; a JSON object with a
 * `managementToken` field is accepted too. An empty value or the stack's placeholder is "not configured".
 */
export function parseManagementToken(secretString: string | undefined | null): string {
  const value = (secretString ?? '').trim();
  if (value === '') throw new TokenNotConfiguredError('the management token secret is empty');
  if (value.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return value;
    }
    if (typeof parsed === 'object' && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      if (PLACEHOLDER_SECRET_KEY in record) throw new TokenNotConfiguredError();
      if (typeof record.managementToken === 'string' && record.managementToken.trim() !== '') {
        return record.managementToken.trim();
      }
      throw new TokenNotConfiguredError(
        'the management token secret is JSON without a "managementToken" field; store the plain token',
      );
    }
  }
  return value;
}

export interface TokenCacheOptions {
  /** How long a loaded token is used before it is read again. */
  readonly ttlMs: number;
  /** One early re-read (see {@link TokenCache.refresh}) becomes available per this interval. @default 30 s */
  readonly minRefreshIntervalMs?: number;
  /** How many early re-reads may be spent at once before the interval applies. @default 3 */
  readonly refreshBurst?: number;
  /**
   * How long a failed load (secret unreadable, or still the placeholder) is remembered and rethrown
   * instead of calling the source again: while the receiver is misconfigured, every request would
   * otherwise cost a Secrets Manager call.
   */
  readonly failureBackoffMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export class TokenCache {
  private value: string | undefined;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<string> | undefined;
  private failure: { error: unknown; at: number } | undefined;
  private readonly ttlMs: number;
  private readonly minRefreshIntervalMs: number;
  private readonly refreshBurst: number;
  private refreshTokens: number;
  private refreshTokensAt: number;
  private readonly failureBackoffMs: number;
  private readonly now: () => number;

  constructor(
    private readonly load: () => Promise<string>,
    options: TokenCacheOptions,
  ) {
    this.ttlMs = options.ttlMs;
    this.minRefreshIntervalMs = options.minRefreshIntervalMs ?? 30_000;
    this.failureBackoffMs = options.failureBackoffMs ?? 5_000;
    this.now = options.now ?? (() => Date.now());
    this.refreshBurst = options.refreshBurst ?? 3;
    this.refreshTokens = this.refreshBurst;
    this.refreshTokensAt = this.now();
  }

  /** The cached token, loading it when there is none or it is older than the TTL. */
  async get(): Promise<string> {
    if (this.value !== undefined && this.now() - this.loadedAt < this.ttlMs) return this.value;
    return this.reload();
  }

  /**
   * Re-reads the token when an early re-read is available (a burst of `refreshBurst`, then one per
   * `minRefreshIntervalMs`). Returns the fresh token when it differs from the one held before, else
   * undefined (nothing new to try).
   */
  async refresh(): Promise<string | undefined> {
    const now = this.now();
    this.refreshTokens = Math.min(
      this.refreshBurst,
      this.refreshTokens + (now - this.refreshTokensAt) / Math.max(1, this.minRefreshIntervalMs),
    );
    this.refreshTokensAt = now;
    if (this.refreshTokens < 1) return undefined;
    this.refreshTokens -= 1;
    const before = this.value;
    const after = await this.reload();
    return after !== before ? after : undefined;
  }

  private reload(): Promise<string> {
    if (this.failure && this.now() - this.failure.at < this.failureBackoffMs) return Promise.reject(this.failure.error);
    // Concurrent callers share one load instead of each calling Secrets Manager.
    this.inFlight ??= this.load()
      .then(
        (token) => {
          this.value = token;
          this.loadedAt = this.now();
          this.failure = undefined;
          return token;
        },
        (error: unknown) => {
          this.failure = { error, at: this.now() };
          throw error;
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}
