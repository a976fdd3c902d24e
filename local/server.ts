/**
 * The local receiver: the deployed verification and ingest code (the same cores) behind a plain HTTP
 * server, with a file spool instead of the delivery buffer and a directory instead of the lake bucket.
 * With the Firehose buffer (the default, as deployed) each flush writes the spooled deliveries as one
 * landing object (`<lake>/landing/YYYY/MM/DD/HH/…`, the stream's layout and line format) and then ingests
 * every landing object it finds and deletes it, as the ingest function does on S3's notification; with the
 * queue buffer the spooled deliveries are ingested directly. Deliveries rejected only for their signature
 * are spooled too, and written to `<lake>/quarantine/` in batches within the deployed budget, as the
 * quarantine queue and function do.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_LANDING_PREFIX,
  DEFAULT_RAW_PREFIX,
  MAX_BODY_BYTES,
  type QuarantinedDelivery,
  quarantineCapsFor,
} from '../lambda/contract';
import { parseBody, readEnvelope } from '../lambda/core/envelope';
import { erasedFilter } from '../lambda/core/erasure';
import { type IngestDeps, ingestBatch } from '../lambda/core/ingest';
import { ingestLanding } from '../lambda/core/landing';
import type { CoreLogger } from '../lambda/core/logger';
import type { CoreMetrics } from '../lambda/core/metrics';
import { decodeQuarantined, type QuarantineCaps, QuarantineWriter } from '../lambda/core/quarantine';
import { receive, routeCheck, SIGNATURE_HEADER, type TokenSource } from '../lambda/core/receive';
import { MemorySeenStore } from '../lambda/core/seen-store';
import { hmacHex } from '../lambda/core/signature';
import { localLedgerStore } from './erasure-ledger';
import { deleteLakeObject, getLakeObject, listLakeKeys, putLakeObject } from './file-lake';
import {
  bodyBytesOf,
  type InspectedRequest,
  RequestLog as Log,
  type RequestLog,
  type Verdict,
} from './inspector/request-log';
import { InspectorRefusal, type InspectorRoutes, inspectorRoutes, shellQuote } from './inspector/routes';
import { fileKeys } from './quarantine';
import { Spool } from './spool';
import { fileStateStore } from './state-file';
import { fixedToken } from './token-files';

/** lib/receiver.ts's DEFAULT_EXPECTED_PEAK_PER_SECOND (not imported here: it would load aws-cdk-lib into npm start). */
export const DEPLOYED_DEFAULT_PEAK_PER_SECOND = 500;

export interface LocalServerOptions {
  readonly lakeDir: string;
  /** A fixed management token; or pass `tokens`. */
  readonly managementToken?: string;
  /** Where the token comes from, rotations included (see token-files.ts). @default the fixed `managementToken` */
  readonly tokens?: TokenSource;
  /**
   * Keep deliveries rejected only for their signature in `<lakeDir>/quarantine/`, within an hourly
   * budget as deployed. @default the deployed default (sized from a peak of 500 a second); false turns it off
   */
  readonly quarantine?: QuarantineCaps | false;
  /** @default 3000 (0 picks a free port) */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default '/webhooks' */
  readonly path?: string;
  /**
   * A second path answered exactly like `path`, as deployed with `errorCallbackPath` (Smartcar's vehicle
   * error callback URI). @default - none
   */
  readonly errorPath?: string;
  /** How long deliveries wait to be written together, like the deployed buffer. @default 2000 */
  readonly batchWindowMs?: number;
  /**
   * The deployed buffer this one stands in for: `firehose` writes each flush as a landing object and
   * ingests it from there, `queue` ingests the spooled deliveries directly. @default 'firehose'
   */
  readonly deliveryBuffer?: 'firehose' | 'queue';
  readonly logger: CoreLogger;
  /** Where the receiver's metrics go (tests count them). @default none */
  readonly metrics?: CoreMetrics;
  /**
   * Keep the request log (`<lakeDir>/.inspector/`) and serve the inspector page at `/`. @default true
   */
  readonly inspector?: boolean;
  /** The inspector's key. @default random for each start */
  readonly inspectorKey?: string;
  /** Where the local reconcile keeps its webhook checks, shown on the fleet tab. @default $LOCAL_WORKFLOW_DIR, else ./.local-workflow */
  readonly workflowDir?: string;
}

