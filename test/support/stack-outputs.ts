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

/**
 * Creates a stack (in moto) whose outputs describe instances as the construct's `outputs` prop writes
 * them: `instances` by prefix ('' for the unprefixed one), plus `others`, outputs of something else that
 * must never be mistaken for ours. The stack holds one queue, as a stack must hold a resource.
 */
export async function createMarkedStack(
  name: string,
  instances: Record<string, Record<string, string>>,
  others: Record<string, { Value: string; Description: string }> = {},
): Promise<void> {
  const { CloudFormationClient, CreateStackCommand } = await import('@aws-sdk/client-cloudformation');
  const Outputs: Record<string, { Value: string; Description: string }> = { ...others };
  for (const [prefix, values] of Object.entries(instances))
    for (const o of outputsOf(prefix, values))
      Outputs[o.OutputKey as string] = { Value: o.OutputValue as string, Description: o.Description as string };
  await new CloudFormationClient({}).send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify({
        Resources: { Marker: { Type: 'AWS::SQS::Queue', Properties: { QueueName: `${name.toLowerCase()}-marker` } } },
        Outputs,
      }),
    }),
  );
}
