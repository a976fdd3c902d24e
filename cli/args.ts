/**
 * How every command reads its arguments, so that they all behave the same:
 * - `--help` or `-h` prints the usage on standard output and exits 0;
 * - an unknown flag, a missing value or a bad combination exits 2 with one line and the usage on
 *   standard error;
 * - the usage names the command the way it was started: `npm run replay --` in this repository,
 *   `smartcar-webhooks replay` from the installed package.
 * Commands that read a secret never repeat what they were given (`quiet`): a token pasted into the wrong
 * place must not reach the terminal.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

export type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

export interface CommandSpec {
  readonly name: string;
  /** One line for `smartcar-webhooks --help`. */
  readonly summary: string;
  /** The synopsis lines after the command's name, e.g. `--from HOUR --to HOUR [--dry-run]`. */
  readonly synopsis: readonly string[];
  /** The option lines and notes printed under the synopsis. */
  readonly details: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** How many positional arguments it takes. @default [0, 0] */
  readonly positionals?: readonly [number, number];
  /** What to say when a positional argument is missing. */
  readonly missing?: string;
  /** Never quote an argument in an error (commands that read a secret). */
  readonly quiet?: boolean;
  /** Where it works: the local lake, a deployed stack, or both. */
  readonly where: 'local' | 'deployed' | 'both';
}

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

/** A wrong invocation: printed as `<command>: <message>` and the usage, exit code 2. */
export class UsageError extends Error {}

/** How the command was started, for its usage line. */
export function invokedAs(name: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.npm_lifecycle_event === name) return name === 'start' ? 'npm start --' : `npm run ${name} --`;
  return `smartcar-webhooks ${name}`;
}

export function usageText(spec: CommandSpec, env: NodeJS.ProcessEnv = process.env): string {
  const prog = invokedAs(spec.name, env);
  const pad = ' '.repeat('usage: '.length);
  const lines = spec.synopsis.map((s, i) => `${i === 0 ? 'usage: ' : pad}${prog}${s ? ` ${s}` : ''}`);
  return `${lines.join('\n')}\n\n  ${spec.summary}\n${spec.details ? `\n${spec.details.replace(/\s+$/, '')}\n` : ''}`;
}

/** True when the arguments ask for help (before any `--` that ends the options). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Parses `argv` by `spec`; throws {@link UsageError} with one line when they do not fit. */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const [min, max] = spec.positionals ?? [0, 0];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: max > 0,
      strict: true,
    });
  } catch (err) {
    // node:util's first sentence says it ("Unknown option '--x'"); the rest is advice about positionals.
    const said = (err as Error).message.split('\n')[0].split('. To specify a positional')[0];
    throw new UsageError(spec.quiet ? quietReason(err) : said || 'bad arguments');
  }
  const positionals = parsed.positionals;
  if (positionals.length < min)
    throw new UsageError(spec.missing ?? `takes ${min === max ? min : `at least ${min}`} argument(s)`);
  if (positionals.length > max)
    throw new UsageError(
      spec.quiet
        ? `takes no more than ${max} argument(s) (got ${positionals.length}, not shown)`
        : `takes no more than ${max} argument(s), got: ${positionals.join(' ')}`,
    );
  return { values: parsed.values as ParsedArgs['values'], positionals };
}

/** node:util's messages quote the argument; for a quiet command only the kind of mistake is said. */
function quietReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return 'unknown option (not shown)';
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return 'takes no positional arguments (not shown)';
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return 'an option is missing its value, or has one it takes none';
  return 'could not read the arguments';
}

/**
 * The common frame of a command: help, parsing, usage errors. `body` gets the parsed arguments and
 * returns the exit code; a {@link UsageError} it throws (a bad combination) is answered like a parse error.
 */
export async function runCommand(
  spec: CommandSpec,
  argv: readonly string[],
  body: (args: ParsedArgs) => Promise<number>,
  io: { out: (text: string) => void; err: (text: string) => void } = {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
  },
): Promise<number> {
  if (wantsHelp(argv)) {
    io.out(usageText(spec));
    return 0;
  }
  try {
    return await body(parseCommandArgs(spec, argv));
  } catch (err) {
    // A quiet command's messages never carry what it was given, whoever wrote them (ours, the AWS SDK's).
    if (spec.quiet && err instanceof Error) err.message = redact(err.message, argv);
    if (!(err instanceof UsageError)) throw err;
    io.err(`${spec.name}: ${err.message}\n\n${usageText(spec)}`);
    return 2;
  }
}

/**
 * `text` with every value of `argv` (not the flags' names) of 8 characters or more replaced by
 * `<argument>`: long enough for anything token-like, short enough values are left so that a message
 * about, say, stack "a" is not mangled.
 */
export function redact(text: string, argv: readonly string[]): string {
  const values = argv
    .flatMap((a) =>
      a.startsWith('--') && a.includes('=') ? [a.slice(a.indexOf('=') + 1)] : a.startsWith('-') ? [] : [a],
    )
    .filter((v) => v.length >= 8)
    .sort((a, b) => b.length - a.length);
  return values.reduce((t, v) => t.split(v).join('<argument>'), text);
}

/** A string flag's value, or undefined. */
export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** The local lake: `--lake-dir`, else $LOCAL_LAKE_DIR, else ./local-lake (where `start` writes), absolute. */
export function lakeDirOf(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(str(args, 'lake-dir') ?? (env.LOCAL_LAKE_DIR || 'local-lake'));
}

/**
 * A module the package leaves to the consumer (aws-cdk-lib and constructs, its peers; DuckDB, optional)
 * that is not installed, as one line saying what to install; undefined for any other error.
 */
export function missingDependency(err: unknown): Error | undefined {
  const missing = /Cannot find (?:module|package) '(@duckdb\/node-api|aws-cdk-lib|constructs)[/']/.exec(
    (err as Error)?.message ?? '',
  );
  return missing
    ? new Error(`needs ${missing[1]}; install it beside this package (npm install ${missing[1]})`)
    : undefined;
}
