/**
 * The deployed side of the commands that change live resources, with the AWS SDK mocked: each finds its
 * resources from `--stack` (the instance's outputs) and calls what it should with them, and a stack
 * without the output it needs is one line that says which.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { parseCommandArgs, UsageError } from '../../cli/args';
import { reconcileDeployed, reconcileRequest } from '../../cli/reconcile';
import { SPECS } from '../../cli/registry';
import { parseSendArgs } from '../../local/send-event';
import { main as rotateMain, rotationTarget } from '../../scripts/ops/rotate-token';
import { describedStack, outputsOf } from '../support/stack-outputs';

const cfn = mockClient(CloudFormationClient);
const sfn = mockClient(SFNClient);

beforeEach(() => {
  cfn.reset();
  sfn.reset();
  cfn.on(DescribeStacksCommand, { StackName: 'Platform' }).resolves(
    describedStack('Platform', [
      ...outputsOf('Prod', {
        CallbackUrl: 'https://prod.example/webhooks',
        ManagementTokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:prod',
        RecoveryFunctionName: 'prod-recover',
        ReconcileStateMachineArn: 'arn:aws:states:eu-west-1:1:stateMachine:prod-reconcile',
      }),
      ...outputsOf('Staging', {
        CallbackUrl: 'https://staging.example/webhooks',
        ManagementTokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:staging',
      }),
    ]),
  );
});

const args = (command: keyof typeof SPECS, argv: string[]) => parseCommandArgs(SPECS[command], argv);

it('rotate-token --stack takes the secret and the recovery function of the instance it names', async () => {
  expect(await rotationTarget(args('rotate-token', ['--stack', 'Platform', '--instance', 'Prod']))).toEqual({
    secretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:prod',
    recoverFunction: 'prod-recover',
    since: undefined,
  });
  // Staging has no quarantine: the token is rotated, nothing to recover.
  expect(await rotationTarget(args('rotate-token', ['--stack', 'Platform', '--instance', 'Staging']))).toEqual({
    secretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:staging',
    recoverFunction: undefined,
    since: undefined,
  });
  expect(
    (await rotationTarget(args('rotate-token', ['--stack', 'Platform', '--instance', 'Prod', '--no-recover'])))
      .recoverFunction,
  ).toBeUndefined();
  await expect(rotationTarget(args('rotate-token', ['--stack', 'Platform']))).rejects.toThrow(
    /has 2 instances \(Prod, Staging\): pass --instance PREFIX/,
  );
  await expect(rotationTarget(args('rotate-token', ['--no-recover']))).rejects.toThrow(UsageError);
});

it('send-event --stack posts to the instance callback URL, signed with the token its secret holds', async () => {
  const read: string[] = [];
  const parsed = await parseSendArgs(
    args('send-event', ['vehicle-state', '--stack', 'Platform', '--instance', 'Staging']),
    {},
    async (id) => {
      read.push(id);
      return 'amt-staging\n';
    },
  );
  expect(parsed.options).toMatchObject({ url: 'https://staging.example/webhooks', token: 'amt-staging' });
  expect(read).toEqual(['arn:aws:secretsmanager:eu-west-1:1:secret:staging']);
});

it('reconcile --stack starts the instance state machine and follows the executions it hands on to', async () => {
  const machine = 'arn:aws:states:eu-west-1:1:stateMachine:prod-reconcile';
  const first = 'arn:aws:states:eu-west-1:1:execution:prod-reconcile:run-1';
  sfn.on(StartExecutionCommand).resolves({ executionArn: first, startDate: new Date() });
  sfn
    .on(DescribeExecutionCommand, { executionArn: first })
    .resolvesOnce({ status: 'RUNNING', executionArn: first, stateMachineArn: machine, startDate: new Date() })
    .resolves({
      status: 'SUCCEEDED',
      executionArn: first,
      stateMachineArn: machine,
      startDate: new Date(),
      output: JSON.stringify({ name: 'run-1-part-2', part: 2 }),
    });
  const second = 'arn:aws:states:eu-west-1:1:execution:prod-reconcile:run-1-part-2';
  sfn.on(DescribeExecutionCommand, { executionArn: second }).resolves({
    status: 'FAILED',
    executionArn: second,
    stateMachineArn: machine,
    startDate: new Date(),
    error: 'Reconcile.PruneStopped',
    cause: 'the prune would delete 40% of the subscriptions (cap 10%)',
  });
  const lines: string[] = [];
  const input = reconcileRequest(args('reconcile', ['--stack', 'Platform', '--prune']), {});
  expect(input).toEqual({ kind: 'full', prune: true });
  const code = await reconcileDeployed({
    stateMachineArn: machine,
    input,
    wait: true,
    print: (l) => lines.push(l),
    sfn: new SFNClient({}),
    pollMs: 0,
  });
  expect(code).toBe(1);
  expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input).toEqual({
    stateMachineArn: machine,
    input: '{"kind":"full","prune":true}',
  });
  expect(lines).toContain('  handed on to run-1-part-2 (part 2)');
  expect(lines.at(-1)).toBe(
    'FAILED: Reconcile.PruneStopped: the prune would delete 40% of the subscriptions (cap 10%)',
  );
});

it('a stack without the output a command needs says which, and how to pass it instead', async () => {
  const { Resources } = await import('../../cli/stack');
  const r = await Resources.of(args('replay', ['--stack', 'Platform', '--instance', 'Staging']));
  expect(() => r.required('bucket', 'LakeBucketName', 'the lake bucket')).toThrow(
    'stack Platform has no StagingLakeBucketName output (the lake bucket: is that part turned on?); pass --bucket',
  );
  const none = await Resources.of(args('replay', []));
  expect(() => none.required('bucket', 'LakeBucketName', 'the lake bucket')).toThrow(
    'pass --stack NAME or --bucket (the lake bucket)',
  );
});

it('rotate-token repeats no value it was given, in its own errors or AWS’s (a token pasted in the wrong place)', async () => {
  const secret = 'amt-SECRET-7f3a9c00';
  cfn
    .on(DescribeStacksCommand, { StackName: secret })
    .rejects(Object.assign(new Error(`Stack with id ${secret} does not exist`), { name: 'ValidationError' }));
  const printed: string[] = [];
  const spies = [
    jest.spyOn(console, 'log').mockImplementation((...a) => void printed.push(a.join(' '))),
    jest.spyOn(console, 'error').mockImplementation((...a) => void printed.push(a.join(' '))),
  ];
  try {
    for (const argv of [
      ['--stack', secret],
      ['--stack', 'Platform', '--instance', secret],
      [`--stack=${secret}`],
      ['--lake-dir', `/tmp/${secret}`],
    ]) {
      expect(await rotateMain(argv)).toBe(2);
    }
  } finally {
    for (const s of spies) s.mockRestore();
  }
  expect(printed.join('\n')).toMatch(/does not exist|no instance/);
  expect(printed.join('\n')).not.toContain('SECRET');
});
