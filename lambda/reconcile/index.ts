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
import {
  DEFAULT_SMARTCAR_API,
  isSmartcarApiGeneration,
  SMARTCAR_API_GENERATIONS,
  type SmartcarApiGeneration,
} from '../core/fleet-api';
import type { Mode } from '../core/reconcile';
import { type ReconcileTaskEvent, reconcileHandler } from '../core/reconcile-tasks';
import { ApplicationTokens, parseClientCredentials, SmartcarPlatform } from '../core/smartcar-platform';

/** The configured generation (the construct always sets it; unset is the default). */
function smartcarApiOf(value: string | undefined): SmartcarApiGeneration {
  if (value === undefined || value === '') return DEFAULT_SMARTCAR_API;
  if (!isSmartcarApiGeneration(value))
    throw new Error(`${RECONCILE_ENV.smartcarApi} is "${value}"; expected ${SMARTCAR_API_GENERATIONS.join(' or ')}`);
  return value;
}

/**
 * What a run gets when reconcile is off: the construct creates the client-credentials secret (and sets its
 * id) only with `reconcile.enabled` or `reconcile.existingClientCredentialsSecret`, so that a stack that
 * does not reconcile pays for no secret. One line, naming both switches.
 */
export const RECONCILE_OFF_ERROR = 'Reconcile.Off';
export const RECONCILE_OFF_MESSAGE =
  'Reconcile is off in this stack (no client-credentials secret): deploy with reconcile.enabled: true ' +
  '(cdk deploy -c reconcile=true) or reconcile.existingClientCredentialsSecret, put the client credentials in ' +
  'the secret, then start the run again.';

const secrets = new SecretsManagerClient({});
// Read per run, not at init: without it the function must still load and say why it cannot run.
const credentialsSecret = process.env[RECONCILE_ENV.clientCredentialsSecretId] || undefined;
const platform = new SmartcarPlatform({
  iam: process.env[RECONCILE_ENV.iamOrigin] || undefined,
  management: process.env[RECONCILE_ENV.managementOrigin] || undefined,
  subscriptions: process.env[RECONCILE_ENV.subscriptionsOrigin] || undefined,
  vehicle: process.env[RECONCILE_ENV.vehicleOrigin] || undefined,
});
const managementTokens = secretsManagerTokens(secrets, requireEnv(ENV.managementTokenSecretId));
const appTokens = new ApplicationTokens(async () => {
  if (!credentialsSecret) throw reconcileOff();
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

function reconcileOff(): Error {
  return Object.assign(new Error(RECONCILE_OFF_MESSAGE), { name: RECONCILE_OFF_ERROR });
}

export async function handler(event: ReconcileTaskEvent) {
  logger.appendKeys({ task: event?.task });
  // Every task needs the application token (the v3 subscriptions, the webhook check): refuse before any work.
  if (!credentialsSecret) {
    logger.error(RECONCILE_OFF_MESSAGE);
    throw reconcileOff();
  }
  try {
    return await handle(event);
  } finally {
    // Only the webhook health check publishes (WebhookHealthy), as it finishes.
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
