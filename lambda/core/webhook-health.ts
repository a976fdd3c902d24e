/**
 * Webhook health: is Smartcar still able and willing to deliver to this stack? A webhook that is
 * disabled, unverified, or pointed at another callback URL silences the whole fleet at once while every
 * function here looks well; `GET /webhooks/:webhookId` tells, so a scheduled check asks it and publishes
 * `WebhookHealthy` (1/0, alarm WebhookUnhealthy). The check also keeps the configuration it read in the
 * work store, where reconcile learns whether Smartcar auto-subscribes every vehicle (then it stays out of
 * the way) without a request of its own.
 */
import { ANY_ERROR_CALLBACK_URL, METRIC } from '../contract';
import type { CoreLogger } from './logger';
import type { CoreMetrics } from './metrics';
import { SmartcarApiError } from './smartcar-client';
import type { ApplicationTokens, SmartcarPlatform, WebhookConfig } from './smartcar-platform';
import type { WorkStore } from './workflow';

export interface WebhookHealth {
  readonly healthy: boolean;
  /** One short line each; empty when healthy. */
  readonly problems: string[];
}

/** URLs compared without a trailing slash and with a lowercase scheme and host (as Smartcar may echo them). */
function sameUrl(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      const url = new URL(u);
      return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}${url.search}`;
    } catch {
      return u.replace(/\/+$/, '');
    }
  };
  return norm(a) === norm(b);
}

/**
 * Pure: the problems of a webhook's configuration. An unknown verification (the published answer has no
 * such field) is not a problem; an unknown status is, since only `enabled` is known to deliver. Without an
 * expected URL the callback is not compared.
 */
export interface ExpectedUrls {
  /** The stack's callback URL; unset, the callback URI is not compared. */
  readonly callbackUrl?: string | null;
  /** The stack's error callback URL (with `errorCallbackPath`); `*`: unknown, the error URI is not compared. */
  readonly errorCallbackUrl?: string | null;
}

export function webhookHealth(webhook: WebhookConfig, expected: ExpectedUrls): WebhookHealth {
  const problems: string[] = [];
  if (webhook.status !== 'enabled') problems.push(`the webhook is ${webhook.status}, not enabled`);
  if (webhook.verified === false) problems.push('the callback URI is not verified');
  if (expected.callbackUrl) {
    if (webhook.callbackUrl === null)
      problems.push(`the webhook names no callback URI (expected ${expected.callbackUrl})`);
    else if (!sameUrl(webhook.callbackUrl, expected.callbackUrl))
      problems.push(`the callback URI is ${webhook.callbackUrl}, not this stack's ${expected.callbackUrl}`);
    // Errors may go to either of this stack's paths (without an error URI Smartcar sends them to the
    // callback); anywhere else, VEHICLE_ERROR deliveries never reach this stack.
    const ours = [expected.callbackUrl, expected.errorCallbackUrl].filter((u): u is string => !!u);
    if (
      expected.errorCallbackUrl !== ANY_ERROR_CALLBACK_URL &&
      webhook.errorCallbackUrl !== null &&
      !ours.some((u) => sameUrl(u, webhook.errorCallbackUrl as string))
    )
      problems.push(
        `the vehicle error callback URI is ${webhook.errorCallbackUrl}, not this stack's ${expected.errorCallbackUrl ?? expected.callbackUrl}`,
      );
  }
  return { healthy: problems.length === 0, problems };
}

/** Where the last check keeps what it read (under reconcile/, which the reconcile function may read and write). */
export const webhookConfigKey = (webhookId: string) => `reconcile/webhooks/${webhookId}.json`;

/** What the work store keeps of a check: no token, nothing a caller did not already configure. */
export interface StoredWebhookConfig {
  readonly checkedAt: string;
  readonly webhook: WebhookConfig;
  readonly health: WebhookHealth;
}

/** Checks in a row that could not read the webhook for a transient reason (429, 5xx, timeout). */
export interface WebhookCheckFailures {
  readonly transientFailures: number;
  readonly lastFailureAt: string | null;
}
export const webhookFailuresKey = (webhookId: string) => `reconcile/webhooks/${webhookId}.failures.json`;

/**
 * Transient failures in a row after which the check publishes 0: one blip pages nobody, but a webhook
 * that cannot be read for three intervals (45 minutes by default) is as good as silent.
 */
export const TRANSIENT_FAILURES_BEFORE_UNHEALTHY = 3;

export interface WebhookHealthReport extends WebhookHealth {
  readonly webhookId: string;
  readonly checkedAt: string;
  /** What Smartcar answered; null when it could not be read. */
  readonly webhook: WebhookConfig | null;
  /** The value published as WebhookHealthy, or null when nothing was (a transient error: try again). */
  readonly published: 0 | 1 | null;
}

export interface WebhookHealthDeps {
  readonly platform: SmartcarPlatform;
  readonly appTokens: ApplicationTokens;
  readonly store?: WorkStore;
  readonly logger: CoreLogger;
  readonly metrics: CoreMetrics;
  readonly now?: () => number;
}

