/**
 * AWS wiring of the workflow core, shared by the three task functions: the S3 work store, the access
 * token resolver (execution input or secret, cached per execution), and the management token.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { ENV, type TokenRef, WORKFLOW_ENV } from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { SmartcarClient } from '../core/smartcar-client';
import { parseManagementToken, TokenCache } from '../core/token-cache';
import { parseAccessTokenSecret, type WorkflowDeps, type WorkStore } from '../core/workflow';

const s3 = new S3Client({});
const secrets = new SecretsManagerClient({});
const sfn = new SFNClient({});

export const logger = new Logger({ logRecordOrder: ['level', 'message'] });

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
    async listKeys(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.NextContinuationToken;
      } while (token);
      return keys;
    },
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

/** Tokens are cached per execution or secret for a few minutes: one look-up per run, not per vehicle. */
const TOKEN_TTL_MS = 5 * 60_000;
const tokenCache = new Map<string, { token: Promise<string>; at: number }>();

export function resolveAccessToken(ref: TokenRef): Promise<string> {
  const key = ref.kind === 'secret' ? `secret:${ref.secretArn}` : `execution:${ref.executionArn}`;
  const hit = tokenCache.get(key);
  if (hit && Date.now() - hit.at < TOKEN_TTL_MS) return hit.token;
  const token = (
    ref.kind === 'secret' ? readAccessTokenSecret(ref.secretArn) : readTokenFromInput(ref.executionArn)
  ).catch((err) => {
    tokenCache.delete(key);
    throw err;
  });
  if (tokenCache.size > 100) tokenCache.clear();
  tokenCache.set(key, { token, at: Date.now() });
  return token;
}

async function readTokenFromInput(executionArn: string): Promise<string> {
  const input = (await executionInput(executionArn)) as { accessToken?: unknown } | null;
  if (typeof input?.accessToken !== 'string' || input.accessToken === '') {
    throw new Error('the execution input has no accessToken');
  }
  return input.accessToken;
}

async function readAccessTokenSecret(secretArn: string): Promise<string> {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  return parseAccessTokenSecret(out.SecretString, secretArn);
}

const managementTokenCache = new TokenCache(
  async () => {
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: requireEnv(ENV.managementTokenSecretId) }));
    return parseManagementToken(out.SecretString);
  },
  { ttlMs: 5 * 60_000 },
);

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
    client: new SmartcarClient({ timeoutMs: numberEnv(WORKFLOW_ENV.apiTimeoutMs, 310_000) }),
    store: s3WorkStore(requireEnv(WORKFLOW_ENV.workBucketName)),
    logger,
    resolveAccessToken,
    managementToken: () => managementTokenCache.get(),
    defaultWebhookId: process.env[WORKFLOW_ENV.defaultWebhookId] || undefined,
    accessTokenSecretPrefix: process.env[WORKFLOW_ENV.accessTokenSecretPrefix] ?? '',
    allowedWebhookIds: listEnv(WORKFLOW_ENV.allowedWebhookIds),
  };
}
