/**
 * The reconcile state machine's task function: application token from the client-credentials secret,
 * connections with the management token, v3 subscriptions, paced under the rate limit (core/reconcile.ts).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { logger, s3WorkStore } from '../adapters/aws-workflow';
import { secretsManagerTokens } from '../adapters/management-token';
import { coreMetrics, metrics } from '../adapters/metrics';
import {
  DEFAULT_MAX_PRUNE_FRACTION,
  DEFAULT_RATE_LIMIT,
  DEFAULT_RECONCILE_EXECUTION_SECONDS,
  DEFAULT_RECONCILE_EXECUTION_STEPS,
  ENV,
  RECONCILE_ENV,
  WORKFLOW_ENV,
} from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { DEFAULT_SMARTCAR_API, SMARTCAR_API_GENERATIONS, type SmartcarApiGeneration } from '../core/fleet-api';
import type { Mode } from '../core/reconcile';
import { type ReconcileTaskEvent, reconcileHandler } from '../core/reconcile-tasks';
import { ApplicationTokens, parseClientCredentials, SmartcarPlatform } from '../core/smartcar-platform';

/** The configured generation (the construct always sets it; unset is the default). */
function smartcarApiOf(value: string | undefined): SmartcarApiGeneration {
  if (value === undefined || value === '') return DEFAULT_SMARTCAR_API;
  if (!(SMARTCAR_API_GENERATIONS as readonly string[]).includes(value))
    throw new Error(`${RECONCILE_ENV.smartcarApi} is "${value}"; expected ${SMARTCAR_API_GENERATIONS.join(' or ')}`);
  return value as SmartcarApiGeneration;
}

const secrets = new SecretsManagerClient({});
const credentialsSecret = requireEnv(RECONCILE_ENV.clientCredentialsSecretId);
const platform = new SmartcarPlatform({
  iam: process.env[RECONCILE_ENV.iamOrigin] || undefined,
  management: process.env[RECONCILE_ENV.managementOrigin] || undefined,
  subscriptions: process.env[RECONCILE_ENV.subscriptionsOrigin] || undefined,
  vehicle: process.env[RECONCILE_ENV.vehicleOrigin] || undefined,
});
const managementTokens = secretsManagerTokens(secrets, requireEnv(ENV.managementTokenSecretId));
const appTokens = new ApplicationTokens(async () => {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: credentialsSecret }));
  const { clientId, clientSecret } = parseClientCredentials(out.SecretString, credentialsSecret);
  return platform.applicationToken(clientId, clientSecret);
});
const defaults = JSON.parse(process.env[RECONCILE_ENV.defaults] || '{}') as { mode?: Mode };
const allowed = process.env[WORKFLOW_ENV.allowedWebhookIds];

const handle = reconcileHandler(
  {
    platform,
    appTokens,
    managementToken: () => managementTokens.get(),
    smartcarApi: smartcarApiOf(process.env[RECONCILE_ENV.smartcarApi]),
    store: s3WorkStore(requireEnv(WORKFLOW_ENV.workBucketName)),
    logger,
    rateLimit: {
      capacity: numberEnv(RECONCILE_ENV.rateCapacity, DEFAULT_RATE_LIMIT.capacity),
      perMinute: numberEnv(RECONCILE_ENV.ratePerMinute, DEFAULT_RATE_LIMIT.perMinute),
    },
    defaultWebhookId: process.env[WORKFLOW_ENV.defaultWebhookId] || undefined,
    allowedWebhookIds: allowed === undefined ? undefined : allowed.split(',').filter((id) => id !== ''),
    defaultMode: defaults.mode,
    confirmDelaySeconds: numberEnv(RECONCILE_ENV.confirmDelaySeconds, 60),
    maxPruneFraction: numberEnv(RECONCILE_ENV.maxPruneFraction, DEFAULT_MAX_PRUNE_FRACTION),
    maxExecutionSteps: numberEnv(RECONCILE_ENV.maxExecutionSteps, DEFAULT_RECONCILE_EXECUTION_STEPS),
    maxExecutionSeconds: numberEnv(RECONCILE_ENV.maxExecutionSeconds, DEFAULT_RECONCILE_EXECUTION_SECONDS),
  },
  {
    metrics: coreMetrics,
    expectedCallbackUrl: process.env[RECONCILE_ENV.expectedCallbackUrl] || undefined,
    expectedErrorCallbackUrl: process.env[RECONCILE_ENV.expectedErrorCallbackUrl] || undefined,
  },
);

export async function handler(event: ReconcileTaskEvent) {
  logger.appendKeys({ task: event?.task });
  try {
    return await handle(event);
  } finally {
    // Only the webhook health check publishes (WebhookHealthy), as it finishes.
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
