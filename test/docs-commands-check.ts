/**
 * Finds every command line the docs show and checks it against the registry in test/docs-commands.ts:
 * each must be run by a named test or listed as deliberately untested, name a script package.json has,
 * and pass the flags its parser accepts. Pure functions over text, so the test reads files once and a
 * made-up markdown proves the check fails on a command nobody listed.
 */
import type { DocCommandEntry } from './docs-commands';

/** A command line as the docs show it. */
export interface DocCommand {
  /** `README.md:12` or `docs/operations.md:40`. */
  readonly where: string;
  /** The command as written (one segment of a pipeline or `&&` chain). */
  readonly text: string;
  /** Its registry key: a CLI command name (`replay`), or e.g. `npm run bench:cost`, `npx cdk deploy`, `aws sqs start-message-move-task`. */
  readonly key: string;
  /** The npm script it runs, when it is `npm run <script>` / `npm start` / `npm test`. */
  readonly script?: string;
  /** The arguments the command itself receives (after `--` for npm scripts), when it is a CLI command. */
  readonly argv?: readonly string[];
  /** A problem found while reading it (e.g. flags npm would swallow). */
  readonly problem?: string;
}

const SHELL_LANGS = new Set(['', 'sh', 'bash', 'shell', 'console', 'zsh']);
const STARTS = /^(npm|npx|aws)\s/;
const BARE_PREFIXES = new Set(['npm run', 'npx cdk', 'npx smartcar-webhooks']);

/** Every command line of one markdown file: shell code blocks, and inline code that starts like a command. */
export function extractCommands(markdown: string, file: string, verbs: readonly string[]): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let fence: { marker: string; lang: string } | undefined;
  let prose: { line: number; text: string }[] = [];
  const flushProse = () => {
    // Inline code may wrap across lines: read a paragraph at a time.
    const text = prose.map((p) => p.text).join('\n');
    const starts = prose.map((p, i) => ({
      line: p.line,
      offset: prose.slice(0, i).reduce((n, q) => n + q.text.length + 1, 0),
    }));
    for (const m of text.matchAll(/(`+)([^`]+?)\1/g)) {
      const line = [...starts].reverse().find((s) => s.offset <= (m.index ?? 0))?.line ?? 0;
      for (const segment of segments(m[2].replace(/\s*\n\s*/g, ' '))) {
        const command = classify(segment, `${file}:${line}`, verbs);
        if (command) out.push(command);
      }
    }
    prose = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const open = /^\s*(```+|~~~+)\s*([\w-]*)/.exec(line);
    if (fence) {
      if (open?.[1].startsWith(fence.marker) && !open[2]) {
        fence = undefined;
        continue;
      }
      if (!SHELL_LANGS.has(fence.lang)) continue;
      // Join continuation lines.
      let text = line;
      const first = i + 1;
      while (/\\\s*$/.test(text) && i + 1 < lines.length) text = `${text.replace(/\\\s*$/, ' ')}${lines[++i].trim()}`;
      for (const segment of segments(stripComment(text))) {
        const command = classify(segment, `${file}:${first}`, verbs);
        if (command) out.push(command);
      }
      continue;
    }
    if (open) {
      flushProse();
      fence = { marker: open[1], lang: open[2].toLowerCase() };
      continue;
    }
    if (line.trim() === '') flushProse();
    else prose.push({ line: i + 1, text: line });
  }
  flushProse();
  return out;
}

/** Drops a `# comment` that is outside quotes. */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** Splits a shell line into its commands: `a && b`, `a; b`, `a | b` (outside quotes and `$(…)`). */
function segments(line: string): string[] {
  const parts: string[] = [];
  let quote = '';
  let depth = 0;
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
      current += c;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === '(' && line[i - 1] === '$') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0 && (line.startsWith('&&', i) || line.startsWith('||', i))) {
      parts.push(current);
      current = '';
      i++;
      continue;
    } else if (
      depth === 0 &&
      (c === ';' || (c === '|' && /\s/.test(line[i - 1] ?? ' ') && /\s/.test(line[i + 1] ?? ' ')))
    ) {
      parts.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/**
 * Shell words, the way a reader types them: quotes removed, `$(…)` and `<placeholder with spaces>` kept
 * whole, and the brackets of optional parts (`[--since ISO]`) dropped, so optional flags are checked too.
 */
export function words(segment: string): string[] {
  const out: string[] = [];
  let current = '';
  let started = false;
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === "'" || c === '"') {
      const end = segment.indexOf(c, i + 1);
      current += segment.slice(i + 1, end < 0 ? undefined : end);
      started = true;
      i = end < 0 ? segment.length : end;
    } else if (c === '$' && segment[i + 1] === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < segment.length; j++) {
        if (segment[j] === '(') depth++;
        else if (segment[j] === ')' && --depth === 0) break;
      }
      current += segment.slice(i, j + 1);
      started = true;
      i = j;
    } else if (c === '<') {
      const end = segment.indexOf('>', i);
      current += segment.slice(i, end < 0 ? undefined : end + 1);
      started = true;
      i = end < 0 ? segment.length : end;
    } else if (c === '[' || c === ']') {
      // optional part: its contents are words like any other
    } else if (/\s/.test(c)) {
      if (started) out.push(current);
      current = '';
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (started) out.push(current);
  return out;
}

