/**
 * AWS wiring of the workflow core, shared by the three task functions: the S3 work store, the access
 * token resolver (execution input or secret, cached per execution), and the management token.
 */

import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DEFAULT_API_TIMEOUT_MS, ENV, WORKFLOW_ENV } from '../contract';
import { accessTokenResolver } from '../core/access-token';
import { numberEnv, requireEnv } from '../core/env';
import type { RotatingTokens } from '../core/rotating-tokens';
import { SmartcarClient } from '../core/smartcar-client';
import type { WorkflowDeps, WorkStore } from '../core/workflow';
import { createLogger } from './logger';
import { secretsManagerTokens } from './management-token';
import { listAllKeys } from './s3-objects';

const s3 = new S3Client({});
const secrets = new SecretsManagerClient({});
const sfn = new SFNClient({});

export const logger = createLogger();

export function s3WorkStore(bucket: string): WorkStore {
  return {
    async putJson(key, value) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(value),
          ContentType: 'application/json',
        }),
      );
    },
    async getJson(key) {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return JSON.parse(await (out.Body as { transformToString(): Promise<string> }).transformToString());
    },
    async getJsonIfExists(key) {
      try {
        return await this.getJson(key);
      } catch (err) {
        // NoSuchKey needs s3:ListBucket on the prefix (without it S3 answers AccessDenied, which throws here).
        if ((err as { name?: string })?.name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    listKeys: (prefix) => listAllKeys(s3, bucket, prefix),
    uri: (key) => `s3://${bucket}/${key}`,
  };
}

/** Reads the execution's own input back; used instead of passing the token along in state. */
export async function executionInput(executionArn: string): Promise<unknown> {
  const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  try {
    return JSON.parse(out.input ?? 'null');
  } catch {
    return null;
  }
}

/** Access tokens, read back from the execution's input or its secret and cached per run (core/access-token.ts). */
export const resolveAccessToken = accessTokenResolver({
  executionInput,
  secretString: async (secretArn) =>
    (await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString,
});

/** The management token (unsubscribe), read the same way as the receiver's, on first use. */
let managementTokens: RotatingTokens | undefined;
function managementToken(): Promise<string> {
  managementTokens ??= secretsManagerTokens(secrets, requireEnv(ENV.managementTokenSecretId));
  return managementTokens.get();
}

/** A comma-separated list, or undefined when the variable is not set at all (the core's default applies). */
function listEnv(name: string): string[] | undefined {
  const value = process.env[name];
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

export function workflowDeps(): WorkflowDeps {
  return {
    client: new SmartcarClient({ timeoutMs: numberEnv(WORKFLOW_ENV.apiTimeoutMs, DEFAULT_API_TIMEOUT_MS) }),
    store: s3WorkStore(requireEnv(WORKFLOW_ENV.workBucketName)),
    logger,
    resolveAccessToken,
    managementToken,
    defaultWebhookId: process.env[WORKFLOW_ENV.defaultWebhookId] || undefined,
    accessTokenSecretPrefix: process.env[WORKFLOW_ENV.accessTokenSecretPrefix] ?? '',
    allowedWebhookIds: listEnv(WORKFLOW_ENV.allowedWebhookIds),
  };
}
