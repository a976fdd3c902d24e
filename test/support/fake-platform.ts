/**
 * A fake of Smartcar's current platform on 127.0.0.1, behaving like the real thing where reconciliation
 * depends on it: client-credentials tokens that expire (then 401), connections newest first, both as API
 * v2.0's management listing (management token, cursor paging) and as API v3's `GET /v3/connections`
 * (application token, JSON:API, `page[number]`/`page[size]` with `links.next`), at most 100 a page, v3 subscriptions listed by page number, created asynchronously (202, then
 * listed only after a delay), 409 for duplicates, a token bucket with Retry-After, transient 5xx and a
 * permanent 4xx per vehicle. Time is simulated: it moves only when the caller says (the state machine's
 * Wait states), so a run of hours takes seconds and every figure is deterministic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeConnection {
  userId: string;
  vehicleId: string;
  connectedAt: string;
  mode: 'live' | 'simulated';
}

export interface FakePlatformOptions {
  clientId: string;
  clientSecret: string;
  managementToken: string;
  webhookId: string;
  connections: FakeConnection[];
  /** Seconds an application token lives. @default 3600 */
  tokenLifetimeSeconds?: number;
  /** Seconds before a created subscription is listed. @default 30 */
  appearAfterSeconds?: number;
  /** Token bucket over every API call but the token endpoint. @default no limit */
  rateLimit?: { capacity: number; perMinute: number };
  /** Per vehicle: statuses answered to its create before it succeeds (transient). */
  transient?: Record<string, number[]>;
  /** Per vehicle: a permanent status for its create. */
  permanent?: Record<string, number>;
  /**
   * A misbehaving connections listing, to test that reconcile never acts on one: `empty` (no connections
   * at all), `truncated` (the first page has no cursor), `renamed` (items with renamed fields), `stuck`
   * (the cursor never advances), `unfiltered` (vehicle_id is ignored), `hollow` (v3: every page empty, yet
   * `links.next` says more follow).
   */
  connectionsFault?: 'empty' | 'truncated' | 'renamed' | 'stuck' | 'unfiltered' | 'hollow';
  /** The listing's order: newest first (as v2.0 documents), or oldest first (v3 says only "by connection date"). */
  connectionsOrder?: 'newest' | 'oldest';
  /** Vehicles the full listing leaves out (as a flaky listing would) but a vehicle_id lookup still finds. */
  hiddenFromListing?: string[];
  /** The subscriptions listing ignores filter[webhookId] and lists every webhook's subscriptions. */
  ignoreWebhookFilter?: boolean;
  /** Every rate-limited call is answered 429, whatever the bucket holds. */
  alwaysRateLimited?: boolean;
  /**
   * What GET /v3/webhooks/:webhookId answers for `webhookId` (the published shape: isEnabled, callbackUri,
   * errorCallbackUri, autoSubscribe; `verified` adds an `isVerified` the published shape lacks).
   * @default enabled, callback https://example.com/webhook, autoSubscribe false, no verification field
   */
  webhook?: {
    enabled?: boolean;
    verified?: boolean;
    callbackUri?: string;
    errorCallbackUri?: string;
    autoSubscribe?: boolean;
  };
}

interface FakeSubscription {
  id: string;
  vehicleId: string;
  userId: string;
  webhookId: string;
  visibleAt: number;
  mode: 'live' | 'simulated';
}

export class FakePlatform {
  /** Simulated epoch ms. */
  private clock = Date.parse('2026-11-27T00:00:00Z');
  private server: Server | undefined;
  private tokens = new Map<string, number>(); // token → expires at
  private tokenSeq = 0;
  private subSeq = 0;
  private bucket = { tokens: 0, at: 0 };
  private transientLeft = new Map<string, number[]>();
  readonly subscriptions = new Map<string, FakeSubscription>(); // by vehicle id
  readonly requests: { method: string; path: string; status: number; at: number }[] = [];
  /** Successful creates per vehicle (202s). */
  readonly created = new Map<string, number>();
  /** Users deleted with DELETE /v3/users/:id. */
  readonly deletedUsers = new Set<string>();
  /** Users known without a connection (their connections were deleted first). */
  readonly knownUsers = new Set<string>();
  rateLimited = 0;

  constructor(public options: FakePlatformOptions) {
    this.reset(options);
  }

