/**
 * The local receiver: the deployed verification and ingest code (the same cores) behind a plain HTTP
 * server, with a file spool instead of SQS and a directory instead of the lake bucket. Deliveries rejected
 * only for their signature are spooled too, and written to `<lake>/quarantine/` in batches within the
 * deployed budget, as the quarantine queue and function do.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import {
  DEFAULT_DEDUP_TTL_SECONDS,
  DEFAULT_RAW_PREFIX,
  MAX_BODY_BYTES,
  type QuarantinedDelivery,
  quarantineCapsFor,
} from '../lambda/contract';
import { ingestBatch } from '../lambda/core/ingest';
import type { CoreLogger } from '../lambda/core/logger';
import type { CoreMetrics } from '../lambda/core/metrics';
import { decodeQuarantined, type QuarantineCaps, QuarantineWriter } from '../lambda/core/quarantine';
import { receive, routeCheck, type TokenSource } from '../lambda/core/receive';
import { MemorySeenStore } from '../lambda/core/seen-store';
import { putLakeObject } from './file-lake';
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
  /** How long deliveries wait to be written together, like the deployed batching window. @default 2000 */
  readonly batchWindowMs?: number;
  readonly logger: CoreLogger;
  /** Where the receiver's metrics go (tests count them). @default none */
  readonly metrics?: CoreMetrics;
}

export interface LocalServer {
  readonly url: string;
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
  const flushDeliveries = async () => {
    const messages = await spool.pending();
    if (messages.length === 0) return;
    const result = await ingestBatch(messages, {
      rawPrefix: DEFAULT_RAW_PREFIX,
      logger,
      seen,
      // The local counterpart of the state table: <lake>/state/vehicles.json.
      state: fileStateStore(options.lakeDir),
      putObject: (key, body) => putLakeObject(options.lakeDir, key, body),
    });
    const failed = new Set(result.failedIds);
    await spool.remove(messages.map((m) => m.id).filter((id) => !failed.has(id)));
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

  const server: Server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://local');
      const misrouted = routeCheck(req.method, url.pathname, route);
      if (misrouted) return send(misrouted.statusCode, misrouted.body);
      const body = await readBody(req, MAX_BODY_BYTES + 1);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const result = await receive(
        { body, headers, requestId: `local-${Date.now().toString(36)}`, receivedAt: new Date() },
        {
          token,
          logger,
          metrics: options.metrics,
          quarantine: quarantine ? (d) => quarantineSpool.enqueue(d) : undefined,
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

  await flush(); // deliveries spooled before a crash
  const timer = setInterval(() => {
    flush().catch((err) => logger.error('flush failed; will retry', { error: String(err) }));
  }, options.batchWindowMs ?? 2000);

  return {
    url: `http://${host}:${address.port}${route}`,
    flush,
    async close() {
      clearInterval(timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await flush();
    },
  };
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
