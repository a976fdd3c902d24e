/**
 * Smartcar's current platform (reference section 7), the one client for it: the application access token
 * (OAuth client credentials), the application's connections (management token), and the Management API
 * v3 subscriptions (application token). Each base URL is one option, because the hosts are young and
 * tests point all of them at one fake. Tokens go only into Authorization headers, never into errors.
 */
import {
  DEFAULT_API_TIMEOUT_MS,
  DEFAULT_SMARTCAR_IAM_ORIGIN,
  DEFAULT_SMARTCAR_MANAGEMENT_ORIGIN,
  DEFAULT_SMARTCAR_SUBSCRIPTIONS_ORIGIN,
  DEFAULT_SMARTCAR_VEHICLE_ORIGIN,
} from '../contract';
import { SmartcarApiError, smartcarRequest } from './smartcar-client';

export interface PlatformOrigins {
  /** Application tokens. @default https://iam.smartcar.com */
  readonly iam?: string;
  /** Connections. @default https://management.smartcar.com */
  readonly management?: string;
  /** v3 subscriptions. @default https://management.api.smartcar.com */
  readonly subscriptions?: string;
  /** The v3 vehicle API (users). @default https://vehicle.api.smartcar.com */
  readonly vehicle?: string;
}

export interface Connection {
  readonly userId: string;
  readonly vehicleId: string;
  /** ISO 8601; connections are listed newest first. */
  readonly connectedAt: string;
  /** live or simulated (lowercase). */
  readonly mode: string;
}

export interface Subscription {
  readonly id: string;
  readonly vehicleId: string;
  /** The webhook the subscription belongs to, as the item itself says (null when it does not say). */
  readonly webhookId: string | null;
  readonly userId: string | null;
  readonly mode: string | null;
}

/** What a webhook's configuration says, as far as this stack depends on it (null: the answer did not say). */
export interface WebhookConfig {
  readonly id: string;
  /** `enabled` or `disabled` (from `isEnabled`), or the answer's own `status` string, lowercase. */
  readonly status: string;
  /** Whether Smartcar verified the callback URI (the published answer has no such field yet: null). */
  readonly verified: boolean | null;
  readonly callbackUrl: string | null;
  readonly errorCallbackUrl: string | null;
  /** Smartcar subscribes every connected vehicle by itself (`autoSubscribe`). */
  readonly autoEnroll: boolean | null;
}

/**
 * The one place the webhook's field names live. Smartcar's API reference ("Get webhook",
 * management.api.smartcar.com/v3/webhooks/{webhookId}, checked 2026-12-04) answers JSON:API
 * `{data: {id, type: "webhook", attributes: {name, callbackUri, isEnabled, triggers, data,
 * errorCallbackUri, autoSubscribe}, links, meta}}`. It publishes no verification field, though the
 * Dashboard shows "Verified": `isVerified`/`verified` or a `status`/`verificationStatus` string are
 * read when present, else `verified` is null (unknown, not a problem). Lenient: missing fields are null.
 */
export function webhookConfigOf(body: unknown, webhookId: string): WebhookConfig {
  // biome-ignore lint/suspicious/noExplicitAny: the answer is checked field by field below.
  const data = (body as any)?.data ?? body;
  const a = data?.attributes ?? data ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  const bool = (v: unknown) => (typeof v === 'boolean' ? v : null);
  const enabled = bool(a.isEnabled) ?? bool(a.enabled);
  const statusText = str(a.status)?.toLowerCase() ?? null;
  const verification = (str(a.verificationStatus) ?? statusText)?.toLowerCase();
  const verified =
    bool(a.isVerified) ??
    bool(a.verified) ??
    (verification === 'verified' ? true : verification === 'unverified' ? false : null);
  return {
    id: str(data?.id) ?? webhookId,
    status: enabled === null ? (statusText ?? 'unknown') : enabled ? 'enabled' : 'disabled',
    verified,
    callbackUrl: str(a.callbackUri) ?? str(a.callbackUrl) ?? str(a.url),
    errorCallbackUrl: str(a.errorCallbackUri) ?? str(a.errorCallbackUrl),
    autoEnroll: bool(a.autoSubscribe) ?? bool(a.autoEnroll),
  };
}

