import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Aspects, Duration, type IAspect, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { instancesOf, pickInstance, RESOURCE_NAMES } from '../../cli/stack';
import { acknowledgeNagFindings, NagAcknowledgements } from '../../lib/nag-acknowledgements';
import { ReceiverEndpoint } from '../../lib/receiver';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { bareStack, defaultStack, nag2Findings, type Synthesized, synthStack } from '../support/synth';

let synth: Synthesized;
let template: Template;

beforeAll(() => {
  synth = synthStack();
  template = synth.template;
});

/** Every IAM statement of the role whose logical id starts with `prefix`. */
function statementsOf(prefix: string): { Action: string | string[]; Resource: unknown; Effect: string }[] {
  const policies = template.findResources('AWS::IAM::Policy');
  const mine = Object.entries(policies).filter(([id]) => id.startsWith(prefix));
  expect(mine).toHaveLength(1);
  return mine[0][1].Properties.PolicyDocument.Statement;
}

function actionsOf(prefix: string): string[] {
  return statementsOf(prefix).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

describe('functions', () => {
  it('run Node.js 22 on arm64 with JSON logs to their own log groups', () => {
    const fns = template.findResources('AWS::Lambda::Function');
    // verification, ingest, quarantine writer, recovery, reconcile, erase, and the workflow's plan, vehicle and results tasks
    expect(Object.keys(fns)).toHaveLength(9);
    for (const fn of Object.values(fns)) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringMatching(/Logs/) } },
      });
    }
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('gives the verification function the secret and the queue, nothing else', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('VERIFY'),
      Timeout: 10,
      Environment: {
        Variables: {
          SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: { Ref: Match.stringLikeRegexp('ManagementToken') },
          DELIVERY_QUEUE_URL: { Ref: Match.stringLikeRegexp('DeliveryQueue') },
          SMARTCAR_TOKEN_CACHE_TTL_SECONDS: '300',
        },
      },
    });
  });
});

