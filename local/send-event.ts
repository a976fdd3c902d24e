/**
 * `npm run send-event -- <verify|vehicle-state|vehicle-error|schedule|event-based> [--url URL] [--token TOKEN]
 *  [--count N] [--bad-signature]`: builds a realistic delivery, signs it, POSTs it and says what happened.
 * Works against `npm start` (default) or a deployed callback URL (the post-deploy smoke test).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { challengeResponse, hmacHex } from '../lambda/core/signature';
import { runCli } from './cli';
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

const USAGE = `usage: npm run send-event -- <${EVENT_KINDS.join('|')}> [--url URL] [--token TOKEN] [--count N] [--bad-signature]

  --url URL         callback URL (default http://127.0.0.1:\${PORT:-3000}/webhooks, the local receiver)
  --token TOKEN     management token to sign with (default $SMARTCAR_MANAGEMENT_TOKEN, else the local
                    receiver's development token in $LOCAL_LAKE_DIR/${DEV_TOKEN_FILE})
  --count N         send N events (default 1)
  --bad-signature   sign wrongly and expect 401`;

export function parseSendArgs(argv: string[], env = process.env): { options: SendOptions; count: number } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        count: { type: 'string' },
        'bad-signature': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new UsageError('');
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0 ? 'which event? name one kind' : `one kind at a time, got ${positionals.join(' ')}`,
    );
  const kind = positionals[0] as EventKind;
  if (!EVENT_KINDS.includes(kind)) throw new UsageError(`unknown event kind "${kind}"`);
  const count = values.count === undefined ? 1 : Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    throw new UsageError(`--count must be a whole number from 1 to 10000, got "${values.count}"`);
  const url = (values.url as string | undefined) ?? `http://127.0.0.1:${env.PORT || 3000}/webhooks`;
  try {
    const parsedUrl = new URL(url);
    if (!/^https?:$/.test(parsedUrl.protocol)) throw new Error();
  } catch {
    throw new UsageError(`--url "${url}" is not an http(s) URL`);
  }
  let token = (values.token as string | undefined) ?? env.SMARTCAR_MANAGEMENT_TOKEN;
  if (!token) {
    const file = path.join(path.resolve(env.LOCAL_LAKE_DIR || 'local-lake'), DEV_TOKEN_FILE);
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch {
      throw new UsageError(
        `no token: pass --token, set SMARTCAR_MANAGEMENT_TOKEN, or start the local receiver first (npm start writes ${file})`,
      );
    }
  }
  return { options: { kind, url, token, badSignature: Boolean(values['bad-signature']) }, count };
}

export class UsageError extends Error {}

/** The command, as `npm run` runs it: reads process.argv and process.env, returns the exit code. */
export async function main(): Promise<number> {
  let args: ReturnType<typeof parseSendArgs>;
  try {
    args = parseSendArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) console.error(`send-event: ${err.message}\n`);
      console.error(USAGE);
      return 2;
    }
    throw err;
  }
  let failures = 0;
  for (let i = 0; i < args.count; i++) {
    const result = await sendEvent(args.options);
    console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${result.summary}`);
    if (!result.ok) failures++;
  }
  if (args.count > 1) console.log(`${args.count - failures}/${args.count} as expected`);
  return failures === 0 ? 0 : 1;
}

if (require.main === module) runCli('send-event', main);
