/** The reconcile state machine, its function, credentials secret and schedules in the template. */
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { ReconcileMode, SmartcarApi } from '../../lib/reconcile';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { bareStack, synthStack } from '../support/synth';

/** A stack with reconcile on (schedules, client-credentials secret, alarms), synthesized once for the file. */
let enabledTemplate: Template | undefined;
function reconcileOn(): Template {
  if (!enabledTemplate) {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      webhookId: 'wh',
      reconcile: { enabled: true, mode: ReconcileMode.ALL, excludeUserIds: ['test-user'], prune: true },
    });
    enabledTemplate = Template.fromStack(stack);
  }
  return enabledTemplate;
}

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
    const t = reconcileOn();
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
  it('reads the two secrets (with reconcile on), and only the reconcile/ prefix of the work bucket', () => {
    const template = reconcileOn();
    const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
      id.startsWith('WReconcileReconcileFunctionRole'),
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
    const template = reconcileOn();
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      SecretString: Match.stringLikeRegexp('replace this whole value with the client credentials'),
    });
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f.Properties.Environment).includes('SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID'),
    );
    expect(fn?.Properties.Environment.Variables).toMatchObject({
      SMARTCAR_RATE_CAPACITY: '120',
      SMARTCAR_RATE_PER_MINUTE: '2',
      RECONCILE_DEFAULTS: JSON.stringify({ mode: 'all' }),
    });
    expect(JSON.stringify(fn?.Properties.Environment)).not.toMatch(/clientSecret/);
  });

  it('costs no secret while off: none is created, the function has no id to read and reads only the management token', () => {
    const { template } = synthStack();
    const secrets = Object.values(template.findResources('AWS::SecretsManager::Secret'));
    expect(secrets.map((r) => JSON.stringify(r.Properties.SecretString))).toEqual([
      expect.stringContaining('management token'),
    ]);
    expect(JSON.stringify(template.findResources('AWS::Lambda::Function'))).not.toContain(
      'SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID',
    );
    // The function is still there for runs by hand (which it refuses, saying how to turn reconcile on).
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ RECONCILE_DEFAULTS: JSON.stringify({ mode: 'live' }) }) },
    });
    expect(Object.keys(template.findOutputs('*'))).not.toContain('ClientCredentialsSecretName');
    const reads = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('SmartcarWebhooksReconcileReconcileFunctionRole'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[] }[])
      .flatMap((st) => ([] as string[]).concat(st.Action))
      .filter((a) => a === 'secretsmanager:GetSecretValue');
    expect(reads).toHaveLength(1);
  });

  it('uses a secret brought with existingClientCredentialsSecret, with reconcile on or off (runs by hand)', () => {
    const stack = bareStack();
    const brought = secretsmanager.Secret.fromSecretNameV2(stack, 'Creds', 'team/smartcar-client');
    const off = new SmartcarWebhooks(stack, 'Off', { reconcile: { existingClientCredentialsSecret: brought } });
    expect(off.reconcile.clientCredentialsSecret).toBe(brought);
    const none = new SmartcarWebhooks(bareStack(), 'None', {});
    expect(none.reconcile.clientCredentialsSecret).toBeUndefined();
  });

  it('refuses a work retention shorter than a long run lasts', () => {
    expect(
      () => new SmartcarWebhooks(bareStack(), 'W', { subscriptionWorkflow: { workRetention: Duration.days(7) } }),
    ).toThrow(/workRetention is 7 days; give at least 14 days/);
  });

  it('lists connections with API v3 by default; SmartcarApi.V2 or the context smartcarApi=v2 switches to the v2.0 listing', () => {
    const envOf = (reconcile: Record<string, unknown>) => {
      const stack = bareStack();
      const w = new SmartcarWebhooks(stack, 'W', { webhookId: 'wh', reconcile });
      return stack.resolve(
        (w.reconcile?.reconcileFunction.node.defaultChild as { environment?: unknown })?.environment,
      );
    };
    expect(JSON.stringify(envOf({}))).toContain('"SMARTCAR_API":"v3"');
    expect(JSON.stringify(envOf({ smartcarApi: SmartcarApi.V2 }))).toContain('"SMARTCAR_API":"v2"');
    expect(settingsFromContext((k) => ({ smartcarApi: 'v2' })[k])).toMatchObject({ smartcarApi: SmartcarApi.V2 });
    expect(() => settingsFromContext((k) => ({ smartcarApi: 'v2.0' })[k])).toThrow(
      /Context "smartcarApi" must be v3 or v2, got "v2.0"/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { reconcile: { smartcarApi: 'v4' as SmartcarApi } })).toThrow(
      /reconcile.smartcarApi "v4" must be SmartcarApi.V3 or SmartcarApi.V2/,
    );
  });

  it('rejects a bad mode', () => {
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { reconcile: { mode: 'test' as ReconcileMode } })).toThrow(
      /reconcile.mode "test" must be one of ReconcileMode.LIVE, ReconcileMode.SIMULATED, ReconcileMode.ALL/,
    );
  });
});

