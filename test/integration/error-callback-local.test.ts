/**
 * The local counterpart of `errorCallbackPath` (issue 22): `npm start` with LOCAL_ERROR_CALLBACK_PATH answers
 * Smartcar's vehicle error callback URI on a second path, verified and stored exactly like the callback,
 * and `send-event --error-callback` targets it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { challengeResponse, hmacHex } from '../../lambda/core/signature';
import { readLake } from '../../local/file-lake';
import { main as sendEventMain } from '../../local/send-event';
import { type LocalServer, startLocalServer } from '../../local/server';
import { errorCallbackPathOf, startFromEnv } from '../../local/start';
import { rawBodyOf } from '../../local/stored-payload';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { fixture } from '../support/fixtures';

const TOKEN = 'local-error-callback-token';
const ERRORS = '/webhooks/errors';
const silent = { info() {}, warn() {}, error() {} };

let server: LocalServer;
let lakeDir: string;
beforeAll(async () => {
  lakeDir = mkdtempSync(path.join(tmpdir(), 'error-callback-lake-'));
  server = await startLocalServer({
    lakeDir,
    managementToken: TOKEN,
    port: 0,
    batchWindowMs: 60_000,
    logger: silent,
    inspector: false,
    errorPath: ERRORS,
  });
});
afterAll(async () => {
  await server?.close();
});

const post = (url: string, body: Buffer | string, signature?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'sc-signature': signature } : {}) },
    body,
  });

async function stored(eventType: string) {
  await server.flush();
  return [...(await readLake(lakeDir)).values()].flat().filter((r) => r.event_type === eventType);
}

it('stores a signed VEHICLE_ERROR posted to the error path in the lake, byte for byte', async () => {
  expect(server.errorUrl).toBe(server.url.replace(/\/webhooks$/, ERRORS));
  const body = fixture('vehicle-error');
  const res = await post(server.errorUrl as string, body, hmacHex(TOKEN, body));
  expect(res.status).toBe(200);
  const [record] = await stored('VEHICLE_ERROR');
  expect(rawBodyOf(record).equals(body)).toBe(true);
});

it('answers VERIFY on the error path, refuses a bad signature there, and 404s other paths naming both', async () => {
  const challenge = await post(server.errorUrl as string, fixture('verify-current'));
  expect(challenge.status).toBe(200);
  const { challenge: sent } = JSON.parse(fixture('verify-current').toString()).data;
  expect(await challenge.json()).toEqual({ challenge: challengeResponse(TOKEN, sent) });

  const body = fixture('vehicle-error');
  expect((await post(server.errorUrl as string, body, hmacHex('wrong', body))).status).toBe(401);
  const other = await post(server.url.replace(/\/webhooks$/, '/webhooks/error'), body, hmacHex(TOKEN, body));
  expect(other.status).toBe(404);
  expect(await other.json()).toEqual({
    error: `not found; the callback is POST /webhooks (vehicle errors: POST ${ERRORS})`,
  });
});

describe('send-event --error-callback', () => {
  const port = () => new URL(server.url).port;
  const cli = (args: string[], env: Record<string, string | undefined>) =>
    runInProcess('send-event', sendEventMain, args, { SMARTCAR_MANAGEMENT_TOKEN: TOKEN, PORT: port(), ...env });

  it('sends to http://127.0.0.1:$PORT$LOCAL_ERROR_CALLBACK_PATH, where it is stored', async () => {
    const before = (await stored('VEHICLE_ERROR')).length;
    const result = await cli(['vehicle-error', '--error-callback'], { LOCAL_ERROR_CALLBACK_PATH: ERRORS });
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toMatch(/^ok /m);
    expect(await stored('VEHICLE_ERROR')).toHaveLength(before + 1);
  });

  it('says what is missing without LOCAL_ERROR_CALLBACK_PATH, and refuses it with --url', async () => {
    expectCleanFailure(
      await cli(['vehicle-error', '--error-callback'], { LOCAL_ERROR_CALLBACK_PATH: undefined }),
      2,
      /--error-callback needs LOCAL_ERROR_CALLBACK_PATH/,
    );
    expectCleanFailure(
      await cli(['vehicle-error', '--error-callback', '--url', server.url], { LOCAL_ERROR_CALLBACK_PATH: ERRORS }),
      2,
      /--url names the target itself/,
    );
  });
});

describe('npm start', () => {
  it('reads LOCAL_ERROR_CALLBACK_PATH, checks it, and prints the error URL', async () => {
    expect(errorCallbackPathOf({})).toBeUndefined();
    expect(errorCallbackPathOf({ LOCAL_ERROR_CALLBACK_PATH: ERRORS })).toBe(ERRORS);
    expect(() => errorCallbackPathOf({ LOCAL_ERROR_CALLBACK_PATH: 'errors' })).toThrow(/must start with "\/"/);
    expect(() => errorCallbackPathOf({ LOCAL_ERROR_CALLBACK_PATH: '/webhooks' })).toThrow(/must differ/);
    const printed: string[] = [];
    const started = await startFromEnv(
      {
        LOCAL_LAKE_DIR: mkdtempSync(path.join(tmpdir(), 'error-callback-start-')),
        PORT: '0',
        SMARTCAR_MANAGEMENT_TOKEN: TOKEN,
        LOCAL_ERROR_CALLBACK_PATH: ERRORS,
      },
      (text) => void printed.push(text),
    );
    try {
      expect(started.errorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks\/errors$/);
      expect(printed.join('\n')).toContain(`error URL      ${started.errorUrl}`);
    } finally {
      await started.close();
    }
  });
});
