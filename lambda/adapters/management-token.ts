/**
 * The management token from Secrets Manager, across rotations: the `AWSCURRENT` version (with the time it
 * became current) and, read only when needed, the `AWSPREVIOUS` version. See core/rotating-tokens.ts.
 */
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { DEFAULT_TOKEN_CACHE_TTL_SECONDS, DEFAULT_TOKEN_GRACE_SECONDS, ENV } from '../contract';
import { numberEnv } from '../core/env';
import { RotatingTokens } from '../core/rotating-tokens';
import { parseManagementToken } from '../core/token-cache';

export function secretsManagerTokens(client: SecretsManagerClient, secretId: string): RotatingTokens {
  return new RotatingTokens(
    async () => {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      return { token: parseManagementToken(out.SecretString), since: out.CreatedDate?.getTime() };
    },
    async () => {
      try {
        const out = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSPREVIOUS' }));
        return parseManagementToken(out.SecretString);
      } catch (err) {
        if (
          err instanceof ResourceNotFoundException ||
          (err as { name?: string }).name === 'ResourceNotFoundException'
        ) {
          return undefined; // never rotated
        }
        throw err;
      }
    },
    {
      ttlMs: numberEnv(ENV.tokenCacheTtlSeconds, DEFAULT_TOKEN_CACHE_TTL_SECONDS) * 1000,
      graceMs: numberEnv(ENV.tokenGraceSeconds, DEFAULT_TOKEN_GRACE_SECONDS) * 1000,
    },
  );
}