  reset(options: FakePlatformOptions): void {
    this.options = options;
    this.tokens.clear();
    this.subscriptions.clear();
    this.created.clear();
    this.requests.length = 0;
    this.rateLimited = 0;
    this.bucket = { tokens: options.rateLimit?.capacity ?? 0, at: this.clock };
    this.transientLeft = new Map(Object.entries(options.transient ?? {}).map(([k, v]) => [k, [...v]]));
  }

  now(): number {
    return this.clock;
  }

  advance(seconds: number): void {
    this.clock += Math.max(0, seconds) * 1000;
  }

  /** Every application token issued so far stops working (as if it expired). */
  expireTokens(): void {
    for (const token of this.tokens.keys()) this.tokens.set(token, 0);
  }

  /** A subscription made elsewhere (the Dashboard, another webhook), visible at once. */
  subscribe(
    vehicleId: string,
    userId: string,
    webhookId = this.options.webhookId,
    mode: 'live' | 'simulated' = 'live',
  ): void {
    const key = webhookId === this.options.webhookId ? vehicleId : `${webhookId}/${vehicleId}`;
    this.subscriptions.set(key, { id: `sub-${++this.subSeq}`, vehicleId, userId, webhookId, visibleAt: 0, mode });
  }

  /** Adds connections (newest first, as the API lists them). */
  connect(...connections: FakeConnection[]): void {
    this.options.connections = [...connections, ...this.options.connections];
  }

  /** The connections a listing shows under its filters and the configured faults (both generations). */
  private listedConnections(mode: string | null, userId: string | null, vehicleFilter: string | null) {
    const vehicleId = this.options.connectionsFault === 'unfiltered' ? null : vehicleFilter;
    if (this.options.connectionsFault === 'empty') return [];
    const ordered =
      this.options.connectionsOrder === 'oldest' ? [...this.options.connections].reverse() : this.options.connections;
    return ordered.filter(
      (c) =>
        (!mode || c.mode === mode) &&
        (!userId || c.userId === userId) &&
        (vehicleId ? c.vehicleId === vehicleId : !this.options.hiddenFromListing?.includes(c.vehicleId)),
    );
  }

