/**
 * The one Smartcar API client used by the workflow and the local tools: vehicle listing with paging,
 * subscribe and unsubscribe, request timeouts, and typed errors that say whether a retry can help.
 * Tokens are only ever put in the Authorization header; errors and messages never contain them.
 */
import { DEFAULT_API_TIMEOUT_MS, DEFAULT_SMARTCAR_API_ORIGIN } from '../contract';

/** Retry-After values are clamped to this, so a bogus header cannot park a run for days. */
export const MAX_RETRY_AFTER_SECONDS = 3600;
/** Used for a 429 that carries no usable Retry-After. */
export const DEFAULT_RETRY_AFTER_SECONDS = 30;
/** Smartcar's own SDKs allow 310 s; its latency can reach 300 s. */
export const DEFAULT_TIMEOUT_MS = DEFAULT_API_TIMEOUT_MS;

export interface SmartcarClientOptions {
  /** @default process.env.SMARTCAR_API_ORIGIN, else https://api.smartcar.com */
  readonly origin?: string;
  /** @default 310 000 ms */
  readonly timeoutMs?: number;
  /** For tests. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** `SC-Unit-System` request header. @default 'metric' */
  readonly unitSystem?: 'metric' | 'imperial';
}

/** Statuses after which the same request may succeed later. 409 is VEHICLE_STATE (asleep, unreachable). */
const RETRYABLE_STATUSES = new Set([409, 429, 500, 502, 503, 504]);

/** A failed Smartcar request, with everything the error body and headers said. */
export class SmartcarApiError extends Error {
  /** HTTP status; null for network errors and timeouts. */
  readonly status: number | null;
  readonly type: string | null;
  readonly code: string | null;
  readonly description: string | null;
  readonly requestId: string | null;
  /** Seconds from `Retry-After` (429s only), clamped. */
  readonly retryAfterSeconds: number | null;
  /** Whether repeating the request later can succeed. */
  readonly retryable: boolean;

  constructor(fields: {
    status: number | null;
    type?: string | null;
    code?: string | null;
    description?: string | null;
    requestId?: string | null;
    retryAfterSeconds?: number | null;
    retryable: boolean;
    operation: string;
  }) {
    const what = fields.status === null ? (fields.type ?? 'NETWORK') : `${fields.status} ${fields.type ?? ''}`.trim();
    super(
      `Smartcar ${fields.operation} failed: ${what}${fields.code ? ` ${fields.code}` : ''}` +
        `${fields.description ? `: ${fields.description}` : ''}${fields.requestId ? ` (SC-Request-Id ${fields.requestId})` : ''}`,
    );
    this.name = 'SmartcarApiError';
    this.status = fields.status;
    this.type = fields.type ?? null;
    this.code = fields.code ?? null;
    this.description = fields.description ?? null;
    this.requestId = fields.requestId ?? null;
    this.retryAfterSeconds = fields.retryAfterSeconds ?? null;
    this.retryable = fields.retryable;
  }

  get rateLimited(): boolean {
    return this.status === 429;
  }
}

export interface VehiclePage {
  readonly vehicles: string[];
  /** Total number of vehicles, from `paging.count`. */
  readonly count: number;
  readonly offset: number;
}

