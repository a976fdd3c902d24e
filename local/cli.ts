/**
 * How the project's commands end: `main` returns the exit code; anything it throws is printed as one
 * line prefixed with the command's name, never as a stack trace. `runMain` does that and returns the
 * code (tests call it in-process); `runCli` also exits with it.
 */
export async function runMain(
  name: string,
  main: () => Promise<number>,
  explain: (err: unknown) => string = describe,
): Promise<number> {
  try {
    return await main();
  } catch (err) {
    console.error(`${name}: ${explain(err)}`);
    return 1;
  }
}

export function runCli(name: string, main: () => Promise<number>, explain: (err: unknown) => string = describe): void {
  runMain(name, main, explain).then((code) => process.exit(code));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