describe('least privilege', () => {
  it('verification role: read the secret, put to the stream, send to the delivery and quarantine queues, write its logs', () => {
    const statements = statementsOf('SmartcarWebhooksReceiverVerifyFunctionRole');
    expect([...new Set(actionsOf('SmartcarWebhooksReceiverVerifyFunctionRole'))].sort()).toEqual(
      [
        'firehose:PutRecord',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    const secretStatement = statements.find((s) => JSON.stringify(s.Action).includes('secretsmanager'));
    expect(secretStatement?.Resource).toEqual({ Ref: expect.stringMatching(/^SmartcarWebhooksManagementToken/) });
    const queues = statements
      .filter((s) => JSON.stringify(s.Action).includes('sqs'))
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]));
    expect(queues).toEqual([
      { 'Fn::GetAtt': [expect.stringMatching(/ReceiverDeliveryQueue/), 'Arn'] },
      { 'Fn::GetAtt': [expect.stringMatching(/QuarantineQueue/), 'Arn'] },
    ]);
    // The one stream, and no S3 at all: rejected deliveries reach the bucket through the quarantine queue and its writer.
    const put = statements.find((s) => JSON.stringify(s.Action).includes('firehose:'));
    expect(put?.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^SmartcarWebhooksLandingStream/), 'Arn'] });
    expect(statements.some((s) => JSON.stringify(s.Action).includes('s3:'))).toBe(false);
  });

  it('quarantine writer: put and list under quarantine/ only, consume its queue, in batches', () => {
    const statements = statementsOf('SmartcarWebhooksQuarantineWriterFunctionRole');
    const s3 = statements.filter((s) => JSON.stringify(s.Action).includes('s3:'));
    expect(s3.map((s) => s.Action).sort()).toEqual(['s3:ListBucket', 's3:PutObject']);
    expect(JSON.stringify(s3.find((s) => s.Action === 's3:PutObject')?.Resource)).toMatch(
      /QuarantineBucket.*\/quarantine\/\*/,
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('QuarantineQueue'), 'Arn'] },
      BatchSize: 10000,
      MaximumBatchingWindowInSeconds: 60,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    // The budget sized from the default peak (500 a second): every attempt of an hour-long token mistake, +25%.
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ QUARANTINE_MAX_PER_HOUR: '9000000' }) },
    });
  });

  it('recovery runs one at a time (two would hand the same deliveries over twice)', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Re-verifies quarantined deliveries'),
      ReservedConcurrentExecutions: 1,
    });
  });

  it('recovery role: get and delete quarantined objects, its own markers, list only their prefixes, read the secret, send to the queue', () => {
    const statements = statementsOf('SmartcarWebhooksQuarantineRecoverFunctionRole');
    expect([...new Set(actionsOf('SmartcarWebhooksQuarantineRecoverFunctionRole'))].sort()).toEqual(
      [
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    const lists = statements.filter((s) => JSON.stringify(s.Action).includes('s3:ListBucket'));
    expect(lists.map((s) => (s as { Condition?: unknown }).Condition)).toEqual([
      { StringLike: { 's3:prefix': ['quarantine/*'] } },
      { StringLike: { 's3:prefix': ['recovery/*'] } },
    ]);
    for (const s of statements.filter((x) => /s3:(Get|Delete|Put)Object/.test(JSON.stringify(x.Action)))) {
      expect(JSON.stringify(s.Resource)).toMatch(/QuarantineBucket.*\/(quarantine|recovery)\/\*/);
    }
    // Deleting is for quarantined objects only; writing for its markers only.
    const put = statements.find((s) => JSON.stringify(s.Action).includes('s3:PutObject'));
    expect(JSON.stringify(put?.Resource)).toMatch(/\/recovery\/\*/);
  });

  it('ingest role: put objects under the raw zone, read and delete landing objects, consume the queue, write its logs; never read the token', () => {
    const actions = actionsOf('SmartcarWebhooksDataLakeIngestFunctionRole');
    expect(actions.some((a) => a.startsWith('secretsmanager:'))).toBe(false);
    // Deletes only landing objects (once stored); reads them and one other object, the erasure ledger
    // (ListBucket only makes a missing ledger NoSuchKey).
    const landing = statementsOf('SmartcarWebhooksDataLakeIngestFunctionRole').filter((x) =>
      JSON.stringify(x.Action).includes('s3:Delete'),
    );
    expect(landing).toHaveLength(1);
    expect(landing[0].Action).toEqual([
      's3:GetObject',
      's3:GetObjectVersion',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
    ]);
    expect(JSON.stringify(landing[0].Resource)).toMatch(/"\/landing\/\*"/);
    // Listing versions only under landing/: a landing object it cannot read, deleted by someone else?
    const versions = statementsOf('SmartcarWebhooksDataLakeIngestFunctionRole').filter((x) =>
      JSON.stringify(x.Action).includes('s3:ListBucketVersions'),
    );
    expect(versions.map((v) => [v.Action, (v as { Condition?: unknown }).Condition])).toEqual([
      ['s3:ListBucketVersions', { StringLike: { 's3:prefix': ['landing/*'] } }],
    ]);
    for (const s of statementsOf('SmartcarWebhooksDataLakeIngestFunctionRole').filter(
      (x) => /s3:(Get|List)/.test(JSON.stringify(x.Action)) && x !== landing[0] && x !== versions[0],
    )) {
      expect([['s3:GetObject'], 's3:GetObject', 's3:ListBucket', ['s3:ListBucket']]).toContainEqual(s.Action);
      if (JSON.stringify(s.Action).includes('GetObject'))
        expect(JSON.stringify(s.Resource)).toMatch(/\/erasures\/ledger\.json"/);
    }
    expect(actions).toEqual(expect.arrayContaining(['s3:PutObject', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    const s3Statement = statementsOf('SmartcarWebhooksDataLakeIngestFunctionRole').find((s) =>
      JSON.stringify(s.Action).includes('s3:PutObject'),
    );
    expect(s3Statement?.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/DataLakeBucket/), 'Arn'] }, '/raw/*']],
    });
  });

  it('uses no AWS managed policies, and "*" resources only where AWS allows nothing narrower', () => {
    for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
    for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        expect(statement.Action).not.toBe('*');
        if (statement.Resource === '*') {
          // X-Ray tracing and CloudWatch Logs delivery of the state machine: no resource-level permissions.
          const acts: string[] = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
          for (const a of acts)
            expect(a).toMatch(
              /^(xray:|cloudwatch:PutMetricData$|logs:(Create|Get|Update|Delete|List|Describe|Put)(LogDelivery|LogDeliveries|ResourcePolicy|ResourcePolicies|LogGroups))/,
            );
        }
      }
    }
  });
});

