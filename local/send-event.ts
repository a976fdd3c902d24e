/**
 * `send-event <verify|vehicle-state|vehicle-error|schedule|event-based> [--url URL | --stack NAME] [--token TOKEN]
 *  [--count N] [--bad-signature]` (cli/registry.ts): builds a realistic delivery, signs it, POSTs it and says what happened.
 * Works against `npm start` (default) or a deployed callback URL (the post-deploy smoke test).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { lakeDirOf, type ParsedArgs, runCommand, str, UsageError } from '../cli/args';
import { SPECS } from '../cli/registry';
import { Resources } from '../cli/stack';
import { challengeResponse, hmacHex } from '../lambda/core/signature';
import { buildEvent, EVENT_KINDS, type EventKind } from './events';
import { DEV_TOKEN_FILE } from './token-files';

export interface SendOptions {
  readonly kind: EventKind;
  readonly url: string;
  readonly token: string;
  readonly badSignature?: boolean;
  readonly timeoutMs?: number;
}

export interface SendResult {
  readonly ok: boolean;
  readonly status: number | null;
  /** One line for a person. */
  readonly summary: string;
  readonly body: Buffer;
  readonly eventId?: string;
}

/** Sends one event and judges the answer: verify wants the right HMAC, data events a 2xx, a bad signature a 401. */
export async function sendEvent(options: SendOptions): Promise<SendResult> {
  const event = buildEvent(options.kind);
  const signature = options.badSignature
    ? hmacHex(`not-${options.token}`, event.body)
    : hmacHex(options.token, event.body);
  let res: Response;
  try {
    res = await fetch(options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Smartcar/local-send-event',
        'sc-signature': signature,
      },
      body: event.body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    return { ok: false, status: null, summary: `could not reach ${options.url}: ${cause}`, body: event.body };
  }
  const text = await res.text();
  const base = { status: res.status, body: event.body, eventId: event.eventId };
  if (options.badSignature) {
    const ok = res.status === 401;
    return {
      ...base,
      ok,
      summary: ok
        ? `${options.kind} with a bad signature: 401 as expected`
        : `${options.kind} with a bad signature: expected 401, got ${res.status} ${text.slice(0, 200)}`,
    };
  }
  if (options.kind === 'verify') {
    let answer: unknown;
    try {
      answer = (JSON.parse(text) as { challenge?: unknown }).challenge;
    } catch {
      answer = undefined;
    }
    const expected = challengeResponse(options.token, event.challenge as string);
    const ok = res.status === 200 && answer === expected;
    return {
      ...base,
      ok,
      summary: ok
        ? 'verify: 200, challenge answered with the correct HMAC'
        : res.status !== 200
          ? `verify: HTTP ${res.status} ${text.slice(0, 200)}`
          : `verify: 200 but the challenge answer is wrong (is --token the receiver's management token?)`,
    };
  }
  const ok = res.status >= 200 && res.status < 300;
  return {
    ...base,
    ok,
    summary: `${options.kind}: HTTP ${res.status}${ok ? ` (eventId ${event.eventId ?? 'legacy: body hash'})` : ` ${text.slice(0, 200)}`}`,
  };
}

/** The delivery to send and how often, from the flags (and, with `--stack`, the stack's outputs). */
export async function parseSendArgs(
  args: ParsedArgs,
  env = process.env,
  secretValue: (secretId: string) => Promise<string> = readSecret,
): Promise<{ options: SendOptions; count: number }> {
  const kind = args.positionals[0] as EventKind;
  if (!EVENT_KINDS.includes(kind))
    throw new UsageError(`unknown event kind "${kind}"; one of ${EVENT_KINDS.join(', ')}`);
  const count = args.values.count === undefined ? 1 : Number(args.values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    throw new UsageError(`--count must be a whole number from 1 to 10000, got "${args.values.count}"`);
  if (str(args, 'stack') && str(args, 'lake-dir'))
    throw new UsageError('--lake-dir is for the local receiver, not with --stack');
  const resources = await Resources.of(args);
  const url =
    resources.optional('url', 'CallbackUrl') ??
    (resources.deployed
      ? resources.required('url', 'CallbackUrl', 'the callback URL')
      : `http://127.0.0.1:${env.PORT || 3000}/webhooks`);
  try {
    const parsedUrl = new URL(url);
    if (!/^https?:$/.test(parsedUrl.protocol)) throw new Error();
  } catch {
    throw new UsageError(`--url "${url}" is not an http(s) URL`);
  }
  let token = str(args, 'token');
  if (!token && resources.deployed) {
    // The deployed receiver's own token, read for this call only and never printed.
    token = (await secretValue(resources.required(undefined, 'ManagementTokenSecretArn', 'the token secret'))).trim();
  }
  token ??= env.SMARTCAR_MANAGEMENT_TOKEN;
  if (!token) {
    const file = path.join(lakeDirOf(args, env), DEV_TOKEN_FILE);
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch {
      throw new UsageError(
        `no token: pass --token, set SMARTCAR_MANAGEMENT_TOKEN, or start the local receiver first (start writes ${file})`,
      );
    }
  }
  return { options: { kind, url, token, badSignature: Boolean(args.values['bad-signature']) }, count };
}

async function readSecret(secretId: string): Promise<string> {
  const { GetSecretValueCommand, SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  return out.SecretString ?? '';
}

/** The command: `npm run send-event -- …` or `smartcar-webhooks send-event …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS['send-event'], argv, async (parsed) => {
    const args = await parseSendArgs(parsed);
    let failures = 0;
    for (let i = 0; i < args.count; i++) {
      const result = await sendEvent(args.options);
      console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${result.summary}`);
      if (!result.ok) failures++;
    }
    if (args.count > 1) console.log(`${args.count - failures}/${args.count} as expected`);
    return failures === 0 ? 0 : 1;
  });
}
