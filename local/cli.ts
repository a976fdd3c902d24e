/**
 * How the project's commands end: `main` returns the exit code; anything it throws is printed as one
 * line prefixed with the command's name, never as a stack trace.
 */
export function runCli(name: string, main: () => Promise<number>, explain: (err: unknown) => string = describe): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`${name}: ${explain(err)}`);
      process.exit(1);
    },
  );
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