export interface LocalServer {
  readonly url: string;
  /** The vehicle error callback URL, when `errorPath` is set. */
  readonly errorUrl?: string;
  /** The inspector page with this start's key (`http://127.0.0.1:3000/?key=…`); undefined when off. */
  readonly inspectorUrl?: string;
  /** The request log behind the inspector; undefined when off. */
  readonly requestLog?: RequestLog;
  /** Writes every pending delivery to the lake now. */
  flush(): Promise<void>;
  /** Stops accepting requests, then flushes: nothing accepted is lost. */
  close(): Promise<void>;
}

export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const route = options.path ?? '/webhooks';
  const spool = new Spool(path.join(options.lakeDir, '.spool'));
  const { logger } = options;
  if (!options.tokens && !options.managementToken) throw new Error('pass managementToken or tokens');
  const token = options.tokens ?? fixedToken(options.managementToken as string);
  const quarantineSpool = new Spool<QuarantinedDelivery>(path.join(options.lakeDir, '.quarantine-spool'));
  const quarantine =
    options.quarantine === false
      ? undefined
      : new QuarantineWriter({
          put: (key, body) => putLakeObject(options.lakeDir, key, body),
          list: fileKeys(options.lakeDir),
          caps: options.quarantine ?? quarantineCapsFor(DEPLOYED_DEFAULT_PEAK_PER_SECOND),
          metrics: options.metrics,
          logger,
        });
  // As deployed: an eventId stored once is not stored again for 7 days (in memory here).
  const seen = new MemorySeenStore(DEFAULT_DEDUP_TTL_SECONDS * 1000);

  let flushing: Promise<void> = Promise.resolve();
  const ingestDeps: IngestDeps = {
    rawPrefix: DEFAULT_RAW_PREFIX,
    logger,
    seen,
    // The local counterpart of the state table: <lake>/state/vehicles.json.
    state: fileStateStore(options.lakeDir),
    putObject: (key, body) => putLakeObject(options.lakeDir, key, body),
    // The erasure ledger, read at each flush (a small file): an erased subject's old deliveries stay out.
    erased: async () => erasedFilter(await localLedgerStore(options.lakeDir).read()),
  };
  const viaLanding = (options.deliveryBuffer ?? 'firehose') === 'firehose';
  const flushDeliveries = async () => {
    const messages = await spool.pending();
    if (!viaLanding) {
      if (messages.length === 0) return;
      const result = await ingestBatch(messages, ingestDeps);
      const failed = new Set(result.failedIds);
      await spool.remove(messages.map((m) => m.id).filter((id) => !failed.has(id)));
      return;
    }
    if (messages.length > 0) {
      // As the stream does: the buffered deliveries become one landing object, one line each; only once
      // it is on disk does the spool let go of them.
      await putLakeObject(
        options.lakeDir,
        landingKey(new Date()),
        Buffer.from(messages.map((m) => `${m.body}\n`).join('')),
      );
      await spool.remove(messages.map((m) => m.id));
    }
    // Every landing object, oldest first: this flush's, and any a failed or interrupted flush left.
    for (const key of (await listLakeKeys(options.lakeDir, DEFAULT_LANDING_PREFIX)).sort()) {
      await ingestLanding(
        { key },
        {
          ...ingestDeps,
          getLanding: ({ key: k }) =>
            getLakeObject(options.lakeDir, k).then(
              (bytes) => ({ bytes }),
              (err: NodeJS.ErrnoException) => {
                if (err.code === 'ENOENT') return undefined;
                throw err;
              },
            ),
          deleteLanding: ({ key: k }) => deleteLakeObject(options.lakeDir, k),
        },
      );
    }
  };
  // The local quarantine queue: what was spooled goes into one object per flush, within the budget.
  const flushQuarantine = async () => {
    if (!quarantine) return;
    const rejected = await quarantineSpool.pending();
    if (rejected.length === 0) return;
    const records: QuarantinedDelivery[] = [];
    for (const m of rejected) {
      try {
        records.push(decodeQuarantined(m.body));
      } catch {
        // not a rejected delivery: nothing to keep
      }
    }
    await quarantine.write(records);
    await quarantineSpool.remove(rejected.map((m) => m.id));
  };
  const flush = () => {
    // One flush at a time; a flush asked for during another runs after it (and after a failed one).
    flushing = flushing
      .catch(() => undefined)
      .then(async () => {
        await flushDeliveries();
        await flushQuarantine();
      });
    return flushing;
  };

  const log =
    options.inspector === false
      ? undefined
      : await Log.open({
          lakeDir: options.lakeDir,
          onError: (err) => logger.error('could not write the inspector log', { error: String(err) }),
        });
  let inspector: InspectorRoutes | undefined;

  const server: Server = createServer(async (req, res) => {
    const started = performance.now();
    let body: Buffer = Buffer.alloc(0);
    const headers: Record<string, string> = {};
    let quarantined = false;
    const send = (status: number, answer: Record<string, unknown>) => {
      // Recorded before answering, so that whoever gets the answer finds the entry.
      if (log) record(log, { req, url, route, body, headers, status, answer, quarantined, started });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    };
    let url = new URL('http://local/');
    try {
      url = new URL(req.url ?? '/', 'http://local');
      if (inspector && (await inspector.handle(req, res, url))) return;
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const misrouted = routeCheck(req.method, url.pathname, route, options.errorPath);
      if (misrouted) return send(misrouted.statusCode, misrouted.body);
      body = await readBody(req, MAX_BODY_BYTES + 1);
      const result = await receive(
        { body, headers, requestId: `local-${Date.now().toString(36)}`, receivedAt: new Date() },
        {
          token,
          logger,
          metrics: options.metrics,
          quarantine: quarantine
            ? (d) => {
                quarantined = true;
                return quarantineSpool.enqueue(d);
              }
            : undefined,
          enqueue: (m) => spool.enqueue(m),
          howToSetToken:
            'Set SMARTCAR_MANAGEMENT_TOKEN, or rotate the local token with npm run rotate-token -- --lake-dir.',
        },
      );
      send(result.statusCode, result.body);
    } catch (err) {
      logger.error('local server error', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) send(500, { error: 'internal error' });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 3000, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const unspecified = address.address === '0.0.0.0' || address.address === '::';
  const pageHost = unspecified ? '127.0.0.1' : host;
  if (log) {
    const port = address.port;
    const self = `http://${pageHost}:${port}${route}`;
    inspector = inspectorRoutes({
      workflowDir: options.workflowDir ?? path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow'),
      log,
      key: options.inspectorKey,
      allowedHosts: () => ['127.0.0.1', 'localhost', '[::1]', host.toLowerCase()].map((h) => `${h}:${port}`),
      replay: (entry) =>
        replay(
          log,
          entry,
          [self, ...(options.errorPath === undefined ? [] : [`http://${pageHost}:${port}${options.errorPath}`])],
          token,
        ),
      commands: (entry) => commandsFor(entry, self, options.lakeDir),
      lakeDir: options.lakeDir,
    });
  }

  await flush(); // deliveries spooled before a crash
  const timer = setInterval(() => {
    flush().catch((err) => logger.error('flush failed; will retry', { error: String(err) }));
  }, options.batchWindowMs ?? 2000);

  return {
    url: `http://${host}:${address.port}${route}`,
    errorUrl: options.errorPath === undefined ? undefined : `http://${host}:${address.port}${options.errorPath}`,
    inspectorUrl: inspector ? `http://${pageHost}:${address.port}/?key=${inspector.key}` : undefined,
    requestLog: log,
    flush,
    async close() {
      clearInterval(timer);
      inspector?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await flush();
      await log?.flushed();
    },
  };
}

/** What the receiver decided, in the inspector's words. */
function verdictOf(status: number, answer: Record<string, unknown>, verify: boolean, quarantined: boolean): Verdict {
  if (status === 404) return 'not-found';
  if (status === 405) return 'method-not-allowed';
  if (verify) return status === 200 ? 'verify-answered' : status >= 500 ? 'failed' : 'verify-refused';
  if (status === 200 && answer.status === 'received') return 'stored';
  if (status >= 500) return 'failed';
  return quarantined ? 'quarantined' : 'rejected';
}

function record(
  log: RequestLog,
  r: {
    req: IncomingMessage;
    url: URL;
    route: string;
    body: Buffer;
    headers: Record<string, string>;
    status: number;
    answer: Record<string, unknown>;
    quarantined: boolean;
    started: number;
  },
) {
  const parsed = r.body.length > 0 ? parseBody(r.body) : undefined;
  const envelope = parsed?.ok ? readEnvelope(parsed.json, r.body) : undefined;
  const fields = envelope?.fields;
  const replayOf = r.headers['x-inspector-replay-of'];
  try {
    log.add(
      {
        at: new Date().toISOString(),
        verdict: verdictOf(r.status, r.answer, envelope?.kind === 'verify', r.quarantined),
        reason: typeof r.answer.error === 'string' ? r.answer.error : null,
        status: r.status,
        method: r.req.method ?? '',
        path: r.url.pathname,
        eventType: fields?.eventType ?? null,
        eventId: fields?.eventId ?? null,
        vehicleId: fields?.vehicleIds[0] ?? null,
        mode: fields?.mode ?? null,
        ms: Math.round((performance.now() - r.started) * 10) / 10,
        headers: r.headers,
        bodyRaw: r.body,
        response: { status: r.status, body: r.answer },
        replayOf: replayOf && /^[A-Za-z0-9-]{1,64}$/.test(replayOf) ? replayOf : null,
      },
      r.headers[SIGNATURE_HEADER],
    );
  } catch {
    // the log is a view: it never stands in the way of an answer
  }
}

/** Hop-by-hop and credential headers a replay does not copy (fetch sets its own framing). */
const NOT_REPLAYED = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'keep-alive',
  'cookie',
  'authorization',
  'proxy-authorization',
  'x-inspector-replay-of',
  'x-inspector-key',
]);

