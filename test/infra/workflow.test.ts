import validator from 'asl-validator';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { WORKFLOW_ERRORS, WORKFLOW_TASKS } from '../../lambda/contract';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { definitionFromTemplate, taskStates } from '../../local/workflow-runner';
import { bareStack, synthStack } from '../support/synth';

let template: Template;
let definition: Record<string, unknown>;

beforeAll(() => {
  template = synthStack().template;
  definition = definitionFromTemplate(template.toJSON() as never);
});

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
function statements(logicalIdPrefix: string): Statement[] {
  return Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith(logicalIdPrefix))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
}
const actions = (s: Statement[]) => s.flatMap((x) => (Array.isArray(x.Action) ? x.Action : [x.Action]));

describe('state machine', () => {
  it('is Standard, traced, logging errors without execution data', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ERROR', IncludeExecutionData: false }),
    });
  });

  it('has a definition that passes the ASL validator', () => {
    expect(validator(definition as never)).toMatchObject({ isValid: true, errors: [] });
  });

  it('has readable state names', () => {
    expect([...taskStates(definition).keys()].sort()).toEqual([
      'Check input',
      'List a page of vehicles',
      'Load vehicle page',
      'Record page results',
      'Subscribe or unsubscribe vehicle',
      'Summarize',
    ]);
  });

  it('pages through a Distributed Map of Standard child executions, one page at a time', () => {
    const states = definition.States as Record<string, Record<string, unknown>>;
    expect(states['Process vehicles page by page']).toMatchObject({
      Type: 'Map',
      MaxConcurrency: 1,
      ItemsPath: '$.pageOffsets',
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
    });
  });

  it('sends the task functions exactly the tasks of the contract', () => {
    const sent = new Set([...JSON.stringify(definition).matchAll(/"task":"([A-Za-z]+)"/g)].map((m) => m[1]));
    expect([...sent].sort()).toEqual(Object.values(WORKFLOW_TASKS).sort());
  });

  it('retries transient Smartcar errors with bounded exponential backoff and full jitter', () => {
    const json = JSON.stringify(definition);
    const retry = {
      ErrorEquals: [WORKFLOW_ERRORS.retryable],
      IntervalSeconds: 5,
      MaxAttempts: 6,
      BackoffRate: 2,
      MaxDelaySeconds: 300,
      JitterStrategy: 'FULL',
    };
    expect(json.split(JSON.stringify(retry)).length - 1).toBe(2); // listing and per vehicle
  });

  it('waits for Retry-After with a Wait state driven by the value', () => {
    expect(JSON.stringify(definition)).toContain(
      '"Wait for Retry-After":{"Type":"Wait","SecondsPath":"$.retryAfterSeconds"',
    );
  });

  it('passes the task functions no token: only references to where they can read it', () => {
    const json = JSON.stringify(definition);
    expect(json).not.toMatch(/accessToken/);
    expect(json).toContain('"executionArn.$":"$$.Execution.Id"');
  });
});

