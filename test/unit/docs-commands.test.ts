/**
 * Every command shown in the docs is run by a test or listed as deliberately untested
 * (test/docs-commands.ts), names a script package.json has, and passes the flags its parser accepts.
 * Reads files only: no command is spawned.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { COMMANDS, checkArgs } from '../../cli/registry';
import { DOC_COMMANDS } from '../docs-commands';
import { checkCommands, type DocCommand, extractCommands, words } from '../docs-commands-check';

const ROOT = path.join(__dirname, '..', '..');
const scripts: Record<string, string> = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;
const deps = { registry: DOC_COMMANDS, scripts, checkArgs, verbs: COMMANDS };

/** The hand-written docs: the README and every guide (docs/api.md is generated from the types). */
const DOC_FILES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md') && f !== 'api.md')
    .map((f) => `docs/${f}`),
];
const documented: DocCommand[] = DOC_FILES.flatMap((f) =>
  extractCommands(readFileSync(path.join(ROOT, f), 'utf8'), f, COMMANDS),
);

describe('commands shown in the docs', () => {
  it('finds the commands of every guide', () => {
    expect(DOC_FILES).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md', 'docs/local.md']));
    expect(documented.length).toBeGreaterThan(50);
  });

  it('are each run by a test or listed as deliberately untested, with scripts that exist and flags that parse', () => {
    expect(checkCommands(documented, deps)).toEqual([]);
  });

  it('leave no entry in the registry that no doc shows', () => {
    const shown = new Set(documented.map((c) => c.key));
    expect(Object.keys(DOC_COMMANDS).filter((k) => !shown.has(k))).toEqual([]);
  });

  it('name test files that exist and still run the entry point', () => {
    const problems: string[] = [];
    for (const [key, entry] of Object.entries(DOC_COMMANDS)) {
      if ((entry.tests === undefined) === (entry.untested === undefined))
        problems.push(`${key}: give either tests or untested, not both or neither`);
      if (entry.untested !== undefined && entry.untested.trim().length < 10)
        problems.push(`${key}: say why it is untested`);
      for (const t of entry.tests ?? []) {
        const file = path.join(ROOT, t.file);
        if (!existsSync(file)) problems.push(`${key}: ${t.file} does not exist`);
        else if (!readFileSync(file, 'utf8').includes(t.mentions))
          problems.push(`${key}: ${t.file} does not mention ${t.mentions}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the docs check itself', () => {
  const check = (markdown: string) => checkCommands(extractCommands(markdown, 'new.md', COMMANDS), deps);

  it('fails on a command line nobody listed, naming it', () => {
    const problems = check('Run this:\n\n```sh\nnpm run bench:new-thing -- --fast\n```\n');
    expect(problems).toEqual([
      expect.stringContaining('new.md:4: "npm run bench:new-thing -- --fast" is not in test/docs-commands.ts'),
      'new.md:4: "npm run bench:new-thing -- --fast": package.json has no script "bench:new-thing"',
    ]);
    expect(check('Or inline: `aws s3 rm s3://lake --recursive`.')).toEqual([
      expect.stringContaining('new.md:1: "aws s3 rm s3://lake --recursive" is not in test/docs-commands.ts'),
    ]);
  });

  it('fails on flags the command refuses, in either form', () => {
    expect(check('```sh\nnpx smartcar-webhooks replay --stack S --form 2026-01-01T00\n```')).toEqual([
      expect.stringMatching(/^new\.md:2: .*replay refuses these arguments: .*--form/),
    ]);
    expect(check('`npm run redrive -- --dlq <url>`')).toEqual([
      expect.stringMatching(/^new\.md:1: .*redrive refuses these arguments: .*--dlq/),
    ]);
    expect(check('`npm run replay --from 2026-01-01T00`')).toEqual([
      expect.stringContaining('arguments before "--" go to npm'),
    ]);
  });

  it('accepts what the docs write: continuations, pipes, optional parts, placeholders and comments', () => {
    const md = [
      '```sh',
      'pbpaste | npx smartcar-webhooks rotate-token --stack S \\',
      '  [--since 2026-11-27T09:00:00Z]   # a comment --bogus',
      'npm ci && npm start',
      '```',
      'and `npm run send-event -- <kind> --stack <stack name>`, which wraps',
      'across `npm run query -- "SELECT 1"` lines.',
    ].join('\n');
    const found = extractCommands(md, 'new.md', COMMANDS);
    expect(found.map((c) => [c.where, c.key, c.argv])).toEqual([
      ['new.md:2', 'rotate-token', ['--stack', 'S', '--since', '2026-11-27T09:00:00Z']],
      ['new.md:4', 'npm ci', undefined],
      ['new.md:4', 'start', []],
      ['new.md:6', 'send-event', ['<kind>', '--stack', '<stack name>']],
      ['new.md:7', 'query', ['SELECT 1']],
    ]);
    expect(checkCommands(found, deps)).toEqual([]);
  });

  it('ignores other languages and prose that only names a tool', () => {
    const md = '```json\n{ "cmd": "npm run nothing" }\n```\n\n```ts\n// npx cdk destroy\n```\n\nthe `npm run` scripts';
    expect(extractCommands(md, 'new.md', COMMANDS)).toEqual([]);
  });

  it('splits words the way a reader types them', () => {
    expect(words(`aws x --input '{"a": [1]}' --s "$(jq -n '{a: 1}')" <a b>`)).toEqual([
      'aws',
      'x',
      '--input',
      '{"a": [1]}',
      '--s',
      "$(jq -n '{a: 1}')",
      '<a b>',
    ]);
  });
});