/** What an entry from an earlier run is replayed with when it was not stored: a signature that never verifies. */
const UNVERIFIED_REPLAY = 'replayed-without-its-original-signature';

/**
 * Re-sends an entry to the receiver: the exact body and headers, with the original SC-Signature while this
 * process still holds it; an entry from an earlier run is re-signed with the current token (like
 * `send-event --from-lake`), as only the masked value was ever written down.
 */
async function replay(log: RequestLog, entry: InspectedRequest, routes: string[], token: TokenSource) {
  // Only ever to this receiver's own callback routes (the callback, and the error callback when there is
  // one), chosen by exact path: a logged path such as `/.//evil.host/x` must not turn a replay into a
  // request to another host.
  const self = new URL(routes[0]);
  const target = routes
    .map((r) => new URL(r))
    .find((u) => u.pathname === entry.path && u.host === self.host && u.protocol === self.protocol);
  if (!target)
    throw new InspectorRefusal(
      `only requests to the callback route${routes.length > 1 ? 's' : ''} ${routes.map((r) => new URL(r).pathname).join(' and ')} can be replayed`,
    );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry.headers))
    if (!NOT_REPLAYED.has(k) && k !== SIGNATURE_HEADER) headers[k] = v;
  const body = bodyBytesOf(entry);
  if (SIGNATURE_HEADER in entry.headers) {
    // The original signature while this process holds it (a forgery replays as the forgery it was). An
    // entry from an earlier run is re-signed only if it was stored, i.e. its signature verified then:
    // re-signing anything else would make the receiver a signing oracle for whatever reached the log.
    headers[SIGNATURE_HEADER] =
      log.signatureOf(entry.id) ?? (entry.verdict === 'stored' ? hmacHex(await token.get(), body) : UNVERIFIED_REPLAY);
  }
  headers['x-inspector-replay-of'] = entry.id;
  const method = entry.method || 'POST';
  const bodyless = method === 'GET' || method === 'HEAD';
  await fetch(target, { method, headers, body: bodyless ? undefined : body, redirect: 'manual' });
  const replayed = log.list().find((e) => e.replayOf === entry.id);
  if (!replayed) throw new Error('the replay was not recorded');
  return replayed;
}

