/**
 * The reference for `npm run bench:coldstart`: the least a verifying receiver can do, in the shape of
 * Smartcar's own recipe. It checks the raw body's HMAC-SHA256 against SC-Signature with a token from the
 * environment and sends the body to SQS with the same AWS SDK client our verification function uses.
 * No secret store, no logger, no metrics, no quarantine, no source maps: the floor to compare against.
 */
const { createHmac, timingSafeEqual } = require('node:crypto');
const { SendMessageCommand, SQSClient } = require('@aws-sdk/client-sqs');

const sqs = new SQSClient({});

exports.handler = async (event) => {
  const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  const expected = createHmac('sha256', process.env.SMARTCAR_MANAGEMENT_TOKEN).update(body).digest();
  const given = Buffer.from(String(event.headers?.['sc-signature'] ?? ''), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { statusCode: 401 };
  await sqs.send(new SendMessageCommand({ QueueUrl: process.env.DELIVERY_QUEUE_URL, MessageBody: body.toString() }));
  return { statusCode: 200, body: '{"status":"received"}' };
};
