/**
 * `erase --smartcar` without a stack: Smartcar is reached with the credentials the local commands already
 * use (`subscribe`, `reconcile`): SMARTCAR_MANAGEMENT_TOKEN (else the lake folder's token file),
 * SMARTCAR_CLIENT_ID / SMARTCAR_CLIENT_SECRET, SMARTCAR_WEBHOOK_ID, and SMARTCAR_API_ORIGIN (one origin for
 * every Smartcar host: a fake, or a proxy). Without a management token it refuses, in one line, before
 * anything is erased anywhere.
 */
import type { ErasurePlace } from '../lambda/core/erasure';
import { smartcarPlace } from '../lambda/core/erasure-smartcar';
import { ApplicationTokens, SmartcarPlatform } from '../lambda/core/smartcar-platform';
import { fileTokens, fixedToken } from './token-files';

export async function localSmartcarPlace(lakeDir: string, env: NodeJS.ProcessEnv = process.env): Promise<ErasurePlace> {
  const origin = env.SMARTCAR_API_ORIGIN?.trim();
  const platform = new SmartcarPlatform(
    origin ? { iam: origin, management: origin, subscriptions: origin, vehicle: origin } : {},
  );
  const envToken = env.SMARTCAR_MANAGEMENT_TOKEN?.trim();
  const tokens = envToken ? fixedToken(envToken) : fileTokens(lakeDir);
  // Fail now, not after the lake is erased: --smartcar without a token is a mistake to say at once.
  const managementToken = await tokens.get().catch(() => {
    throw new Error('--smartcar needs the management token: set SMARTCAR_MANAGEMENT_TOKEN');
  });
  const clientId = env.SMARTCAR_CLIENT_ID?.trim();
  const clientSecret = env.SMARTCAR_CLIENT_SECRET?.trim();
  return smartcarPlace({
    platform,
    managementToken: async () => managementToken,
    appTokens:
      clientId && clientSecret
        ? new ApplicationTokens(() => platform.applicationToken(clientId, clientSecret))
        : undefined,
    webhookId: env.SMARTCAR_WEBHOOK_ID?.trim() || undefined,
    where: origin ? `Smartcar at ${origin}` : 'Smartcar',
  });
}
