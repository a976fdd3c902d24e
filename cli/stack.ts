/**
 * Finds a deployed instance's resources from its stack alone: the construct's outputs (prop `outputs`)
 * carry a Description starting with `[smartcar-webhooks:<instance>] `, where the instance is the outputs'
 * prefix (`default` for none) and each OutputKey is the prefix followed by the resource's name
 * (`ProdDeliveryQueueUrl`). So a command needs `--stack NAME`, and `--instance PREFIX` only when the stack
 * holds several instances. Explicit flags (`--bucket`, `--queue-url`, …) win over what the stack says.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { type OptionSpec, type ParsedArgs, str, UsageError } from './args';

/** The flags every command that can reach a deployed stack takes. */
export const DEPLOYED_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  stack: { type: 'string' },
  instance: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
};

export const DEPLOYED_DETAILS = `  --stack NAME          the deployed stack: its outputs name every resource the command needs
  --instance PREFIX     which instance, when the stack has several (their outputs' prefix)
  --region, --profile   AWS region and named profile (default: the AWS SDK's, e.g. AWS_REGION, AWS_PROFILE)`;

const MARKER = /^\[smartcar-webhooks:([A-Za-z0-9]+)\] /;

/** The names of the resources an instance's outputs carry (the part of each OutputKey after the prefix). */
export const RESOURCE_NAMES = [
  'CallbackUrl',
  'ErrorCallbackUrl',
  'ManagementTokenSecretArn',
  'ManagementTokenSecretName',
  'LakeBucketName',
  'RawPrefix',
  'DeliveryQueueUrl',
  'DeadLetterQueueUrl',
  'QuarantineBucketName',
  'QuarantineQueueUrl',
  'RecoveryFunctionName',
  'DedupTableName',
  'StateTableName',
  'StateQueueUrl',
  'StateDeadLetterQueueUrl',
  'WorkBucketName',
  'SubscriptionStateMachineArn',
  'ReconcileStateMachineArn',
  'ClientCredentialsSecretName',
  'CompactionStateMachineArn',
  'CompactionLockTableName',
  'EraseStateMachineArn',
  'AthenaResultsBucketName',
  'FleetCheckStateMachineArn',
  'AthenaWorkGroup',
  'GlueDatabase',
  'DashboardName',
  'AlarmTopicArn',
] as const;

export type ResourceName = (typeof RESOURCE_NAMES)[number];

export interface StackInstance {
  readonly stackName: string;
  /** The instance's output prefix ('' for the unprefixed one). */
  readonly prefix: string;
  /** Every output of the instance, by name without the prefix. */
  readonly outputs: ReadonlyMap<string, string>;
}

/** The instances a stack's outputs describe, by prefix. */
export function instancesOf(stackName: string, outputs: readonly Output[]): Map<string, StackInstance> {
  const byPrefix = new Map<string, Map<string, string>>();
  for (const o of outputs) {
    const m = MARKER.exec(o.Description ?? '');
    if (!m || !o.OutputKey || o.OutputValue === undefined) continue;
    const prefix = m[1] === 'default' ? '' : m[1];
    if (!o.OutputKey.startsWith(prefix)) continue;
    const names = byPrefix.get(prefix) ?? new Map<string, string>();
    names.set(o.OutputKey.slice(prefix.length), o.OutputValue);
    byPrefix.set(prefix, names);
  }
  return new Map([...byPrefix].map(([prefix, names]) => [prefix, { stackName, prefix, outputs: names }]));
}

/** The one instance `--instance` names (or the only one), else a usage error that lists them. */
export function pickInstance(
  stackName: string,
  instances: ReadonlyMap<string, StackInstance>,
  wanted?: string,
): StackInstance {
  const label = (p: string) => (p === '' ? '(no prefix)' : p);
  if (instances.size === 0) {
    throw new UsageError(
      `stack ${stackName} has no smartcar-webhooks outputs: turn them on with the construct's \`outputs\` prop ` +
        '(e.g. outputs: { prefix: "" }) and deploy, or pass the resources as flags',
    );
  }
  if (wanted !== undefined) {
    const key = wanted === 'default' ? '' : wanted;
    const found = instances.get(key);
    if (found) return found;
    throw new UsageError(
      `stack ${stackName} has no instance "${wanted}"; it has ${[...instances.keys()].map(label).join(', ')}`,
    );
  }
  if (instances.size > 1) {
    throw new UsageError(
      `stack ${stackName} has ${instances.size} instances (${[...instances.keys()].map(label).join(', ')}): pass --instance PREFIX`,
    );
  }
  return [...instances.values()][0];
}

/** A stack's outputs; a stack that does not exist is a usage error that says so. */
export async function stackOutputs(
  stackName: string,
  cfn: CloudFormationClient = new CloudFormationClient({}),
): Promise<Output[]> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return out.Stacks?.[0]?.Outputs ?? [];
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'ValidationError' && /does not exist/.test(e.message ?? ''))
      throw new UsageError(`stack ${stackName} does not exist (in this account and region)`);
    throw err;
  }
}

/** Reads the stack's outputs and picks the instance. */
export async function findInstance(
  stackName: string,
  wanted: string | undefined,
  cfn?: CloudFormationClient,
): Promise<StackInstance> {
  return pickInstance(stackName, instancesOf(stackName, await stackOutputs(stackName, cfn)), wanted);
}

/**
 * The resources a command reads: a flag's value when given, else the stack's output, else a clear error
 * naming both ways.
 */
export class Resources {
  private constructor(
    private readonly args: ParsedArgs,
    readonly instance: StackInstance | undefined,
  ) {}

  /** Applies `--region`/`--profile` and, with `--stack`, reads its outputs. */
  static async of(args: ParsedArgs, cfn?: CloudFormationClient): Promise<Resources> {
    applyAwsFlags(args);
    const stack = str(args, 'stack');
    if (!stack && str(args, 'instance') !== undefined) throw new UsageError('--instance goes with --stack');
    return new Resources(args, stack ? await findInstance(stack, str(args, 'instance'), cfn) : undefined);
  }

  /** Whether `--stack` named a deployed instance. */
  get deployed(): boolean {
    return this.instance !== undefined;
  }

  /** The flag's value, else the stack's output, else undefined. */
  optional(flagName: string | undefined, output: ResourceName): string | undefined {
    return (flagName ? str(this.args, flagName) : undefined) ?? this.instance?.outputs.get(output);
  }

  /** The flag's value, else the stack's output; a usage error when neither is there. */
  required(flagName: string | undefined, output: ResourceName, what: string): string {
    const value = this.optional(flagName, output);
    if (value !== undefined && value !== '') return value;
    if (this.instance) {
      throw new UsageError(
        `stack ${this.instance.stackName} has no ${this.instance.prefix}${output} output (${what}: is that part turned on?)` +
          (flagName ? `; pass --${flagName}` : ''),
      );
    }
    throw new UsageError(`pass --stack NAME${flagName ? ` or --${flagName}` : ''} (${what})`);
  }
}

/** `--region` and `--profile` become the SDK's environment before any client is made. */
export function applyAwsFlags(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): void {
  const region = str(args, 'region');
  const profile = str(args, 'profile');
  if (region) env.AWS_REGION = region;
  if (profile) env.AWS_PROFILE = profile;
}