/** Largest page of connections the API returns. */
export const CONNECTIONS_PAGE_SIZE = 100;
export const SUBSCRIPTIONS_PAGE_SIZE = 100;

export class SmartcarPlatform {
  private readonly iam: string;
  private readonly management: string;
  private readonly subscriptions: string;
  private readonly vehicle: string;

  constructor(
    origins: PlatformOrigins = {},
    private readonly fetchImpl: typeof fetch = globalThis.fetch,
    private readonly timeoutMs = DEFAULT_API_TIMEOUT_MS,
  ) {
    const base = (url: string) => url.replace(/\/+$/, '');
    this.iam = base(origins.iam ?? DEFAULT_SMARTCAR_IAM_ORIGIN);
    this.management = base(origins.management ?? DEFAULT_SMARTCAR_MANAGEMENT_ORIGIN);
    this.subscriptions = base(origins.subscriptions ?? DEFAULT_SMARTCAR_SUBSCRIPTIONS_ORIGIN);
    this.vehicle = base(origins.vehicle ?? DEFAULT_SMARTCAR_VEHICLE_ORIGIN);
  }

  /** The base URL of one of the platform's hosts. */
  origin(host: 'iam' | 'management' | 'subscriptions' | 'vehicle'): string {
    return this[host];
  }

