/**
 * One temporary folder per `npm test` run: every `mkdtemp(os.tmpdir())` of the tests (lakes, synth
 * outputs, work folders; hundreds of them) and of the processes they spawn lands under it, and the run's
 * global teardown removes it, so a run leaves nothing in the machine's temporary folder. Jest passes the
 * environment this sets to its workers, as it does the stack project's global setup's.
 */
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');

const PREFIX = 'smartcar-webhooks-test-';

module.exports = {
  /** Idempotent: whichever global setup Jest runs first makes the folder. */
  setup() {
    process.env.SMARTCAR_TEST_TMPDIR ??= mkdtempSync(path.join(tmpdir(), PREFIX));
    process.env.TMPDIR = process.env.SMARTCAR_TEST_TMPDIR;
  },
  teardown() {
    const dir = process.env.SMARTCAR_TEST_TMPDIR;
    if (dir && path.basename(dir).startsWith(PREFIX)) rmSync(dir, { recursive: true, force: true });
  },
};