describe('least privilege', () => {
  it('lets the state machine invoke its own three task functions and nothing else', () => {
    const sm = statements('SmartcarWebhooksSubscriptionWorkflowStateMachineRole');
    const invoke = sm.filter((s) => actions([s]).includes('lambda:InvokeFunction'));
    const targets = invoke.flatMap((s) => s.Resource as unknown[]).map((r) => JSON.stringify(r));
    for (const t of targets) expect(t).toMatch(/SubscriptionWorkflow(Plan|Vehicle|Results)Function/);
    expect(new Set(targets.map((t) => /(Plan|Vehicle|Results)Function/.exec(t)?.[1]))).toEqual(
      new Set(['Plan', 'Vehicle', 'Results']),
    );
    expect(actions(sm).filter((a) => a.startsWith('secretsmanager:') || a.startsWith('s3:'))).toEqual([]);
  });

  it('lets only the vehicle function (and, outside the workflow, the receiver, recovery, reconcile and erasure at Smartcar) read the management token', () => {
    const amtReaders = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([, p]) =>
      (p.Properties.PolicyDocument.Statement as Statement[]).some(
        (s) =>
          actions([s]).includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(s.Resource).includes('ManagementToken'),
      ),
    );
    expect(amtReaders.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      // `"smartcar": true` removes the connection at Smartcar with it.
      'SmartcarWebhooksErasureEraseFunctionRoleDefaultPolicy',
      'SmartcarWebhooksQuarantineRecoverFunctionRoleDefaultPolicy',
      'SmartcarWebhooksReceiverVerifyFunctionRoleDefaultPolicy',
      'SmartcarWebhooksReconcileReconcileFunctionRoleDefaultPolicy',
      'SmartcarWebhooksSubscriptionWorkflowVehicleFunctionRoleDefaultPolicy',
    ]);
  });

  it('limits access-token secrets to the documented prefix, for the functions that call Smartcar', () => {
    const prefixed = (id: string) =>
      statements(id).some((s) => JSON.stringify(s.Resource).includes(':secret:smartcar/access-tokens/*'));
    expect(prefixed('SmartcarWebhooksSubscriptionWorkflowPlanFunctionRole')).toBe(true);
    expect(prefixed('SmartcarWebhooksSubscriptionWorkflowVehicleFunctionRole')).toBe(true);
    expect(prefixed('SmartcarWebhooksSubscriptionWorkflowResultsFunctionRole')).toBe(false);
  });

  it('gives the results function exact S3 actions on the runs/ prefix only, and no secrets', () => {
    const results = actions(statements('SmartcarWebhooksSubscriptionWorkflowResultsFunctionRole'));
    expect(results.filter((a) => a.startsWith('s3:')).sort()).toEqual([
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    expect(results.some((a) => a.startsWith('secretsmanager:') || a.startsWith('states:'))).toBe(false);
  });

  it('lets the token readers describe executions of this state machine only', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Action: 'states:DescribeExecution',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': [
                '',
                Match.arrayWith([{ 'Fn::GetAtt': [Match.stringLikeRegexp('StateMachine'), 'Name'] }, ':*']),
              ],
            },
          },
        ],
      },
      Roles: Match.arrayWith([
        { Ref: Match.stringLikeRegexp('PlanFunctionRole') },
        { Ref: Match.stringLikeRegexp('VehicleFunctionRole') },
      ]),
    });
  });
});

describe('task configuration', () => {
  it('gives the tasks the webhook id, API origin and work bucket', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('one vehicle'),
      Timeout: 330,
      Environment: {
        Variables: Match.objectLike({
          SMARTCAR_API_ORIGIN: 'https://api.smartcar.com',
          // No webhook configured: nothing is allowed, every execution is refused until one is.
          SMARTCAR_ALLOWED_WEBHOOK_IDS: '',
          WORKFLOW_BUCKET_NAME: { Ref: Match.stringLikeRegexp('WorkBucket') },
        }),
      },
    });
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { webhookId: 'wh-configured' });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('one vehicle'),
      Environment: {
        Variables: Match.objectLike({
          SMARTCAR_WEBHOOK_ID: 'wh-configured',
          SMARTCAR_ALLOWED_WEBHOOK_IDS: 'wh-configured',
        }),
      },
    });
  });

  it('passes an explicit webhook allow-list to the tasks', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      webhookId: 'wh-a',
      subscriptionWorkflow: { allowedWebhookIds: ['wh-a', 'wh-b'] },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('one vehicle'),
      Environment: { Variables: Match.objectLike({ SMARTCAR_ALLOWED_WEBHOOK_IDS: 'wh-a,wh-b' }) },
    });
  });

  it('keeps the work bucket private, encrypted and expiring', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-runs', ExpirationInDays: 30 })]),
      },
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true, RestrictPublicBuckets: true }),
    });
  });

  it('prints the state machine ARN and a console link', () => {
    template.hasOutput('SubscriptionStateMachineArn', { Value: { Ref: Match.stringLikeRegexp('StateMachine') } });
    template.hasOutput('SubscriptionConsoleUrl', {
      Value: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('states/home\\?region=')])] },
    });
  });

  it.each([
    [{ maxConcurrency: 0 }, /maxConcurrency is 0/],
    [{ maxConcurrency: 2.5 }, /maxConcurrency is 2.5/],
    [{ accessTokenSecretPrefix: 'bad prefix*' }, /accessTokenSecretPrefix/],
  ])('rejects workflow options %p', (workflow, message) => {
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { subscriptionWorkflow: workflow })).toThrow(message);
  });
});
