/**
 * The reconcile function in a stack with reconcile off: the construct creates no client-credentials secret
 * and sets no id, so the function must still load, and every run started by hand must fail in one line
 * that says how to turn reconcile on, before it touches anything.
 */

import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';

const secrets = mockClient(SecretsManagerClient);
const s3 = mockClient(S3Client);

beforeAll(() => {
  Object.assign(process.env, {
    WORKFLOW_BUCKET_NAME: 'work',
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:amt',
    SMARTCAR_WEBHOOK_ID: 'wh',
    SMARTCAR_ALLOWED_WEBHOOK_IDS: 'wh',
    POWERTOOLS_DEV: 'false',
  });
  delete process.env.SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID;
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterAll(() => jest.restoreAllMocks());

it('loads without the client-credentials secret id, and refuses every task in one line naming the switch', async () => {
  let mod: typeof import('../../lambda/reconcile/index') | undefined;
  expect(() => {
    mod = require('../../lambda/reconcile/index');
  }).not.toThrow();
  for (const event of [
    { task: 'prepare', input: { kind: 'full', dryRun: true }, executionName: 'by-hand' },
    { task: 'webhookHealth' },
  ]) {
    const failure = await mod?.handler(event as never).catch((err: Error) => err);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).name).toBe('Reconcile.Off');
    expect((failure as Error).message).toMatch(
      /^Reconcile is off in this stack .*reconcile\.enabled: true .*-c reconcile=true.*existingClientCredentialsSecret/,
    );
    expect((failure as Error).message).not.toContain('\n');
  }
  // Nothing was read or written.
  expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
});