/**
 * Reads the webhook, judges it, publishes WebhookHealthy and keeps the configuration in the store. A
 * transient failure (429, 5xx, timeout) publishes nothing, so one blip does not page anyone; an answer
 * that says the webhook cannot be read (401, 403, 404, a malformed body) publishes 0, because Smartcar
 * will not deliver to a webhook the application cannot see either.
 */
export async function checkWebhookHealth(
  webhookId: string,
  expected: ExpectedUrls,
  deps: WebhookHealthDeps,
): Promise<WebhookHealthReport> {
  const checkedAt = new Date((deps.now ?? Date.now)()).toISOString();
  // The store only remembers: a failure there is logged, and never keeps the metric from being published.
  const remember = async (what: string, write: () => Promise<void>) => {
    try {
      await write();
    } catch (err) {
      deps.logger.warn(`webhook health check could not ${what}`, { webhookId, error: (err as Error)?.message });
    }
  };
  let webhook: WebhookConfig;
  try {
    webhook = await deps.appTokens.withToken((token) => deps.platform.getWebhook(token, webhookId));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const transient = err instanceof SmartcarApiError && err.retryable;
    const problems = [`could not read the webhook: ${message}`];
    // A streak of transient failures is counted in the store, so the alarm fires when they never end. A
    // streak that cannot be read counts as long enough: a webhook nobody can read, with a store nobody can
    // read, is worth a page. Without a store each check stands alone.
    let streak = 1;
    if (transient && deps.store) {
      const store = deps.store;
      try {
        const last = await store.getJsonIfExists<WebhookCheckFailures>(webhookFailuresKey(webhookId));
        streak = (Number.isInteger(last?.transientFailures) ? (last?.transientFailures as number) : 0) + 1;
      } catch {
        streak = TRANSIENT_FAILURES_BEFORE_UNHEALTHY;
      }
    }
    const unhealthy = !transient || streak >= TRANSIENT_FAILURES_BEFORE_UNHEALTHY;
    if (unhealthy) deps.metrics.count(METRIC.webhookHealthy, 0);
    if (transient && unhealthy) problems.push(`${streak} checks in a row could not read it`);
    deps.logger.warn('webhook health check could not read the webhook', {
      webhookId,
      transient,
      transientFailures: transient ? streak : 0,
      error: message,
    });
    if (transient && deps.store) {
      const store = deps.store;
      await remember('count the failure', () =>
        store.putJson(webhookFailuresKey(webhookId), {
          transientFailures: streak,
          lastFailureAt: checkedAt,
        } satisfies WebhookCheckFailures),
      );
    }
    return { webhookId, checkedAt, healthy: false, problems, webhook: null, published: unhealthy ? 0 : null };
  }
  const health = webhookHealth(webhook, expected);
  deps.metrics.count(METRIC.webhookHealthy, health.healthy ? 1 : 0);
  (health.healthy ? deps.logger.info : deps.logger.warn).call(deps.logger, 'webhook health', {
    webhookId,
    ...health,
    status: webhook.status,
    verified: webhook.verified,
    autoEnroll: webhook.autoEnroll,
  });
  if (deps.store) {
    const store = deps.store;
    await remember('keep the configuration', () =>
      store.putJson(webhookConfigKey(webhookId), { checkedAt, webhook, health } satisfies StoredWebhookConfig),
    );
    await remember('reset the failure count', async () => {
      const failures = await store.getJsonIfExists<WebhookCheckFailures>(webhookFailuresKey(webhookId));
      if (failures && failures.transientFailures !== 0)
        await store.putJson(webhookFailuresKey(webhookId), {
          transientFailures: 0,
          lastFailureAt: failures.lastFailureAt ?? null,
        } satisfies WebhookCheckFailures);
    });
  }
  return { webhookId, checkedAt, ...health, webhook, published: health.healthy ? 1 : 0 };
}

/** The one line an operator reads: `webhook <id>: healthy (…)` or `webhook <id>: UNHEALTHY: …`. */
export function formatWebhookHealth(report: WebhookHealthReport): string {
  const w = report.webhook;
  if (!w) return `webhook ${report.webhookId}: UNKNOWN: ${report.problems.join('; ')}`;
  const facts = [
    w.status,
    w.verified === null ? 'verification not reported' : w.verified ? 'verified' : 'unverified',
    `callback ${w.callbackUrl ?? 'none'}`,
    w.autoEnroll
      ? 'auto-subscribes every vehicle'
      : w.autoEnroll === false
        ? 'no auto-subscribe'
        : 'auto-subscribe not reported',
  ].join(', ');
  return report.healthy
    ? `webhook ${report.webhookId}: healthy (${facts})`
    : `webhook ${report.webhookId}: UNHEALTHY: ${report.problems.join('; ')} (${facts})`;
}

/** The line of a check kept in the work store, with when it was made (the fleet view shows it). */
export function formatStoredWebhookConfig(webhookId: string, stored: StoredWebhookConfig): string {
  const line = formatWebhookHealth({
    webhookId,
    checkedAt: stored.checkedAt,
    ...stored.health,
    webhook: stored.webhook,
    published: null,
  });
  return `${line} [checked ${stored.checkedAt}]`;
}
