/**
 * What the ingest function publishes, as deployed: every custom metric published with every batch is
 * billed $0.30 a month per name and dimension set, and no alarm reads the per-batch figures. Without
 * DETAILED_METRICS=true (the construct's default, monitoring.detailedMetrics) a healthy batch publishes
 * nothing and a failing one only IngestFailures; with it, the figures the dashboard charts.
 */
import type * as S3Module from '@aws-sdk/client-s3';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { fixture } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const at = '2026-11-26T21:04:59.000Z';

function sqsEvent(bodies: Record<string, string>): SQSEvent {
  return { Records: Object.entries(bodies).map(([messageId, body]) => ({ messageId, body }) as SQSRecord) };
}

/** The ingest handler loaded with `env`, and the metric names of the EMF lines it writes in one invocation. */
async function publishedBy(env: Record<string, string>, fail: boolean): Promise<Map<string, string[]>> {
  jest.resetModules();
  Object.assign(process.env, { LAKE_BUCKET_NAME: 'lake-bucket', LAKE_RAW_PREFIX: 'raw', POWERTOOLS_DEV: 'false' }, env);
  // The module the freshly loaded handler uses, mocked.
  const { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } = require('@aws-sdk/client-s3') as typeof S3Module;
  const s3 = mockClient(S3Client);
  s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'NoSuchKey', $metadata: {} }));
  if (fail) s3.on(PutObjectCommand).rejects(new Error('InternalError'));
  else s3.on(PutObjectCommand).resolves({});
  const lines: string[] = [];
  for (const stream of [process.stdout, process.stderr])
    jest.spyOn(stream, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
  // The handler reads the environment at module scope.
  const { handler } = require('../../lambda/ingest/index') as typeof import('../../lambda/ingest/index');
  await handler(
    sqsEvent({
      a: JSON.stringify(deliveryMessage(fixture('vehicle-state'), at)),
      b: JSON.stringify(deliveryMessage(fixture('vehicle-error'), at)),
    }),
  );
  jest.restoreAllMocks();
  s3.restore();
  // Metric name -> its dimension names, from each embedded-metric-format line.
  const metrics = new Map<string, string[]>();
  for (const line of lines.flatMap((l) => l.split('\n')).filter((l) => l.includes('"_aws"'))) {
    const emf = JSON.parse(line)._aws.CloudWatchMetrics[0] as {
      Dimensions: string[][];
      Metrics: { Name: string }[];
    };
    for (const m of emf.Metrics) metrics.set(m.Name, emf.Dimensions.flat().sort());
  }
  return metrics;
}

afterEach(() => {
  delete process.env.DETAILED_METRICS;
});

it('publishes nothing for a healthy batch by default (DETAILED_METRICS unset or false)', async () => {
  expect([...(await publishedBy({ DETAILED_METRICS: 'false' }, false)).keys()]).toEqual([]);
  delete process.env.DETAILED_METRICS;
  expect([...(await publishedBy({}, false)).keys()]).toEqual([]);
});

it('publishes only IngestFailures, with the service dimension alone, for a batch that failed', async () => {
  const published = await publishedBy({ DETAILED_METRICS: 'false', POWERTOOLS_SERVICE_NAME: 'Stack' }, true);
  expect(Object.fromEntries(published)).toEqual({ IngestFailures: ['service'] });
});

it('publishes the per-batch figures with DETAILED_METRICS=true: Deliveries by event type and mode, the rest by service', async () => {
  const published = await publishedBy({ DETAILED_METRICS: 'true', POWERTOOLS_SERVICE_NAME: 'Stack' }, false);
  expect(Object.fromEntries(published)).toEqual({
    Deliveries: ['EventType', 'Mode', 'service'],
    RecordsWritten: ['service'],
    ObjectsWritten: ['service'],
    DuplicatesDropped: ['service'],
    IngestFailures: ['service'],
    IngestLag: ['service'],
  });
});
