/**
 * The construct's API beyond its resources: removal policies for every stateful resource, grant and
 * metric helpers, and the public entry point.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as api from '../../lib';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { bareStack, synthStack } from '../support/synth';

/** Deletion policies of the resources of a type; the compaction's lock table (one lease item) is always deleted. */
function deletionPolicies(template: Template, type: string): string[] {
  const all = Object.entries(template.findResources(type));
  for (const [, r] of all.filter(([id]) => id.includes('CompactionLock'))) expect(r.DeletionPolicy).toBe('Delete');
  return all.filter(([id]) => !id.includes('CompactionLock')).map(([, r]) => r.DeletionPolicy ?? 'Delete');
}

describe('removal policies', () => {
  it('by default keep the buckets, and drop the queues and the dedupe table (when there is one)', () => {
    const { template } = synthStack();
    expect(deletionPolicies(template, 'AWS::S3::Bucket')).toEqual(['Retain', 'Retain', 'Retain', 'Retain']);
    expect(deletionPolicies(template, 'AWS::SQS::Queue')).toEqual(['Delete', 'Delete', 'Delete', 'Delete']);
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { deduplication: true });
    expect(deletionPolicies(Template.fromStack(stack), 'AWS::DynamoDB::Table')).toEqual(['Delete']);
  });

  it('can be set for every stateful resource', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      bucketRemovalPolicy: RemovalPolicy.DESTROY,
      queueRemovalPolicy: RemovalPolicy.RETAIN,
      deduplication: true,
      deduplicationTableRemovalPolicy: RemovalPolicy.RETAIN,
      catalog: { resultsBucketRemovalPolicy: RemovalPolicy.DESTROY },
      subscriptionWorkflow: { workBucketRemovalPolicy: RemovalPolicy.DESTROY },
      quarantine: { bucketRemovalPolicy: RemovalPolicy.DESTROY },
      managementTokenSecretProps: { removalPolicy: RemovalPolicy.RETAIN },
    });
    const template = Template.fromStack(stack);
    expect(deletionPolicies(template, 'AWS::S3::Bucket')).toEqual(['Delete', 'Delete', 'Delete', 'Delete']);
    expect(deletionPolicies(template, 'AWS::SQS::Queue')).toEqual(['Retain', 'Retain', 'Retain', 'Retain']);
    expect(deletionPolicies(template, 'AWS::DynamoDB::Table')).toEqual(['Retain']);
    const amt = Object.entries(template.findResources('AWS::SecretsManager::Secret')).filter(([id]) =>
      id.includes('ManagementToken'),
    );
    expect(amt.map(([, r]) => r.DeletionPolicy)).toEqual(['Retain']);
  });

  it('the stack applies bucketRemovalPolicy to every bucket it creates', () => {
    const { template } = synthStack({ settings: { bucketRemovalPolicy: RemovalPolicy.DESTROY } });
    expect(deletionPolicies(template, 'AWS::S3::Bucket')).toEqual(['Delete', 'Delete', 'Delete', 'Delete']);
  });
});

it('vehicleStateTable: an opt-in table kept by its own function, which the ingest function only hands keys to', () => {
  const stack = bareStack();
  const w = new SmartcarWebhooks(stack, 'W', { vehicleStateTable: true });
  const t = Template.fromStack(stack);
  t.hasResourceProperties('AWS::DynamoDB::Table', {
    KeySchema: [
      { AttributeName: 'vehicleId', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
  });
  const statements = (role: string) =>
    Object.entries(t.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.includes(role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
  const actions = (role: string) => statements(role).flatMap((s) => ([] as string[]).concat(s.Action));
  // The ingest function: no table access at all, only the hand-over queue.
  expect(actions('IngestFunctionRole').some((a) => a.startsWith('dynamodb:'))).toBe(false);
  expect(actions('IngestFunctionRole')).toContain('sqs:SendMessage');
  // The state function: reads of an item and conditional puts of it on the table, reads of the raw zone only.
  expect(
    actions('StateFunctionRole')
      .filter((a) => a.startsWith('dynamodb:'))
      .sort(),
  ).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem']);
  expect(actions('StateFunctionRole').some((a) => /s3:(Put|Delete)/.test(a))).toBe(false);
  for (const s of statements('StateFunctionRole').filter((x) => JSON.stringify(x.Action).includes('s3:GetObject')))
    expect(JSON.stringify(s.Resource)).toContain('/raw/*');
  t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('StateQueue'), 'Arn'] },
    FunctionResponseTypes: ['ReportBatchItemFailures'],
  });
  t.hasResourceProperties('AWS::SQS::Queue', {
    RedrivePolicy: {
      maxReceiveCount: 5,
      deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('StateDeadLetterQueue'), 'Arn'] },
    },
  });
  t.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [
      { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('StateDeadLetterQueue'), 'QueueName'] } },
    ],
  });
  expect(w.dataLake.vehicleStateTable).toBeDefined();
  expect(w.dataLake.stateFunction).toBeDefined();
  const off = new SmartcarWebhooks(bareStack(), 'X', {});
  expect(off.dataLake.vehicleStateTable).toBeUndefined();
  expect(off.dataLake.stateFunction).toBeUndefined();
});