  /** An application access token (client credentials grant); valid `expiresIn` seconds, no refresh token. */
  async applicationToken(clientId: string, clientSecret: string): Promise<{ token: string; expiresIn: number }> {
    const { body } = await smartcarRequest(this.fetchImpl, `${this.iam}/oauth2/token`, {
      operation: 'get an application token',
      method: 'POST',
      timeoutMs: this.timeoutMs,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }).toString(),
    });
    if (typeof body?.access_token !== 'string') throw invalid('get an application token', 'no access_token');
    return { token: body.access_token, expiresIn: typeof body.expires_in === 'number' ? body.expires_in : 3600 };
  }

  /**
   * One page of the application's connections, newest first; `cursor` null on the last page. Items that
   * do not have the documented shape are counted in `malformed`, never guessed at: a listing with
   * malformed items is not complete enough to delete anything on.
   */
  async listConnections(
    managementToken: string,
    page: { cursor?: string | null; limit?: number; mode?: string; vehicleId?: string; userId?: string },
  ): Promise<{ connections: Connection[]; cursor: string | null; malformed: number; items: number; total: null }> {
    const q = new URLSearchParams({ limit: String(page.limit ?? CONNECTIONS_PAGE_SIZE) });
    if (page.cursor) q.set('cursor', page.cursor);
    if (page.mode) q.set('mode', page.mode);
    if (page.vehicleId) q.set('vehicle_id', page.vehicleId);
    if (page.userId) q.set('user_id', page.userId);
    const { body } = await smartcarRequest(this.fetchImpl, `${this.management}/v2.0/management/connections?${q}`, {
      operation: 'list connections',
      method: 'GET',
      timeoutMs: this.timeoutMs,
      headers: {
        authorization: `Basic ${Buffer.from(`default:${managementToken}`).toString('base64')}`,
        accept: 'application/json',
      },
    });
    if (!Array.isArray(body?.connections)) throw invalid('list connections', 'no connections[]');
    const connections: Connection[] = [];
    let malformed = 0;
    for (const c of body.connections as Record<string, unknown>[]) {
      if (
        typeof c?.vehicleId !== 'string' ||
        c.vehicleId === '' ||
        typeof c.userId !== 'string' ||
        c.userId === '' ||
        typeof c.connectedAt !== 'string' ||
        Number.isNaN(Date.parse(c.connectedAt)) ||
        typeof c.mode !== 'string'
      ) {
        malformed++;
        continue;
      }
      connections.push({
        userId: c.userId,
        vehicleId: c.vehicleId,
        connectedAt: c.connectedAt,
        mode: c.mode.toLowerCase(),
      });
    }
    const cursor = typeof body.paging?.cursor === 'string' && body.paging.cursor !== '' ? body.paging.cursor : null;
    return { connections, cursor, malformed, items: body.connections.length, total: null };
  }

  /**
   * One page (1-based) of the application's connections from API v3's `GET /connections` (vehicle API,
   * application token). Smartcar's reference (List connections, vehicle.api.smartcar.com/v3, checked
   * 2026-12-04) names the parameters FilterUserId, FilterVehicleId, FilterVehicleMode, PageNumber and
   * PageSize and returns JSON:API connection resources: ids under `relationships.user|vehicle.data.id`,
   * the mode under `attributes.vehicle.mode` and the connection time as `meta.createdAt` (Get connection's
   * example). The parameter spellings are the JSON:API ones its sibling lists publish (`filter[userId]`,
   * `filter[vehicle.mode]`, `page[number]`, `page[size]`, at most 100). Flat items (`userId`, `vehicleId`,
   * `connectedAt`, `mode`, as v2 lists them) are read too; anything else is `malformed`. `cursor` is the next
   * page's number, null on the last page (`links.next` absent, or a short page when there are no links).
   */
  async listConnectionsV3(
    token: string,
    page: { cursor?: string | null; limit?: number; mode?: string; vehicleId?: string; userId?: string },
  ): Promise<{
    connections: Connection[];
    cursor: string | null;
    malformed: number;
    items: number;
    total: number | null;
  }> {
    const number = page.cursor ? Number(page.cursor) : 1;
    if (!Number.isInteger(number) || number < 1) throw new Error(`not a page number: ${page.cursor}`);
    const size = Math.min(page.limit ?? CONNECTIONS_PAGE_SIZE, CONNECTIONS_PAGE_SIZE);
    const q = new URLSearchParams({ 'page[number]': String(number), 'page[size]': String(size) });
    if (page.mode) q.set('filter[vehicle.mode]', page.mode);
    if (page.vehicleId) q.set('filter[vehicleId]', page.vehicleId);
    if (page.userId) q.set('filter[userId]', page.userId);
    const { body } = await smartcarRequest(this.fetchImpl, `${this.vehicle}/v3/connections?${q}`, {
      operation: 'list connections',
      method: 'GET',
      timeoutMs: this.timeoutMs,
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.api+json' },
    });
    if (!Array.isArray(body?.data)) throw invalid('list connections', 'no data[]');
    const connections: Connection[] = [];
    let malformed = 0;
    for (const item of body.data as unknown[]) {
      const c = connectionOf(item);
      if (c) connections.push(c);
      else malformed++;
    }
    const more = body.links ? Boolean(body.links.next) : body.data.length >= size;
    const total = body.meta?.totalCount;
    return {
      connections,
      cursor: more ? String(number + 1) : null,
      malformed,
      items: body.data.length,
      total: Number.isInteger(total) && total >= 0 ? total : null,
    };
  }

  /**
   * One page (1-based) of the webhook's v3 subscriptions; `more` when another page may follow. Each item
   * keeps its own webhook id: the server's filter is not taken on trust. Items without an id or a vehicle
   * are counted in `malformed`.
   */
  async listSubscriptions(
    token: string,
    page: { webhookId: string; number: number; size?: number; vehicleId?: string },
  ): Promise<{ subscriptions: Subscription[]; more: boolean; malformed: number }> {
    const size = page.size ?? SUBSCRIPTIONS_PAGE_SIZE;
    const q = new URLSearchParams({
      'filter[webhookId]': page.webhookId,
      'page[number]': String(page.number),
      'page[size]': String(size),
    });
    if (page.vehicleId) q.set('filter[vehicleId]', page.vehicleId);
    const { body } = await smartcarRequest(this.fetchImpl, `${this.subscriptions}/v3/subscriptions?${q}`, {
      operation: 'list subscriptions',
      method: 'GET',
      timeoutMs: this.timeoutMs,
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.api+json' },
    });
    if (!Array.isArray(body?.data)) throw invalid('list subscriptions', 'no data[]');
    const subscriptions: Subscription[] = [];
    let malformed = 0;
    // biome-ignore lint/suspicious/noExplicitAny: JSON:API items are checked field by field below.
    for (const item of body.data as Record<string, any>[]) {
      const vehicleId = item?.relationships?.vehicle?.data?.id;
      const webhookId = item?.relationships?.webhook?.data?.id;
      if (typeof item?.id !== 'string' || typeof vehicleId !== 'string') {
        malformed++;
        continue;
      }
      const userId = item.relationships?.user?.data?.id;
      const mode = item.attributes?.vehicle?.mode;
      subscriptions.push({
        id: item.id,
        vehicleId,
        webhookId: typeof webhookId === 'string' ? webhookId : null,
        userId: typeof userId === 'string' ? userId : null,
        mode: typeof mode === 'string' ? mode.toLowerCase() : null,
      });
    }
    const more = body.links ? Boolean(body.links.next) : body.data.length >= size;
    return { subscriptions, more, malformed };
  }

  /** The webhook's configuration and status (v3, application token); see {@link webhookConfigOf}. */
  async getWebhook(token: string, webhookId: string): Promise<WebhookConfig> {
    const { body } = await smartcarRequest(
      this.fetchImpl,
      `${this.subscriptions}/v3/webhooks/${encodeURIComponent(webhookId)}`,
      {
        operation: 'get webhook',
        method: 'GET',
        timeoutMs: this.timeoutMs,
        headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.api+json' },
      },
    );
    if (typeof body !== 'object' || body === null) throw invalid('get webhook', 'no webhook object');
    return webhookConfigOf(body, webhookId);
  }

  /** Asks for a subscription: `accepted` (202, created asynchronously) or `exists` (409, already subscribed). */
  async createSubscription(
    token: string,
    s: { webhookId: string; userId: string; vehicleId: string },
  ): Promise<'accepted' | 'exists'> {
    try {
      await smartcarRequest(this.fetchImpl, `${this.subscriptions}/v3/subscriptions`, {
        operation: 'create subscription',
        method: 'POST',
        timeoutMs: this.timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/vnd.api+json',
          accept: 'application/vnd.api+json',
        },
        body: JSON.stringify({
          data: { attributes: { webhookId: s.webhookId, userId: s.userId, vehicleId: s.vehicleId } },
        }),
      });
      return 'accepted';
    } catch (err) {
      if (err instanceof SmartcarApiError && err.status === 409) return 'exists';
      throw err;
    }
  }

  async deleteSubscription(token: string, subscriptionId: string): Promise<void> {
    try {
      await smartcarRequest(
        this.fetchImpl,
        `${this.subscriptions}/v3/subscriptions/${encodeURIComponent(subscriptionId)}`,
        {
          operation: 'delete subscription',
          method: 'DELETE',
          timeoutMs: this.timeoutMs,
          headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.api+json' },
        },
      );
    } catch (err) {
      if (err instanceof SmartcarApiError && err.status === 404) return; // already gone
      throw err;
    }
  }
}

