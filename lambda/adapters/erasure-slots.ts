/**
 * The curated layer's and Smartcar's erasure places against AWS, for the erase function (from its
 * environment) and for `erase --stack` (from the stack's outputs): Athena in the stack's workgroup, and
 * Smartcar with the stack's secrets. A part that is not configured is left out, and the receipt says so.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DEFAULT_SMARTCAR_API_ORIGIN, ENV } from '../contract';
import type { ErasurePlace } from '../core/erasure';
import { curatedAthenaPlace } from '../core/erasure-curated';
import { smartcarPlace } from '../core/erasure-smartcar';
import { ApplicationTokens, parseClientCredentials, SmartcarPlatform } from '../core/smartcar-platform';
import { athenaRunner, s3SwapObjects } from './erasure-curated';
import { secretsManagerTokens } from './management-token';

export interface SlotConfig {
  readonly lakeBucket: string;
  /** Athena workgroup, Glue database and curated prefix; absent: the curated layer is not erased. */
  readonly workGroup?: string;
  readonly database?: string;
  readonly curatedPrefix?: string;
  /** Secrets Manager ids of the management token and the client credentials, and the webhook. */
  readonly managementTokenSecretId?: string;
  readonly clientCredentialsSecretId?: string;
  readonly webhookId?: string;
}

export function curatedSlot(config: SlotConfig, s3: S3Client): ErasurePlace | undefined {
  if (!config.workGroup || !config.database || !config.curatedPrefix) return undefined;
  return curatedAthenaPlace({
    athena: athenaRunner({ workGroup: config.workGroup, database: config.database }),
    objects: s3SwapObjects(s3, config.lakeBucket),
    bucket: config.lakeBucket,
    curatedPrefix: config.curatedPrefix,
    database: config.database,
  });
}

/** Smartcar's place, or undefined without a management token secret. Secrets are read when the place runs. */
export function smartcarSlot(
  config: SlotConfig,
  secrets: SecretsManagerClient = new SecretsManagerClient({}),
): ErasurePlace | undefined {
  const tokenSecret = config.managementTokenSecretId;
  if (!tokenSecret) return undefined;
  // One origin for every Smartcar host when set (a fake in tests, a proxy); Smartcar's own hosts otherwise.
  const origin = process.env[ENV.smartcarApiOrigin];
  const platform = new SmartcarPlatform(
    origin && origin !== DEFAULT_SMARTCAR_API_ORIGIN
      ? { iam: origin, management: origin, subscriptions: origin, vehicle: origin }
      : {},
  );
  const credentialsSecret = config.clientCredentialsSecretId;
  let appTokens: ApplicationTokens | undefined;
  return {
    place: 'smartcar',
    async erase(context) {
      if (credentialsSecret && !appTokens) {
        const out = await secrets
          .send(new GetSecretValueCommand({ SecretId: credentialsSecret }))
          .catch(() => undefined);
        // Credentials still holding their placeholder are "not configured", which the receipt states.
        const parsed = (() => {
          try {
            return parseClientCredentials(out?.SecretString, credentialsSecret);
          } catch {
            return undefined;
          }
        })();
        if (parsed)
          appTokens = new ApplicationTokens(() => platform.applicationToken(parsed.clientId, parsed.clientSecret));
      }
      const tokens = secretsManagerTokens(secrets, tokenSecret);
      return smartcarPlace({
        platform,
        managementToken: () => tokens.get(),
        appTokens,
        webhookId: config.webhookId,
        where: 'Smartcar',
      }).erase(context);
    },
  };
}
