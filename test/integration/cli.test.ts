/**
 * Every command behaves the same: `--help` prints its usage on standard output and exits 0; an unknown
 * flag exits 2 with one line and the usage on standard error, before the command does anything. Checked
 * through the dispatcher (as `smartcar-webhooks <command>` runs) for each command in the registry, and
 * once through the bundled `bin` the package ships.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { dispatch, overview } from '../../cli/main';
import { COMMANDS, checkArgs } from '../../cli/registry';

async function run(argv: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    jest.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' '))),
    jest.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' '))),
  ];
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await dispatch(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    process.env = saved;
    for (const s of spies) s.mockRestore();
  }
}

describe.each(COMMANDS)('%s', (command) => {
  it('--help prints the usage and exits 0', async () => {
    const r = await run([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: smartcar-webhooks ${command}`));
    expect(r.stderr).toBe('');
  });

  it('an unknown flag exits 2 with the usage, having done nothing', async () => {
    const r = await run([command, '--no-such-flag']);
    expect(r.code).toBe(2);
    // rotate-token and erase say only what kind of mistake it was (see below): a flag may hold a token or an id.
    const reason =
      command === 'rotate-token' || command === 'erase'
        ? 'unknown option \\(not shown\\)'
        : "Unknown option '--no-such-flag'";
    expect(r.stderr).toMatch(new RegExp(`^${command}: ${reason}[\\s\\S]*usage: smartcar-webhooks ${command}`));
    expect(r.stdout).toBe('');
  });

  it('names itself as npm run does, in the repository', async () => {
    const r = await run([command, '-h'], { npm_lifecycle_event: command });
    expect(r.stdout).toMatch(
      command === 'start' ? /^usage: npm start --/ : new RegExp(`^usage: npm run ${command} --`),
    );
  });
});

it('rotate-token never repeats an unknown flag (a token pasted in the wrong place stays unseen)', async () => {
  const r = await run(['rotate-token', '--amt-SECRET-value']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^rotate-token: unknown option \(not shown\)/);
  expect(r.stderr).not.toContain('SECRET');
});

it('the dispatcher: --help lists every command, nothing or an unknown command exits 2', async () => {
  const help = await run(['--help']);
  expect(help.code).toBe(0);
  for (const c of COMMANDS) expect(help.stdout).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
  expect((await run([])).code).toBe(2);
  const unknown = await run(['deploy']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/^smartcar-webhooks: unknown command "deploy"/);
  expect(overview()).toContain('in the repository: npm run <command> -- [options]');
});

it('checkArgs says whether a command line parses, for the docs test', () => {
  expect(checkArgs('replay', ['--stack', 'S', '--from', '2026-11-26T00', '--to', '2026-11-27T00'])).toBeUndefined();
  expect(checkArgs('replay', ['--bucket-name', 'x'])).toMatch(/Unknown option '--bucket-name'/);
  expect(checkArgs('send-event', ['vehicle-state', 'verify'])).toMatch(/takes no more than 1 argument/);
  expect(checkArgs('frobnicate', [])).toMatch(/unknown command/);
});

it('(spawned) the bundled bin the package ships: help exits 0, a bad flag 2', () => {
  const bin = path.join(__dirname, '..', '..', 'dist', 'cli', 'smartcar-webhooks.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: npm run build (npm ci runs it) makes it`);
  const help = spawnSync(process.execPath, [bin, 'redrive', '--help'], { encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: smartcar-webhooks redrive --stack NAME/);
  const bad = spawnSync(process.execPath, [bin, 'replay', '--bogus'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/^replay: Unknown option '--bogus'/);
});
