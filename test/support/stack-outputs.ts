/** CloudFormation's answer for a stack whose outputs describe instances the way the construct writes them. */
import type { DescribeStacksCommandOutput, Output } from '@aws-sdk/client-cloudformation';

/** One instance's outputs: OutputKey = prefix + name, Description marked with the instance. */
export function outputsOf(prefix: string, values: Record<string, string>): Output[] {
  return Object.entries(values).map(([name, value]) => ({
    OutputKey: `${prefix}${name}`,
    OutputValue: value,
    Description: `[smartcar-webhooks:${prefix || 'default'}] ${name}`,
  }));
}

/** DescribeStacks' answer for one stack with these outputs. */
export function describedStack(stackName: string, outputs: Output[]): Partial<DescribeStacksCommandOutput> {
  return {
    Stacks: [{ StackName: stackName, CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: outputs }],
  };
}
