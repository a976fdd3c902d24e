/**
 * Front-door adapter for the receiver core, for both front doors (they send the same payload 2.0 event):
 * the HTTP API's route, or a Lambda Function URL, for which it checks path and method itself. It decodes
 * the body exactly as sent,
 * reads the management token (current, and previous during a rotation's grace period) from Secrets
 * Manager through a TTL cache, hands authentic deliveries to SQS before answering, and keeps deliveries
 * rejected only for their signature in the quarantine bucket.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createLogger } from '../adapters/logger';
import { secretsManagerTokens } from '../adapters/management-token';
import { coreMetrics, metrics } from '../adapters/metrics';
import { DEFAULT_QUARANTINE_MAX_BYTES_PER_HOUR, DEFAULT_QUARANTINE_MAX_PER_MINUTE, ENV } from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { QuarantineWriter } from '../core/quarantine';
import { type ReceiverResponse, receive, routeCheck } from '../core/receive';

const logger = createLogger();
const secrets = new SecretsManagerClient({});
const sqs = new SQSClient({});
const s3 = new S3Client({});

const secretId = requireEnv(ENV.managementTokenSecretId);
const queueUrl = requireEnv(ENV.deliveryQueueUrl);

const token = secretsManagerTokens(secrets, secretId);
// Set only behind a Function URL, which routes every path and method here.
const callbackPath = process.env[ENV.callbackPath];

// Deliveries rejected only for their signature, kept for recovery (capped per instance).
const quarantineBucket = process.env[ENV.quarantineBucketName];
const quarantine = quarantineBucket
  ? new QuarantineWriter(
      async (key, body) => {
        await s3.send(
          new PutObjectCommand({ Bucket: quarantineBucket, Key: key, Body: body, ContentType: 'application/json' }),
        );
      },
      {
        maxPerMinute: numberEnv(ENV.quarantineMaxPerMinute, DEFAULT_QUARANTINE_MAX_PER_MINUTE),
        maxBytesPerHour: numberEnv(ENV.quarantineMaxBytesPerHour, DEFAULT_QUARANTINE_MAX_BYTES_PER_HOUR),
      },
      coreMetrics,
      logger,
    )
  : undefined;

const howToSetToken =
  `Put the application management token (Smartcar Dashboard → Configuration) in the secret: ` +
  `aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string '<token>'`;

export async function handler(
  event: APIGatewayProxyEventV2,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  if (context) logger.addContext(context);
  let result: ReceiverResponse;
  const misrouted =
    callbackPath === undefined
      ? undefined
      : routeCheck(event?.requestContext?.http?.method, event?.rawPath, callbackPath);
  if (misrouted) {
    return {
      statusCode: misrouted.statusCode,
      headers: { 'content-type': 'application/json', ...(misrouted.statusCode === 405 ? { allow: 'POST' } : {}) },
      body: JSON.stringify(misrouted.body),
    };
  }
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
        quarantine: quarantine ? (d) => quarantine.offer(d) : undefined,
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
