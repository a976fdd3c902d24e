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
 * function then re-ingests what the quarantine kept since --since (default: 24 hours ago): the command
 * waits for it, invoking it again while it answers "not done yet", and prints what was recovered.
 *
 * No character of the token is ever written anywhere: the prompt echoes nothing (Backspace included),
 * and an argument that might be a token is refused without being repeated.
 */

import { stdin, stdout } from 'node:process';
import { parseArgs } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { RecoveryReport } from '../../lambda/core/quarantine';
import { runCli } from '../../local/cli';
import { rotateFileToken } from '../../local/token-files';

const USAGE = `usage: npm run rotate-token -- --secret-id <secret ARN> [--recover-function <name> [--since ISO]]
       npm run rotate-token -- --lake-dir <local lake>

  The new token is read from standard input (e.g. from your password manager's CLI) or typed at a
  hidden prompt; it is never accepted as an argument.`;

export class UsageError extends Error {}

type TokenInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export const PROMPT = 'New management token (input hidden): ';

/** Typing Ctrl-C at the prompt. */
export class PromptCancelled extends Error {}

/**
 * Reads the token: all of piped standard input, or one line typed at a terminal. At a terminal the
 * line is read in raw mode and nothing but the prompt and the final newline is written: no character,
 * no mask, and no redraw on Backspace (readline's redraw repeats the line typed so far).
 */
export async function readToken(
  input: TokenInput = stdin,
  output: { write(text: string): unknown } = stdout,
): Promise<string> {
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += chunk;
    return text.trim();
  }
  output.write(PROMPT);
  input.setRawMode?.(true);
  input.resume();
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: Buffer | string) => {
        for (const ch of String(chunk)) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            input.off('data', onData);
            return resolve(typed);
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            return reject(new PromptCancelled('cancelled'));
          }
          if (ch === '\u001b') {
            // An arrow or function key: its sequence would end up in the token. Nothing is stored.
            input.off('data', onData);
            return reject(
              new PromptCancelled('an arrow or function key was pressed; nothing stored: paste the token again'),
            );
          }
          if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
          else if (ch === '\u0015')
            typed = ''; // Ctrl-U: start over
          else if (ch >= ' ') typed += ch;
        }
      };
      input.on('data', onData);
    });
    return line.trim();
  } finally {
    input.setRawMode?.(false);
    input.pause();
    output.write('\n');
  }
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
  /** Invocations of the recovery function that may fail in a row before the command gives up. @default 3 */
  readonly maxFailures?: number;
}

/** What the recovery function answers. */
type Recovered = RecoveryReport;

/** Thrown when recovery did not finish; the message is the one line to print. */
export class RecoveryFailed extends Error {}

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
  if (options.recoverFunction) await recoverAndWait(options.recoverFunction, options);
}

/**
 * Invokes the recovery function and waits for its answer, again while it answers `done: false` (it
 * stops before its timeout and goes on where it stopped), and prints the counts.
 */
async function recoverAndWait(functionName: string, options: RotateOptions): Promise<void> {
  const since = (options.since ?? new Date(Date.now() - 24 * 3600_000)).toISOString();
  // One invocation may run 15 minutes: no SDK retry (it would run it twice) and no socket timeout before that.
  const lambda =
    options.lambda ?? new LambdaClient({ maxAttempts: 1, requestHandler: { requestTimeout: 16 * 60_000 } });
  // The name is never printed, nor AWS's errors that quote it: a token pasted there by mistake stays unseen.
  options.print(`recovering deliveries rejected since ${since} with the recovery function; waiting for it`);
  let recovered = 0;
  let failures = 0;
  for (let run = 1; ; run++) {
    let answer: Recovered;
    try {
      const out = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify({ since })),
        }),
      );
      const text = Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8');
      if (out.FunctionError) throw new Error(`${out.FunctionError}: ${errorMessageOf(text)}`);
      answer = JSON.parse(text) as Recovered;
      if (typeof answer?.recovered !== 'number') throw new Error('the function did not answer with counts');
    } catch (err) {
      failures++;
      const reason = (err as Error).message.split(functionName).join('<function>');
      if (failures >= (options.maxFailures ?? 3)) {
        throw new RecoveryFailed(
          `recovery failed ${failures} times in a row (last: ${reason}); ${recovered} recovered so far. ` +
            'Nothing is lost: run it again, or see the function logs',
        );
      }
      options.print(`recovery run ${run} failed (${reason}); it resumes where it stopped: trying again`);
      continue;
    }
    failures = 0;
    recovered += answer.recovered;
    if (answer.done) {
      options.print(
        `recovered ${recovered} deliveries into the delivery queue (last pass: examined ${answer.examined}, ` +
          `still rejected ${answer.stillRejected}, already stored ${answer.alreadyStored}` +
          `${answer.unreadable ? `, unreadable ${answer.unreadable}` : ''})`,
      );
      return;
    }
    options.print(`recovery run ${run}: ${answer.recovered} recovered; not done yet, going on`);
  }
}

