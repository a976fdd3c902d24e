/** The reconcile state machine, its function, credentials secret and schedules in the template. */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { bareStack, synthStack } from '../support/synth';

describe('schedules', () => {
  it('are always there, DISABLED by default: incremental every 15 minutes, full daily', () => {
    const { template } = synthStack();
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'DISABLED',
      Target: Match.objectLike({
        Arn: { Ref: Match.stringLikeRegexp('ReconcileStateMachine') },
        Input: JSON.stringify({ kind: 'incremental', mode: 'live' }),
      }),
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 day)',
      State: 'DISABLED',
      Target: Match.objectLike({ Input: JSON.stringify({ kind: 'full', mode: 'live' }) }),
    });
  });

  it('are ENABLED by the prop, or by the stack context reconcile=true, with the selection rules', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      webhookId: 'wh',
      reconcile: { enabled: true, mode: 'all', excludeUserIds: ['test-user'], prune: true },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      State: 'ENABLED',
      Target: Match.objectLike({
        Input: JSON.stringify({ kind: 'full', mode: 'all', excludeUserIds: ['test-user'], prune: true }),
      }),
    });
    expect(settingsFromContext((k) => ({ reconcile: 'true' })[k])).toMatchObject({ reconcile: true });
    expect(() => settingsFromContext((k) => ({ reconcile: 'yes' })[k])).toThrow(/must be true or false/);
  });
});

describe('reconcile function', () => {
  it('reads the two secrets, and only the reconcile/ prefix of the work bucket', () => {
    const { template } = synthStack();
    const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
      id.startsWith('SmartcarWebhooksReconcileReconcileFunctionRole'),
    );
    const statements = policies.flatMap(
      ([, p]) =>
        p.Properties.PolicyDocument.Statement as {
          Action: string | string[];
          Resource: unknown;
          Condition?: unknown;
        }[],
    );
    const actions = statements.flatMap((s) => ([] as string[]).concat(s.Action)).sort();
    expect(actions).toEqual(
      [
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'secretsmanager:DescribeSecret',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:GetSecretValue',
      ].sort(),
    );
    const objects = statements.find((s) => JSON.stringify(s.Action).includes('s3:GetObject'));
    expect(JSON.stringify(objects?.Resource)).toContain('/reconcile/*');
    const list = statements.find((s) => JSON.stringify(s.Action).includes('s3:ListBucket'));
    expect(list?.Condition).toEqual({ StringLike: { 's3:prefix': ['reconcile/*'] } });
  });

  it('has the client credentials in their own secret, with a placeholder, never in the environment', () => {
    const { template } = synthStack();
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f.Properties.Environment).includes('SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID'),
    );
    expect(fn?.Properties.Environment.Variables).toMatchObject({
      SMARTCAR_RATE_CAPACITY: '120',
      SMARTCAR_RATE_PER_MINUTE: '2',
      RECONCILE_DEFAULTS: JSON.stringify({ mode: 'live' }),
    });
    expect(JSON.stringify(fn?.Properties.Environment)).not.toMatch(/clientSecret/);
  });

  it('rejects a bad mode', () => {
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { reconcile: { mode: 'test' } })).toThrow(
      /reconcile.mode "test"/,
    );
  });
});
