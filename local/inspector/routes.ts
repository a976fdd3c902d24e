/**
 * The inspector's HTTP routes on the receiver's own port: `/` the page, `/_inspector/…` its JSON API and
 * server-sent events. The receiver may be exposed through a tunnel for real Smartcar deliveries, and the page
 * shows payloads (vehicle locations among them), so every route needs this start's random key (from the
 * `?key=` of the printed URL, kept in an HttpOnly SameSite=Strict cookie, or an `X-Inspector-Key` header),
 * a loopback Host and no proxy header. Anything else is left to the receiver, which answers the same 404 as
 * for any unknown path: nothing says an inspector is there.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFleet } from './fleet-view';
import { pageHtml } from './page';
import { type InspectedRequest, type RequestLog, summarize } from './request-log';

const COOKIE = 'sc_inspector';
/** Headers that tunnels and proxies add: a request carrying one did not come from this machine's browser. */
const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-forwarded-host', 'x-real-ip', 'cf-connecting-ip', 'via'];

/** A request the inspector will not carry out (e.g. replaying something that is not a delivery). */
export class InspectorRefusal extends Error {}

export interface InspectorRoutesOptions {
  readonly log: RequestLog;
  /** `host:port` values the Host header may carry (loopback names and the bound address). */
  readonly allowedHosts: () => readonly string[];
  /** Re-sends an entry to the receiver; resolves to the new entry. */
  readonly replay: (entry: InspectedRequest) => Promise<InspectedRequest>;
  /** The `curl` and `send-event` lines for an entry. */
  readonly commands: (entry: InspectedRequest) => { curl: string; sendEvent: string | null };
  /** The local lake the fleet view reads (`GET /_inspector/fleet`); without it that route answers 404. */
  readonly lakeDir?: string;
  /** Where the local reconcile keeps its webhook health checks (shown on the fleet tab). @default - none shown */
  readonly workflowDir?: string;
  /** @default random */
  readonly key?: string;
}

export interface InspectorRoutes {
  readonly key: string;
  /** Answers the request when it is the inspector's and authorized; false leaves it to the receiver. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Ends the live streams (or the server never finishes closing). */
  close(): void;
}

export function inspectorRoutes(options: InspectorRoutesOptions): InspectorRoutes {
  const key = options.key ?? randomBytes(24).toString('base64url');
  // One cookie per receiver (named after its key): two receivers on other ports of this machine, which
  // browsers treat as one site for cookies, never overwrite each other's.
  const cookie = `${COOKIE}_${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
  const keyBytes = Buffer.from(key);
  const streams = new Set<ServerResponse>();
  const matches = (given: string | undefined) => {
    if (!given) return false;
    const b = Buffer.from(given);
    return b.length === keyBytes.length && timingSafeEqual(b, keyBytes);
  };
  const fromThisMachine = (req: IncomingMessage) =>
    !PROXY_HEADERS.some((h) => req.headers[h] !== undefined) &&
    options.allowedHosts().includes((req.headers.host ?? '').toLowerCase());
  const authorized = (req: IncomingMessage) => {
    const header = req.headers['x-inspector-key'];
    return matches(typeof header === 'string' ? header : undefined) || matches(cookieOf(req, cookie));
  };
  const { log } = options;

  return {
    key,
    close() {
      for (const res of streams) res.end();
      streams.clear();
    },
    async handle(req, res, url) {
      const p = url.pathname;
      const isPage = req.method === 'GET' && (p === '/' || p === '/_inspector/' || p === '/_inspector');
      if (!isPage && !p.startsWith('/_inspector/')) return false;
      if (!fromThisMachine(req)) return false;
      // The printed URL: set the cookie and drop the key from the address bar and history.
      if (isPage && matches(url.searchParams.get('key') ?? undefined)) {
        res.writeHead(303, {
          location: url.pathname,
          'set-cookie': `${cookie}=${key}; HttpOnly; SameSite=Strict; Path=/`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return true;
      }
      if (!authorized(req)) return false;

      if (isPage) {
        const nonce = randomBytes(16).toString('base64');
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': [
            "default-src 'none'",
            `script-src 'nonce-${nonce}'`,
            `style-src 'nonce-${nonce}'`,
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
          ].join('; '),
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        });
        res.end(pageHtml(nonce));
        return true;
      }
      const json = (status: number, body: unknown) => {
        res.writeHead(status, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        res.end(JSON.stringify(body));
        return true;
      };
      if (p === '/_inspector/requests' && req.method === 'GET') {
        // ?limit=N: the newest N, so the page shows them before the whole log has arrived.
        const limit = Number(url.searchParams.get('limit'));
        const all = log.list();
        return json(200, { entries: (limit > 0 ? all.slice(0, limit) : all).map(summarize) });
      }
      if (p === '/_inspector/events' && req.method === 'GET') {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        res.write(': live\n\n');
        streams.add(res);
        const unsubscribe = log.subscribe((entry) => {
          res.write(`event: request\ndata: ${JSON.stringify(summarize(entry))}\n\n`);
        });
        const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), 15_000);
        res.on('close', () => {
          clearInterval(heartbeat);
          unsubscribe();
          streams.delete(res);
        });
        return true;
      }
      if (p === '/_inspector/fleet' && req.method === 'GET') {
        if (!options.lakeDir) return json(404, { error: 'no lake to read' });
        const fleet = await readFleet(options.lakeDir, new Date(), options.workflowDir);
        return fleet.ok ? json(200, fleet.view) : json(fleet.status, { error: fleet.error });
      }
      const m = /^\/_inspector\/requests\/([A-Za-z0-9-]{1,64})(\/replay)?$/.exec(p);
      const entry = m ? log.get(m[1]) : undefined;
      if (!m || !entry) return json(404, { error: 'no such entry' });
      if (!m[2] && req.method === 'GET') return json(200, { entry, commands: options.commands(entry) });
      // A custom header: a cross-site form cannot send it (and SameSite=Strict keeps the cookie home anyway).
      if (m[2] && req.method === 'POST' && req.headers['x-inspector'] === 'replay') {
        try {
          const replayed = await options.replay(entry);
          return json(200, { entry: summarize(replayed) });
        } catch (err) {
          if (err instanceof InspectorRefusal) return json(409, { error: err.message });
          throw err;
        }
      }
      return json(405, { error: 'method not allowed' });
    },
  };
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

/** A shell single-quoted word. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