describe('deduplication table', () => {
  it('is off by default: the curated layer counts each event once', () => {
    // The one table by default is the compaction's lock (one lease item).
    expect(Object.keys(template.findResources('AWS::DynamoDB::Table'))).toEqual([
      expect.stringMatching(/^SmartcarWebhooksCompactionLock/),
    ]);
    expect(actionsOf('SmartcarWebhooksDataLakeIngestFunctionRole').some((a) => a.startsWith('dynamodb:'))).toBe(false);
  });

  it('when on, is on-demand with a TTL; the ingest function may only batch-get and batch-write it, recovery only read', () => {
    const { template: withDedup } = synthStack({ settings: { deduplication: true } });
    const actions = (prefix: string) =>
      Object.entries(withDedup.findResources('AWS::IAM::Policy'))
        .filter(([id]) => id.startsWith(prefix))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[] }[])
        .flatMap((s) => ([] as string[]).concat(s.Action))
        .filter((a) => a.startsWith('dynamodb:'));
    expect(actions('SmartcarWebhooksQuarantineRecoverFunctionRole')).toEqual(['dynamodb:BatchGetItem']);
    const template = withDedup;
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'eventId', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(actions('SmartcarWebhooksDataLakeIngestFunctionRole').sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
    ]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          DEDUP_TABLE_NAME: { Ref: Match.stringLikeRegexp('StoredEventIds') },
          DEDUP_TTL_SECONDS: '604800',
        }),
      },
    });
  });

  it('can be turned on by prop', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { deduplication: true });
    Template.fromStack(stack).resourceCountIs('AWS::DynamoDB::Table', 2); // and the compaction's lock
  });
});

describe('queue', () => {
  it('is encrypted, with a dead-letter queue after 5 receives and a visibility timeout above the ingest window', () => {
    template.resourceCountIs('AWS::SQS::Queue', 4); // deliveries and the quarantine, each with its dead-letter queue
    template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 420, // 6 × the 60 s ingest timeout + the 60 s window (Firehose buffers before it)
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1209600 });
  });

  it('refuses requests without TLS', () => {
    template.resourceCountIs('AWS::SQS::QueuePolicy', 4);
    template.allResourcesProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('feeds the ingest function in batches with partial failure reporting', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 60,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });
});

describe('data lake bucket', () => {
  it('is private, encrypted, versioned and retained on stack deletion', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        VersioningConfiguration: { Status: 'Enabled' },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      }),
    });
  });

  it('refuses requests without TLS 1.2', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('has default lifecycle rules: no transition (S3 skips objects under 128 KB), old versions and stale uploads cleaned up per prefix', () => {
    const housekeeping = {
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
    };
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          { Id: 'raw-zone', Prefix: 'raw/', ...housekeeping },
          { Id: 'curated-versions', Prefix: 'curated/', ...housekeeping },
          // A landing object is deleted (by version) once stored; one that could not be stays until it is:
          // never expired while it may hold deliveries answered 200.
          {
            Id: 'landing-zone',
            Prefix: 'landing/',
            Status: 'Enabled',
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
        ],
      },
    });
  });
});

