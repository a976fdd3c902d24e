/**
 * A fake Smartcar API on 127.0.0.1 for tests: pages the vehicle list (with its own maximum page size),
 * rate-limits with a token bucket and `Retry-After`, fails transiently or permanently per vehicle, and
 * records every call so tests can assert that each vehicle was subscribed exactly once.
 *
 * The token bucket runs on simulated time, not the wall clock: time stands still between requests and
 * moves on by `Retry-After` whenever a 429 is answered (the caller is told to wait that long). So how
 * often a run is rate limited depends only on the sequence of requests, never on how fast the machine
 * is: on wall time a slow run refilled the bucket between requests and was never limited.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSmartcarOptions {
  /** The user's vehicles, in listing order. */
  vehicles: string[];
  accessToken: string;
  managementToken: string;
  /** The only webhook id Subscribe accepts; others get 400 VALIDATION. */
  webhookId: string;
  /** Largest page the listing returns, whatever `limit` asks. @default 50 */
  maxPageSize?: number;
  /**
   * Token bucket: capacity and refill per second of simulated time; 429 with Retry-After when empty,
   * after which simulated time moves on by Retry-After. @default no limit
   */
  rateLimit?: { capacity: number; refillPerSecond: number; retryAfterSeconds: number };
  /** Per vehicle: statuses to answer before succeeding (e.g. [500, 502]) — transient failures. */
  transient?: Record<string, number[]>;
  /** Per vehicle: a permanent error status (400, 401, 403, 404, 430, 501). */
  permanent?: Record<string, number>;
  /** Answer the listing with this status instead (e.g. 401). */
  listingStatus?: number;
  /** Delay every answer by this many milliseconds. */
  delayMs?: number;
}

const ERROR_TYPES: Record<number, [string, string | null]> = {
  400: ['VALIDATION', 'PARAMETER'],
  401: ['AUTHENTICATION', null],
  403: ['PERMISSION', null],
  404: ['RESOURCE_NOT_FOUND', 'PATH'],
  409: ['VEHICLE_STATE', 'ASLEEP'],
  429: ['RATE_LIMIT', 'SMARTCAR_API'],
  430: ['BILLING', 'VEHICLE_LIMIT'],
  500: ['SERVER', 'INTERNAL'],
  501: ['COMPATIBILITY', 'SMARTCAR_NOT_CAPABLE'],
  502: ['UPSTREAM', 'UNKNOWN_ISSUE'],
};

export class FakeSmartcar {
  readonly calls: { method: string; path: string; authorization: string | undefined; status: number }[] = [];
  /** Successful subscribe calls per vehicle. */
  readonly subscribed = new Map<string, number>();
  /** Successful unsubscribe calls per vehicle. */
  readonly unsubscribed = new Map<string, number>();
  rateLimited = 0;
  private server: Server | undefined;
  private tokens = 0;
  /** Simulated milliseconds: advanced only by the Retry-After of each 429. */
  private simulatedMs = 0;
  private lastRefill = 0;
  private requestSeq = 0;
  private readonly transientLeft = new Map<string, number[]>();

  constructor(public options: FakeSmartcarOptions) {
    this.reset(options);
  }

  /** Replaces the scenario and forgets every call. */
  reset(options: FakeSmartcarOptions): void {
    this.options = options;
    this.calls.length = 0;
    this.subscribed.clear();
    this.unsubscribed.clear();
    this.rateLimited = 0;
    this.tokens = options.rateLimit?.capacity ?? 0;
    this.simulatedMs = 0;
    this.lastRefill = 0;
    this.transientLeft.clear();
    for (const [id, statuses] of Object.entries(options.transient ?? {})) this.transientLeft.set(id, [...statuses]);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const answer = () => this.handle(req, res);
      // A slow answer to a client that gave up must not hold the test worker open when the file ends.
      if (this.options.delayMs) setTimeout(answer, this.options.delayMs).unref();
      else answer();
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const authorization = req.headers.authorization;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.calls.push({ method: req.method ?? '', path: url.pathname, authorization, status });
      res.writeHead(status, {
        'content-type': 'application/json',
        'sc-request-id': `req-${++this.requestSeq}`,
        ...headers,
      });
      res.end(JSON.stringify(body));
    };
    const fail = (status: number) => {
      const [type, code] = ERROR_TYPES[status] ?? ['SERVER', null];
      send(status, {
        type,
        code,
        description: `fake ${type}`,
        docURL: null,
        statusCode: status,
        requestId: `req-${this.requestSeq + 1}`,
        resolution: { type: null },
        suggestedUserMessage: null,
      });
    };

    if (!this.take()) {
      this.rateLimited++;
      this.simulatedMs += (this.options.rateLimit?.retryAfterSeconds ?? 1) * 1000;
      const [type, code] = ERROR_TYPES[429];
      return send(
        429,
        { type, code, description: 'rate limited', statusCode: 429 },
        {
          'retry-after': String(this.options.rateLimit?.retryAfterSeconds ?? 1),
        },
      );
    }

    if (req.method === 'GET' && url.pathname === '/v2.0/vehicles') {
      if (authorization !== `Bearer ${this.options.accessToken}`) return fail(401);
      if (this.options.listingStatus) return fail(this.options.listingStatus);
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), this.options.maxPageSize ?? 50);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      return send(200, {
        vehicles: this.options.vehicles.slice(offset, offset + limit),
        paging: { count: this.options.vehicles.length, offset },
      });
    }

    const match = /^\/v2\.0\/vehicles\/([^/]+)\/webhooks\/([^/]+)$/.exec(url.pathname);
    if (match && (req.method === 'POST' || req.method === 'DELETE')) {
      const [, vehicleId, webhookId] = match.map(decodeURIComponent);
      const expected = req.method === 'POST' ? this.options.accessToken : this.options.managementToken;
      if (authorization !== `Bearer ${expected}`) return fail(401);
      if (!this.options.vehicles.includes(vehicleId)) return fail(404);
      if (webhookId !== this.options.webhookId) return fail(400);
      const pending = this.transientLeft.get(vehicleId);
      if (pending?.length) return fail(pending.shift() as number);
      const permanent = this.options.permanent?.[vehicleId];
      if (permanent) return fail(permanent);
      const tally = req.method === 'POST' ? this.subscribed : this.unsubscribed;
      tally.set(vehicleId, (tally.get(vehicleId) ?? 0) + 1);
      return send(200, req.method === 'POST' ? { vehicleId, webhookId } : { status: 'success' });
    }
    fail(404);
  }

  private take(): boolean {
    const limit = this.options.rateLimit;
    if (!limit) return true;
    const now = this.simulatedMs;
    this.tokens = Math.min(limit.capacity, this.tokens + ((now - this.lastRefill) / 1000) * limit.refillPerSecond);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