it('events: an opt-in bus the ingest function may publish to, with the filter in its environment', () => {
  const stack = bareStack();
  const w = new SmartcarWebhooks(stack, 'W', { events: { enabled: true, eventTypes: ['VEHICLE_ERROR'] } });
  const t = Template.fromStack(stack);
  t.resourceCountIs('AWS::Events::EventBus', 1);
  t.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'events:PutEvents' })]) },
  });
  t.hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: Match.objectLike({ EVENT_FILTER: JSON.stringify({ eventTypes: ['VEHICLE_ERROR'] }) }) },
  });
  expect(w.eventBus).toBeDefined();
  expect(new SmartcarWebhooks(bareStack(), 'X', {}).eventBus).toBeUndefined();
});

describe('grant helpers', () => {
  const setup = () => {
    const stack = bareStack();
    const webhooks = new SmartcarWebhooks(stack, 'W', { webhookId: 'wh', rawPrefix: 'smartcar/raw' });
    const role = new iam.Role(stack, 'Analyst', { assumedBy: new iam.AccountRootPrincipal() });
    return { stack, webhooks, role };
  };
  const statementsOf = (template: Template) =>
    Object.values(
      template.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: Match.stringLikeRegexp('Analyst') }] },
      }),
    )
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[])
      .map((s) => ({ actions: ([] as string[]).concat(s.Action), resource: JSON.stringify(s.Resource) }));

  it('grantStartSubscriptionWorkflow allows StartExecution on the state machine only', () => {
    const { stack, webhooks, role } = setup();
    webhooks.grantStartSubscriptionWorkflow(role);
    const statements = statementsOf(Template.fromStack(stack));
    expect(statements).toEqual([
      { actions: ['states:StartExecution'], resource: expect.stringContaining('StateMachine') },
    ]);
  });

  it('grantReadLake reads the raw zone, not the rest of the bucket', () => {
    const { stack, webhooks, role } = setup();
    webhooks.grantReadLake(role);
    const statements = statementsOf(Template.fromStack(stack));
    expect(statements.flatMap((s) => s.actions)).toEqual(expect.arrayContaining(['s3:GetObject*', 's3:List*']));
    expect(statements.flatMap((s) => s.actions).some((a) => /Put|Delete/.test(a))).toBe(false);
    expect(statements.map((s) => s.resource).join()).toContain('/smartcar/raw/*');
  });

  it('grantQueryLake runs Athena in the workgroup, reads the catalog and the lake, writes results', () => {
    const { stack, webhooks, role } = setup();
    webhooks.grantQueryLake(role);
    const statements = statementsOf(Template.fromStack(stack));
    const actions = statements.flatMap((s) => s.actions);
    expect(actions).toEqual(
      expect.arrayContaining([
        'athena:StartQueryExecution',
        'athena:GetQueryResults',
        'glue:GetTable',
        'glue:GetPartitions',
        's3:GetObject*',
        's3:PutObject',
      ]),
    );
    const athena = statements.find((s) => s.actions.includes('athena:StartQueryExecution'));
    expect(athena?.resource).toContain(':workgroup/');
  });
});

describe('metric helpers', () => {
  it('name the functions’ own metrics with the service dimension', () => {
    const stack = bareStack();
    const webhooks = new SmartcarWebhooks(stack, 'W', {});
    expect(stack.resolve(webhooks.metricSignatureFailures().toMetricConfig().metricStat)).toMatchObject({
      namespace: 'SmartcarWebhooks',
      metricName: 'SignatureFailures',
      dimensions: [{ name: 'service', value: 'Bare' }],
      statistic: 'Sum',
    });
    expect(webhooks.metric('IngestLag', { statistic: 'Maximum' }).statistic).toBe('Maximum');
    expect(webhooks.metricRecordsWritten().metricName).toBe('RecordsWritten');
    expect(webhooks.metricDeliveries().expression).toMatch(
      /^SUM\(SEARCH\('\{SmartcarWebhooks,EventType,Mode,service\} MetricName="Deliveries" service="Bare"'/,
    );
    expect(() => webhooks.metric('NotAMetric')).toThrow(/not one the functions publish/);
  });
});

it('the entry point exports the constructs and nothing from local/ or scripts/', () => {
  expect(Object.keys(api).sort()).toEqual([
    'Catalog',
    'Compaction',
    'DataLake',
    'DeliveryBuffer',
    'Erasure',
    'FleetCheck',
    'HouseFunction',
    'Landing',
    'Monitoring',
    'NagAcknowledgements',
    'Quarantine',
    'Receiver',
    'ReceiverEndpoint',
    'Reconcile',
    'ReconcileMode',
    'SmartcarApi',
    'SmartcarWebhooks',
    'SubscriptionWorkflow',
  ]);
});