describe('delivery buffer (Firehose, the default)', () => {
  it('a Direct PUT stream writes buffered, encrypted landing objects under landing/ of the lake bucket', () => {
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BucketARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SmartcarWebhooksDataLakeBucket'), 'Arn'] },
        Prefix: 'landing/',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 16 },
        CompressionFormat: 'UNCOMPRESSED',
        CloudWatchLoggingOptions: Match.objectLike({ Enabled: true }),
      }),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Answers Smartcar VERIFY'),
      Environment: {
        Variables: Match.objectLike({
          DELIVERY_STREAM_NAME: { Ref: Match.stringLikeRegexp('^SmartcarWebhooksLandingStream') },
        }),
      },
    });
  });

  it("the stream's role writes the landing zone and nothing else of the bucket", () => {
    const statements = statementsOf('SmartcarWebhooksLandingStreamRole');
    const objects = statements.filter((s) => JSON.stringify(s.Action).includes('s3:PutObject'));
    expect(objects).toHaveLength(1);
    expect(JSON.stringify(objects[0].Resource)).toMatch(/"\/landing\/\*"/);
    expect(actionsOf('SmartcarWebhooksLandingStreamRole').some((a) => /^s3:Delete/.test(a))).toBe(false);
  });

  it('S3 tells the delivery queue of each landing object, allowed by a queue policy that needs no custom resource', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            Event: 's3:ObjectCreated:*',
            Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'landing/' }] } },
            Queue: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReceiverDeliveryQueue'), 'Arn'] },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Condition: Match.objectLike({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } }),
          }),
        ]),
      },
    });
    // The bucket waits for the policy (S3 checks it may send); no stack-level notifications function.
    const bucket = Object.entries(template.findResources('AWS::S3::Bucket')).find(([id]) =>
      id.startsWith('SmartcarWebhooksDataLakeBucket'),
    )?.[1];
    expect(bucket?.DependsOn).toEqual([expect.stringMatching(/ReceiverDeliveryQueuePolicy/)]);
    expect(
      Object.keys(template.findResources('AWS::Lambda::Function')).some((id) =>
        id.startsWith('BucketNotificationsHandler'),
      ),
    ).toBe(false);
  });
});

describe('management token secret', () => {
  it('is created with a recognisable placeholder, never a token (the only secret while reconcile is off)', () => {
    // $0.40 a month each: the client-credentials secret comes with reconcile (see reconcile.test.ts).
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      SecretString: JSON.stringify({ placeholder: 'replace this whole value with the management token' }),
    });
  });
});

describe('outputs', () => {
  it('print the callback URL, the secret and how to set it, the bucket and the DLQ', () => {
    template.hasOutput('CallbackUrl', {
      Value: {
        'Fn::Join': ['', [{ 'Fn::GetAtt': [Match.stringLikeRegexp('ReceiverApi'), 'ApiEndpoint'] }, '/webhooks']],
      },
    });
    template.hasOutput('SetManagementTokenCommand', {
      Value: {
        'Fn::Join': [
          '',
          [
            'aws secretsmanager put-secret-value --secret-id ',
            { Ref: Match.stringLikeRegexp('ManagementToken') },
            ' --secret-string "$SMARTCAR_MANAGEMENT_TOKEN"',
          ],
        ],
      },
    });
    template.hasOutput('ManagementTokenSecretName', Match.anyValue());
    template.hasOutput('LakeBucketName', { Value: { Ref: Match.stringLikeRegexp('DataLakeBucket') } });
    template.hasOutput('DeadLetterQueueUrl', Match.anyValue());
  });

  it("carry every resource the operations CLI reads, without a prefix, each marked as the default instance's", () => {
    const outputs = template.findOutputs('*');
    // On by default: everything but the opt-in deduplication and state tables (and the state queues), the error
    // callback, the dashboard and reconcile's client-credentials secret.
    const optIn = [
      'DedupTableName',
      'StateTableName',
      'StateQueueUrl',
      'StateDeadLetterQueueUrl',
      'ErrorCallbackUrl',
      'DashboardName',
      'ClientCredentialsSecretName',
    ];
    for (const name of [
      ...RESOURCE_NAMES.filter((n) => !optIn.includes(n)),
      'SetManagementTokenCommand',
      'RotateTokenCommand',
      'RecoverRejectedCommand',
      'ReconcileConsoleUrl',
      'SubscriptionConsoleUrl',
    ]) {
      expect(outputs[name]?.Description).toMatch(/^\[smartcar-webhooks:default\] \S/);
    }
    for (const name of optIn) expect(outputs[name]).toBeUndefined();
    expect(outputs.RawPrefix.Value).toBe('raw');
  });

  it('name commands that work in any stack: the package CLI with --stack, no repository scripts', () => {
    template.hasOutput('RotateTokenCommand', {
      Value: { 'Fn::Join': ['', ['npx smartcar-webhooks rotate-token --stack ', { Ref: 'AWS::StackName' }]] },
    });
    template.hasOutput('RecoverRejectedCommand', {
      Value: {
        'Fn::Join': [
          '',
          ['npx smartcar-webhooks recover-rejected --stack ', { Ref: 'AWS::StackName' }, ' --since <ISO time>'],
        ],
      },
    });
    expect(JSON.stringify(template.findOutputs('*'))).not.toMatch(/npm run|README/);
  });
});

