/**
 * Prints how long `npm test` takes on this machine: runs it N times (default 3) one after another and
 * prints each wall time and the median, with the core count, and what each run's output held (lines,
 * Node warnings, a force-exited worker). A figure to read, not a test to pass.
 *
 *   npm run bench:test [-- --runs 3]
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 10) {
  console.error('bench:test: --runs must be a whole number from 1 to 10');
  process.exit(2);
}
const seconds: number[] = [];
for (let i = 1; i <= runs; i++) {
  const started = process.hrtime.bigint();
  const out = spawnSync('npm', ['test', '--silent'], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  const output = `${out.stdout}${out.stderr}`;
  const summary = /Tests:\s+(.*)/.exec(output)?.[1] ?? 'no summary';
  // The output's hygiene (issue 19): how long it is, Node warnings in it, and whether Jest killed a worker.
  const hygiene = [
    `${output.trimEnd().split('\n').length} output lines`,
    `${(output.match(/Warning:/g) ?? []).length} warnings`,
    /failed to exit gracefully/.test(output) ? 'a worker was force-exited' : 'every worker exited',
  ].join(', ');
  if (out.status !== 0) {
    console.error(`run ${i}: npm test failed (${summary})`);
    process.exit(1);
  }
  seconds.push(s);
  console.log(`run ${i}: ${s.toFixed(1)} s wall  (${summary}; ${hygiene})`);
}
const sorted = [...seconds].sort((a, b) => a - b);
console.log(
  `npm test on ${availableParallelism()} cores, node ${process.version}: median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} s, ` +
    `min ${sorted[0].toFixed(1)} s, max ${sorted[sorted.length - 1].toFixed(1)} s over ${runs} run(s)`,
);
