/**
 * The erase state machine as synthesized: its function's environment and least-privilege role, logging
 * without execution data, the output the console needs, and the alarm on failed runs.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { ENV, ERASE_ENV, ERASE_INGEST_WAIT_SECONDS } from '../../lambda/contract';
import { allStates, definitionFromTemplate } from '../../local/workflow-runner';
import { synthStack } from '../support/synth';

const { template } = synthStack();

function eraseRole() {
  const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
    id.startsWith('SmartcarWebhooksErasureEraseFunctionRole'),
  );
  expect(policies).toHaveLength(1);
  return policies[0][1].Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[];
}

const actions = (s: { Action: string | string[] }) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

it('runs one function with every place it reaches named in its environment, 15 minutes a page', () => {
  const fns = template.findResources('AWS::Lambda::Function', {
    Properties: { Description: Match.stringLikeRegexp('^Erase state machine') },
  });
  const [fn] = Object.values(fns);
  expect(fn.Properties.Timeout).toBe(900);
  const env = Object.keys(fn.Properties.Environment.Variables);
  for (const name of [
    ERASE_ENV.lakeBucketName,
    ERASE_ENV.workBucketName,
    ERASE_ENV.quarantineBucketName,
    ERASE_ENV.deadLetterQueueUrl,
    ERASE_ENV.athenaResultsBucketName,
    ERASE_ENV.lockTableName,
    ENV.landingPrefix,
  ])
    expect(env).toContain(name);
  // The default stack has neither the state nor the dedupe table: those places are off.
  expect(env).not.toContain(ERASE_ENV.stateTableName);
});

it('grants only the object, queue and lock actions the places use, each under the prefixes they touch', () => {
  const statements = eraseRole();
  const all = statements.flatMap(actions);
  for (const a of all) expect(a).not.toMatch(/\*/);
  const allowed = new Set([
    's3:ListBucket',
    's3:ListBucketVersions',
    's3:GetObject',
    's3:GetObjectVersion',
    's3:PutObject',
    's3:DeleteObject',
    's3:DeleteObjectVersion',
    'sqs:ReceiveMessage',
    'sqs:DeleteMessage',
    'sqs:ChangeMessageVisibility',
    'dynamodb:PutItem',
    'dynamodb:GetItem',
    'dynamodb:DeleteItem',
    'dynamodb:UpdateItem',
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'xray:PutTraceSegments',
    'xray:PutTelemetryRecords',
    // The curated layer's statements (Athena runs them as this role) and the Smartcar secrets.
    's3:AbortMultipartUpload',
    's3:GetBucketLocation',
    'athena:StartQueryExecution',
    'athena:GetQueryExecution',
    'athena:GetQueryResults',
    'athena:GetWorkGroup',
    'glue:GetDatabase',
    'glue:GetTable',
    'glue:GetPartition',
    'glue:GetPartitions',
    'secretsmanager:GetSecretValue',
    'secretsmanager:DescribeSecret',
  ]);
  // The landing zone: read, rewritten and deleted with its old versions, there and nowhere else.
  const landing = statements.filter((x) => JSON.stringify(x.Resource).includes('/landing/*'));
  expect(landing).toHaveLength(1);
  expect(actions(landing[0]).sort()).toEqual([
    's3:DeleteObject',
    's3:DeleteObjectVersion',
    's3:GetObject',
    's3:GetObjectVersion',
    's3:PutObject',
  ]);
  // Glue: the catalog, the database and the two curated tables, nothing else.
  const glue = statements.filter((x) => actions(x).some((a) => a.startsWith('glue:')));
  expect(JSON.stringify(glue.map((x) => x.Resource))).toMatch(/table\/[^"]*\/curated_deliveries"/);
  expect(JSON.stringify(glue.map((x) => x.Resource))).not.toMatch(/table\/[^"]*\/\*"/);
  expect(all.filter((a) => !allowed.has(a))).toEqual([]);
  // Object writes and deletes only under the named prefixes (or the results bucket, whose objects are caches).
  for (const s of statements.filter((x) => actions(x).some((a) => /^s3:(Put|Delete)/.test(a)))) {
    const resources = JSON.stringify(s.Resource);
    expect(resources).toMatch(
      /\/(raw|landing|runs|reconcile|quarantine|curated\/(deliveries|signals)|erasures\/(pending|receipts|staging))\/\*"|ResultsBucket[^"]*"?,"Arn"\]\},"\/\*"|erasures\/ledger\.json"/,
    );
  }
});

