/**
 * `send-event --from-lake … --stack`: the payload comes from the local lake (`--lake-dir` names it, also
 * with a stack), the target and the token from the stack, read through its outputs (SDK mocked).
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { parseCommandArgs, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { parseSendArgs } from '../../local/send-event';
import { describedStack, outputsOf } from '../support/stack-outputs';

const cfn = mockClient(CloudFormationClient);

beforeEach(() => {
  cfn.reset();
  cfn.on(DescribeStacksCommand, { StackName: 'Platform' }).resolves(
    describedStack(
      'Platform',
      outputsOf('', {
        CallbackUrl: 'https://prod.example/webhooks',
        ManagementTokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:prod',
      }),
    ),
  );
});

const parse = (argv: string[], secrets: string[] = []) =>
  parseSendArgs(parseCommandArgs(SPECS['send-event'], argv), {}, async (id) => {
    secrets.push(id);
    return 'amt-prod\n';
  });

it('--from-lake --stack reads the local lake named by --lake-dir and signs with the stack token', async () => {
  const secrets: string[] = [];
  const parsed = await parse(['--from-lake', 'evt-1', '--stack', 'Platform', '--lake-dir', '/tmp/lake'], secrets);
  expect(parsed).toEqual({
    options: { url: 'https://prod.example/webhooks', token: 'amt-prod', badSignature: false },
    source: { fromLake: 'evt-1' },
    count: 1,
  });
  expect(secrets).toEqual(['arn:aws:secretsmanager:eu-west-1:1:secret:prod']);
});

it.each([
  [['vehicle-state', '--stack', 'Platform', '--lake-dir', '/tmp/lake']],
  [['--from-file', 'body.json', '--stack', 'Platform', '--lake-dir', '/tmp/lake']],
])('%p: --lake-dir means nothing with --stack there, refused before any AWS call', async (argv) => {
  await expect(parse(argv)).rejects.toThrow(
    new UsageError('--lake-dir is for the local receiver (or the lake --from-lake reads), not with --stack'),
  );
  expect(cfn.calls()).toHaveLength(0);
});

it('--error-callback --stack targets the ErrorCallbackUrl output, and says so when the stack has none', async () => {
  cfn.on(DescribeStacksCommand, { StackName: 'WithErrors' }).resolves(
    describedStack(
      'WithErrors',
      outputsOf('', {
        CallbackUrl: 'https://prod.example/webhooks',
        ErrorCallbackUrl: 'https://prod.example/webhooks/errors',
        ManagementTokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:prod',
      }),
    ),
  );
  const parsed = await parse(['vehicle-error', '--error-callback', '--stack', 'WithErrors']);
  expect(parsed.options.url).toBe('https://prod.example/webhooks/errors');
  await expect(parse(['vehicle-error', '--error-callback', '--stack', 'Platform'])).rejects.toThrow(
    new UsageError(
      'stack Platform has no ErrorCallbackUrl output (the vehicle error callback URL: is that part turned on?)',
    ),
  );
});
