/**
 * Front-door adapter for the receiver core, for both front doors (they send the same payload 2.0 event):
 * the HTTP API's route, or a Lambda Function URL, for which it checks path and method itself. It decodes
 * the body exactly as sent,
 * reads the management token (current, and previous during a rotation's grace period) from Secrets
 * Manager through a TTL cache, hands authentic deliveries to the delivery buffer before answering (the
 * Firehose stream, falling back to the delivery queue when the stream refuses one; or the queue alone), and
 * hands deliveries rejected only for their signature to the quarantine queue (the quarantine function
 * writes them in batches, within the stack's hourly budget).
 */
import { FirehoseClient, PutRecordCommand } from '@aws-sdk/client-firehose';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { lazyLogger, lazyMetrics } from '../adapters/lazy-observability';
import { secretsManagerTokens } from '../adapters/management-token';
import { sourceMappedLogger } from '../adapters/source-map';
import { type DeliveryMessage, ENV, METRIC, type QuarantinedDelivery } from '../contract';
import { requireEnv } from '../core/env';
import { landingLine } from '../core/landing-line';
import { type ReceiverResponse, receive, routeCheck } from '../core/receive';

// Loaded on first use: a genuine delivery logs and counts nothing, so its cold start never loads them.
const logger = lazyLogger();
const metrics = lazyMetrics();
// No --enable-source-maps here (it costs every cold start): the few errors logged are mapped when logged.
const coreLogger = sourceMappedLogger(logger, __filename);
const secrets = new SecretsManagerClient({});

const secretId = requireEnv(ENV.managementTokenSecretId);
const queueUrl = requireEnv(ENV.deliveryQueueUrl);
const streamName = process.env[ENV.deliveryStreamName] || undefined;

// The SQS client is loaded on first use when deliveries go to Firehose: only a refused record (or a
// quarantined delivery) needs it, and a genuine delivery's cold start should not load it.
let sqsClient: SQSClient | undefined;
const sqs = (): SQSClient => {
  if (!sqsClient) {
    const { SQSClient: Client } = require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs');
    sqsClient = new Client({});
  }
  return sqsClient;
};
const sendMessage = async (url: string, body: string) => {
  const { SendMessageCommand } = require('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs');
  await sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
};
if (!streamName) sqs();

// Imported statically (the default buffer uses it on every cold start, and a static import bundles less
// than a lazy one). One quick retry, each attempt bounded in time, then the queue: a throttled or slow
// stream (its per-second quota is per account and region) must not turn a top-of-the-hour burst into 5xx
// answers or timeouts, and the queue takes any rate.
const firehose: FirehoseClient | undefined = streamName
  ? new FirehoseClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 } })
  : undefined;
const enqueue = async (message: DeliveryMessage): Promise<void> => {
  if (firehose) {
    try {
      await firehose.send(
        new PutRecordCommand({
          DeliveryStreamName: streamName,
          Record: { Data: Buffer.from(landingLine(message)) },
        }),
      );
      return;
    } catch (err) {
      // Counted (the fallback is dearer per delivery and means the stream's quota is too small), not fatal.
      metrics.count(METRIC.deliveryStreamFallbacks, 1);
      coreLogger.warn('the delivery stream refused a record; sending it to the delivery queue', {
        reason: (err as { name?: string }).name ?? String(err),
      });
    }
  }
  await sendMessage(queueUrl, JSON.stringify(message));
};

const token = secretsManagerTokens(secrets, secretId);
// Set only behind a Function URL, which routes every path and method here.
const callbackPath = process.env[ENV.callbackPath];
// The optional second path for Smartcar's vehicle error callback URI (behind a Function URL only).
const errorCallbackPath = process.env[ENV.errorCallbackPath] || undefined;

// Deliveries rejected only for their signature, kept for recovery: one SendMessage each, as cheap as an
// accepted delivery; the quarantine function batches them into objects and applies the hourly budget.
const quarantineQueueUrl = process.env[ENV.quarantineQueueUrl];
const quarantine = quarantineQueueUrl
  ? async (d: QuarantinedDelivery) => {
      await sendMessage(quarantineQueueUrl, JSON.stringify(d));
    }
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
      : routeCheck(event?.requestContext?.http?.method, event?.rawPath, callbackPath, errorCallbackPath);
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
        logger: coreLogger,
        metrics,
        howToSetToken,
        quarantine,
        enqueue,
      },
    );
  } catch (err) {
    // receive() handles every expected failure; this is the last guard so a surprise is a 500, not a crash.
    coreLogger.error('unexpected error in receiver', { error: err as Error });
    result = { statusCode: 500, body: { error: 'internal error' } };
  }
  metrics.publish();
  return {
    statusCode: result.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(result.body),
  };
}
