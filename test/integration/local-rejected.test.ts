/**
 * The token-mistake drills against the local receiver of `npm start` (a quarantine folder beside the
 * local lake, the token files that `npm run rotate-token -- --lake-dir` writes), plus the commands.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { DEFAULT_EXPECTED_PEAK_PER_SECOND } from '../../lib/receiver';
import { readLake } from '../../local/file-lake';
import { DEPLOYED_DEFAULT_PEAK_PER_SECOND, startLocalServer } from '../../local/server';
import { startFromEnv } from '../../local/start';
import { fileTokens, PREVIOUS_TOKEN_FILE, rotateFileToken } from '../../local/token-files';
import { main as recoverMain } from '../../scripts/ops/recover-rejected';
import { PROMPT, readToken, main as rotateMain, rotateToken } from '../../scripts/ops/rotate-token';
import { expectCleanFailure, runInProcess, spawnCommand } from '../support/cli';
import { sign, vehicleState } from '../support/fixtures';
import { RecordingMetrics } from '../support/metrics';

const OLD = 'local-old-token';
const NEW = 'local-new-token';
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'local-rejected-'));
const body = (eventId: string) => vehicleState(eventId);
const post = async (url: string, eventId: string, token: string) =>
  (
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sc-signature': sign(body(eventId), token) },
      body: body(eventId),
    })
  ).status;
/** The records of every quarantine object. */
const quarantined = (lakeDir: string) =>
  readdirSync(path.join(lakeDir, 'quarantine'), { recursive: true })
    .filter((f) => String(f).endsWith('.ndjson.gz'))
    .flatMap((f) =>
      gunzipSync(readFileSync(path.join(lakeDir, 'quarantine', String(f))))
        .toString()
        .trim()
        .split('\n'),
    );
const lakeIds = async (lakeDir: string) =>
  [...(await readLake(lakeDir)).values()]
    .flat()
    .map((r) => r.event_id)
    .sort();

describe('drills on npm start', () => {
  it('late secret update, then rotation with grace, then recovery: every genuine delivery once', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const env = { PORT: '0', LOCAL_LAKE_DIR: lakeDir, SMARTCAR_MANAGEMENT_TOKEN: '' };
    const server = await startFromEnv(env, () => {});
    try {
      // Smartcar already signs with NEW; the local token is still OLD.
      for (const id of ['late-1', 'late-2', 'late-3', 'late-1']) expect(await post(server.url, id, NEW)).toBe(401);
      expect(await post(server.url, 'forged', 'attacker-key')).toBe(401);
      await server.flush(); // the batch window: the spooled rejections become one quarantine object
      expect(quarantined(lakeDir)).toHaveLength(5); // every rejected request, the retry of late-1 included

      // The operator rotates the local token (as `npm run rotate-token -- --lake-dir` does).
      const lines: string[] = [];
      await rotateToken({ lakeDir, token: NEW, print: (l) => lines.push(l) });
      expect(lines.join()).toContain('previous one is still accepted');
      expect(await post(server.url, 'now-new', NEW)).toBe(200); // at once
      expect(await post(server.url, 'still-old', OLD)).toBe(200); // grace period

      const recovered = await runInProcess('recover-rejected', recoverMain, ['--lake-dir', lakeDir]);
      // The retry of late-1 is the same event: stored once, counted as already stored.
      expect(recovered.stdout).toContain('examined 5, recovered 3, still rejected 1, already stored 1');
      await server.flush();
      expect(await lakeIds(lakeDir)).toEqual(['late-1', 'late-2', 'late-3', 'now-new', 'still-old']);
      const again = await runInProcess('recover-rejected', recoverMain, ['--lake-dir', lakeDir]);
      // The forgery's object is read again (it holds the settled ones too): nothing handed over twice.
      expect(again.stdout).toContain('examined 5, recovered 0, still rejected 1, already stored 4');
      expect(await lakeIds(lakeDir)).toEqual(['late-1', 'late-2', 'late-3', 'now-new', 'still-old']);
      expect(await post(server.url, 'forged', 'attacker-key')).toBe(401);

      // 25 hours later (the replaced token's timestamp moved back): the previous token is refused.
      writeFileSync(
        path.join(lakeDir, PREVIOUS_TOKEN_FILE),
        JSON.stringify({ token: OLD, replacedAt: new Date(Date.now() - 25 * 3600_000).toISOString() }),
      );
      const later = fileTokens(lakeDir);
      expect(await later.previous()).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('the local budget is the deployed default (sized from the same peak)', () => {
    expect(DEPLOYED_DEFAULT_PEAK_PER_SECOND).toBe(DEFAULT_EXPECTED_PEAK_PER_SECOND);
  });

  it('flood: 3,000 bad-signature requests keep at most the budget; genuine deliveries still answered', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const metrics = new RecordingMetrics();
    const server = await startLocalServer({
      lakeDir,
      tokens: fileTokens(lakeDir),
      port: 0,
      batchWindowMs: 60_000,
      quarantine: { maxPerHour: 750, maxBytesPerHour: 10 ** 9 },
      logger: { info() {}, warn() {}, error() {} },
      metrics,
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const url = new URL(server.url);
    const forged = body('flood');
    const headers = { 'content-type': 'application/json', 'sc-signature': sign(forged, 'attacker-key') };
    const one = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(forged);
      });
    try {
      const statuses = new Map<number, number>();
      const genuine: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < 3000) {
            const i = next++;
            const status = await one();
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (i % 300 === 0) genuine.push(await post(server.url, `genuine-${i}`, OLD));
          }
        }),
      );
      expect(Object.fromEntries(statuses)).toEqual({ 401: 3000 });
      expect(genuine).toEqual(Array(10).fill(200));
      await server.flush();
      // The hour's budget (a clock hour may turn during the test: then the next hour's budget applies).
      expect(metrics.total('Quarantined') + metrics.total('QuarantineDropped')).toBe(3000);
      expect(metrics.total('Quarantined')).toBeGreaterThanOrEqual(750);
      expect(metrics.total('Quarantined')).toBeLessThanOrEqual(1500);
      expect(quarantined(lakeDir)).toHaveLength(metrics.total('Quarantined'));
      expect(await lakeIds(lakeDir)).toHaveLength(10);
    } finally {
      agent.destroy();
      await server.close();
    }
  });
});