describe('settings from context', () => {
  it('flow into the stack', () => {
    const { template: t } = synthStack({
      settings: settingsFromContext(
        (k) =>
          ({
            secretName: 'smartcar/amt',
            bucketName: 'my-lake',
            logRetentionDays: 90,
            bucketRemovalPolicy: 'destroy',
            lakeExpireAfterDays: 365,
          })[k],
      ),
    });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'smartcar/amt' });
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({
        BucketName: 'my-lake',
        LifecycleConfiguration: {
          Rules: Match.arrayWith([Match.objectLike({ Id: 'raw-zone', ExpirationInDays: 365 })]),
        },
      }),
    });
    t.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
  });

  it.each([
    [{ logRetentionDays: 31 }, /logRetentionDays.*is 31/],
    [{ logRetentionDays: 'often' }, /logRetentionDays.*positive whole number/],
    [{ bucketRemovalPolicy: 'keep' }, /"retain" or "destroy"/],
    [{ lakeExpireAfterDays: -1 }, /lakeExpireAfterDays/],
    [{ webhookId: 42 }, /webhookId.*string/],
  ])('reject %p with a message naming the key', (ctx, message) => {
    expect(() => settingsFromContext((k) => (ctx as Record<string, unknown>)[k])).toThrow(message);
  });

  it('treat empty strings in cdk.json as unset', () => {
    expect(settingsFromContext((k) => ({ webhookId: '', lakeExpireAfterDays: '' })[k])).toMatchObject({
      webhookId: undefined,
      lakeExpireAfterDays: undefined,
    });
  });
});

