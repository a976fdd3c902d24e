/**
 * Runs in a fresh Node process for `npm run bench:coldstart`: loads one handler bundle, answers one
 * request, and prints one line with what it measured (from the process's time origin, its start).
 * Usage: node driver.js <handler file> <event JSON file>
 */
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');

const [file, eventFile] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventFile, 'utf8'));
const before = performance.now();
const { handler } = require(file);
const loaded = performance.now();
handler(event).then(
  (result) => {
    const answered = performance.now();
    process.stdout.write(
      `\nCOLDSTART ${JSON.stringify({ status: result.statusCode, boot: before, load: loaded - before, first: answered })}\n`,
    );
  },
  (err) => {
    process.stderr.write(`handler failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
