/**
 * Runs once before all test files: builds the prebuilt handlers (so every synthesis deploys current
 * code) and synthesizes the default stack, with cdk-nag, once; `synthStack()` without props then reads
 * that result instead of synthesizing again in every file.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildHandlers } from '../../scripts/build-handlers';
import { startMotoPool } from './moto';
import { CACHE_ENV, synthAndCache } from './synth';

/** One server for each test file that starts moto (a file beyond that starts its own). */
const MOTO_POOL_SIZE = 10;

export default async function globalSetup(): Promise<void> {
  // The synthesis below writes into the run's own temporary folder, removed with it at the end.
  require('./run-tmpdir').setup();
  // Moto's servers boot in their own processes while this one builds and synthesizes (see startMotoPool).
  const pool = await startMotoPool(MOTO_POOL_SIZE, mkdtempSync(path.join(tmpdir(), 'moto-pool-')));
  buildHandlers();
  process.env[CACHE_ENV] = synthAndCache();
  await pool.ready;
}