describe('rotate-token and recover-rejected commands', () => {
  it('reads the token from standard input, never from an argument', async () => {
    expect(await readToken(Readable.from(['  piped-token\n']) as never)).toBe('piped-token');
    const refused = await runInProcess('rotate-token', rotateMain, ['--lake-dir', tempDir(), '--token', 'x']);
    expectCleanFailure(refused, 2, /never pass the token as an argument/);
    const both = await runInProcess('rotate-token', rotateMain, ['--stack', 'Prod', '--secret-id', 'arn:x']);
    expectCleanFailure(both, 2, /pass either --stack or --secret-id/);
    const help = await runInProcess('rotate-token', rotateMain, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run rotate-token -- --stack NAME/);
    await expect(rotateToken({ lakeDir: tempDir(), token: 'has space', print: () => {} })).rejects.toThrow(
      /white space/,
    );
  });

  it('never echoes a character of the token: Backspace at the hidden prompt, a token passed as an argument', async () => {
    const secret = 'amt-SECRET-7f3a9c';
    // A terminal: raw mode, characters one by one, two Backspaces (one as DEL, one as ^H), then Enter.
    const tty = Object.assign(new PassThrough(), { isTTY: true, setRawMode: jest.fn() });
    const written: string[] = [];
    const stdoutWrite = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const reading = readToken(tty as never, { write: (t: string) => written.push(t) });
      for (const ch of [...'amt-SECRET-7f3a9cXY', '\u007f', '\b', '\r']) tty.write(ch);
      expect(await reading).toBe(secret);
    } finally {
      stdoutWrite.mockRestore();
    }
    expect(written.join('')).toBe(`${PROMPT}\n`);
    expect(tty.setRawMode).toHaveBeenCalledWith(true);

    // An arrow key's escape sequence never becomes part of a stored token.
    const arrow = Object.assign(new PassThrough(), { isTTY: true, setRawMode: jest.fn() });
    const typing = readToken(arrow as never, { write: () => {} });
    for (const ch of [...'amt-SECRET', '\u001b', '[', 'D', '\r']) arrow.write(ch);
    await expect(typing).rejects.toThrow(/arrow or function key/);

    // Pasted where an argument goes: refused, and the value is not repeated.
    for (const args of [
      ['--lake-dir', tempDir(), secret],
      ['--lake-dir', tempDir(), '--since', secret],
      ['--lake-dir', tempDir(), `--${secret}`],
      ['--secret-id', 'arn:x', '-Q', secret],
    ]) {
      const result = await runInProcess('rotate-token', rotateMain, args);
      expect(result.code).toBe(2);
      for (const part of ['SECRET', '7f3a9c']) expect(result.stdout + result.stderr).not.toContain(part);
    }
  });

  it('rotate-token --recover-function waits for recovery, invoking again until done, and prints what was recovered', async () => {
    const lambda = mockClient(LambdaClient);
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(PutSecretValueCommand).resolves({ VersionId: 'v2' });
    const answer = (o: object) => ({ StatusCode: 200, Payload: Buffer.from(JSON.stringify(o)) as never });
    const counts = { examined: 0, stillRejected: 0, alreadyStored: 0, unreadable: 0 };
    lambda
      .on(InvokeCommand)
      .resolvesOnce(answer({ ...counts, recovered: 700, done: false }))
      .resolvesOnce({
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: Buffer.from('{"errorMessage":"Task timed out"}') as never,
      })
      .resolvesOnce(
        answer({ ...counts, examined: 900, recovered: 200, stillRejected: 3, alreadyStored: 100, done: true }),
      );
    const lines: string[] = [];
    try {
      await rotateToken({
        secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:amt',
        recoverFunction: 'recover-fn',
        since: new Date('2026-11-27T09:00:00Z'),
        token: 'amt-new',
        print: (l) => lines.push(l),
        secrets: new SecretsManagerClient({}),
        lambda: new LambdaClient({}),
      });
      const calls = lambda.commandCalls(InvokeCommand);
      expect(calls).toHaveLength(3);
      for (const c of calls) {
        expect(c.args[0].input).toMatchObject({ FunctionName: 'recover-fn', InvocationType: 'RequestResponse' });
        expect(JSON.parse(Buffer.from(c.args[0].input.Payload as Uint8Array).toString())).toEqual({
          since: '2026-11-27T09:00:00.000Z',
        });
      }
      expect(lines.at(-1)).toMatch(/^recovered 900 deliveries .*still rejected 3, already stored 100/);
      expect(lines.join('\n')).not.toContain('amt-new');
    } finally {
      lambda.restore();
      secrets.restore();
    }
  });

  it('rotate-token never prints the --recover-function value, nor an AWS error that quotes it (a token pasted there)', async () => {
    const lambda = mockClient(LambdaClient);
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(PutSecretValueCommand).resolves({ VersionId: 'v2' });
    const pasted = 'amt-PASTED-9b1e77';
    lambda
      .on(InvokeCommand)
      .rejects(new Error(`Function not found: arn:aws:lambda:eu-west-1:123456789012:function:${pasted}`));
    const lines: string[] = [];
    try {
      await expect(
        rotateToken({
          secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:amt',
          recoverFunction: pasted,
          token: 'amt-new',
          print: (l) => lines.push(l),
          secrets: new SecretsManagerClient({}),
          lambda: new LambdaClient({}),
          maxFailures: 2,
        }),
      ).rejects.toThrow(/recovery failed 2 times/);
      expect(lines.join('\n')).toContain('Function not found');
      expect(lines.join('\n')).not.toContain('PASTED');
    } finally {
      lambda.restore();
      secrets.restore();
    }
  });

  it('(spawned) rotate-token takes a piped token, and recover-rejected reports its counts', async () => {
    const lakeDir = tempDir();
    await rotateFileToken(lakeDir, OLD);
    const rotate = spawnCommand('rotate-token', ['--lake-dir', lakeDir]);
    rotate.child.stdin.end(`${NEW}\n`);
    const rotated = await rotate.done;
    expect(rotated).toMatchObject({ code: 0 });
    expect(rotated.stdout).toContain('local token rotated');
    expect(rotated.stdout + rotated.stderr).not.toContain(NEW);
    expect(await fileTokens(lakeDir).get()).toBe(NEW);
    const recovered = await spawnCommand('recover-rejected', ['--lake-dir', lakeDir, '--dry-run']).done;
    expect(recovered.code).toBe(0);
    expect(recovered.stdout).toMatch(/dry run: .*: examined 0, recovered 0, still rejected 0, already stored 0/);
  });
});
