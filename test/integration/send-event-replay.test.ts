/**
 * `send-event --from-lake` and `--from-file`: a stored delivery goes to another receiver byte for byte,
 * re-signed with that receiver's token, and is stored there identical; legacy bodies are found by their
 * sha256 id; the first received of several copies is the one sent; what is not there is one line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bodyHashId } from '../../lambda/core/envelope';
import { encodeNdjsonGzip, toLakeRecord } from '../../lambda/core/lake';
import { hmacHex } from '../../lambda/core/signature';
import { putLakeObject, readLake } from '../../local/file-lake';
import { sendEvent, main as sendEventMain } from '../../local/send-event';
import { type LocalServer, startLocalServer } from '../../local/server';
import { findInLake, rawBodyOf } from '../../local/stored-payload';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const TOKEN_A = 'token-of-receiver-a';
const TOKEN_B = 'token-of-receiver-b';
const silent = { info() {}, warn() {}, error() {} };
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'replay-lake-'));

let a: LocalServer;
let b: LocalServer;
let lakeA: string;
let lakeB: string;
beforeAll(async () => {
  lakeA = tempDir();
  lakeB = tempDir();
  a = await startLocalServer({
    lakeDir: lakeA,
    managementToken: TOKEN_A,
    port: 0,
    batchWindowMs: 60_000,
    logger: silent,
  });
  b = await startLocalServer({
    lakeDir: lakeB,
    managementToken: TOKEN_B,
    port: 0,
    batchWindowMs: 60_000,
    logger: silent,
  });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

/** Posts `body` to receiver A as Smartcar would, and writes A's batch to its lake. */
async function deliverToA(body: Buffer): Promise<void> {
  const res = await fetch(a.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'sc-signature': hmacHex(TOKEN_A, body) },
    body,
  });
  expect(res.status).toBe(200);
  await a.flush();
}

/** Every record receiver B stored with this eventId. */
async function storedInB(eventId: string) {
  await b.flush();
  return [...(await readLake(lakeB)).values()].flat().filter((r) => r.event_id === eventId);
}

const sendEventCli = (args: string[]) =>
  runInProcess('send-event', sendEventMain, args, { LOCAL_LAKE_DIR: lakeA, SMARTCAR_MANAGEMENT_TOKEN: '' });

