/**
 * Stacks mapped when they are logged, not at every cold start: a bundle built with esbuild as the
 * handlers are (minified, external map), an error thrown in it, and its logged stack in source terms.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { mapStack, sourceMappedLogger } from '../../lambda/adapters/source-map';

function bundle(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'source-map-'));
  writeFileSync(
    path.join(dir, 'thrower.ts'),
    ['// line 1', 'export function explode(): never {', "  throw new Error('boom');", '}', ''].join('\n'),
  );
  writeFileSync(path.join(dir, 'entry.ts'), "export { explode } from './thrower';\n");
  const outfile = path.join(dir, 'out', 'index.js');
  buildSync({
    entryPoints: [path.join(dir, 'entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    logLevel: 'silent',
  });
  return outfile;
}

/** The stack as Node prints it without source maps (Jest maps stacks itself, so this runs in a child). */
function rawStack(file: string): string {
  const script = `try { require(${JSON.stringify(file)}).explode() } catch (e) { process.stdout.write(e.stack) }`;
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
}

it('maps the frames of the bundle to their source lines, and leaves the rest alone', () => {
  const file = bundle();
  const raw = rawStack(file);
  expect(raw).toContain(`${file}:1:`); // minified: a position on line 1 of index.js
  const mapped = mapStack(raw, file);
  expect(mapped).toMatch(/\(thrower\.ts:3:\d+\)/);
  expect(mapped).not.toContain(`${file}:`);
  expect(mapped.split('\n')[0]).toBe('Error: boom');
  // Frames of other files stay; a file without a map leaves the stack as it was.
  expect(mapped).toContain('[eval]');
  expect(mapStack(raw, path.join(path.dirname(file), 'elsewhere.js'))).toBe(raw);
});

it('a logger maps the stacks of the errors it is given, causes too, before they are written', () => {
  const file = bundle();
  const inner = new Error('boom');
  inner.stack = rawStack(file);
  const outer = new Error('wrapped', { cause: inner });
  const written: Record<string, unknown>[] = [];
  const logger = sourceMappedLogger(
    { info() {}, warn() {}, error: (_m: string, ...extra: Record<string, unknown>[]) => written.push(...extra) },
    file,
  );
  logger.error('unexpected error', { error: outer });
  expect(((written[0].error as Error).cause as Error).stack).toMatch(/thrower\.ts:3:\d+/);
});