function errorMessageOf(payload: string): string {
  try {
    const e = JSON.parse(payload) as { errorMessage?: string };
    return (e.errorMessage ?? 'unknown error').slice(0, 300);
  } catch {
    return 'unknown error';
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
    const parsed = parseArgs({
      args: process.argv.slice(2),
      strict: false,
      allowPositionals: true,
      options: {
        'secret-id': { type: 'string' },
        'lake-dir': { type: 'string' },
        'recover-function': { type: 'string' },
        since: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    values = parsed.values as typeof values;
    // Nothing the user passed is repeated: a token pasted in the wrong place must not reach the terminal.
    if (parsed.positionals.length > 0) {
      throw new UsageError(
        `takes no positional arguments (got ${parsed.positionals.length}, not shown): never pass the token as an argument; ` +
          'pipe it in or type it at the prompt',
      );
    }
    const known = new Set(['secret-id', 'lake-dir', 'recover-function', 'since', 'help', 'h']);
    const unknown = Object.keys(values).filter((k) => !known.has(k));
    if (unknown.length > 0) throw new UsageError(`unknown option (${unknown.length}, not shown); see the usage below`);
    for (const name of ['secret-id', 'lake-dir', 'recover-function', 'since']) {
      if (values[name] !== undefined && typeof values[name] !== 'string')
        throw new UsageError(`--${name} needs a value`);
    }
    if (values.help) throw new UsageError('');
    if (Boolean(values['secret-id']) === Boolean(values['lake-dir']))
      throw new UsageError('pass either --secret-id or --lake-dir');
    if (values['recover-function'] && !values['secret-id'])
      throw new UsageError('--recover-function goes with --secret-id');
    if (values.since !== undefined && Number.isNaN(Date.parse(String(values.since)))) {
      throw new UsageError('--since must be an ISO 8601 time, e.g. 2026-11-27T09:00:00Z');
    }
  } catch (err) {
    // Only our own messages, which never quote an argument.
    const message = err instanceof UsageError ? err.message : 'could not read the arguments';
    if (message) console.error(`rotate-token: ${message}\n`);
    console.error(USAGE);
    return 2;
  }
  let token: string;
  try {
    token = await readToken();
  } catch (err) {
    if (err instanceof PromptCancelled) {
      console.error(`rotate-token: ${err.message === 'cancelled' ? 'cancelled' : err.message}; nothing changed`);
      return 130;
    }
    throw err;
  }
  try {
    checkToken(token);
  } catch (err) {
    console.error(`rotate-token: ${(err as Error).message}`);
    return 2;
  }
  try {
    await rotateToken({
      token,
      secretId: values['secret-id'] as string | undefined,
      lakeDir: values['lake-dir'] as string | undefined,
      recoverFunction: values['recover-function'] as string | undefined,
      since: values.since ? new Date(String(values.since)) : undefined,
      print: (line) => console.log(line),
    });
  } catch (err) {
    if (err instanceof RecoveryFailed) {
      console.error(`rotate-token: the token is in place, but ${err.message}`);
      return 1;
    }
    throw err;
  }
  return 0;
}

if (require.main === module) runCli('rotate-token', main);
