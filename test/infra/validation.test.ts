/**
 * Bad configuration fails at synth with one clear line: every CDK context value and construct prop is
 * checked (unresolved tokens skipped), and `bin/app.ts` prints the message alone and exits non-zero.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CfnParameter, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { SmartcarWebhooks, type SmartcarWebhooksProps } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { ConfigurationError } from '../../lib/validation';
import { bareStack } from '../support/synth';

const fromContext = (ctx: Record<string, unknown>) => () => settingsFromContext((k) => ctx[k]);

describe('context values', () => {
  it.each([
    [{ webhookId: 'bad id!<>' }, /^Context "webhookId" "bad id!<>" is invalid: a Smartcar webhook id/],
    [{ secretName: 'x y' }, /^Context "secretName" "x y" is invalid: a secret name/],
    [{ bucketName: 'My_Bucket' }, /^Context "bucketName" "My_Bucket" is invalid: a bucket name/],
    [{ bucketName: 'a..b' }, /no "\.\."/],
    [{ stackName: '1stack' }, /^Context "stackName" "1stack" is invalid/],
    [{ logRetentionDays: 2 }, /CloudWatch accepts one of/],
    [{ bucketRemovalPolicy: 'keep' }, /"retain" or "destroy"/],
    [{ lakeExpireAfterDays: -1 }, /positive whole number/],
    [{ errorCallbackPath: 'errors' }, /^Context "errorCallbackPath" "errors" must start with "\/"/],
  ])('%p fails with a ConfigurationError naming the key', (ctx, message) => {
    expect(fromContext(ctx)).toThrow(ConfigurationError);
    expect(fromContext(ctx)).toThrow(message);
  });

  it('accepts good values', () => {
    expect(
      fromContext({ webhookId: 'wh_1-a', secretName: 'smartcar/amt', bucketName: 'my.lake-1', stackName: 'Sc-1' })(),
    ).toMatchObject({ webhookId: 'wh_1-a', stackName: 'Sc-1' });
  });
});

describe('construct props', () => {
  const make = (props: SmartcarWebhooksProps) => () => new SmartcarWebhooks(bareStack(), 'Sc', props);

  it.each<[string, SmartcarWebhooksProps, RegExp]>([
    ['webhookId', { webhookId: 'bad id!' }, /^webhookId "bad id!" is invalid/],
    [
      'allowed webhook ids',
      { webhookId: 'wh', subscriptionWorkflow: { allowedWebhookIds: ['ok', 'not ok'] } },
      /allowedWebhookIds entry "not ok"/,
    ],
    [
      'secret name',
      { managementTokenSecretProps: { secretName: 'a b' } },
      /managementTokenSecretProps.secretName "a b"/,
    ],
    ['bucket name', { bucketProps: { bucketName: 'UPPER' } }, /bucketProps.bucketName "UPPER"/],
    [
      'API origin',
      { subscriptionWorkflow: { smartcarApiOrigin: 'http://api.smartcar.com' } },
      /smartcarApiOrigin .* https origin/,
    ],
    [
      'API origin with a path',
      { subscriptionWorkflow: { smartcarApiOrigin: 'https://api.smartcar.com/v2.0' } },
      /https origin/,
    ],
    ['alarm email', { monitoring: { alarmEmail: 'ops' } }, /monitoring.alarmEmail "ops"/],
    ['ingest concurrency', { ingestMaxConcurrency: 1 }, /ingestMaxConcurrency is 1/],
    ['batch size', { ingestBatchSize: 0 }, /ingestBatchSize is 0/],
    ['batching window', { ingestMaxBatchingWindow: Duration.minutes(6) }, /at most 300 s/],
    [
      'workflow concurrency',
      { subscriptionWorkflow: { maxConcurrency: 41 } },
      /subscriptionWorkflow.maxConcurrency is 41/,
    ],
    ['callback path', { callbackPath: 'webhooks' }, /callbackPath "webhooks"/],
    ['error callback path', { errorCallbackPath: 'errors' }, /^errorCallbackPath "errors"/],
    ['error callback path equal to the callback path', { errorCallbackPath: '/webhooks' }, /is the callbackPath/],
    ['raw prefix', { rawPrefix: 'raw zone' }, /rawPrefix "raw zone"/],
    [
      'outputs prefix',
      { outputs: { prefix: 'prod-eu' } },
      /^outputs.prefix "prod-eu" is invalid: use up to 64 letters/,
    ],
    [
      'outputs prefix the CLI reads as none',
      { outputs: { prefix: 'default' } },
      /outputs.prefix "default".*not "default"/,
    ],
  ])('a bad %s fails with one line', (_, props, message) => {
    expect(make(props)).toThrow(ConfigurationError);
    expect(make(props)).toThrow(message);
    try {
      make(props)();
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('skips values that are tokens, resolved only at deploy time', () => {
    const stack = bareStack();
    const webhookId = new CfnParameter(stack, 'WebhookId').valueAsString;
    const secretName = new CfnParameter(stack, 'SecretName').valueAsString;
    const concurrency = new CfnParameter(stack, 'Concurrency', { type: 'Number' }).valueAsNumber;
    new SmartcarWebhooks(stack, 'Sc', {
      webhookId,
      managementTokenSecretProps: { secretName },
      ingestBatchSize: concurrency,
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: { Ref: 'SecretName' } });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { SMARTCAR_ALLOWED_WEBHOOK_IDS: { Ref: 'WebhookId' } } },
    });
  });
});

describe('bin/app.ts', () => {
  it.each([
    ['{"webhookId":"bad id!<>"}', 'Configuration error: Context "webhookId" "bad id!<>" is invalid'],
    ['{"secretName":"x y"}', 'Configuration error: Context "secretName" "x y" is invalid'],
  ])('with context %s prints one line and exits 1', (context, message) => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', '..', 'bin', 'app.ts')], {
      env: { ...process.env, CDK_CONTEXT_JSON: context, CDK_OUTDIR: mkdtempSync(path.join(tmpdir(), 'bad-synth-')) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out.status).toBe(1);
    const lines = out.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !/NodeVersionSupportWarning|AWS SDK|node >=22|security updates|a\.co\//.test(l))
      .filter((l) => !/^(versions published|will require|To continue|and security|More information)/.test(l));
    expect(lines).toEqual([expect.stringContaining(message)]);
  });
});
