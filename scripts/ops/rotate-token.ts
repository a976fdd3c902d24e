/**
 * Puts a new application management token in place, reading it from standard input or a hidden prompt,
 * never from the command line (argv lands in shell history and process listings).
 *
 *   npm run rotate-token -- --secret-id <secret ARN> [--recover-function <name> [--since ISO]]
 *   npm run rotate-token -- --lake-dir local-lake           (the local receiver of npm start)
 *
 * In AWS the token becomes the secret's AWSCURRENT version; Secrets Manager keeps the replaced one as
 * AWSPREVIOUS, which the receiver still accepts for the grace period (24 h by default), and the receiver
 * picks the new one up with the first delivery signed with it. With --recover-function the recovery
 * function then re-ingests what the quarantine kept since --since (default: 24 hours ago).
 */
import { stdin, stdout } from 'node:process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { runCli } from '../../local/cli';
import { rotateFileToken } from '../../local/token-files';

const USAGE = `usage: npm run rotate-token -- --secret-id <secret ARN> [--recover-function <name> [--since ISO]]
       npm run rotate-token -- --lake-dir <local lake>

  The new token is read from standard input (e.g. from your password manager's CLI) or typed at a
  hidden prompt; it is never accepted as an argument.`;

export class UsageError extends Error {}

/** Reads the token: all of piped standard input, or one hidden line typed at a terminal. */
export async function readToken(input: NodeJS.ReadableStream & { isTTY?: boolean } = stdin): Promise<string> {
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += chunk;
    return text.trim();
  }
  const rl = createInterface({ input, output: stdout, terminal: true });
  // Hide what is typed: echo nothing after the prompt.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s) => {
    if (s.includes('New management token')) stdout.write(s);
  };
  const answer = await new Promise<string>((resolve) => rl.question('New management token (input hidden): ', resolve));
  rl.close();
  stdout.write('\n');
  return answer.trim();
}

export function checkToken(token: string): void {
  if (token === '') throw new UsageError('no token given on standard input');
  if (/\s/.test(token))
    throw new UsageError('the token contains white space; paste exactly the token from the Dashboard');
  if (token.length > 1024) throw new UsageError('that is too long to be a management token');
}

export interface RotateOptions {
  readonly secretId?: string;
  readonly lakeDir?: string;
  readonly recoverFunction?: string;
  readonly since?: Date;
  readonly token: string;
  readonly print: (line: string) => void;
  readonly secrets?: SecretsManagerClient;
  readonly lambda?: LambdaClient;
}

export async function rotateToken(options: RotateOptions): Promise<void> {
  checkToken(options.token);
  if (options.lakeDir) {
    const { replaced } = await rotateFileToken(options.lakeDir, options.token);
    options.print(
      replaced
        ? `local token rotated in ${options.lakeDir}; the previous one is still accepted for 24 hours`
        : `local token set in ${options.lakeDir}`,
    );
    return;
  }
  const secrets = options.secrets ?? new SecretsManagerClient({});
  const out = await secrets.send(
    new PutSecretValueCommand({ SecretId: options.secretId, SecretString: options.token }),
  );
  options.print(
    `secret updated (version ${out.VersionId}); the receivers use it with the first delivery signed with it, ` +
      'and accept the previous token (AWSPREVIOUS) for the grace period',
  );
  if (options.recoverFunction) {
    const since = (options.since ?? new Date(Date.now() - 24 * 3600_000)).toISOString();
    const lambda = options.lambda ?? new LambdaClient({});
    await lambda.send(
      new InvokeCommand({
        FunctionName: options.recoverFunction,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify({ since })),
      }),
    );
    options.print(`recovery of deliveries rejected since ${since} started (${options.recoverFunction}); see its logs`);
  }
}

export async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    if (process.argv.slice(2).some((a) => a === '--token' || a.startsWith('--token='))) {
      throw new UsageError(
        'never pass the token as an argument (shell history, process lists): pipe it in or type it at the prompt',
      );
    }
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        'secret-id': { type: 'string' },
        'lake-dir': { type: 'string' },
        'recover-function': { type: 'string' },
        since: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) throw new UsageError('');
    if (Boolean(values['secret-id']) === Boolean(values['lake-dir']))
      throw new UsageError('pass either --secret-id or --lake-dir');
    if (values['recover-function'] && !values['secret-id'])
      throw new UsageError('--recover-function goes with --secret-id');
    if (values.since !== undefined && Number.isNaN(Date.parse(String(values.since)))) {
      throw new UsageError(`--since must be an ISO 8601 time, got "${values.since}"`);
    }
  } catch (err) {
    const message = err instanceof UsageError || err instanceof TypeError ? err.message : String(err);
    if (message) console.error(`rotate-token: ${message}\n`);
    console.error(USAGE);
    return 2;
  }
  const token = await readToken();
  try {
    checkToken(token);
  } catch (err) {
    console.error(`rotate-token: ${(err as Error).message}`);
    return 2;
  }
  await rotateToken({
    token,
    secretId: values['secret-id'] as string | undefined,
    lakeDir: values['lake-dir'] as string | undefined,
    recoverFunction: values['recover-function'] as string | undefined,
    since: values.since ? new Date(String(values.since)) : undefined,
    print: (line) => console.log(line),
  });
  return 0;
}

if (require.main === module) runCli('rotate-token', main);