it('is a state machine that logs errors only, without execution data, and loops over raw-zone and landing pages', () => {
  const machines = template.findResources('AWS::StepFunctions::StateMachine');
  const [id, machine] = Object.entries(machines).find(([key]) => key.includes('ErasureStateMachine')) ?? [];
  expect(id).toBeDefined();
  expect(machine?.Properties.LoggingConfiguration).toMatchObject({ Level: 'ERROR', IncludeExecutionData: false });
  const definition = definitionFromTemplate(template.toJSON() as never, 'ErasureStateMachine');
  const states = allStates(definition);
  expect(states.get('Raw zone done?')?.Default).toBe('Sweep a page of the raw zone');
  expect(states.get('Wait for ingest to see the ledger')?.Seconds).toBe(ERASE_INGEST_WAIT_SECONDS);
  // The lead's slots: the curated layer always, Smartcar only when asked.
  expect(states.get('Erase curated rows')?.Parameters).toMatchObject({ action: 'place', place: 'curated' });
  expect(states.get('Erase at Smartcar')?.Parameters).toMatchObject({ action: 'place', place: 'smartcar' });
  // The landing zone (deliveries the stream wrote that ingest has not stored yet), before the quarantine: a
  // loop over pages of its keys on a cursor, as the raw zone's, so that a backlog never outlasts one call.
  const landing = 'Erase a page of landing deliveries';
  expect(states.get('Keep the request')?.Parameters).toMatchObject({ landing: { done: false } });
  expect(states.get('Erase dedupe items')?.Next).toBe(landing);
  expect(states.get(landing)).toMatchObject({
    Parameters: { action: 'landing', 'landing.$': '$.landing' },
    ResultPath: '$.landing',
    Next: 'Landing zone done?',
  });
  expect(states.get('Landing zone done?')).toMatchObject({
    Default: landing,
    Choices: [{ Variable: '$.landing.done', BooleanEquals: true, Next: 'Erase quarantined deliveries' }],
  });
  expect(JSON.stringify(states.get(landing)?.Catch)).toMatch(/Give the lock back after a failure/);
  // The receipt's landing counts are the loop's totals.
  expect(states.get('Finish and write the receipt')?.Parameters).toMatchObject({ 'landing.$': '$.landing.sweep' });
  expect(states.get('Bad input')).toMatchObject({
    Type: 'Fail',
    Error: 'Erasure.BadInput',
    CausePath: '$.check.reason',
  });
});

it('names the state machine in an output and alarms when a run fails', () => {
  template.hasOutput('EraseStateMachineArn', { Value: { Ref: Match.stringLikeRegexp('ErasureStateMachine') } });
  template.hasOutput('CompactionLockTableName', Match.anyValue());
  template.hasOutput('AthenaResultsBucketName', Match.anyValue());
  template.hasResourceProperties('AWS::Events::Rule', {
    Targets: [
      Match.objectLike({
        InputTransformer: Match.objectLike({
          InputTemplate: Match.stringLikeRegexp('EraseRunsFailed: .*An erasure failed, timed out or was aborted'),
        }),
      }),
    ],
  });
});

it('gives the lock back when an erase execution is stopped or times out (no Catch runs then)', () => {
  // The rule that gives the lock back (another, to the alarm topic, notifies every failed run).
  const rules = Object.values(template.findResources('AWS::Events::Rule')).filter(
    (r) =>
      JSON.stringify(r.Properties.EventPattern ?? {}).includes('aws.states') &&
      JSON.stringify(r.Properties.Targets).includes('EraseFunction'),
  );
  expect(rules).toHaveLength(1);
  expect(rules[0].Properties.EventPattern).toMatchObject({
    'detail-type': ['Step Functions Execution Status Change'],
    detail: { status: ['ABORTED', 'TIMED_OUT'] },
  });
  expect(JSON.stringify(rules[0].Properties.Targets)).toMatch(/EraseFunction/);
});
