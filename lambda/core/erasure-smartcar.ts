/**
 * Erasure at Smartcar (`erase --smartcar`): the subject's webhook subscriptions, then its connections,
 * then, for a user, the user itself (Smartcar purges "all connections and other data"). Subscriptions go
 * first so that no delivery is sent for a vehicle between the connection's removal and the end of the
 * erasure. A dry run only lists. Every call is idempotent (404 is "already gone"), so a rerun finishes an
 * interrupted erasure. A part that is not configured (no client credentials: no subscriptions and no
 * user deletion) is reported as such on the receipt, never skipped silently.
 */
import type { ErasureContext, ErasurePlace, PlaceResult } from './erasure';
import { SmartcarApiError } from './smartcar-client';
import { type ApplicationTokens, SmartcarErasure, type SmartcarPlatform } from './smartcar-platform';

export interface SmartcarPlaceDeps {
  readonly platform: SmartcarPlatform;
  /** The application management token (connections). */
  readonly managementToken: () => Promise<string>;
  /** Application tokens (client credentials): v3 subscriptions and user deletion. Absent when not configured. */
  readonly appTokens?: ApplicationTokens;
  /** The webhook whose subscriptions are removed. Absent: subscriptions are not looked at (said so). */
  readonly webhookId?: string;
  /** Where the credentials came from, for the receipt (never the credentials). */
  readonly where: string;
  /** Waits between retries of a rate-limited or failing call. @default real time */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly fetchImpl?: typeof fetch;
}

const ATTEMPTS = 4;

/** Retries what Smartcar says can be retried (429 with Retry-After, 5xx, network), a few times. */
async function retried<T>(call: () => Promise<T>, sleep: (ms: number) => Promise<void>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof SmartcarApiError) || !err.retryable || attempt >= ATTEMPTS) throw err;
      await sleep(Math.min(30, err.retryAfterSeconds ?? 2 ** attempt) * 1000);
    }
  }
}

export function smartcarPlace(deps: SmartcarPlaceDeps): ErasurePlace {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const erasure = new SmartcarErasure(deps.platform, deps.fetchImpl);
  return {
    place: 'smartcar',
    async erase(context: ErasureContext): Promise<PlaceResult[]> {
      const { subject } = context;
      const results: PlaceResult[] = [];
      const managementToken = await deps.managementToken();
      const bySubject = subject.kind === 'user' ? { userId: subject.id } : { vehicleId: subject.id };

      // What Smartcar has: the subject's connections (for a user, these name its vehicles).
      const connected: { vehicleId: string; userId: string }[] = [];
      let cursor: string | null = null;
      do {
        const page = await retried(
          () => deps.platform.listConnections(managementToken, { cursor, ...bySubject }),
          sleep,
        );
        // The filter is not taken on trust: only the subject's own connections count.
        connected.push(
          ...page.connections.filter((c) =>
            subject.kind === 'user' ? c.userId === subject.id : c.vehicleId === subject.id,
          ),
        );
        cursor = page.cursor;
      } while (cursor);
      // The vehicles whose subscriptions go: the subject's own connections now (a vehicle the user's old
      // deliveries named may be another user's today: its subscription is theirs), or the vehicle itself.
      const vehicles = new Set(subject.kind === 'user' ? connected.map((c) => c.vehicleId) : [subject.id]);

      // 1. Webhook subscriptions of those vehicles (v3, application token).
      if (!deps.appTokens || !deps.webhookId) {
        results.push({
          place: 'smartcar',
          where: `${deps.where} subscriptions`,
          unit: 'subscriptions',
          found: 0,
          removed: 0,
          note: !deps.appTokens
            ? 'not looked at: no client credentials configured; unsubscribe in the Dashboard or with `subscribe --unsubscribe`'
            : 'not looked at: no webhook id configured',
        });
      } else {
        const tokens = deps.appTokens;
        const webhookId = deps.webhookId;
        const ids: string[] = [];
        for (const vehicleId of vehicles) {
          for (let number = 1; ; number++) {
            const page = await retried(
              () => tokens.withToken((t) => deps.platform.listSubscriptions(t, { webhookId, number, vehicleId })),
              sleep,
            );
            ids.push(
              ...page.subscriptions
                .filter((s) => s.vehicleId === vehicleId && (s.webhookId ?? webhookId) === webhookId)
                .map((s) => s.id),
            );
            if (!page.more || page.subscriptions.length === 0) break;
          }
        }
        if (!context.dryRun) {
          for (const id of ids)
            await retried(() => tokens.withToken((t) => deps.platform.deleteSubscription(t, id)), sleep);
        }
        results.push({
          place: 'smartcar',
          where: `${deps.where} webhook subscriptions`,
          unit: 'subscriptions',
          found: ids.length,
          removed: context.dryRun ? 0 : ids.length,
        });
      }

      // 2. Connections (Management API, management token).
      let confirmed: number | null = null;
      if (!context.dryRun && connected.length > 0) {
        confirmed = await retried(() => erasure.deleteConnections(managementToken, bySubject), sleep);
      }
      const removedConnections = context.dryRun ? 0 : (confirmed ?? connected.length);
      results.push({
        place: 'smartcar',
        where: `${deps.where} connections`,
        unit: 'connections',
        found: connected.length,
        removed: removedConnections,
        note:
          confirmed === null
            ? undefined
            : confirmed < connected.length
              ? `Smartcar confirmed ${confirmed} of the ${connected.length} listed`
              : undefined,
      });

      // 3. A user: Smartcar's own data about them (v3).
      if (subject.kind === 'user') {
        if (!deps.appTokens) {
          results.push({
            place: 'smartcar',
            where: `${deps.where} user`,
            unit: 'users',
            found: 0,
            removed: 0,
            note: 'not asked: DELETE /v3/users needs client credentials; ask Smartcar support to delete the user',
          });
        } else {
          const tokens = deps.appTokens;
          const removed = context.dryRun
            ? false
            : await retried(() => tokens.withToken((t) => erasure.deleteUser(t, subject.id)), sleep);
          results.push({
            place: 'smartcar',
            where: `${deps.where} user`,
            unit: 'users',
            found: context.dryRun ? 1 : removed ? 1 : 0,
            removed: removed ? 1 : 0,
            note: context.dryRun ? 'a real run asks Smartcar to delete the user (DELETE /v3/users/…)' : undefined,
          });
        }
      }
      return results;
    },
  };
}
