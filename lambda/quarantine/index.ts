/**
 * The quarantine writer: takes the deliveries the verification function rejected only for their
 * signature from the quarantine queue, a batch at a time (up to 10,000 or 6 MB, or what a minute
 * brings), and writes each batch as one gzip NDJSON object within the stack's hourly budget (see
 * core/quarantine.ts). A batch that cannot be written fails as a whole and comes back; what the budget
 * turns away is counted in QuarantineDropped.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSEvent } from 'aws-lambda';
import { createLogger } from '../adapters/logger';
import { coreMetrics, metrics } from '../adapters/metrics';
import { s3Keys } from '../adapters/recovery';
import { ENV, type QuarantinedDelivery } from '../contract';
import { numberEnv, requireEnv } from '../core/env';
import { decodeQuarantined, QuarantineWriter } from '../core/quarantine';

const logger = createLogger();
const s3 = new S3Client({});
const bucket = requireEnv(ENV.quarantineBucketName);
function cap(name: string): number {
  requireEnv(name);
  return numberEnv(name, 0);
}
const writer = new QuarantineWriter({
  put: async (key, body) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' }));
  },
  list: s3Keys(s3, bucket),
  // The stack sizes both from expectedPeakDeliveriesPerSecond (quarantineCapsFor), or the construct's props.
  caps: { maxPerHour: cap(ENV.quarantineMaxPerHour), maxBytesPerHour: cap(ENV.quarantineMaxBytesPerHour) },
  metrics: coreMetrics,
  logger,
});

export async function handler(event: SQSEvent, context?: Context): Promise<void> {
  if (context) logger.addContext(context);
  const records: QuarantinedDelivery[] = [];
  let unreadable = 0;
  for (const r of event?.Records ?? []) {
    try {
      records.push(decodeQuarantined(r.body));
    } catch {
      unreadable++; // only the verification function sends here; nothing to keep
    }
  }
  if (unreadable > 0) logger.warn('skipped quarantine messages that are not rejected deliveries', { unreadable });
  try {
    await writer.write(records);
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}
