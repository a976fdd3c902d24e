/**
 * The reconcile Lambda adapter wired as deployed: secrets from Secrets Manager (aws-sdk-client-mock), the
 * work store on S3 (an in-memory mock), the platform endpoints from the environment (a fake on 127.0.0.1).
 */
import type * as S3Module from '@aws-sdk/client-s3';
import type * as SmModule from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { connections, FakePlatform } from '../support/fake-platform';

let fake: FakePlatform;

beforeAll(async () => {
  fake = new FakePlatform({
    clientId: 'cid',
    clientSecret: 'csecret',
    managementToken: 'amt',
    webhookId: 'wh',
    connections: connections(3),
    appearAfterSeconds: 0,
  });
  const origin = await fake.start();
  Object.assign(process.env, {
    WORKFLOW_BUCKET_NAME: 'work',
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:amt',
    SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID: 'arn:creds',
    SMARTCAR_WEBHOOK_ID: 'wh',
    SMARTCAR_ALLOWED_WEBHOOK_IDS: 'wh',
    RECONCILE_CONFIRM_DELAY_SECONDS: '0',
    SMARTCAR_IAM_ORIGIN: origin,
    SMARTCAR_MANAGEMENT_ORIGIN: origin,
    SMARTCAR_SUBSCRIPTIONS_ORIGIN: origin,
    SMARTCAR_VEHICLE_ORIGIN: origin,
    POWERTOOLS_DEV: 'false',
  });
});
afterAll(() => fake.stop());

it('runs a whole reconcile with the secrets it is given, and never logs them', async () => {
  jest.resetModules();
  const sm: typeof SmModule = await import('@aws-sdk/client-secrets-manager');
  const s3: typeof S3Module = await import('@aws-sdk/client-s3');
  const smMock = mockClient(sm.SecretsManagerClient);
  smMock.on(sm.GetSecretValueCommand, { SecretId: 'arn:amt' }).resolves({ SecretString: 'amt' });
  smMock.on(sm.GetSecretValueCommand, { SecretId: 'arn:creds' }).resolves({
    SecretString: JSON.stringify({ clientId: 'cid', clientSecret: 'csecret' }),
  });
  const objects = new Map<string, string>();
  const s3Mock = mockClient(s3.S3Client);
  s3Mock.on(s3.PutObjectCommand).callsFake((input) => void objects.set(input.Key, String(input.Body)));
  s3Mock.on(s3.GetObjectCommand).callsFake((input) => {
    const body = objects.get(input.Key);
    if (body === undefined) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey' });
    return { Body: { transformToString: async () => body } };
  });
  s3Mock.on(s3.ListObjectsV2Command).callsFake((input) => ({
    Contents: [...objects.keys()].filter((k) => k.startsWith(input.Prefix)).map((Key) => ({ Key })),
  }));
  const logs: string[] = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((c) => {
    logs.push(String(c));
    return true;
  });
  try {
    const { handler } = await import('../../lambda/reconcile/index');
    let run = (await handler({ task: 'reconcilePrepare', input: { kind: 'full' }, executionName: 'r1' })) as never as {
      phase: string;
    };
    for (let i = 0; i < 20 && run.phase !== 'done'; i++)
      run = (await handler({ task: 'reconcileStep', run } as never)) as never;
    const summary = await handler({ task: 'reconcileSummarize', run } as never);
    expect(summary).toMatchObject({ desired: 3, subscribed: 3, pending: 0, failed: [] });
    expect(fake.created.size).toBe(3);
    // The watermark for incremental runs of this webhook, mode and selection, outside the expiring runs/ folder.
    expect(
      [...objects.keys()].filter((k) => /^reconcile\/watermarks\/wh\/live-[0-9a-f]{16}-v3\.json$/.test(k)),
    ).toHaveLength(1);
    expect(logs.join('')).not.toMatch(/csecret|"amt"|app-\d/);
  } finally {
    jest.restoreAllMocks();
    smMock.restore();
    s3Mock.restore();
  }
});

it('the scheduled webhook health check publishes WebhookHealthy 0, with the service dimension, for a disabled webhook', async () => {
  process.env.SMARTCAR_EXPECTED_CALLBACK_URL = 'https://stack.example/webhook';
  process.env.POWERTOOLS_SERVICE_NAME = 'smartcar-webhooks-test';
  fake.options.webhook = { enabled: false, callbackUri: 'https://stack.example/webhook' };
  jest.resetModules();
  const sm: typeof SmModule = await import('@aws-sdk/client-secrets-manager');
  const s3: typeof S3Module = await import('@aws-sdk/client-s3');
  const smMock = mockClient(sm.SecretsManagerClient);
  smMock.on(sm.GetSecretValueCommand, { SecretId: 'arn:creds' }).resolves({
    SecretString: JSON.stringify({ clientId: 'cid', clientSecret: 'csecret' }),
  });
  const s3Mock = mockClient(s3.S3Client);
  const stored: string[] = [];
  s3Mock.on(s3.PutObjectCommand).callsFake((input) => void stored.push(input.Key));
  const logs: string[] = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((c) => {
    logs.push(String(c));
    return true;
  });
  try {
    const { handler } = await import('../../lambda/reconcile/index');
    const report = await handler({ task: 'webhookHealth' });
    expect(report).toMatchObject({ webhookId: 'wh', healthy: false, published: 0 });
    const emf = logs
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l));
    const healthy = emf.filter((m) => 'WebhookHealthy' in m);
    expect(healthy).toHaveLength(1);
    expect(healthy[0]).toMatchObject({ WebhookHealthy: 0, service: 'smartcar-webhooks-test' });
    expect(healthy[0]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service']]);
    expect(stored).toEqual(['reconcile/webhooks/wh.json']);
    expect(logs.join('')).not.toMatch(/csecret|app-\d/);
  } finally {
    jest.restoreAllMocks();
    smMock.restore();
    s3Mock.restore();
    delete process.env.SMARTCAR_EXPECTED_CALLBACK_URL;
    delete process.env.POWERTOOLS_SERVICE_NAME;
  }
});