it('re-sends a stored delivery byte for byte, signed with the target token; --count sends it again, stored once', async () => {
  // Formatting, key order and escapes that any parse-and-serialize would change.
  const pretty = JSON.stringify(JSON.parse(vehicleState('evt-replay-1', { value: 81 })), null, 3);
  const body = Buffer.from(`{ "note" : "caf\\u00e9 \u00e9",${pretty.slice(1)}\n`, 'utf8');
  expect(JSON.stringify(JSON.parse(body.toString()))).not.toBe(body.toString());
  await deliverToA(body);

  const result = await sendEventCli([
    '--from-lake',
    'evt-replay-1',
    '--url',
    b.url,
    '--token',
    TOKEN_B,
    '--lake-dir',
    lakeA,
    '--count',
    '2',
  ]);
  expect(result).toMatchObject({ code: 0 });
  expect(result.stdout).toMatch(/^from .*raw.*event_type=VEHICLE_STATE.*\.ndjson\.gz line 1 \(VEHICLE_STATE/m);
  expect(result.stdout).toMatch(/ok\s+replay of evt-replay-1: HTTP 200/);
  expect(result.stdout).toMatch(/2\/2 as expected; the receiver stores an eventId once/);
  const [inA] = [...(await readLake(lakeA)).values()].flat();
  const inB = await storedInB('evt-replay-1');
  expect(inB).toHaveLength(1); // sent twice, deduplicated by eventId
  expect(rawBodyOf(inB[0]).equals(body)).toBe(true);
  expect(inB[0].body).toBe(inA.body);

  // The signature is the target's: signed with A's token, B refuses it.
  const wrongToken = await sendEventCli(['--from-lake', 'evt-replay-1', '--url', b.url, '--token', TOKEN_A]);
  expect(wrongToken.code).toBe(1);
  expect(wrongToken.stdout).toMatch(/FAIL replay of evt-replay-1: HTTP 401/);
  // --bad-signature still means: expect the 401.
  const bad = await sendEventCli([
    '--from-lake',
    'evt-replay-1',
    '--url',
    b.url,
    '--token',
    TOKEN_B,
    '--bad-signature',
  ]);
  expect(bad.stdout).toMatch(/ok\s+replay of evt-replay-1 with a bad signature: 401 as expected/);
  expect(bad.code).toBe(0);
});

it('finds a legacy (schedule) body by its sha256 id, and sends --from-file bytes that are not UTF-8', async () => {
  const sent = await sendEvent({ kind: 'schedule', url: a.url, token: TOKEN_A });
  expect(sent.ok).toBe(true);
  await a.flush();
  const id = bodyHashId(sent.body);
  const legacy = await sendEventCli(['--from-lake', id, '--url', b.url, '--token', TOKEN_B]);
  expect(legacy).toMatchObject({ code: 0 });
  expect(legacy.stdout).toMatch(/\(schedule, received/);
  const [stored] = await storedInB(id);
  expect(rawBodyOf(stored).equals(sent.body)).toBe(true);

  // A Latin-1 byte inside a string: the lake keeps it as body_base64, and the file is sent as it is.
  const latin1 = Buffer.concat([
    Buffer.from('{"eventId":"evt-latin1","eventType":"VEHICLE_STATE","meta":{"mode":"TEST"},"x":"'),
    Buffer.from([0xe9]),
    Buffer.from('"}'),
  ]);
  const file = path.join(tempDir(), 'body.json');
  writeFileSync(file, latin1);
  const fromFile = await sendEventCli(['--from-file', file, '--url', b.url, '--token', TOKEN_B]);
  expect(fromFile).toMatchObject({ code: 0 });
  expect(fromFile.stdout).toMatch(/ok\s+replay of evt-latin1: HTTP 200/);
  const [fileRecord] = await storedInB('evt-latin1');
  expect(fileRecord.body_base64).not.toBeNull();
  expect(rawBodyOf(fileRecord).equals(latin1)).toBe(true);
});

it('sends the first received of several copies, whatever order the objects are in', async () => {
  const lake = tempDir();
  // Smartcar's retries of one event: same eventId, bodies that differ (here in a value).
  const copy = (value: number, receivedAt: string) =>
    toLakeRecord(deliveryMessage(vehicleState('evt-retried', { value }), receivedAt), new Date(receivedAt));
  const retry = copy(2, '2026-03-01T10:00:00.000Z');
  const laterSameHour = copy(3, '2026-03-01T09:59:00.000Z');
  const first = copy(1, '2026-03-01T09:10:00.000Z');
  const hour = (h: string) => `raw/event_type=VEHICLE_STATE/mode=live/dt=2026-03-01/hour=${h}/`;
  await putLakeObject(lake, `${hour('10')}a.ndjson.gz`, encodeNdjsonGzip([retry]));
  await putLakeObject(lake, `${hour('09')}a.ndjson.gz`, encodeNdjsonGzip([laterSameHour]));
  await putLakeObject(lake, `${hour('09')}b.ndjson.gz`, encodeNdjsonGzip([copy(9, '2026-03-01T09:30:00.000Z'), first]));
  const found = await findInLake(lake, 'evt-retried');
  expect(found.body.equals(rawBodyOf(first))).toBe(true);
  expect(found.from).toMatch(/hour=09\/b\.ndjson\.gz line 2 .*first received of 3 copies in its hour/); // 10:00 never read

  // A bare hex is the sha256 id of a legacy body.
  const legacy = toLakeRecord(deliveryMessage('{"eventName":"schedule"}', '2026-03-01T11:00:00.000Z'), new Date());
  await putLakeObject(lake, `${hour('11')}c.ndjson.gz`, encodeNdjsonGzip([legacy]));
  expect((await findInLake(lake, legacy.event_id.slice('sha256:'.length))).eventId).toBe(legacy.event_id);
});

it.each([
  [['--from-lake', 'evt-nowhere'], 1, /^send-event: no eventId evt-nowhere in \S+raw \(\d+ objects searched\)/],
  [['--from-lake', 'x', '--lake-dir', '/nonexistent/lake'], 1, /no eventId x in \/nonexistent\/lake\/raw: it holds no/],
  [['--from-file', '/nonexistent/body.json'], 1, /cannot read \/nonexistent\/body\.json: no such file/],
  [['vehicle-state', '--from-lake', 'evt-1'], 2, /one event at a time, got "vehicle-state" and --from-lake: drop one/],
  [['--from-lake', 'e', '--from-file', 'f'], 2, /got --from-lake and --from-file: drop one/],
  [[], 2, /which event\? name one kind: .*; or resend a stored body with --from-lake EVENT_ID or --from-file PATH/],
])('send-event %p exits %d with one line', async (args, code, message) => {
  const result = await sendEventCli([...(args as string[]), '--url', b.url, '--token', TOKEN_B]);
  expectCleanFailure(result, code, message);
  if (code === 1) {
    expect(result.stderr.split('\n')).toHaveLength(1); // no usage: the arguments were fine
    expect(result.stdout).toBe('');
  }
});
