/**
 * Starts moto (the AWS emulator) on 127.0.0.1 for integration tests and points the AWS SDK at it.
 * Fails loudly when moto is missing: these tests are part of CI, never silently skipped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import * as path from 'node:path';

export interface Moto {
  readonly endpoint: string;
  stop(): Promise<void>;
}

const PYTHON = process.env.MOTO_PYTHON ?? 'python3';

/** The exit code LAUNCH_MOTO uses when moto's server cannot be imported (so no separate probe process). */
const MISSING = 3;

const missing = (detail: string) =>
  new Error(
    `moto's server is required by the integration tests but "${PYTHON} -c 'import moto.server'" failed ` +
      `(${detail}). Install it with: pip install 'moto[server]'`,
  );

/**
 * The test run's pool of moto servers, started by the global setup while it synthesizes (on the core the
 * synthesis leaves idle), so a test file does not wait two seconds for Python to import moto. Each file
 * claims a server of its own (an atomic mkdir), so no two files share one; when none is left, startMoto
 * starts one as before. The servers stop with the Jest process that started them.
 */
export const MOTO_POOL_ENV = 'SMARTCAR_TEST_MOTO_POOL';

/**
 * Spawns `size` servers and resolves once they are spawned (so a synchronous task can run while they boot),
 * with `ready`, which records them in `dir` for startMoto to claim once all answer.
 */
export async function startMotoPool(size: number, dir: string): Promise<{ ready: Promise<void> }> {
  const launched = await Promise.all(Array.from({ length: size }, () => launchMoto()));
  const ready = Promise.all(launched.map((l) => l.up)).then((servers) => {
    writeFileSync(path.join(dir, 'moto-pool.json'), JSON.stringify(servers.map((m) => m.endpoint)));
    process.env[MOTO_POOL_ENV] = dir;
  });
  return { ready };
}

function claimPooled(dir: string): Moto | undefined {
  let endpoints: string[];
  try {
    endpoints = JSON.parse(readFileSync(path.join(dir, 'moto-pool.json'), 'utf8'));
  } catch {
    return undefined;
  }
  for (const endpoint of endpoints) {
    try {
      mkdirSync(path.join(dir, `claimed-${new URL(endpoint).port}`));
    } catch {
      continue; // another file has it
    }
    // Stopped with the run (its state dies with it); a file's stop() only lets it go.
    return { endpoint, stop: async () => {} };
  }
  return undefined;
}

/** Servers this process started and has not seen exit: one exit handler stops them all. */
const running = new Set<ChildProcess>();
let exitHandled = false;
function killRunning(): void {
  for (const child of running) child.kill('SIGTERM');
}

export async function startMoto(): Promise<Moto> {
  const pool = process.env[MOTO_POOL_ENV];
  const pooled = pool ? claimPooled(pool) : undefined;
  return pooled ?? spawnMoto();
}

async function spawnMoto(): Promise<Moto> {
  return (await launchMoto()).up;
}

/** Spawns a server; resolves once it is spawned, with `up` resolving once it answers. */
async function launchMoto(): Promise<{ up: Promise<Moto> }> {
  const port = await freePort();
  const child = spawn(PYTHON, ['-c', LAUNCH_MOTO, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let spawnError: Error | undefined; // no Python at all
  child.once('error', (err) => {
    spawnError = err;
  });
  child.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  // A moto nobody stopped (a file whose beforeAll timed out while it started, say) must not keep the test
  // worker alive, which Jest would then kill as "failed to exit gracefully": the server is unreferenced
  // and stopped when this process exits (or dies: see LAUNCH_MOTO).
  running.add(child);
  if (!exitHandled) {
    exitHandled = true;
    process.once('exit', killRunning);
  }
  child.once('exit', () => running.delete(child));
  child.unref();
  (child.stderr as Socket | null)?.unref();
  const endpoint = `http://127.0.0.1:${port}`;
  const up = waitUntilUp(
    endpoint,
    child,
    () => stderr,
    () => spawnError,
  ).then(
    (): Moto => ({
      endpoint,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    }),
  );
  return { up };
}

/**
 * Runs moto's server (`python -m moto.server` with the same arguments), first asking Linux to stop it
 * when the process that started it dies (PR_SET_PDEATHSIG), so a killed test worker leaves no server
 * behind. Elsewhere the request fails quietly and the exit handler above is the only guard. When moto
 * cannot be imported it exits with MISSING and the reason, which startMoto reports with what to install.
 */
const LAUNCH_MOTO = `
import signal, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
except Exception:
    pass
try:
    import flask, werkzeug
    from moto.server import main
except ImportError as e:
    sys.stderr.write(str(e))
    sys.exit(${MISSING})
main(sys.argv[1:])
`;

/** Sets the environment the AWS SDK reads, so clients built with default configuration talk to moto. */
export function useMoto(endpoint: string): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_DEFAULT_REGION = 'us-east-1';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(
  endpoint: string,
  child: ChildProcess,
  stderr: () => string,
  spawnError: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const error = spawnError();
    if (error) throw missing(error.message);
    if (child.exitCode === MISSING) throw missing(stderr().trim());
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`moto did not start on ${endpoint} within 20 s: ${stderr()}`);
}

/** The vehicle-state table's schema (as lib/data-lake.ts declares it), created in moto. */
export async function createStateTable(
  client: import('@aws-sdk/client-dynamodb').DynamoDBClient,
  name: string,
): Promise<void> {
  const { CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'vehicleId', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'vehicleId', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}

/** Everything in a queue, as the event source mapping would hand it to its function (receives until empty). */
export async function drainQueue(
  sqs: import('@aws-sdk/client-sqs').SQSClient,
  url: string,
): Promise<import('aws-lambda').SQSRecord[]> {
  const { ReceiveMessageCommand } = await import('@aws-sdk/client-sqs');
  const records: import('aws-lambda').SQSRecord[] = [];
  for (;;) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
    if (!out.Messages?.length) return records;
    for (const m of out.Messages)
      records.push({ messageId: m.MessageId, body: m.Body } as import('aws-lambda').SQSRecord);
  }
}