describe('bring your own', () => {
  function byo(): { stack: Stack; construct: SmartcarWebhooks; template: Template } {
    const stack = bareStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Lake', 'team-lake');
    const secret = secretsmanager.Secret.fromSecretNameV2(stack, 'Amt', 'team/smartcar-amt');
    const construct = new SmartcarWebhooks(stack, 'Webhooks', {
      existingBucket: bucket,
      existingManagementTokenSecret: secret,
      rawPrefix: 'smartcar/raw',
    });
    return { stack, construct, template: Template.fromStack(stack) };
  }

  it('creates no lake bucket and no secret and grants on the ones passed in', () => {
    const { construct, template: t } = byo();
    // Only the buckets the construct always owns: Athena's results, the quarantine, the workflow's work bucket.
    expect(Object.keys(t.findResources('AWS::S3::Bucket')).sort()).toEqual([
      expect.stringMatching(/^WebhooksCatalogResultsBucket/),
      expect.stringMatching(/^WebhooksQuarantineBucket/),
      expect.stringMatching(/^WebhooksSubscriptionWorkflowWorkBucket/),
    ]);
    // No secret at all: the management token's was brought, and reconcile (off) creates none.
    expect(Object.keys(t.findResources('AWS::SecretsManager::Secret'))).toEqual([]);
    expect(construct.dataLake.bucket.bucketName).toBe('team-lake');
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['s3:PutObject']),
            Resource: {
              'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':s3:::team-lake/smartcar/raw/\\*')])],
            },
          }),
        ]),
      },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Resource: {
              'Fn::Join': [
                '',
                Match.arrayWith([Match.stringLikeRegexp('secret:team/smartcar-amt-\\?\\?\\?\\?\\?\\?')]),
              ],
            },
          }),
        ]),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LAKE_BUCKET_NAME: 'team-lake', LAKE_RAW_PREFIX: 'smartcar/raw' }) },
    });
  });

  it('exposes everything it creates', () => {
    const { construct } = byo();
    expect(construct.receiver.api).toBeDefined();
    expect(construct.receiver.verifyFunction).toBeDefined();
    expect(construct.receiver.queue).toBeDefined();
    expect(construct.receiver.deadLetterQueue).toBeDefined();
    expect(construct.dataLake.ingestFunction).toBeDefined();
    expect(construct.callbackUrl).toEqual(expect.stringMatching(/webhooks$/));
  });

  it('accepts props that reshape what it creates', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'Webhooks', {
      endpoint: ReceiverEndpoint.HTTP_API,
      callbackPath: '/smartcar/events',
      throttle: { rateLimit: 5, burstLimit: 10 },
      tokenCacheTtl: Duration.minutes(1),
      ingestBatchSize: 100,
      ingestMaxBatchingWindow: Duration.seconds(30),
      ingestMaxConcurrency: 4,
      maxReceiveCount: 3,
      logRetention: logs.RetentionDays.ONE_WEEK,
      bucketRemovalPolicy: RemovalPolicy.DESTROY,
      lifecycle: {
        disableTransition: true,
        expireAfter: Duration.days(400),
        noncurrentVersionExpiration: Duration.days(3),
      },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /smartcar/events' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
    });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 30,
      ScalingConfig: { MaximumConcurrency: 4 },
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 390,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SMARTCAR_TOKEN_CACHE_TTL_SECONDS: '60' }) },
    });
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({
              Id: 'raw-zone',
              Prefix: 'raw/',
              ExpirationInDays: 400,
              NoncurrentVersionExpiration: { NoncurrentDays: 3 },
            }),
            Match.objectLike({ Id: 'curated-versions', NoncurrentVersionExpiration: { NoncurrentDays: 3 } }),
            Match.objectLike({ Id: 'landing-zone', Prefix: 'landing/' }),
          ],
        },
      }),
    });
    t.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  it.each([
    [
      'both existingBucket and bucketProps',
      (stack: Stack) => ({ existingBucket: s3.Bucket.fromBucketName(stack, 'B', 'bucket-b'), bucketProps: {} }),
      /existingBucket or bucketProps, not both/,
    ],
    [
      'both a secret and secret props',
      (stack: Stack) => ({
        existingManagementTokenSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 's'),
        managementTokenSecretProps: {},
      }),
      /existingManagementTokenSecret or managementTokenSecretProps, not both/,
    ],
    [
      'lifecycle on a bucket it does not own',
      (stack: Stack) => ({ existingBucket: s3.Bucket.fromBucketName(stack, 'B', 'bucket-b'), lifecycle: {} }),
      /lifecycle applies only/,
    ],
    ['a callback path without a slash', () => ({ callbackPath: 'webhooks' }), /callbackPath "webhooks"/],
    ['a concurrency Lambda refuses', () => ({ ingestMaxConcurrency: 1 }), /ingestMaxConcurrency is 1/],
    ['a batching window over 5 minutes', () => ({ ingestMaxBatchingWindow: Duration.minutes(6) }), /360 s/],
    ['a raw prefix with spaces', () => ({ rawPrefix: 'raw zone' }), /rawPrefix "raw zone"/],
  ])('rejects %s with a message that names the fix', (_label, props, message) => {
    const stack = bareStack();
    expect(() => new SmartcarWebhooks(stack, 'Webhooks', props(stack))).toThrow(message);
  });
});

