/**
 * `send-event <verify|vehicle-state|vehicle-error|schedule|event-based> [--url URL | --stack NAME] [--token TOKEN]
 *  [--count N] [--bad-signature]` (cli/registry.ts): builds a realistic delivery, signs it, POSTs it and says what happened.
 * `send-event --from-lake EVENT_ID` and `--from-file PATH` send a stored body instead, byte for byte, signed
 * with the target's token: the delivery someone is debugging, against this code or another receiver.
 * Works against `npm start` (default) or a deployed callback URL (the post-deploy smoke test).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { lakeDirOf, type ParsedArgs, runCommand, str, UsageError } from '../cli/args';
import { SPECS } from '../cli/registry';
import { Resources } from '../cli/stack';
import { parseBody, readEnvelope } from '../lambda/core/envelope';
import { challengeResponse, hmacHex, isAnswerableChallenge } from '../lambda/core/signature';
import { buildEvent, EVENT_KINDS, type EventKind } from './events';
import { findInLake, PayloadNotFound, readPayloadFile, type StoredPayload } from './stored-payload';
import { DEV_TOKEN_FILE } from './token-files';

/** Where to send and how to sign. */
export interface TargetOptions {
  readonly url: string;
  readonly token: string;
  readonly badSignature?: boolean;
  readonly timeoutMs?: number;
}

export interface SendOptions extends TargetOptions {
  readonly kind: EventKind;
}

export interface SendResult {
  readonly ok: boolean;
  readonly status: number | null;
  /** One line for a person. */
  readonly summary: string;
  readonly body: Buffer;
  readonly eventId?: string;
}

/** What to send: a kind built fresh, or a stored body. */
export type EventSource = { readonly kind: EventKind } | { readonly fromLake: string } | { readonly fromFile: string };

/** Sends one event and judges the answer: verify wants the right HMAC, data events a 2xx, a bad signature a 401. */
export async function sendEvent(options: SendOptions): Promise<SendResult> {
  const event = buildEvent(options.kind);
  return deliver(options, {
    label: options.kind,
    body: event.body,
    eventId: event.eventId,
    challenge: event.challenge,
    idNote: ` (eventId ${event.eventId ?? 'legacy: body hash'})`,
    headers: { 'user-agent': 'Smartcar/local-send-event' },
  });
}

/**
 * Sends a stored body again, exactly, with a new `SC-Signature` from the target's token. The lake keeps no
 * headers, so only Content-Type and the signature go with it. A VERIFY body's answer is checked too.
 */
export async function sendStored(options: TargetOptions & { readonly payload: StoredPayload }): Promise<SendResult> {
  const { body, eventId } = options.payload;
  const parsed = parseBody(body);
  const envelope = parsed.ok ? readEnvelope(parsed.json, body) : undefined;
  const challenge = envelope?.kind === 'verify' ? envelope.challenge : null;
  return deliver(options, {
    label: `replay of ${eventId ?? 'the file'}`,
    body,
    eventId,
    challenge: challenge !== null && isAnswerableChallenge(challenge) ? challenge : undefined,
    idNote: '',
    headers: {},
  });
}

interface Outgoing {
  readonly label: string;
  readonly body: Buffer;
  readonly eventId?: string;
  /** A VERIFY challenge, whose answer is checked. */
  readonly challenge?: string;
  /** Said after a 2xx. */
  readonly idNote: string;
  readonly headers: Record<string, string>;
}

async function deliver(options: TargetOptions, out: Outgoing): Promise<SendResult> {
  const signature = options.badSignature ? hmacHex(`not-${options.token}`, out.body) : hmacHex(options.token, out.body);
  let res: Response;
  try {
    res = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...out.headers, 'sc-signature': signature },
      body: out.body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    return { ok: false, status: null, summary: `could not reach ${options.url}: ${cause}`, body: out.body };
  }
  const text = await res.text();
  const base = { status: res.status, body: out.body, eventId: out.eventId };
  if (options.badSignature) {
    const ok = res.status === 401;
    return {
      ...base,
      ok,
      summary: ok
        ? `${out.label} with a bad signature: 401 as expected`
        : `${out.label} with a bad signature: expected 401, got ${res.status} ${text.slice(0, 200)}`,
    };
  }
  if (out.challenge !== undefined) {
    let answer: unknown;
    try {
      answer = (JSON.parse(text) as { challenge?: unknown }).challenge;
    } catch {
      answer = undefined;
    }
    const expected = challengeResponse(options.token, out.challenge);
    const ok = res.status === 200 && answer === expected;
    return {
      ...base,
      ok,
      summary: ok
        ? `${out.label}: 200, challenge answered with the correct HMAC`
        : res.status !== 200
          ? `${out.label}: HTTP ${res.status} ${text.slice(0, 200)}`
          : `${out.label}: 200 but the challenge answer is wrong (is --token the receiver's management token?)`,
    };
  }
  const ok = res.status >= 200 && res.status < 300;
  return {
    ...base,
    ok,
    summary: `${out.label}: HTTP ${res.status}${ok ? out.idNote : ` ${text.slice(0, 200)}`}`,
  };
}