/** Parses `Retry-After`: delay-seconds or an HTTP date. Null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  let seconds: number;
  if (/^\d+(\.\d+)?$/.test(text)) {
    seconds = Math.ceil(Number(text));
  } else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    seconds = Math.ceil((at - now) / 1000);
  }
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS);
}

export class SmartcarClient {
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly unitSystem: string;

  constructor(options: SmartcarClientOptions = {}) {
    const origin = options.origin ?? process.env.SMARTCAR_API_ORIGIN ?? DEFAULT_SMARTCAR_API_ORIGIN;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new Error(
        `Smartcar API origin "${origin}" is not a URL; set SMARTCAR_API_ORIGIN to e.g. ${DEFAULT_SMARTCAR_API_ORIGIN}`,
      );
    }
    this.origin = url.origin + url.pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.unitSystem = options.unitSystem ?? 'metric';
  }

  /** One page of the user's vehicles (`GET /v2.0/vehicles`). */
  async listVehicles(accessToken: string, page: { limit: number; offset: number }): Promise<VehiclePage> {
    const body = await this.request(
      'list vehicles',
      'GET',
      `/v2.0/vehicles?limit=${page.limit}&offset=${page.offset}`,
      accessToken,
    );
    const vehicles = Array.isArray(body?.vehicles)
      ? body.vehicles.filter((v: unknown): v is string => typeof v === 'string')
      : null;
    const count = body?.paging?.count;
    if (vehicles === null || typeof count !== 'number') {
      throw new SmartcarApiError({
        status: 200,
        type: 'INVALID_RESPONSE',
        description: 'vehicle list without vehicles[] or paging.count',
        retryable: false,
        operation: 'list vehicles',
      });
    }
    return { vehicles, count, offset: typeof body.paging.offset === 'number' ? body.paging.offset : page.offset };
  }

  /** Every vehicle of the user, page after page until `paging.count` is reached. */
  async listAllVehicles(accessToken: string, limit = 50): Promise<string[]> {
    const all: string[] = [];
    for (let offset = 0; ; ) {
      const page = await this.listVehicles(accessToken, { limit, offset });
      all.push(...page.vehicles);
      offset += page.vehicles.length;
      if (page.vehicles.length === 0 || offset >= page.count) return all;
    }
  }

  /** Subscribes a vehicle to a webhook, with the user's access token. */
  async subscribe(accessToken: string, vehicleId: string, webhookId: string): Promise<void> {
    await this.request('subscribe', 'POST', `/v2.0/vehicles/${enc(vehicleId)}/webhooks/${enc(webhookId)}`, accessToken);
  }

  /** Unsubscribes a vehicle, with the application management token (not the user's token). */
  async unsubscribe(managementToken: string, vehicleId: string, webhookId: string): Promise<void> {
    await this.request(
      'unsubscribe',
      'DELETE',
      `/v2.0/vehicles/${enc(vehicleId)}/webhooks/${enc(webhookId)}`,
      managementToken,
    );
  }

  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are validated by the callers.
  private async request(operation: string, method: string, path: string, token: string): Promise<any> {
    return (
      await smartcarRequest(this.fetchImpl, `${this.origin}${path}`, {
        operation,
        method,
        timeoutMs: this.timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'sc-unit-system': this.unitSystem,
        },
      })
    ).body;
  }
}

export interface SmartcarRequest {
  readonly operation: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
}

/**
 * One request to any Smartcar API (vehicle, IAM, management): a timeout, and every failure as a
 * {@link SmartcarApiError} that says whether a retry can help. The status comes back for 2xx answers.
 */
export async function smartcarRequest(
  fetchImpl: typeof fetch,
  url: string,
  req: SmartcarRequest,
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are validated by the callers.
): Promise<{ status: number; body: any }> {
  const { operation } = req;
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (err) {
    // Not `instanceof Error`: the abort reason is a DOMException, which may come from another realm.
    const name = (err as { name?: unknown } | null)?.name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    throw new SmartcarApiError({
      status: null,
      type: timedOut ? 'TIMEOUT' : 'NETWORK',
      description: timedOut ? `no answer within ${req.timeoutMs} ms` : errorText(err),
      retryable: true,
      operation,
    });
  }
  const requestId = res.headers.get('sc-request-id');
  const text = await res.text().catch(() => '');
  let body: Record<string, unknown> | null = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (res.ok) return { status: res.status, body };
  const retryAfter =
    res.status === 429 ? (parseRetryAfter(res.headers.get('retry-after')) ?? DEFAULT_RETRY_AFTER_SECONDS) : null;
  throw new SmartcarApiError({
    status: res.status,
    type: str(body?.type) ?? str(body?.error),
    code: str(body?.code),
    description: str(body?.description) ?? str(body?.error_description) ?? (body ? null : text.slice(0, 200) || null),
    requestId: requestId ?? str(body?.requestId),
    retryAfterSeconds: retryAfter,
    retryable: RETRYABLE_STATUSES.has(res.status),
    operation,
  });
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function errorText(err: unknown): string {
  // Duck-typed: fetch's errors and their causes may come from another realm (undici, a test sandbox).
  const e = err as { message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  if (typeof e?.message !== 'string') return String(err);
  const cause = e.cause?.code ?? e.cause?.message;
  return typeof cause === 'string' && cause !== '' ? `${e.message}: ${cause}` : e.message;
}