/** The `curl` line (signed with $SMARTCAR_MANAGEMENT_TOKEN: the original signature is never shown) and the send-event line. */
function commandsFor(entry: InspectedRequest, self: string, lakeDir: string) {
  const text = entry.bodyEncoding === 'utf8' ? entry.body : '';
  const curl = [
    `BODY=${shellQuote(text)}`,
    `curl -sS -X POST ${shellQuote(self)} -H 'content-type: application/json' \\`,
    `  -H "SC-Signature: $(printf %s "$BODY" | openssl dgst -sha256 -hmac "$SMARTCAR_MANAGEMENT_TOKEN" -r | cut -d' ' -f1)" \\`,
    `  --data-binary "$BODY"`,
  ].join('\n');
  const sendEvent =
    entry.verdict === 'stored' && entry.eventId
      ? `npm run send-event -- --from-lake ${shellQuote(entry.eventId)} --lake-dir ${shellQuote(lakeDir)} --url ${shellQuote(self)}`
      : null;
  return { curl, sendEvent };
}

/** Reads at most `limit` bytes; a longer body is cut there, which the receiver then rejects as too large. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size >= limit) return;
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A landing object's key as Firehose names them: `landing/YYYY/MM/DD/HH/<name>-YYYY-MM-DD-HH-MM-SS-<uuid>` (UTC). */
export function landingKey(at: Date): string {
  const iso = at.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const hourPath = `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}`;
  const stamp = `${iso.slice(0, 10)}-${iso.slice(11, 13)}-${iso.slice(14, 16)}-${iso.slice(17, 19)}`;
  return `${DEFAULT_LANDING_PREFIX}/${hourPath}/local-1-${stamp}-${randomUUID()}`;
}
