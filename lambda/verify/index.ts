/**
 * API Gateway (HTTP API, payload 2.0) adapter for the receiver core: decodes the body exactly as sent,
 * reads the management token from Secrets Manager through a TTL cache, and hands authentic deliveries
 * to SQS before answering.
 */

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createLogger } from '../adapters/logger';
import { coreMetrics, metrics } from '../adapters/metrics';
import { DEFAULT_TOKEN_CACHE_TTL_SECONDS, ENV } from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { type ReceiverResponse, receive } from '../core/receive';
import { parseManagementToken, TokenCache } from '../core/token-cache';

const logger = createLogger();
const secrets = new SecretsManagerClient({});
const sqs = new SQSClient({});

const secretId = requireEnv(ENV.managementTokenSecretId);
const queueUrl = requireEnv(ENV.deliveryQueueUrl);

const token = new TokenCache(
  async () => {
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    return parseManagementToken(out.SecretString);
  },
  { ttlMs: numberEnv(ENV.tokenCacheTtlSeconds, DEFAULT_TOKEN_CACHE_TTL_SECONDS) * 1000 },
);

const howToSetToken =
  `Put the application management token (Smartcar Dashboard → Configuration) in the secret: ` +
  `aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string '<token>'`;

export async function handler(
  event: APIGatewayProxyEventV2,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  if (context) logger.addContext(context);
  let result: ReceiverResponse;
  try {
    const raw = event?.body ?? '';
    result = await receive(
      {
        body: Buffer.from(raw, event?.isBase64Encoded ? 'base64' : 'utf8'),
        headers: event?.headers ?? {},
        requestId: event?.requestContext?.requestId,
        receivedAt: new Date(event?.requestContext?.timeEpoch ?? Date.now()),
      },
      {
        token,
        logger,
        metrics: coreMetrics,
        howToSetToken,
        enqueue: async (message) => {
          await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
        },
      },
    );
  } catch (err) {
    // receive() handles every expected failure; this is the last guard so a surprise is a 500, not a crash.
    logger.error('unexpected error in receiver', { error: err as Error });
    result = { statusCode: 500, body: { error: 'internal error' } };
  }
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  return {
    statusCode: result.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(result.body),
  };
}