  /** Requests to the rate-limited API (not the token endpoint), and all requests. */
  counts() {
    const api = this.requests.filter((r) => r.path !== '/oauth2/token');
    return { all: this.requests.length, api: api.length, token: this.requests.length - api.length };
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => this.handle(req, res, body));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    // Kept-alive client connections would hold close() open for seconds (and the test worker with it).
    this.server?.closeAllConnections();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private take(): number | null {
    const limit = this.options.rateLimit;
    if (!limit) return null;
    this.bucket = {
      tokens: Math.min(limit.capacity, this.bucket.tokens + ((this.clock - this.bucket.at) / 60_000) * limit.perMinute),
      at: this.clock,
    };
    if (this.bucket.tokens >= 1) {
      this.bucket.tokens -= 1;
      return null;
    }
    return Math.ceil(((1 - this.bucket.tokens) / limit.perMinute) * 60);
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ method: req.method ?? '', path: url.pathname, status, at: this.clock });
      res.writeHead(status, {
        'content-type': 'application/json',
        'sc-request-id': `req-${this.requests.length}`,
        ...headers,
      });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const error = (status: number, type: string, extra: Record<string, string> = {}) =>
      send(status, { type, code: null, description: `fake ${type}`, statusCode: status }, extra);

    if (req.method === 'POST' && url.pathname === '/oauth2/token') {
      const form = new URLSearchParams(body);
      if (form.get('grant_type') !== 'client_credentials') return send(400, { error: 'invalid_request' });
      if (form.get('client_id') !== this.options.clientId || form.get('client_secret') !== this.options.clientSecret) {
        return send(401, { error: 'invalid_client' });
      }
      const token = `app-${++this.tokenSeq}`;
      const lifetime = this.options.tokenLifetimeSeconds ?? 3600;
      this.tokens.set(token, this.clock + lifetime * 1000);
      return send(200, { access_token: token, token_type: 'Bearer', expires_in: lifetime });
    }

    const wait = this.options.alwaysRateLimited ? 30 : this.take();
    if (wait !== null) {
      this.rateLimited++;
      return error(429, 'RATE_LIMIT', { 'retry-after': String(wait) });
    }

    if (req.method === 'GET' && url.pathname === '/v2.0/management/connections') {
      const expected = `Basic ${Buffer.from(`default:${this.options.managementToken}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return error(401, 'AUTHENTICATION');
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 100), 100);
      const fault = this.options.connectionsFault;
      const all = this.listedConnections(
        url.searchParams.get('mode'),
        url.searchParams.get('user_id'),
        url.searchParams.get('vehicle_id'),
      );
      const start = fault === 'stuck' ? 0 : Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(start, start + limit);
      const next = start + limit < all.length && fault !== 'truncated' ? String(start + limit) : undefined;
      const items =
        fault === 'renamed'
          ? page.map(({ vehicleId: id, connectedAt, ...rest }) => ({
              ...rest,
              vehicle_id: id,
              connected_at: connectedAt,
            }))
          : page;
      return send(200, { connections: items, paging: next ? { cursor: next } : {} });
    }

    // Erasure (Management API): a vehicle_id removes that vehicle's connections, a user_id all of the user's.
    if (req.method === 'DELETE' && url.pathname === '/v2.0/management/connections') {
      const expected = `Basic ${Buffer.from(`default:${this.options.managementToken}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return error(401, 'AUTHENTICATION');
      const userId = url.searchParams.get('user_id');
      const vehicleId = url.searchParams.get('vehicle_id');
      if (!userId && !vehicleId) return error(400, 'VALIDATION');
      const gone = this.options.connections.filter(
        (c) => (!userId || c.userId === userId) && (!vehicleId || c.vehicleId === vehicleId),
      );
      this.options.connections = this.options.connections.filter((c) => !gone.includes(c));
      for (const c of gone) this.knownUsers.add(c.userId);
      return send(200, { connections: gone.map(({ userId: u, vehicleId: v }) => ({ userId: u, vehicleId: v })) });
    }

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const valid = bearer !== undefined && (this.tokens.get(bearer) ?? 0) > this.clock;

    // API v3's connections (vehicle API, application token): JSON:API resources paged by number, at most
    // 100 a page, the ids under relationships, the mode under attributes.vehicle, the time as meta.createdAt.
    if (req.method === 'GET' && url.pathname === '/v3/connections') {
      if (!valid) return error(401, 'AUTHENTICATION');
      const size = Number(url.searchParams.get('page[size]') ?? 50);
      const number = Number(url.searchParams.get('page[number]') ?? 1);
      if (!Number.isInteger(size) || size < 1 || size > 100 || !Number.isInteger(number) || number < 1)
        return error(400, 'VALIDATION');
      const fault = this.options.connectionsFault;
      const all = this.listedConnections(
        url.searchParams.get('filter[vehicle.mode]'),
        url.searchParams.get('filter[userId]') ?? (req.headers['sc-user-id'] as string | undefined) ?? null,
        url.searchParams.get('filter[vehicleId]'),
      );
      const start = fault === 'stuck' ? 0 : (number - 1) * size;
      const page = fault === 'hollow' ? [] : all.slice(start, start + size);
      const more = (start + size < all.length && fault !== 'truncated') || fault === 'hollow';
      return send(200, {
        data: page.map((c, i) =>
          fault === 'renamed'
            ? { id: `conn-${c.vehicleId}`, type: 'connection', attributes: { vehicle_id: c.vehicleId, mode: c.mode } }
            : {
                id: `conn-${start + i}-${c.vehicleId}`,
                type: 'connection',
                attributes: { permissions: ['read_vehicle_info'], vehicle: { mode: c.mode } },
                relationships: {
                  vehicle: { data: { id: c.vehicleId, type: 'vehicle' } },
                  user: { data: { id: c.userId, type: 'user' } },
                },
                meta: { createdAt: c.connectedAt, updatedAt: c.connectedAt },
              },
        ),
        links: {
          self: `/v3/connections?page[number]=${number}`,
          ...(more ? { next: `/v3/connections?page[number]=${number + 1}&page[size]=${size}` } : {}),
        },
        meta: { totalCount: all.length, pageNumber: number, pageSize: size },
      });
    }
    if (url.pathname.startsWith('/v3/subscriptions') && !valid) return error(401, 'AUTHENTICATION');

    if (req.method === 'GET' && url.pathname === '/v3/subscriptions') {
      const webhookId = this.options.ignoreWebhookFilter ? null : url.searchParams.get('filter[webhookId]');
      const vehicleId = url.searchParams.get('filter[vehicleId]');
      const number = Number(url.searchParams.get('page[number]') ?? 1);
      const size = Number(url.searchParams.get('page[size]') ?? 100);
      const visible = [...this.subscriptions.values()].filter(
        (s) =>
          (!webhookId || s.webhookId === webhookId) &&
          (!vehicleId || s.vehicleId === vehicleId) &&
          s.visibleAt <= this.clock,
      );
      const page = visible.slice((number - 1) * size, number * size);
      return send(200, {
        data: page.map((s) => ({
          type: 'subscription',
          id: s.id,
          attributes: { vehicle: { mode: s.mode.toUpperCase() } },
          relationships: {
            webhook: { data: { id: s.webhookId } },
            user: { data: { id: s.userId } },
            vehicle: { data: { id: s.vehicleId } },
          },
        })),
        links: number * size < visible.length ? { next: `page ${number + 1}` } : {},
      });
    }

    if (req.method === 'POST' && url.pathname === '/v3/subscriptions') {
      const attributes =
        (JSON.parse(body || '{}') as { data?: { attributes?: Record<string, string> } }).data?.attributes ?? {};
      const { webhookId, userId, vehicleId } = attributes;
      if (webhookId !== this.options.webhookId || !userId || !vehicleId) return error(400, 'VALIDATION');
      const connection = this.options.connections.find((c) => c.vehicleId === vehicleId);
      const pending = this.transientLeft.get(vehicleId);
      if (pending?.length) return error(pending.shift() as number, 'SERVER');
      const permanent = this.options.permanent?.[vehicleId];
      if (permanent) return error(permanent, permanent === 403 ? 'PERMISSION' : 'VALIDATION');
      if (this.subscriptions.has(vehicleId)) return error(409, 'CONFLICT');
      this.subscriptions.set(vehicleId, {
        id: `sub-${++this.subSeq}`,
        vehicleId,
        userId,
        webhookId,
        visibleAt: this.clock + (this.options.appearAfterSeconds ?? 30) * 1000,
        mode: connection?.mode ?? 'live',
      });
      this.created.set(vehicleId, (this.created.get(vehicleId) ?? 0) + 1);
      return send(202, { meta: { message: 'subscription creation in progress' } });
    }

    // Erasure (v3 vehicle API): the user and everything about them; 204, or 404 when there is no such user.
    const user = /^\/v3\/users\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'DELETE' && user) {
      if (!valid) return error(401, 'AUTHENTICATION');
      const id = decodeURIComponent(user[1]);
      const known = this.options.connections.some((c) => c.userId === id) || this.knownUsers.has(id);
      if (!known || this.deletedUsers.has(id)) return error(404, 'RESOURCE_NOT_FOUND');
      this.deletedUsers.add(id);
      this.options.connections = this.options.connections.filter((c) => c.userId !== id);
      for (const [v, s] of this.subscriptions) if (s.userId === id) this.subscriptions.delete(v);
      return send(204);
    }

    const del = /^\/v3\/subscriptions\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'DELETE' && del) {
      const found = [...this.subscriptions.values()].find((s) => s.id === decodeURIComponent(del[1]));
      if (!found) return error(404, 'RESOURCE_NOT_FOUND');
      this.subscriptions.delete(found.vehicleId);
      return send(204);
    }
    const hook = /^\/v3\/webhooks\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && hook) {
      if (!valid) return error(401, 'AUTHENTICATION');
      const id = decodeURIComponent(hook[1]);
      if (id !== this.options.webhookId) return error(404, 'RESOURCE_NOT_FOUND');
      const w = this.options.webhook ?? {};
      return send(200, {
        data: {
          id,
          type: 'webhook',
          attributes: {
            name: 'Fake webhook',
            callbackUri: w.callbackUri ?? 'https://example.com/webhook',
            isEnabled: w.enabled ?? true,
            triggers: [],
            data: [],
            ...(w.errorCallbackUri ? { errorCallbackUri: w.errorCallbackUri } : {}),
            autoSubscribe: w.autoSubscribe ?? false,
            ...(w.verified === undefined ? {} : { isVerified: w.verified }),
          },
          links: { self: `/v3/webhooks/${id}` },
          meta: { createdAt: '2026-01-01T00:00:00Z' },
        },
      });
    }
    error(404, 'RESOURCE_NOT_FOUND');
  }
}

/** `n` live connections, newest first, one a minute apart; ids veh-000001… and user-000001…. */
export function connections(n: number, start = 0, mode: 'live' | 'simulated' = 'live'): FakeConnection[] {
  return Array.from({ length: n }, (_, i) => {
    const k = start + n - i;
    return {
      userId: `user-${String(k).padStart(6, '0')}`,
      vehicleId: `veh-${String(k).padStart(6, '0')}`,
      connectedAt: new Date(Date.parse('2026-01-01T00:00:00Z') + k * 60_000).toISOString(),
      mode,
    };
  });
}