/** What a command segment is, or undefined when it is not one the registry accounts for. */
function classify(segment: string, where: string, verbs: readonly string[]): DocCommand | undefined {
  const text = segment.replace(/^([A-Z_][A-Z0-9_]*=\S*\s+)+/, '').trim();
  // A bare prefix named in prose (`npm run`, `npx cdk`) is not a command line.
  if (!STARTS.test(text) || BARE_PREFIXES.has(text)) return undefined;
  const w = words(text);
  const isVerb = (v: string | undefined) => v !== undefined && verbs.includes(v);
  const placeholder = (v: string | undefined) => v !== undefined && (/^<.*>$/.test(v) || v === '…');
  const afterDashes = (rest: string[]) => {
    const i = rest.indexOf('--');
    return i < 0 ? [] : rest.slice(i + 1);
  };
  if (w[0] === 'npm') {
    if (w[1] === 'run' || w[1] === 'run-script') {
      const rest = w.slice(2);
      // `npm run -s build`: npm's own flags come before the script's name.
      const at = Math.max(
        rest.findIndex((a) => !a.startsWith('-')),
        0,
      );
      const script = rest[at];
      const after = rest.slice(at + 1);
      const problem =
        after.length > 0 && after[0] !== '--'
          ? `"${text}": arguments before "--" go to npm, not to the script`
          : undefined;
      if (script === undefined || placeholder(script)) return { where, text, key: '<command>' };
      if (isVerb(script)) return { where, text, key: script, script, argv: afterDashes(after), problem };
      return { where, text, key: `npm run ${script}`, script, problem };
    }
    if (w[1] === 'start') return { where, text, key: 'start', script: 'start', argv: afterDashes(w.slice(2)) };
    if (w[1] === 'test' || w[1] === 't') return { where, text, key: 'npm test', script: 'test' };
    // Installing from git is its own case: it builds the package through its prepare script.
    if (w[1] === 'install' && w.slice(2).some((a) => a.startsWith('github:')))
      return { where, text, key: 'npm install github:' };
    return { where, text, key: `npm ${w[1] ?? ''}`.trim() };
  }
  if (w[0] === 'npx') {
    if (w[1] === 'smartcar-webhooks') {
      const verb = w[2];
      if (verb === undefined || verb === '--help' || verb === '-h')
        return { where, text, key: 'smartcar-webhooks --help' };
      if (placeholder(verb)) return { where, text, key: '<command>' };
      return {
        where,
        text,
        key: verb,
        argv: w.slice(3),
        problem: isVerb(verb) ? undefined : `"${text}": no command "${verb}"`,
      };
    }
    return { where, text, key: `npx ${w[1] ?? ''} ${w[2] ?? ''}`.trim() };
  }
  return { where, text, key: `aws ${w[1] ?? ''} ${w[2] ?? ''}`.trim() };
}

export interface CheckDeps {
  readonly registry: Readonly<Record<string, DocCommandEntry>>;
  readonly scripts: Readonly<Record<string, string>>;
  readonly checkArgs: (command: string, argv: string[]) => string | undefined;
  readonly verbs: readonly string[];
}

/** One line per problem: a command nobody accounted for, a missing script, or flags its parser refuses. */
export function checkCommands(commands: readonly DocCommand[], deps: CheckDeps): string[] {
  const problems: string[] = [];
  for (const c of commands) {
    if (c.problem) problems.push(`${c.where}: ${c.problem}`);
    if (!Object.hasOwn(deps.registry, c.key)) {
      problems.push(
        `${c.where}: "${c.text}" is not in test/docs-commands.ts (key "${c.key}"): name the test that runs it, or say why it is deliberately untested`,
      );
    }
    if (c.script && !Object.hasOwn(deps.scripts, c.script))
      problems.push(`${c.where}: "${c.text}": package.json has no script "${c.script}"`);
    if (c.argv && deps.verbs.includes(c.key)) {
      const error = deps.checkArgs(c.key, [...c.argv]);
      if (error) problems.push(`${c.where}: "${c.text}": ${c.key} refuses these arguments: ${error}`);
    }
  }
  return problems;
}
