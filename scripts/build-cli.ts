/**
 * Bundles the operations commands (cli/main.ts and what it loads) with esbuild into one file,
 * `dist/cli/smartcar-webhooks.js`, the package's `bin`. The AWS SDK clients go into the bundle, so a
 * platform team's app needs no SDK of ours; what a consumer has anyway (aws-cdk-lib and constructs, its
 * peers) and the optional DuckDB (for `query`, `compact` and `fleet` only) stay outside and are loaded
 * only by the commands that use them.
 *
 *   npm run build:cli        (also part of `npm run build`, `prepare` and `prepack`)
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = path.join(__dirname, '..');
export const CLI_OUT = path.join(ROOT, 'dist', 'cli', 'smartcar-webhooks.js');

export function buildCli(): { bytes: number } {
  rmSync(path.dirname(CLI_OUT), { recursive: true, force: true });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const result = buildSync({
    entryPoints: [path.join(ROOT, 'cli', 'main.ts')],
    outfile: CLI_OUT,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    banner: { js: '#!/usr/bin/env node' },
    define: { PACKAGE_VERSION: JSON.stringify(pkg.version) },
    external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', '@duckdb/node-api'],
    logLevel: 'warning',
    metafile: true,
  });
  chmodSync(CLI_OUT, 0o755);
  const bytes = Object.values(result.metafile?.outputs ?? {}).reduce((n, o) => n + (o.bytes ?? 0), 0);
  return { bytes };
}

if (require.main === module) {
  const { bytes } = buildCli();
  if (!process.argv.includes('--quiet'))
    console.log(`built dist/cli/smartcar-webhooks.js  ${(bytes / 1024).toFixed(0)} KiB`);
}