describe('guard rails in the state machine', () => {
  const machine = () => {
    const { template } = synthStack();
    const [id, sm] = Object.entries(template.findResources('AWS::StepFunctions::StateMachine')).find(([k]) =>
      k.includes('ReconcileStateMachine'),
    ) as [string, { Properties: { DefinitionString: unknown; RoleArn: unknown } }];
    return { template, id, definition: JSON.stringify(sm.Properties.DefinitionString) };
  };

  it('fails the execution with the reason after summarizing, when the run refused to delete', () => {
    const { definition } = machine();
    expect(definition).toContain(
      '\\"Type\\":\\"Fail\\",\\"ErrorPath\\":\\"$.failure.error\\",\\"CausePath\\":\\"$.failure.cause\\"',
    );
  });

  it('continues a long run in a new execution of itself, and may start nothing else', () => {
    const { template, id, definition } = machine();
    expect(definition).toContain(':states:::states:startExecution');
    expect(definition).toContain('\\"StateMachineArn.$\\":\\"$$.StateMachine.Id\\"');
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p).includes('states:StartExecution'),
    );
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    const own = statements.filter((s: { Action: string }) => s.Action === 'states:StartExecution');
    expect(own.map((s: { Resource: unknown }) => s.Resource)).toContainEqual({ Ref: id });
  });

  it('sets maxPruneFraction (10% by default), and rejects one outside (0, 1]', () => {
    const { template } = synthStack();
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f.Properties.Environment).includes('RECONCILE_MAX_PRUNE_FRACTION'),
    );
    expect(fn?.Properties.Environment.Variables).toMatchObject({
      RECONCILE_MAX_PRUNE_FRACTION: '0.1',
      RECONCILE_MAX_EXECUTION_SECONDS: String(3 * 24 * 3600),
    });
    for (const bad of [0, 1.5, -0.1])
      expect(() => new SmartcarWebhooks(bareStack(), 'W', { reconcile: { maxPruneFraction: bad } })).toThrow(
        /reconcile.maxPruneFraction/,
      );
  });

  it('expires run folders in the work bucket, never the watermarks', () => {
    const { template } = synthStack();
    const bucket = Object.entries(template.findResources('AWS::S3::Bucket')).find(([k]) => k.includes('WorkBucket'));
    const rules = bucket?.[1].Properties.LifecycleConfiguration.Rules as {
      Prefix?: string;
      ExpirationInDays?: number;
    }[];
    const expiring = rules.filter((r) => r.ExpirationInDays);
    // (and what an unfinished erasure found: erasures/pending/, never the receipts)
    expect(expiring.map((r) => r.Prefix).sort()).toEqual(['erasures/pending/', 'reconcile/runs/', 'runs/']);
  });
});

