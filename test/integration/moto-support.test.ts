/**
 * The test support's moto (test/support/moto.ts) cleans up after a file that never stops it (a beforeAll
 * that timed out while moto started, say): it must neither keep the test worker alive, which Jest then
 * kills as "failed to exit gracefully", nor outlive it as an orphaned server.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { watch } from '../support/cli';
import { MOTO_POOL_ENV } from '../support/moto';

/** Resolves true once nothing answers at `endpoint`, false if it still does at the deadline. */
async function goneBy(endpoint: string, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    try {
      await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1000) });
    } catch {
      return true; // refused: the server is gone
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

it('a moto nobody stops lets its process exit, and stops with it', async () => {
  const script = path.join(mkdtempSync(path.join(tmpdir(), 'moto-forgotten-')), 'forget.ts');
  writeFileSync(
    script,
    `import { startMoto } from ${JSON.stringify(path.join(__dirname, '..', 'support', 'moto'))};\n` +
      'startMoto().then((moto) => console.log(moto.endpoint));\n',
  );
  const { child, done } = watch(
    // Without the run's pool: this process must start (and so stop) its own server.
    spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: path.join(__dirname, '..', '..'),
      env: { ...process.env, [MOTO_POOL_ENV]: '' },
    }),
    'forget.ts',
  );
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([
    done,
    new Promise<'still running'>((resolve) => {
      timer = setTimeout(() => resolve('still running'), 30_000);
    }),
  ]);
  clearTimeout(timer);
  if (exited === 'still running') child.kill('SIGKILL');
  const { code, stdout, stderr } = exited === 'still running' ? { code: exited, stdout: '', stderr: '' } : exited;
  expect({ exited: code, stderr }).toEqual({ exited: 0, stderr: '' });
  const endpoint = stdout.trim();
  expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(await goneBy(endpoint, Date.now() + 10_000)).toBe(true);
});
