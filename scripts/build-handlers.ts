/**
 * Prebuilds every Lambda handler with esbuild into `dist/handlers/<name>/index.js` (minified, with a
 * source map), the assets the construct deploys. This is the only place the handlers are bundled: the
 * package ships these files, so an app that installs it needs neither esbuild, nor Docker, nor our lock
 * file, and its `cdk synth` bundles nothing of ours; this repository's own app uses the same files.
 *
 *   npm run build:handlers        (also part of `npm run build`, `prepare` and the cdk.json app command)
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { HANDLER_NAMES } from '../lambda/contract';

const ROOT = path.join(__dirname, '..');
export const HANDLERS_OUT = path.join(ROOT, 'dist', 'handlers');
/**
 * Handlers that carry their own copy of the AWS SDK clients they use. The verification function's cold
 * start is paid by every instance a top-of-the-hour burst scales out to, and one minified file loads in
 * about 75 ms where the runtime's SDK, resolved file by file from node_modules, takes about 110 ms
 * (`npm run bench:coldstart`). The price: its SDK is the version in our lock file, updated with our
 * releases, not the runtime's. The other handlers start rarely and use the runtime's SDK.
 */
export const SDK_BUNDLED: readonly string[] = ['verify'];

export function buildHandlers(): { name: string; bytes: number }[] {
  const sources = readdirSync(path.join(ROOT, 'lambda')).filter((d) =>
    statSync(path.join(ROOT, 'lambda', d)).isDirectory(),
  );
  const missing = HANDLER_NAMES.filter((h) => !sources.includes(h));
  if (missing.length > 0) throw new Error(`no lambda/<name>/index.ts for handler(s) ${missing.join(', ')}`);
  rmSync(HANDLERS_OUT, { recursive: true, force: true });
  return HANDLER_NAMES.map((name) => {
    const outfile = path.join(HANDLERS_OUT, name, 'index.js');
    const result = buildSync({
      entryPoints: [path.join(ROOT, 'lambda', name, 'index.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      sourcemap: true,
      sourcesContent: false,
      // The Node.js 22 runtime ships AWS SDK v3: the handlers that start rarely use it (a smaller asset).
      external: SDK_BUNDLED.includes(name) ? [] : ['@aws-sdk/*'],
      // A bundled SDK from its ES module builds, which tree-shake better than its CommonJS ones.
      ...(SDK_BUNDLED.includes(name) ? { mainFields: ['module', 'main'] } : {}),
      // Source paths in the map are relative, so the output (and the asset hash) is the same on any machine.
      legalComments: 'none',
      logLevel: 'warning',
      metafile: true,
    });
    const bytes = Object.values(result.metafile?.outputs ?? {}).reduce((n, o) => n + (o.bytes ?? 0), 0);
    return { name, bytes };
  });
}

if (require.main === module) {
  const built = buildHandlers();
  if (!process.argv.includes('--quiet')) {
    for (const b of built) console.log(`built dist/handlers/${b.name}  ${(b.bytes / 1024).toFixed(1)} KiB (js + map)`);
  }
}
