/**
 * Writes the API reference, docs/api.md, from the types: the public API is compiled with jsii (as
 * `npm run jsii` does) and its assembly rendered by jsii-docgen, the generator the construct libraries on
 * Construct Hub use, so the reference is the doc comments and nothing typed twice. With `--check` it
 * writes nothing and fails, in one line, when docs/api.md is not what the types generate (CI runs that).
 *
 *   npm run docs:api               (regenerate docs/api.md)
 *   npm run docs:api -- --check    (exit 1 when docs/api.md is stale; exit 0 and "docs:api: fresh" otherwise)
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Documentation, Language } from 'jsii-docgen';
import { runCli } from '../local/cli';
import { compileInStage } from './jsii-check';

const ROOT = path.join(__dirname, '..');
export const API_DOC = path.join(ROOT, 'docs', 'api.md');

const HEADER =
  '<!-- Generated from the types by `npm run docs:api` (jsii-docgen); do not edit by hand. CI checks it is fresh. -->\n\n';

/** The reference as the current types render it (TypeScript). */
export async function renderApiReference(): Promise<string> {
  const { stage, ok, output } = compileInStage();
  try {
    if (!ok) throw new Error(`jsii could not compile the public API (run npm run jsii for details):\n${output}`);
    const docs = await Documentation.forProject(stage);
    try {
      const markdown = await docs.toMarkdown({ language: Language.TYPESCRIPT, readme: false, allSubmodules: true });
      return `${HEADER}${markdown.render().trim()}\n`;
    } finally {
      await docs.cleanup();
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('usage: npm run docs:api [-- --check]\n  writes docs/api.md from the types; --check only compares');
    return 0;
  }
  const generated = await renderApiReference();
  const relative = path.relative(ROOT, API_DOC);
  if (values.check) {
    let current = '';
    try {
      current = readFileSync(API_DOC, 'utf8');
    } catch {
      // missing: reported as stale below
    }
    if (current !== generated) {
      console.error(`docs:api: ${relative} is not what the types generate; run npm run docs:api and commit it`);
      return 1;
    }
    console.log(`docs:api: ${relative} is fresh`);
    return 0;
  }
  writeFileSync(API_DOC, generated);
  console.log(`docs:api: wrote ${relative} (${Buffer.byteLength(generated)} bytes)`);
  return 0;
}

if (require.main === module) runCli('docs:api', main);
