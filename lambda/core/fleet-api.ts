/**
 * The one interface reconcile speaks to Smartcar through, in two generations (`reconcile.smartcarApi`):
 *
 * - `v3` (the default): connections from API v3's `GET vehicle.api.smartcar.com/v3/connections`, paged by
 *   number; everything with the application token (client credentials), no management token.
 * - `v2`: connections from `GET management.smartcar.com/v2.0/management/connections` with the management
 *   token, paged by cursor: what 0.3 used, kept for applications whose v3 access is not enabled yet.
 *
 * Both manage subscriptions through the Management API v3 (`management.api.smartcar.com/v3/subscriptions`,
 * application token): Smartcar's API reference publishes no other subscription endpoints for v3. The v3
 * announcement's `/webhooks/:webhookId/subscriptions` paths appear on no reference page (checked 2026-12-04).
 *
 * Tokens stay inside: callers see connections and subscriptions, never a token.
 */
import type { ApplicationTokens, Connection, SmartcarPlatform, Subscription } from './smartcar-platform';

export type SmartcarApiGeneration = 'v3' | 'v2';
export const SMARTCAR_API_GENERATIONS: readonly SmartcarApiGeneration[] = ['v3', 'v2'];
export const isSmartcarApiGeneration = (value: unknown): value is SmartcarApiGeneration =>
  (SMARTCAR_API_GENERATIONS as readonly unknown[]).includes(value);
/**
 * v3: Smartcar's migration guide says v2.0 is deprecated by Q4 2026, and v3 needs only the client
 * credentials reconcile already holds (the management token stays the webhook's signing key).
 */
export const DEFAULT_SMARTCAR_API: SmartcarApiGeneration = 'v3';

export interface ConnectionsPage {
  readonly connections: Connection[];
  /** Where the next page starts (a cursor, or a page number); null on the last page. */
  readonly cursor: string | null;
  /** Items without the documented shape: never guessed at. */
  readonly malformed: number;
  readonly items: number;
  /** How many connections the listing says it has in all (v3's `meta.totalCount`); null when it does not say. */
  readonly total: number | null;
}

export interface SubscriptionsPage {
  readonly subscriptions: Subscription[];
  readonly more: boolean;
  readonly malformed: number;
}

export interface FleetApi {
  readonly generation: SmartcarApiGeneration;
  /** The endpoints used, one line for plans, summaries and the operator guide. */
  readonly endpoints: string;
  listConnections(page: {
    cursor?: string | null;
    limit?: number;
    mode?: string;
    vehicleId?: string;
    userId?: string;
  }): Promise<ConnectionsPage>;
  listSubscriptions(page: {
    webhookId: string;
    number: number;
    size?: number;
    vehicleId?: string;
  }): Promise<SubscriptionsPage>;
  createSubscription(s: { webhookId: string; userId: string; vehicleId: string }): Promise<'accepted' | 'exists'>;
  deleteSubscription(subscriptionId: string): Promise<void>;
}

const SUBSCRIPTIONS = 'subscriptions: management.api.smartcar.com/v3/subscriptions (application token)';

/** The reconcile calls of one generation over a platform client and its tokens. */
export function fleetApi(
  generation: SmartcarApiGeneration,
  platform: SmartcarPlatform,
  appTokens: ApplicationTokens,
  managementToken: () => Promise<string>,
): FleetApi {
  const subscriptions = {
    listSubscriptions: (page: Parameters<FleetApi['listSubscriptions']>[0]) =>
      appTokens.withToken((token) => platform.listSubscriptions(token, page)),
    createSubscription: (s: Parameters<FleetApi['createSubscription']>[0]) =>
      appTokens.withToken((token) => platform.createSubscription(token, s)),
    deleteSubscription: (id: string) => appTokens.withToken((token) => platform.deleteSubscription(token, id)),
  };
  if (generation === 'v2')
    return {
      generation,
      endpoints: `API v2: connections: management.smartcar.com/v2.0/management/connections (management token); ${SUBSCRIPTIONS}`,
      listConnections: async (page) => platform.listConnections(await managementToken(), page),
      ...subscriptions,
    };
  if (generation === 'v3')
    return {
      generation,
      endpoints: `API v3: connections: vehicle.api.smartcar.com/v3/connections (application token); ${SUBSCRIPTIONS}`,
      listConnections: (page) => appTokens.withToken((token) => platform.listConnectionsV3(token, page)),
      ...subscriptions,
    };
  throw new Error(
    `unknown Smartcar API generation ${JSON.stringify(generation)}; use one of ${SMARTCAR_API_GENERATIONS}`,
  );
}