describe('cdk-nag (AwsSolutions)', () => {
  it('has no unacknowledged findings, and every acknowledgement gives a reason', () => {
    // synthStack() throws on an unacknowledged error; warnings land in the report, so check it too.
    const [report] = synth.validationReport.pluginReports;
    expect(report.pluginName).toBe('AwsSolutions');
    expect(report.violations).toEqual([]);
    expect(report.conclusion).toBe('success');
    for (const v of report.suppressedViolations) expect(v.reason.length).toBeGreaterThan(40);
    const ruleIds = report.suppressedViolations.map((v) => v.ruleName.replace(/<[A-Za-z0-9]+\.(Arn|Name)>/g, '<ref>'));
    const counts = Object.fromEntries([...new Set(ruleIds)].map((id) => [id, ruleIds.filter((r) => r === id).length]));
    expect(counts).toEqual({
      // The HTTP API's route: Smartcar cannot send API Gateway credentials (SC-Signature authenticates).
      'AwsSolutions-APIG4': 1,
      'AwsSolutions-L1': 9,
      'AwsSolutions-S1': 4,
      'AwsSolutions-SF1': 5,
      'AwsSolutions-SMG4': 1,
      'AwsSolutions-IAM5[Action::s3:Abort*]': 3,
      // The fleet check: the catalog's query grant, scoped to the lake's raw zone and the results bucket.
      'AwsSolutions-IAM5[Action::s3:DeleteObject*]': 2,
      'AwsSolutions-IAM5[Action::s3:GetBucket*]': 2,
      'AwsSolutions-IAM5[Action::s3:GetObject*]': 2,
      'AwsSolutions-IAM5[Action::s3:List*]': 2,
      'AwsSolutions-IAM5[Resource::<ref>/*]': 3,
      'AwsSolutions-IAM5[Resource::<ref>/curated/*]': 2,
      'AwsSolutions-IAM5[Resource::<ref>/curated/deliveries/*]': 1,
      'AwsSolutions-IAM5[Resource::<ref>/curated/signals/*]': 1,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/teststack/*]': 2,
      'AwsSolutions-IAM5[Resource::*]': 5,
      'AwsSolutions-IAM5[Resource::<ref>/quarantine/*]': 3,
      'AwsSolutions-IAM5[Resource::<ref>/raw/*]': 4,
      // The delivery stream writes landing objects; the ingest function reads and deletes them; the erase
      // function rewrites the ones that hold an erased subject.
      'AwsSolutions-IAM5[Resource::<ref>/landing/*]': 3,
      'AwsSolutions-IAM5[Resource::<ref>/reconcile/*]': 2,
      // The erase function: receipts and the pending ids of a running erasure in the work bucket.
      'AwsSolutions-IAM5[Resource::<ref>/erasures/pending/*]': 1,
      'AwsSolutions-IAM5[Resource::<ref>/erasures/receipts/*]': 1,
      'AwsSolutions-IAM5[Resource::<ref>/erasures/staging/*]': 1,
      'AwsSolutions-IAM5[Resource::<ref>/recovery/*]': 1,
      'AwsSolutions-IAM5[Resource::<ref>/runs/*]': 3,
      'AwsSolutions-IAM5[Resource::<ref>:*]': 5,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:smartcar/access-tokens/*]': 2,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<ref>:*]': 1,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"SmartcarWebhooksSubscriptionWorkflowStateMachine86269BD0"}]}]}/*:*]': 1,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"SmartcarWebhooksSubscriptionWorkflowStateMachine86269BD0"}]}]}:*]': 1,
    });
  });

  it('writes no cdk-nag 2 metadata into the template when the app runs cdk-nag 3', () => {
    expect(JSON.stringify(template.toJSON())).not.toContain('cdk_nag');
  });

  it('has no unacknowledged findings under cdk-nag 2 (applied as an aspect) either', () => {
    const { errors, warnings, template: t } = nag2Findings(defaultStack());
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    // The same acknowledgements, with their reasons, as cdk-nag 2's own metadata.
    const s1 = Object.values(t.findResources('AWS::S3::Bucket')).flatMap(
      (b) => b.Metadata?.cdk_nag?.rules_to_suppress ?? [],
    );
    expect(s1).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'AwsSolutions-S1' })]));
  });

  it("leaves the consumer's own bucket and secret their findings, under cdk-nag 3 and cdk-nag 2", () => {
    /** A platform team's stack: its own bucket without server access logs (S1), its own secret (SMG4). */
    const consumerStack = () => {
      const outdir = mkdtempSync(path.join(tmpdir(), 'cdk-byo-'));
      const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
      const stack = new Stack(app, 'PlatformStack');
      const webhooks = new SmartcarWebhooks(stack, 'Webhooks', {
        existingBucket: new s3.Bucket(stack, 'TeamLake', { enforceSSL: true }),
        existingManagementTokenSecret: new secretsmanager.Secret(stack, 'TeamToken'),
      });
      NagAcknowledgements.acknowledge(webhooks);
      return { app, stack, outdir };
    };
    const theirs = (p: string) => /^\/?PlatformStack\/Team(Lake|Token)\//.test(p);

    // cdk-nag 3, a Validations plugin: synth fails, and its report says on what.
    const v3 = consumerStack();
    Validations.of(v3.app).addPlugins(new AwsSolutionsChecks(v3.app));
    expect(() => v3.app.synth()).toThrow(/AwsSolutions-S1/);
    const report: {
      pluginReports: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
    } = JSON.parse(readFileSync(path.join(v3.outdir, 'validation-report.json'), 'utf8'));
    const found3 = report.pluginReports.flatMap((r) =>
      r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${c.constructPath}: ${v.ruleName}`)),
    );
    expect(found3).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/PlatformStack\/TeamLake\/Resource: AwsSolutions-S1$/),
        expect.stringMatching(/PlatformStack\/TeamToken\/Resource: AwsSolutions-SMG4$/),
      ]),
    );
    expect(found3.filter((f) => !theirs(f))).toEqual([]);

    // cdk-nag 2, an aspect: errors in the annotations.
    const { errors } = nag2Findings(consumerStack().stack);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/PlatformStack\/TeamLake\/Resource: AwsSolutions-S1:/),
        expect.stringMatching(/^\/PlatformStack\/TeamToken\/Resource: AwsSolutions-SMG4:/),
      ]),
    );
    expect(errors.filter((e) => !theirs(e))).toEqual([]);
  });

  it('refuses, in one line, a cdk-nag major it does not know applied as an aspect', () => {
    const stack = bareStack();
    NagAcknowledgements.acknowledge(new SmartcarWebhooks(stack, 'W'));
    // What a cdk-nag class carries: its jsii type information (fqn, version) on the constructor.
    class FuturePack implements IAspect {
      readonly readPackName = 'AwsSolutions';
      visit(): void {}
    }
    Object.defineProperty(FuturePack, Symbol.for('jsii.rtti'), {
      value: { fqn: 'cdk-nag.AwsSolutionsChecks', version: '4.0.0' },
    });
    Aspects.of(stack.node.root).add(new FuturePack());
    expect(() => (stack.node.root as App).synth()).toThrow(
      /^cdk-nag 4.x is applied as an aspect; the SmartcarWebhooks acknowledgements support cdk-nag 2.x \(Aspects\) and 3.x \(Validations\)\.$/,
    );
  });
});

describe('cfn-lint', () => {
  it('passes on the synthesized template', () => {
    // W3005 (explicit DependsOn next to a GetAtt) is how aws-cdk-lib always orders a function after its
    // role's policy; it is redundant, not wrong, and not ours to change.
    const run = spawnSync('cfn-lint', ['--ignore-checks', 'W3005', '--', synth.templateFile], { encoding: 'utf8' });
    if (run.error) throw new Error(`cfn-lint is required for this test and could not run: ${run.error.message}`);
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('every option on', () => {
  // One synthesis for both checks: HTTP API, dedupe table, state table and its function, events, outputs.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Everything');
  const webhooks = new SmartcarWebhooks(stack, 'W', {
    endpoint: ReceiverEndpoint.HTTP_API,
    errorCallbackPath: '/webhooks/errors',
    deduplication: true,
    vehicleStateTable: true,
    events: { enabled: true },
    reconcile: { enabled: true },
    fleetCheck: { enabled: true },
    monitoring: { dashboard: true },
    outputs: { prefix: 'All' },
  });
  acknowledgeNagFindings(webhooks);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  it('has no unacknowledged cdk-nag findings', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('emits the outputs of the opt-in parts too, and its alarms name the commands with the instance', () => {
    const t = Template.fromStack(stack);
    const outputs = t.findOutputs('*');
    for (const name of ['DedupTableName', 'StateTableName', 'StateQueueUrl', 'StateDeadLetterQueueUrl'])
      expect(outputs[`All${name}`]?.Description).toMatch(/^\[smartcar-webhooks:All\] /);
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm'));
    const stateAlarm = alarms.find((a) => String(a.Properties.AlarmDescription).startsWith('The vehicle state table'));
    expect(stateAlarm?.Properties.AlarmDescription).toContain(
      '`npx smartcar-webhooks redrive --stack Everything --instance All --queue state`',
    );
    expect(stateAlarm?.Properties.AlarmDescription).toContain(
      '`npx smartcar-webhooks rebuild-state --stack Everything --instance All`',
    );
  });

  it('gives the operations CLI every resource it knows, under the instance it names', () => {
    // What DescribeStacks would answer for this template: the CLI's own parser reads it.
    const asDeployed = Object.entries(Template.fromStack(stack).findOutputs('*')).map(([key, o]) => ({
      OutputKey: key,
      OutputValue: JSON.stringify(o.Value),
      Description: o.Description as string,
    }));
    const instance = pickInstance('Everything', instancesOf('Everything', asDeployed), 'All');
    expect(RESOURCE_NAMES.filter((name) => !instance.outputs.has(name))).toEqual([]);
  });
});
