/**
 * Runs once before all test files: builds the prebuilt handlers (so every synthesis deploys current
 * code) and synthesizes the default stack, with cdk-nag, once; `synthStack()` without props then reads
 * that result instead of synthesizing again in every file.
 */
import { buildHandlers } from '../../scripts/build-handlers';
import { CACHE_ENV, synthAndCache } from './synth';

export default async function globalSetup(): Promise<void> {
  // The synthesis below writes into the run's own temporary folder, removed with it at the end.
  require('./run-tmpdir').setup();
  buildHandlers();
  process.env[CACHE_ENV] = synthAndCache();
}
