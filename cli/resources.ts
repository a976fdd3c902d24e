/**
 * `smartcar-webhooks resources --stack NAME`: what the stack's outputs say about each instance, i.e. what
 * every other command will use. The first thing to run when a command cannot find something.
 */
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { flag, runCommand, str, UsageError } from './args';
import { SPECS } from './registry';
import { applyAwsFlags, instancesOf, pickInstance, type StackInstance, stackOutputs } from './stack';

export async function main(argv: string[] = process.argv.slice(2), cfn?: CloudFormationClient): Promise<number> {
  return runCommand(SPECS.resources, argv, async (args) => {
    applyAwsFlags(args);
    const stack = str(args, 'stack');
    if (!stack) throw new UsageError('pass --stack NAME');
    const all = instancesOf(stack, await stackOutputs(stack, cfn));
    const wanted = str(args, 'instance');
    const chosen: StackInstance[] =
      wanted !== undefined ? [pickInstance(stack, all, wanted)] : [...pickAll(stack, all).values()];
    for (const instance of chosen) {
      if (flag(args, 'json')) {
        console.log(
          JSON.stringify({ stack, instance: instance.prefix, outputs: Object.fromEntries(instance.outputs) }),
        );
        continue;
      }
      console.log(`${stack} instance ${instance.prefix === '' ? '(no prefix)' : instance.prefix}:`);
      const width = Math.max(...[...instance.outputs.keys()].map((k) => k.length));
      for (const [name, value] of [...instance.outputs].sort(([a], [b]) => a.localeCompare(b)))
        console.log(`  ${name.padEnd(width)}  ${value}`);
    }
    return 0;
  });
}

/** Every instance; none is a usage error that says how to turn the outputs on. */
function pickAll(stack: string, all: ReturnType<typeof instancesOf>): ReturnType<typeof instancesOf> {
  if (all.size === 0) pickInstance(stack, all);
  return all;
}