/**
 * The erasure calls (Smartcar's API reference, checked 2026-12-04): the Management API's
 * `DELETE /v2.0/management/connections?user_id=|vehicle_id=` (management token; "a vehicle_id removes all
 * connections for that vehicle across all users, a user_id all vehicles linked to that user") and the v3
 * vehicle API's `DELETE /v3/users/{userId}` ("all connections and other data is purged"; 204, application
 * token). A 404 means already gone.
 */
export class SmartcarErasure {
  constructor(
    private readonly platform: SmartcarPlatform,
    private readonly fetchImpl: typeof fetch = globalThis.fetch,
    private readonly timeoutMs = DEFAULT_API_TIMEOUT_MS,
  ) {}

  /** Deletes the subject's connections; returns how many Smartcar says it removed (null when it does not say). */
  async deleteConnections(
    managementToken: string,
    subject: { userId?: string; vehicleId?: string },
  ): Promise<number | null> {
    const q = new URLSearchParams();
    if (subject.userId) q.set('user_id', subject.userId);
    if (subject.vehicleId) q.set('vehicle_id', subject.vehicleId);
    if ([...q.keys()].length === 0) throw new Error('deleteConnections needs a user id or a vehicle id');
    try {
      const { body } = await smartcarRequest(
        this.fetchImpl,
        `${this.platform.origin('management')}/v2.0/management/connections?${q}`,
        {
          operation: 'delete connections',
          method: 'DELETE',
          timeoutMs: this.timeoutMs,
          headers: {
            authorization: `Basic ${Buffer.from(`default:${managementToken}`).toString('base64')}`,
            accept: 'application/json',
          },
        },
      );
      return Array.isArray(body?.connections) ? body.connections.length : null;
    } catch (err) {
      if (err instanceof SmartcarApiError && err.status === 404) return 0;
      throw err;
    }
  }

