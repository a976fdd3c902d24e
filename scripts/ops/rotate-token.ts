/**
 * Puts a new application management token in place, reading it from standard input or a hidden prompt,
 * never from the command line (argv lands in shell history and process listings).
 *
 *   smartcar-webhooks rotate-token --stack NAME [--instance PREFIX] [--no-recover] [--since ISO]
 *   smartcar-webhooks rotate-token --secret-id <secret ARN> [--recover-function <name> [--since ISO]]
 *   smartcar-webhooks rotate-token [--lake-dir local-lake]      (the local receiver of `start`)
 * (in this repository: npm run rotate-token -- …, the same flags)
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

import { existsSync } from 'node:fs';
import { stdin, stdout } from 'node:process';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { flag, lakeDirOf, type ParsedArgs, runCommand, str, UsageError, usageText } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import type { RecoveryReport } from '../../lambda/core/quarantine';
import { rotateFileToken } from '../../local/token-files';

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
    // The folder is not repeated: it came from an argument, which may be a token pasted in the wrong place.
    options.print(
      replaced
        ? 'local token rotated in the local lake; the previous one is still accepted for 24 hours'
        : 'local token set in the local lake',
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

/** Where the token goes, from the flags (and the stack's outputs); checked before the token is read. */
export async function rotationTarget(
  args: ParsedArgs,
): Promise<{ secretId?: string; lakeDir?: string; recoverFunction?: string; since?: Date }> {
  const stack = str(args, 'stack');
  if (stack && str(args, 'secret-id')) throw new UsageError('pass either --stack or --secret-id');
  if ((stack || str(args, 'secret-id')) && str(args, 'lake-dir'))
    throw new UsageError('--lake-dir is for the local receiver, not with --stack or --secret-id');
  if (str(args, 'recover-function') && !str(args, 'secret-id'))
    throw new UsageError('--recover-function goes with --secret-id (with --stack it comes from the outputs)');
  if (flag(args, 'no-recover') && !stack) throw new UsageError('--no-recover goes with --stack');
  const since = str(args, 'since');
  // Our own words only: the value may be a token pasted into the wrong place.
  if (since !== undefined && Number.isNaN(Date.parse(since)))
    throw new UsageError('--since must be an ISO 8601 time, e.g. 2026-11-27T09:00:00Z');
  if (since !== undefined && !stack && !str(args, 'recover-function'))
    throw new UsageError('--since goes with --stack or --recover-function');
  const resources = await Resources.of(args);
  if (resources.deployed) {
    return {
      secretId: resources.required(undefined, 'ManagementTokenSecretArn', 'the management token secret'),
      recoverFunction: flag(args, 'no-recover') ? undefined : resources.optional(undefined, 'RecoveryFunctionName'),
      since: since ? new Date(since) : undefined,
    };
  }
  if (str(args, 'secret-id'))
    return {
      secretId: str(args, 'secret-id'),
      recoverFunction: str(args, 'recover-function'),
      since: since ? new Date(since) : undefined,
    };
  const lakeDir = lakeDirOf(args);
  // Never made here: a mistyped (or pasted) --lake-dir must not become a folder holding a token.
  if (!existsSync(lakeDir))
    throw new UsageError('the local lake does not exist: start the receiver with it first (nothing written)');
  return { lakeDir };
}

/** The command: `npm run rotate-token -- …` or `smartcar-webhooks rotate-token …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  if (argv.some((a) => a === '--token' || a.startsWith('--token='))) {
    console.error(
      'rotate-token: never pass the token as an argument (shell history, process lists): pipe it in or type it at the prompt\n',
    );
    console.error(usageText(SPECS['rotate-token']));
    return 2;
  }
  return runCommand(SPECS['rotate-token'], argv, async (args) => {
    const target = await rotationTarget(args);
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
    checkToken(token);
    try {
      await rotateToken({ token, ...target, print: (line) => console.log(line) });
    } catch (err) {
      if (err instanceof RecoveryFailed) {
        console.error(`rotate-token: the token is in place, but ${err.message}`);
        return 1;
      }
      throw err;
    }
    return 0;
  });
}
