/**
 * Running the project's commands in tests. Most cases call a command's `main` in this process (with its
 * own argv and environment, output captured): no process start-up, no tsx compile. A few smoke tests
 * spawn the real command; waiting on their output is event-driven and fails as soon as the child exits.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';
import { runMain } from '../../local/cli';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const STACK_TRACE = /^\s+at .+\(.+:\d+:\d+\)$/m;

/** A command that failed as it should: the exit code, a message that says what is wrong, no stack trace. */
export function expectCleanFailure(result: CommandResult, code: number, message: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout + result.stderr).toMatch(message);
  expect(result.stdout + result.stderr).not.toMatch(STACK_TRACE);
}

/**
 * Runs `main` as `npm run <name> -- <argv>` would, in this process: process.argv and the given
 * environment variables are set for the call, console output is captured, and the exit code returned.
 */
export async function runInProcess(
  name: string,
  main: () => Promise<number>,
  argv: string[],
  env: Record<string, string | undefined> = {},
  explain?: (err: unknown) => string,
): Promise<CommandResult> {
  const savedArgv = process.argv;
  const savedEnv = { ...process.env };
  const stdout: string[] = [];
  const stderr: string[] = [];
  const spies = [
    jest.spyOn(console, 'log').mockImplementation((...a) => void stdout.push(a.join(' '))),
    jest.spyOn(console, 'info').mockImplementation((...a) => void stdout.push(a.join(' '))),
    jest.spyOn(console, 'warn').mockImplementation((...a) => void stderr.push(a.join(' '))),
    jest.spyOn(console, 'error').mockImplementation((...a) => void stderr.push(a.join(' '))),
  ];
  process.argv = [process.execPath, name, ...argv];
  // As `npm run <name>` sets it: the usage names the command the way it was started.
  for (const [key, value] of Object.entries({ npm_lifecycle_event: name, ...env })) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    const code = await runMain(name, main, explain);
    return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
  } finally {
    process.argv = savedArgv;
    process.env = savedEnv;
    for (const spy of spies) spy.mockRestore();
  }
}

export interface SpawnedCommand {
  readonly child: ChildProcessWithoutNullStreams;
  readonly done: Promise<CommandResult>;
  output(): string;
  /** Resolves with the first match of `pattern` in stdout; rejects as soon as the command exits without one. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
}

/** Spawns the command `name` through cli/main.ts with tsx, as `npm run <name> -- <args>` does. */
export function spawnCommand(name: string, args: string[], env: Record<string, string> = {}): SpawnedCommand {
  const root = path.join(__dirname, '..', '..');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli', 'main.ts'), name, ...args], {
    cwd: root,
    env: { ...process.env, npm_lifecycle_event: name, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return watch(child, name);
}

/** A spawned process's output as it comes, its end, and a wait for a line of it; `label` names it in errors. */
export function watch(child: ChildProcessWithoutNullStreams, label: string): SpawnedCommand {
  const script = label;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<CommandResult>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    done,
    output: () => stdout,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(stdout);
          if (!m) return false;
          child.stdout.off('data', check);
          resolve(m);
          return true;
        };
        if (check()) return;
        child.stdout.on('data', check);
        done.then((r) => {
          if (!check())
            reject(new Error(`${script} exited (${r.code}) before printing ${pattern}:\n${r.stdout}\n${r.stderr}`));
        });
      }),
  };
}