describe('webhook health check', () => {
  const enabled = (reconcile: Record<string, unknown> = {}) => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { webhookId: 'wh', reconcile: { enabled: true, ...reconcile } });
    return Template.fromStack(stack);
  };

  it('invokes the reconcile function every 15 minutes, with the stack callback URL to compare', () => {
    const t = reconcileOn();
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      Target: Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReconcileFunction'), 'Arn'] },
        Input: JSON.stringify({ task: 'webhookHealth' }),
      }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ SMARTCAR_EXPECTED_CALLBACK_URL: Match.anyValue(), SMARTCAR_WEBHOOK_ID: 'wh' }),
      },
    });
  });

  it('alarms WebhookUnhealthy on a 0 within one check interval, and says what to check', () => {
    enabled({ webhookHealthInterval: Duration.minutes(5) }).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'WebhookHealthy',
      Namespace: 'SmartcarWebhooks',
      Dimensions: [{ Name: 'service', Value: Match.anyValue() }],
      Statistic: 'Minimum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmDescription: Match.stringLikeRegexp('disabled.*unverified.*not this stack.*whole fleet went silent'),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('AlarmTopic') }],
    });
  });

  it('has no schedule without a webhook id, and no alarm until reconcile is enabled', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {});
    const none = Template.fromStack(stack);
    expect(JSON.stringify(none.findResources('AWS::Scheduler::Schedule'))).not.toContain('webhookHealth');
    const off = bareStack();
    new SmartcarWebhooks(off, 'W', { webhookId: 'wh' });
    const t = Template.fromStack(off);
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      State: 'DISABLED',
      Target: Match.objectLike({ Input: JSON.stringify({ task: 'webhookHealth' }) }),
    });
    expect(t.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'WebhookHealthy' } })).toEqual({});
  });

  it("expects vehicle errors at the error callback URL too: the stack's own, or the same path under a custom domain", () => {
    const withErrors = (reconcile: Record<string, unknown>) => {
      const stack = bareStack();
      new SmartcarWebhooks(stack, 'W', {
        webhookId: 'wh',
        errorCallbackPath: '/errors',
        reconcile: { enabled: true, ...reconcile },
      });
      return Template.fromStack(stack);
    };
    withErrors({}).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SMARTCAR_EXPECTED_ERROR_CALLBACK_URL: Match.anyValue() }) },
    });
    const expectedError = (reconcile: Record<string, unknown>) => {
      const [fn] = Object.values(
        withErrors(reconcile).findResources('AWS::Lambda::Function', {
          Properties: { Environment: { Variables: Match.objectLike({ SMARTCAR_API: Match.anyValue() }) } },
        }),
      );
      return fn.Properties.Environment.Variables.SMARTCAR_EXPECTED_ERROR_CALLBACK_URL;
    };
    // A base path in front of the callback path stays: only the callback path is swapped for the error path.
    expect(expectedError({ expectedCallbackUrl: 'https://api.example.com/smartcar/webhooks' })).toBe(
      'https://api.example.com/smartcar/errors',
    );
    // A URL that does not end with the callback path says nothing of the error path: not compared ('*').
    expect(expectedError({ expectedCallbackUrl: 'https://hooks.example.com/in' })).toBe('*');
    expect(
      expectedError({
        expectedCallbackUrl: 'https://hooks.example.com/in',
        expectedErrorCallbackUrl: 'https://hooks.example.com/in-errors',
      }),
    ).toBe('https://hooks.example.com/in-errors');
    expect(() => withErrors({ expectedErrorCallbackUrl: 'http://x.example/e' })).toThrow(
      /reconcile.expectedErrorCallbackUrl "http:\/\/x.example\/e" must be an https URL/,
    );
  });

  it('expects another callback URL when told (a custom domain), and only an https one', () => {
    enabled({ expectedCallbackUrl: 'https://hooks.example.com/webhook' }).hasResourceProperties(
      'AWS::Lambda::Function',
      {
        Environment: {
          Variables: Match.objectLike({ SMARTCAR_EXPECTED_CALLBACK_URL: 'https://hooks.example.com/webhook' }),
        },
      },
    );
    expect(() => enabled({ expectedCallbackUrl: 'hooks.example.com' })).toThrow(/expectedCallbackUrl.*https URL/);
  });

  it('rejects an interval that is not whole minutes from 1 minute to a day', () => {
    expect(() => enabled({ webhookHealthInterval: Duration.seconds(90) })).toThrow(/webhookHealthInterval/);
    expect(() => enabled({ webhookHealthInterval: Duration.days(2) })).toThrow(/webhookHealthInterval/);
  });
});
