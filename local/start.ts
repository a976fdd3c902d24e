/**
 * `npm start` (`smartcar-webhooks start`): the receiver on http://127.0.0.1:3000/webhooks with a local data
 * lake in ./local-lake. --port, --host, --lake-dir (or PORT, HOST, LOCAL_LAKE_DIR) and
 * SMARTCAR_MANAGEMENT_TOKEN change the defaults; LOCAL_ERROR_CALLBACK_PATH adds the vehicle error callback.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { runCommand, str, UsageError } from '../cli/args';
import { SPECS } from '../cli/registry';
import { CALLBACK_PATH_PATTERN, DEFAULT_REQUEST_LOG_RETENTION_DAYS } from '../lambda/contract';
import { pruneRequestLog } from '../scripts/ops/expire';
import { consoleLogger } from './console-logger';
import { startLocalServer } from './server';
import { DEV_TOKEN_FILE, fileTokens, fixedToken } from './token-files';

export { DEV_TOKEN_FILE };

/** The token from SMARTCAR_MANAGEMENT_TOKEN, else the lake's development token (made once, then reused). */
export async function localManagementToken(
  lakeDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ token: string; source: 'env' | 'file' | 'new' }> {
  const fromEnv = env.SMARTCAR_MANAGEMENT_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'env' };
  const file = path.join(lakeDir, DEV_TOKEN_FILE);
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (existing) return { token: existing, source: 'file' };
  const token = `dev-${randomBytes(24).toString('hex')}`;
  await mkdir(lakeDir, { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'new' };
}

/**
 * Starts the receiver as `npm start` does (PORT, HOST, LOCAL_LAKE_DIR, SMARTCAR_MANAGEMENT_TOKEN from
 * `env`) and prints the banner; the caller stops it.
 */
export async function startFromEnv(env: NodeJS.ProcessEnv = process.env, print = (text: string) => console.log(text)) {
  const lakeDir = path.resolve(env.LOCAL_LAKE_DIR || 'local-lake');
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`PORT must be a port number, got "${env.PORT}"`);
  const host = env.HOST || '127.0.0.1';
  const { token, source } = await localManagementToken(lakeDir, env);
  const logger = consoleLogger();
  // The request log keeps whole bodies: entries past their retention go before the inspector loads them.
  const pruned = await pruneRequestLog(lakeDir, DEFAULT_REQUEST_LOG_RETENTION_DAYS, new Date()).catch((err) => {
    logger.warn('request log not pruned', { error: String(err) });
    return undefined;
  });
  if (pruned?.removed)
    print(`request log: dropped ${pruned.removed} entries older than ${DEFAULT_REQUEST_LOG_RETENTION_DAYS} days`);
  // The token file is read again as it changes (npm run rotate-token), with the previous one accepted for
  // the grace period, as deployed; SMARTCAR_MANAGEMENT_TOKEN is used as given.
  const tokens = source === 'env' ? fixedToken(token) : fileTokens(lakeDir);
  const errorPath = errorCallbackPathOf(env);
  const deliveryBuffer = env.LOCAL_DELIVERY_BUFFER || 'firehose';
  if (deliveryBuffer !== 'firehose' && deliveryBuffer !== 'queue')
    throw new UsageError(`--delivery-buffer must be firehose or queue (as deployed), got "${deliveryBuffer}"`);
  const server = await startLocalServer({ lakeDir, tokens, port, host, logger, errorPath, deliveryBuffer });

  print(`
Smartcar webhook receiver (local)
  callback URL   ${server.url}${server.errorUrl ? `\n  error URL      ${server.errorUrl}  (vehicle error callback URI)` : ''}
  inspector      ${server.inspectorUrl ?? 'off'}
                 (this start's key: open it in a browser on this machine; not through a tunnel)
  data lake      ${lakeDir}${path.sep}raw/event_type=…/mode=…/dt=…/hour=…/*.ndjson.gz
  token          ${
    source === 'env'
      ? 'from SMARTCAR_MANAGEMENT_TOKEN'
      : source === 'new'
        ? `generated for development (saved in ${path.join(lakeDir, DEV_TOKEN_FILE)}):\n                 ${token}`
        : `development token from ${path.join(lakeDir, DEV_TOKEN_FILE)}`
  }

Try it:        ${env.npm_lifecycle_event === 'start' ? 'npm run send-event --' : 'smartcar-webhooks send-event'} vehicle-state
Real Smartcar: expose the port through a tunnel (e.g. \`cloudflared tunnel --url http://127.0.0.1:${port}\`
               or \`ngrok http ${port}\`), set SMARTCAR_MANAGEMENT_TOKEN to your application management token,
               restart, paste <tunnel URL>/webhooks as the callback URI in the Dashboard and press Verify.
Ctrl-C writes any pending batch to the lake before exiting.
`);
  return server;
}

/**
 * The local vehicle error callback path (`LOCAL_ERROR_CALLBACK_PATH`), the counterpart of the deployed
 * `errorCallbackPath`: answered exactly like the callback path. Undefined when unset.
 */
export function errorCallbackPathOf(env: NodeJS.ProcessEnv): string | undefined {
  const value = env.LOCAL_ERROR_CALLBACK_PATH;
  if (value === undefined || value === '') return undefined;
  if (!CALLBACK_PATH_PATTERN.test(value) || value.includes('{'))
    throw new UsageError(
      `LOCAL_ERROR_CALLBACK_PATH must start with "/" and use only URL path characters, e.g. "/webhooks/errors", got "${value}"`,
    );
  if (value === '/webhooks')
    throw new UsageError('LOCAL_ERROR_CALLBACK_PATH must differ from the callback path /webhooks');
  return value;
}

/** What `npm start` says when it cannot start. */
export function explainStartError(err: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE')
    return `port ${env.PORT ?? 3000} is already in use; pass --port with another one (or 0 for any free port)`;
  if (e.code === 'EACCES') return `not allowed to listen there (${e.message}); try another PORT or HOST`;
  return e.message;
}

/** The command: `npm start -- …` or `smartcar-webhooks start …`; runs until a signal stops it. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.start, argv, async (args) => {
    // The flags win over the environment variables they stand for.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(str(args, 'port') !== undefined ? { PORT: str(args, 'port') } : {}),
      ...(str(args, 'host') !== undefined ? { HOST: str(args, 'host') } : {}),
      ...(str(args, 'lake-dir') !== undefined ? { LOCAL_LAKE_DIR: str(args, 'lake-dir') } : {}),
      ...(str(args, 'delivery-buffer') !== undefined ? { LOCAL_DELIVERY_BUFFER: str(args, 'delivery-buffer') } : {}),
    };
    let server: Awaited<ReturnType<typeof startFromEnv>>;
    try {
      server = await startFromEnv(env);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      console.error(`start: ${explainStartError(err, env)}`);
      return 1;
    }
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: writing pending deliveries to the lake…`);
      await server.close();
      console.log('done; nothing pending.');
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    return new Promise<number>(() => {}); // runs until a signal stops it
  });
}