  /** Deletes the user and everything Smartcar keeps about them (v3); false when Smartcar had no such user. */
  async deleteUser(applicationToken: string, userId: string): Promise<boolean> {
    try {
      await smartcarRequest(
        this.fetchImpl,
        `${this.platform.origin('vehicle')}/v3/users/${encodeURIComponent(userId)}`,
        {
          operation: 'delete user',
          method: 'DELETE',
          timeoutMs: this.timeoutMs,
          headers: { authorization: `Bearer ${applicationToken}`, accept: 'application/json' },
        },
      );
      return true;
    } catch (err) {
      if (err instanceof SmartcarApiError && err.status === 404) return false;
      throw err;
    }
  }
}

/** A v3 connection resource (or a flat v2-style item) as a {@link Connection}; null when it lacks a field. */
function connectionOf(item: unknown): Connection | null {
  // biome-ignore lint/suspicious/noExplicitAny: checked field by field below.
  const c = item as Record<string, any> | null;
  const id = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  const userId = id(c?.relationships?.user?.data?.id) ?? id(c?.userId);
  const vehicleId = id(c?.relationships?.vehicle?.data?.id) ?? id(c?.vehicleId);
  const connectedAt = id(c?.meta?.createdAt) ?? id(c?.attributes?.connectedAt) ?? id(c?.connectedAt);
  const mode = id(c?.attributes?.vehicle?.mode) ?? id(c?.attributes?.mode) ?? id(c?.mode);
  if (!userId || !vehicleId || !connectedAt || Number.isNaN(Date.parse(connectedAt)) || !mode) return null;
  return { userId, vehicleId, connectedAt, mode: mode.toLowerCase() };
}

function invalid(operation: string, what: string): SmartcarApiError {
  return new SmartcarApiError({
    status: 200,
    type: 'INVALID_RESPONSE',
    description: what,
    retryable: false,
    operation,
  });
}

/**
 * The application token, cached until a minute before it expires; `withToken` retries a call once with
 * a fresh token when it answers 401 (the token expired early or was revoked).
 */
export class ApplicationTokens {
  private cached: { token: string; until: number } | undefined;
  private loading: Promise<string> | undefined;

  constructor(
    private readonly fetchToken: () => Promise<{ token: string; expiresIn: number }>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async get(): Promise<string> {
    if (this.cached && this.now() < this.cached.until) return this.cached.token;
    this.loading ??= this.fetchToken()
      .then(({ token, expiresIn }) => {
        this.cached = { token, until: this.now() + Math.max(0, expiresIn - 60) * 1000 };
        return token;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  async withToken<T>(call: (token: string) => Promise<T>): Promise<T> {
    const token = await this.get();
    try {
      return await call(token);
    } catch (err) {
      if (!(err instanceof SmartcarApiError && err.status === 401)) throw err;
      this.cached = undefined;
      return call(await this.get());
    }
  }
}

/** Client id and secret from a secret string: JSON `{"clientId": "…", "clientSecret": "…"}`; never quoted in errors. */
export function parseClientCredentials(
  secretString: string | undefined,
  secretName: string,
): { clientId: string; clientSecret: string } {
  const shape = 'expected JSON {"clientId": "<id>", "clientSecret": "<secret>"} (Dashboard → API Credentials)';
  let value: unknown;
  try {
    value = JSON.parse(secretString ?? '');
  } catch {
    throw new Error(`the secret ${secretName} is not valid JSON; ${shape}`);
  }
  const v = value as { clientId?: unknown; clientSecret?: unknown; placeholder?: unknown } | null;
  if (v && 'placeholder' in v) throw new Error(`the secret ${secretName} still holds its placeholder; ${shape}`);
  if (
    typeof v?.clientId !== 'string' ||
    v.clientId === '' ||
    typeof v.clientSecret !== 'string' ||
    v.clientSecret === ''
  ) {
    throw new Error(`the secret ${secretName} lacks clientId or clientSecret; ${shape}`);
  }
  return { clientId: v.clientId, clientSecret: v.clientSecret };
}
