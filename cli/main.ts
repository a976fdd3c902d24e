/**
 * `smartcar-webhooks <command> [options]`: the operations commands, from the installed package (its `bin`,
 * bundled into dist/cli/) or from this repository (`npm run <command> -- [options]` runs this same file).
 * A command's code is loaded only when it runs, so `--help` is instant and a command that needs an
 * optional dependency (DuckDB) fails alone, with one line saying what to install.
 */
import { runMain } from '../local/cli';
import { missingDependency, usageText, wantsHelp } from './args';
import { COMMANDS, type CommandName, checkArgs, isCommand, SPECS } from './registry';

type Command = { main(argv: string[]): Promise<number> };

const LOADERS: Record<CommandName, () => Promise<Command>> = {
  start: () => import('../local/start'),
  'send-event': () => import('../local/send-event'),
  subscribe: () => import('../local/subscribe'),
  reconcile: () => import('./reconcile'),
  query: () => import('../local/query'),
  fleet: () => import('../local/fleet'),
  compact: () => import('../local/compact'),
  trace: () => import('./trace'),
  'rotate-token': () => import('../scripts/ops/rotate-token'),
  'recover-rejected': () => import('../scripts/ops/recover-rejected'),
  redrive: () => import('../scripts/ops/redrive'),
  replay: () => import('../scripts/ops/replay'),
  'rebuild-state': () => import('../scripts/ops/rebuild-state'),
  erase: () => import('../scripts/ops/erase'),
  expire: () => import('../scripts/ops/expire'),
  resources: () => import('./resources'),
};

declare const PACKAGE_VERSION: string | undefined;

export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.length));
  const lines = COMMANDS.map((c) => `  ${c.padEnd(width)}  ${SPECS[c].summary}`);
  return `usage: smartcar-webhooks <command> [options]     (in the repository: npm run <command> -- [options])

Commands:
${lines.join('\n')}

  smartcar-webhooks <command> --help   shows a command's options.
  Local commands work on the lake \`start\` writes ($LOCAL_LAKE_DIR, default ./local-lake); deployed ones
  find their resources from --stack NAME (the construct's outputs must be on).`;
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(overview());
    return 2;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(overview());
    return 0;
  }
  if (first === '--version' || first === '-v') {
    console.log(typeof PACKAGE_VERSION === 'string' ? PACKAGE_VERSION : require('../package.json').version);
    return 0;
  }
  if (!isCommand(first)) {
    console.error(`smartcar-webhooks: unknown command "${first}"\n\n${overview()}`);
    return 2;
  }
  // Help and a wrong flag are answered from the registry, before the command's code (and an optional
  // dependency such as DuckDB) is loaded. rotate-token reads its own arguments: it has a kinder word for
  // a token passed as one.
  const spec = SPECS[first];
  if (wantsHelp(rest)) {
    console.log(usageText(spec));
    return 0;
  }
  const wrong = first === 'rotate-token' ? undefined : checkArgs(first, rest);
  if (wrong !== undefined) {
    console.error(`${first}: ${wrong}\n\n${usageText(spec)}`);
    return 2;
  }
  return runMain(first, async () => (await load(first)).main(rest));
}

async function load(name: CommandName): Promise<Command> {
  try {
    return await LOADERS[name]();
  } catch (err) {
    throw missingDependency(err) ?? err;
  }
}

if (require.main === module) {
  // `start` never resolves (a signal ends it); every other command exits with its code, whatever sockets
  // an SDK client keeps open.
  dispatch(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`smartcar-webhooks: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
