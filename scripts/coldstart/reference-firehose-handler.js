/**
 * The reference for `npm run bench:coldstart` in the shape of the default delivery buffer: the same raw-body
 * HMAC-SHA256 check as reference-handler.js, then one Firehose PutRecord of the body (newline-terminated,
 * as the verification function writes landing lines) with the same AWS SDK client our function uses.
 * No secret store, no logger, no metrics, no queue fallback, no source maps: the floor to compare against.
 */
const { createHmac, timingSafeEqual } = require('node:crypto');
const { FirehoseClient, PutRecordCommand } = require('@aws-sdk/client-firehose');

const firehose = new FirehoseClient({});

exports.handler = async (event) => {
  const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  const expected = createHmac('sha256', process.env.SMARTCAR_MANAGEMENT_TOKEN).update(body).digest();
  const given = Buffer.from(String(event.headers?.['sc-signature'] ?? ''), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { statusCode: 401 };
  await firehose.send(
    new PutRecordCommand({
      DeliveryStreamName: process.env.DELIVERY_STREAM_NAME,
      Record: { Data: Buffer.concat([body, Buffer.from('\n')]) },
    }),
  );
  return { statusCode: 200, body: '{"status":"received"}' };
};