/**
 * What to send, from the arguments: exactly one of a kind, `--from-lake` and `--from-file`. Throws a
 * {@link UsageError} naming the choices when none is given, and what was given when several are.
 */
export function eventSourceOf(args: ParsedArgs): EventSource {
  const fromLake = str(args, 'from-lake');
  const fromFile = str(args, 'from-file');
  const given = [
    ...args.positionals.map((k) => `"${k}"`),
    ...(fromLake !== undefined ? ['--from-lake'] : []),
    ...(fromFile !== undefined ? ['--from-file'] : []),
  ];
  if (given.length === 0)
    throw new UsageError(
      `${SPECS['send-event'].missing}; or resend a stored body with --from-lake EVENT_ID or --from-file PATH`,
    );
  if (given.length > 1)
    throw new UsageError(
      `one event at a time, got ${given.join(' and ')}: drop ${given.length > 2 ? 'all but one' : 'one'}`,
    );
  if (fromLake !== undefined) {
    if (fromLake.trim() === '')
      throw new UsageError('--from-lake needs an eventId (or the sha256:… id of a legacy body)');
    return { fromLake: fromLake.trim() };
  }
  if (fromFile !== undefined) {
    if (fromFile === '') throw new UsageError('--from-file needs a path');
    return { fromFile };
  }
  const kind = args.positionals[0] as EventKind;
  if (!EVENT_KINDS.includes(kind))
    throw new UsageError(`unknown event kind "${kind}"; one of ${EVENT_KINDS.join(', ')}`);
  return { kind };
}

/** The delivery to send, where and how often, from the flags (and, with `--stack`, the stack's outputs). */
export async function parseSendArgs(
  args: ParsedArgs,
  env = process.env,
  secretValue: (secretId: string) => Promise<string> = readSecret,
): Promise<{ options: TargetOptions; source: EventSource; count: number }> {
  const source = eventSourceOf(args);
  const count = args.values.count === undefined ? 1 : Number(args.values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    throw new UsageError(`--count must be a whole number from 1 to 10000, got "${args.values.count}"`);
  // With --from-lake, --lake-dir names the lake to read from, whichever receiver is the target.
  if (str(args, 'stack') && str(args, 'lake-dir') && !('fromLake' in source))
    throw new UsageError('--lake-dir is for the local receiver (or the lake --from-lake reads), not with --stack');
  const resources = await Resources.of(args);
  const url = args.values['error-callback']
    ? errorCallbackUrl(args, resources, env)
    : (resources.optional('url', 'CallbackUrl') ??
      (resources.deployed
        ? resources.required('url', 'CallbackUrl', 'the callback URL')
        : `http://127.0.0.1:${env.PORT || 3000}/webhooks`));
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
  return { options: { url, token, badSignature: Boolean(args.values['bad-signature']) }, source, count };
}

/** `--error-callback`: the stack's vehicle error callback URL, else the local receiver's error path. */
function errorCallbackUrl(args: ParsedArgs, resources: Resources, env: NodeJS.ProcessEnv): string {
  if (str(args, 'url') !== undefined) throw new UsageError('--url names the target itself: drop --error-callback');
  if (resources.deployed) return resources.required(undefined, 'ErrorCallbackUrl', 'the vehicle error callback URL');
  const errorPath = env.LOCAL_ERROR_CALLBACK_PATH;
  if (!errorPath?.startsWith('/'))
    throw new UsageError(
      '--error-callback needs LOCAL_ERROR_CALLBACK_PATH (as npm start was given, e.g. /webhooks/errors) or --stack',
    );
  return `http://127.0.0.1:${env.PORT || 3000}${errorPath}`;
}

async function readSecret(secretId: string): Promise<string> {
  const { GetSecretValueCommand, SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  return out.SecretString ?? '';
}

/** The command: `npm run send-event -- …` or `smartcar-webhooks send-event …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS['send-event'], argv, async (parsed) => {
    const { options, source, count } = await parseSendArgs(parsed);
    let send: () => Promise<SendResult>;
    if ('kind' in source) send = () => sendEvent({ ...options, kind: source.kind });
    else {
      let payload: StoredPayload;
      try {
        payload =
          'fromLake' in source
            ? await findInLake(lakeDirOf(parsed), source.fromLake)
            : await readPayloadFile(source.fromFile);
      } catch (err) {
        // Well-formed arguments naming something that is not there (yet): one line, no usage, exit 1.
        if (!(err instanceof PayloadNotFound)) throw err;
        console.error(`send-event: ${err.message}`);
        return 1;
      }
      console.log(`from ${payload.from}`);
      send = () => sendStored({ ...options, payload });
    }
    let failures = 0;
    for (let i = 0; i < count; i++) {
      const result = await send();
      console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${result.summary}`);
      if (!result.ok) failures++;
    }
    if (count > 1) {
      // Every copy carries the same eventId (or body hash): the receiver keeps one, whatever it answers.
      const once = 'kind' in source ? '' : '; the receiver stores an eventId once, so at most one of them was stored';
      console.log(`${count - failures}/${count} as expected${once}`);
    }
    return failures === 0 ? 0 : 1;
  });
}
