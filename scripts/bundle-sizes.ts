/**
 * Prints the size of each prebuilt Lambda handler (what every deployment ships), minified and gzipped.
 *
 *   npm run -s bench:bundles
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { HANDLER_NAMES } from '../lambda/contract';
import { buildHandlers } from './build-handlers';

buildHandlers();
for (const name of HANDLER_NAMES) {
  const code = readFileSync(path.join(__dirname, '..', 'dist', 'handlers', name, 'index.js'));
  console.log(
    `  ${name.padEnd(18)} ${(code.length / 1024).toFixed(1).padStart(6)} KiB minified  ${(gzipSync(code).length / 1024).toFixed(1).padStart(5)} KiB gzip`,
  );
}
