/**
 * Runs in a fresh Node process for `npm run bench:cost`: loads the built verification bundle, answers one
 * request cold, then `count` more warm, each a distinct signed delivery, and prints the handler's time for
 * each (ms) and the bundle's load time (the INIT phase) on one line; everything before it is what the handler
 * printed. The AWS SDK is real; its endpoint is a local stand-in (AWS_ENDPOINT_URL).
 * Usage: node warm-driver.js <handler file> <events JSON file (an array)>
 */
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');

const [file, eventsFile] = process.argv.slice(2);
const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const loading = performance.now();
const { handler } = require(file);
const initMs = performance.now() - loading;

(async () => {
  const times = [];
  for (const event of events) {
    const began = performance.now();
    const result = await handler(event);
    times.push(performance.now() - began);
    if (result.statusCode !== 200) throw new Error(`answered ${result.statusCode}: ${result.body}`);
  }
  process.stdout.write(`\nTIMES ${JSON.stringify({ initMs, times })}\n`);
})().catch((err) => {
  process.stderr.write(`handler failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
