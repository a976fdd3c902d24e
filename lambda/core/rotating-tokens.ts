/**
 * The management token across a rotation. Secrets Manager keeps the value before the last
 * `put-secret-value` as the `AWSPREVIOUS` version; while a grace period after the rotation lasts, a
 * delivery that fails with the current token is checked with the previous one too. That makes the two
 * usual mistakes harmless: the secret updated before Smartcar switched (or with a typo: the previous
 * token is still the right one), and deliveries Smartcar signed with the old token still retrying.
 * VERIFY is never answered with the previous token.
 *
 * The current token is a {@link TokenCache} (TTL, rate-limited refresh after a failed signature). The
 * previous one is read only when a signature has failed with the current token, and cached against the
 * current token it belongs to, so a flood of forged requests costs at most one extra read per TTL.
 */
import type { TokenSource } from './receive';
import { TokenCache, type TokenCacheOptions } from './token-cache';

export interface CurrentToken {
  readonly token: string;
  /** When this value became current (Secrets Manager: the version's CreatedDate), epoch ms; unknown: no grace. */
  readonly since?: number;
}

export interface RotatingTokensOptions extends TokenCacheOptions {
  /** How long after a rotation the previous token is still accepted. */
  readonly graceMs: number;
}

export class RotatingTokens implements TokenSource {
  private readonly current: TokenCache;
  private since: number | undefined;
  private prior: { forCurrent: string; token: string | undefined; at: number } | undefined;
  private priorLoading: Promise<string | undefined> | undefined;
  private readonly now: () => number;

  constructor(
    loadCurrent: () => Promise<CurrentToken>,
    private readonly loadPrevious: () => Promise<string | undefined>,
    private readonly options: RotatingTokensOptions,
  ) {
    this.now = options.now ?? (() => Date.now());
    this.current = new TokenCache(async () => {
      const c = await loadCurrent();
      this.since = c.since;
      return c.token;
    }, options);
  }

  get(): Promise<string> {
    return this.current.get();
  }

  refresh(): Promise<string | undefined> {
    return this.current.refresh();
  }

  /** The previous token while the grace period after the current one's rotation lasts; else undefined. */
  async previous(): Promise<string | undefined> {
    const current = await this.current.get();
    if (this.since === undefined || this.now() - this.since > this.options.graceMs) return undefined;
    const fresh = this.prior && this.prior.forCurrent === current && this.now() - this.prior.at < this.options.ttlMs;
    if (fresh) return this.prior?.token;
    this.priorLoading ??= this.loadPrevious()
      .catch(() => undefined) // no previous version, or an unusable one: nothing to try
      .then((token) => {
        this.prior = { forCurrent: current, token: token === current ? undefined : token, at: this.now() };
        return this.prior.token;
      })
      .finally(() => {
        this.priorLoading = undefined;
      });
    return this.priorLoading;
  }
}
