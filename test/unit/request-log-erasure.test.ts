/**
 * A receiver that runs while `erase` (or `expire`) rewrites its request log: the file is the truth, so an
 * erased entry is no longer listed and the receiver's next trim does not write it back.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RequestLog } from '../../local/inspector/request-log';
import { main as eraseMain } from '../../scripts/ops/erase';
import { runInProcess } from '../support/cli';

const ERASED = 'veh-erased-00000001';
const ALSO_ERASED = 'veh-erased-00000003';
const KEPT = 'veh-kept-000000002';

function request(vehicleId: string, n: number) {
  const body = JSON.stringify({ eventId: `evt-${n}`, data: { vehicle: { id: vehicleId } } });
  return {
    receivedAt: new Date(Date.parse('2026-12-01T00:00:00Z') + n * 1000).toISOString(),
    method: 'POST',
    path: '/webhooks/smartcar',
    status: 200,
    verdict: 'accepted',
    headers: { 'content-type': 'application/json' },
    bodyRaw: Buffer.from(body),
  } as unknown as Parameters<RequestLog['add']>[0];
}

it('drops what erase removed from the file, and writes none of it back at the next trim', async () => {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'request-log-erasure-'));
  const log = await RequestLog.open({ lakeDir, keep: 4 });
  for (let n = 0; n < 4; n++) log.add(request([ERASED, KEPT, ALSO_ERASED, KEPT][n], n));
  await log.flushed();
  expect(log.list()).toHaveLength(4);

  // Two rewrites in a row, nothing read between: the second file may get back the first one's inode.
  for (const id of [ERASED, ALSO_ERASED]) {
    const erased = await runInProcess('erase', () => eraseMain(), ['--vehicle', id, '--lake-dir', lakeDir]);
    expect(erased.code).toBe(0);
    expect(readFileSync(log.file, 'utf8')).not.toContain(id);
  }

  // The running log now shows only what the file holds…
  expect(
    log
      .list()
      .map((e) => JSON.stringify(e))
      .join('\n'),
  ).not.toMatch(/veh-erased/);
  expect(log.list()).toHaveLength(2);
  // …and adding past `keep` (a trim, which rewrites the file from memory) brings nothing back.
  for (let n = 4; n < 10; n++) log.add(request(KEPT, n));
  await log.flushed();
  const text = readFileSync(log.file, 'utf8');
  expect(text).not.toMatch(/veh-erased/);
  expect(text.trim().split('\n').length).toBeGreaterThan(0);
});
