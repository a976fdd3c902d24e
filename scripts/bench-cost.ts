/**
 * The monthly bill, at every scale: for each configuration (synthesized from the construct itself), at 1,
 * 10 and 100 million deliveries a month (0.4, 3.9 and 38 a second), with steady, bursty and daily-curve
 * arrivals, what a month costs as fixed + variable + storage:
 *
 * - fixed: counted from the synthesized template (secrets, alarm metrics, dashboards, idle SQS polling, the
 *   schedules' floor) and from what the functions really publish (custom metrics, read from their output);
 *   scripts/cost/fixed.ts.
 * - variable: a sample of signed deliveries of three kinds (VEHICLE_STATE live 90%, VEHICLE_ERROR live 8%,
 *   VEHICLE_STATE simulated 2%: three raw partitions) goes through the real ingest handler (counting AWS
 *   clients) in the batches Lambda's SQS polling forms, as a range: best case one poller, worst case five
 *   (scripts/cost/polling.ts). With the Firehose buffer (every configuration but `queue`), the deliveries
 *   the stream takes are first buffered into landing objects by its hints (worst case: twice the objects),
 *   each announced on the queue by S3 and read by the ingest handler; those its quota refuses go to the
 *   queue as deliveries (scripts/cost/firehose.ts). The verification handler is timed separately with the
 *   real AWS SDK against a local stand-in (Firehose PutRecord, or SQS SendMessage for `queue`), on a 256 MB
 *   function's CPU share (scripts/cost/verify-timing.ts).
 * - storage: twelve months of the lake (raw and curated) with the lifecycle rules the template configures,
 *   and a month of logs; month 12's bill (scripts/cost/storage.ts).
 *
 * Prices: scripts/cost/prices.ts (us-east-1 list prices, its date in the file).
 *
 *   npm run bench:cost [-- --sample 4000 --aws-call-ms 8 --body-bytes 2048]
 *   npm run bench:cost -- --write-readme   (regenerates the cost section of docs/cost.md from this output)
 *
 * Modelled, not measured (and printed as such): AWS's latency inside a handler (--aws-call-ms per call),
 * Lambda's platform log records (their documented shape), 10 minutes before Lambda retires an idle
 * instance, the pollers and messages per receive (a range), and the bytes the compaction's Athena
 * statements scan (from the raw and curated bytes this run wrote).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { SQSEvent } from 'aws-lambda';
import { itemBytes } from '../lambda/adapters/dynamodb-state-store';
import { landingLine } from '../lambda/core/landing';
import { DeliveryBuffer } from '../lib/landing';
import { compactLocalLake } from '../local/compact';
import { listLakeKeys, putLakeObject } from '../local/file-lake';
import { deliveryMessage } from '../test/support/lake';
import { buildHandlers } from './build-handlers';
import { emfMetrics } from './cost/emf';
import {
  FIREHOSE_BILLING_INCREMENT_BYTES,
  FIREHOSE_QUOTA,
  fallbacks,
  firehoseBilledBytes,
  firehoseIngestDollars,
  HINT_OVERRUN,
  landingGroups,
  landingObjectsPerMonth,
} from './cost/firehose';
import { fixedMonthly, fixedTotal, SECONDS_PER_MONTH, type TemplateJson } from './cost/fixed';
import { POLLING_CASES, type Polled, poll } from './cost/polling';
import { PRICES } from './cost/prices';
import { expiryDays, storedOverAYear } from './cost/storage';
import { timeVerify } from './cost/verify-timing';

process.env.CDK_VALIDATION = 'false';

// ---------------------------------------------------------------------------------------------------
// Configurations: each synthesized, and what the cost depends on read from its template.

interface Config {
  name: string;
  label: string;
  props: Record<string, unknown>;
}

const CONFIGS: Config[] = [
  { name: 'default', label: 'HTTP API front door, curated layer: a plain cdk deploy', props: {} },
  {
    name: 'function-url',
    label: 'the cheapest supported: a Function URL front door',
    props: { endpoint: 'function-url' },
  },
  { name: 'state-table', label: 'default + vehicle state table', props: { vehicleStateTable: true } },
  { name: 'dedupe', label: 'default + DynamoDB dedupe table', props: { deduplication: true } },
  { name: 'events', label: 'default + one EventBridge event per delivery', props: { events: { enabled: true } } },
  {
    name: 'queue',
    label: "0.3's buffer: every delivery a message on the delivery queue (HTTP API)",
    props: { deliveryBuffer: DeliveryBuffer.QUEUE },
  },
];

const VOLUMES = [1e6, 1e7, 1e8];
const PATTERNS = ['steady', 'bursty', 'daily'] as const;

interface Kind {
  readonly eventType: 'VEHICLE_STATE' | 'VEHICLE_ERROR';
  readonly mode: 'LIVE' | 'SIMULATED';
  readonly share: number;
}
/** Three raw partitions (event type × mode), as a fleet with a test group and some errors writes. */
const KINDS: readonly Kind[] = [
  { eventType: 'VEHICLE_STATE', mode: 'LIVE', share: 0.9 },
  { eventType: 'VEHICLE_ERROR', mode: 'LIVE', share: 0.08 },
  { eventType: 'VEHICLE_STATE', mode: 'SIMULATED', share: 0.02 },
];
/** The i-th delivery's kind, spread evenly (a golden-ratio sequence) rather than in runs. */
function kindOf(i: number): Kind {
  const u = (i * 0.6180339887498949) % 1;
  let acc = 0;
  for (const k of KINDS) {
    acc += k.share;
    if (u < acc) return k;
  }
  return KINDS[0];
}

const GOALS = {
  defaultMonthAt1M: 6,
  defaultVariableAt100M: 1.8,
  cheapestVariableAt100M: 0.8,
  stateTableAboveDefault: 1.0,
  objectsPerMillion: 2000,
};

interface Shape {
  template: TemplateJson;
  httpApi: boolean;
  accessLogFormat?: string;
  verifyMemoryMb: number;
  verifyQuietPlatform: boolean;
  tokenTtlSeconds: number;
  ingestMemoryMb: number;
  ingestQuietPlatform: boolean;
  stateMemoryMb: number;
  batchSize: number;
  windowSeconds: number;
  dedupe: boolean;
  events: boolean;
  state: boolean;
  compactionEverySeconds?: number;
  logRetentionDays: number;
  /** The Firehose buffer's hints, when the template has the stream (the default); undefined: the queue buffer. */
  firehose?: { intervalSeconds: number; sizeMiB: number };
}

async function shapeOf(config: Config): Promise<Shape> {
  const { SmartcarWebhooks } = await import('../lib/smartcar-webhooks');
  const stack = new Stack(new App(), 'CostStack');
  new SmartcarWebhooks(stack, 'W', config.props as never);
  const t = Template.fromStack(stack);
  const fns = Object.values(t.findResources('AWS::Lambda::Function')).map((f) => f.Properties);
  const verify = fns.find((f) => String(f.Description).startsWith('Answers Smartcar VERIFY'));
  const ingest = fns.find((f) => String(f.Description).startsWith('Writes queued Smartcar webhook deliveries'));
  const stateFn = fns.find((f) => String(f.Description).startsWith('Applies each lake object to the vehicle state'));
  const esm = Object.values(t.findResources('AWS::Lambda::EventSourceMapping'))
    .map((e) => e.Properties)
    .find((p) => JSON.stringify(p.EventSourceArn).includes('DeliveryQueue'));
  const stage = Object.values(t.findResources('AWS::ApiGatewayV2::Stage'))[0]?.Properties;
  const schedule = Object.values(t.findResources('AWS::Scheduler::Schedule'))
    .map((s) => s.Properties)
    .find((p) => p.Description?.startsWith('Compacts closed hours'));
  const every = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule?.ScheduleExpression ?? '');
  const unit = { minute: 60, hour: 3600, day: 86400 } as Record<string, number>;
  const env = (fn: Record<string, never> | undefined) =>
    (fn as { Environment?: { Variables?: Record<string, unknown> } })?.Environment?.Variables ?? {};
  const stream = Object.values(t.findResources('AWS::KinesisFirehose::DeliveryStream'))[0]?.Properties;
  const hints = stream?.ExtendedS3DestinationConfiguration?.BufferingHints;
  const retention = Object.values(t.findResources('AWS::Logs::LogGroup'))
    .map((g) => Number(g.Properties?.RetentionInDays))
    .filter((d) => d > 0);
  return {
    template: t.toJSON() as TemplateJson,
    httpApi: Object.keys(t.findResources('AWS::ApiGatewayV2::Api')).length > 0,
    accessLogFormat: stage?.AccessLogSettings?.Format,
    verifyMemoryMb: verify?.MemorySize,
    verifyQuietPlatform: verify?.LoggingConfig?.SystemLogLevel === 'WARN',
    tokenTtlSeconds: Number(env(verify).SMARTCAR_TOKEN_CACHE_TTL_SECONDS ?? 300),
    ingestMemoryMb: ingest?.MemorySize,
    ingestQuietPlatform: ingest?.LoggingConfig?.SystemLogLevel === 'WARN',
    batchSize: esm.BatchSize,
    windowSeconds: esm.MaximumBatchingWindowInSeconds ?? 0,
    dedupe: env(ingest).DEDUP_TABLE_NAME !== undefined,
    events: env(ingest).EVENT_BUS_NAME !== undefined,
    state: env(ingest).STATE_QUEUE_URL !== undefined,
    stateMemoryMb: stateFn?.MemorySize ?? 0,
    compactionEverySeconds: schedule?.State === 'ENABLED' && every ? Number(every[1]) * unit[every[2]] : undefined,
    logRetentionDays: retention.length ? Math.max(...retention) : 30,
    // The buffer in use: the verification function puts to the stream (with the queue buffer it stands idle).
    firehose:
      stream && env(verify).DELIVERY_STREAM_NAME !== undefined
        ? { intervalSeconds: Number(hints?.IntervalInSeconds ?? 300), sizeMiB: Number(hints?.SizeInMBs ?? 5) }
        : undefined,
  };
}

const ingestKey = (s: Shape) =>
  `${s.batchSize}|${s.windowSeconds}|${s.dedupe}|${s.events}|${s.state}|${s.firehose?.intervalSeconds}|${s.firehose?.sizeMiB}`;

/**
 * The verification function's extra time for a delivery the stream refuses: the SDK's one retry after its
 * back-off (the standard strategy's first delay is up to 100 ms for throttling: 50 on average) and the
 * queue's SendMessage, each an AWS call. Modelled, not measured.
 */
const FALLBACK_BACKOFF_MS = 50;
/**
 * S3 requests Firehose makes to write one landing object: one PUT (a multipart upload would be several, but
 * AWS does not document when Firehose uses one; at 16 MiB and below we count one).
 */
const S3_PUTS_PER_LANDING_OBJECT = 1;
/** How long a landing object lives: the ingest batching window after S3's notification, plus a minute. */
const landingLifetimeSeconds = (s: Shape) => s.windowSeconds + 60;

/** S3's event notification of one landing object, as it puts it on the queue (its real shape and size). */
function s3Notification(key: string, size: number, at: number): string {
  return JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date(at).toISOString(),
        eventName: 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:AROAEXAMPLEROLEID:AWSFirehoseToS3' },
        requestParameters: { sourceIPAddress: '10.0.0.1' },
        responseElements: {
          'x-amz-request-id': 'C3D13FE58DE4C810',
          'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD',
        },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'NjA5ZjFhZmEtZDk2Yy00ZTI3LWE0ZDktZmQyZDk2NjVkYjQ3',
          bucket: {
            // The lake bucket the ingest function is configured with (it refuses other buckets' notifications).
            name: 'lake',
            ownerIdentity: { principalId: 'A3NL1KOZZKExample' },
            arn: 'arn:aws:s3:::lake',
          },
          object: {
            key,
            size,
            eTag: 'd41d8cd98f00b204e9800998ecf8427e',
            versionId: 'Wk3iZ0xvW7Ik3mUEXAMPLE',
            sequencer: '0055AED6DCD90281E5',
          },
        },
      },
    ],
  });
}

/** A landing object's key as Firehose names it: landing/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>. */
function landingKey(at: number): string {
  const iso = new Date(at).toISOString();
  const [d, t] = [iso.slice(0, 10), iso.slice(11, 19)];
  return `landing/${d.replaceAll('-', '/')}/${t.slice(0, 2)}/CostStack-Stream-1-${d}-${t.replaceAll(':', '-')}-${randomUUID()}`;
}

// ---------------------------------------------------------------------------------------------------
// Deliveries and their arrival.

/**
 * A delivery of its kind: a VEHICLE_STATE of about `bytes` bytes (a handful of signals, padded with more
 * of the same shape, as a real one carries all its subscribed signals), or a small VEHICLE_ERROR.
 */
function deliveryBody(eventId: string, vehicle: string, at: number, bytes: number, kind: Kind = KINDS[0]): string {
  // The envelope both kinds share (Smartcar's current payload shape).
  const envelope = (data: Record<string, unknown>, meta: Record<string, unknown> = {}) => ({
    eventId,
    eventType: kind.eventType,
    vehicleId: vehicle,
    data: {
      user: { id: '93b3ea96-ca37-43a9-9073-f4334719aaaa' },
      vehicle: { id: vehicle, make: 'TESLA', model: 'Model 3', year: 2020 },
      ...data,
    },
    meta: {
      version: '4.0',
      deliveryId: randomUUID(),
      deliveredAt: at,
      webhookId: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
      ...meta,
      mode: kind.mode,
    },
  });
  if (kind.eventType === 'VEHICLE_ERROR')
    return JSON.stringify(
      envelope({
        errors: [{ type: 'VEHICLE_STATE', code: 'ASLEEP', state: 'ERROR', description: 'The vehicle is asleep.' }],
      }),
    );
  const signal = (code: string, name: string, group: string, body: Record<string, unknown>) => ({
    code,
    name,
    group,
    body,
    meta: { oemUpdatedAt: at - 2000, fetchedAt: at - 500 },
  });
  const signals = [
    signal('tractionbattery-stateofcharge', 'StateOfCharge', 'TractionBattery', {
      unit: 'percent',
      value: (at / 1000) % 100,
    }),
    signal('odometer-traveleddistance', 'TraveledDistance', 'Odometer', { unit: 'km', value: Math.floor(at / 7e6) }),
    signal('location-preciselocation', 'PreciseLocation', 'Location', {
      latitude: 37.4292,
      longitude: -122.1381,
      heading: 90,
    }),
    signal('charge-ischarging', 'IsCharging', 'Charge', { value: false }),
  ];
  const doc = envelope(
    {
      triggers: [{ code: 'tractionbattery-stateofcharge', name: 'StateOfCharge', group: 'TractionBattery' }],
      signals,
    },
    { webhookName: 'Fleet telemetry', signalCount: signals.length },
  );
  let text = JSON.stringify(doc);
  // Pad with more signals of the same shape until the body is about the size asked for.
  for (let i = 0; text.length < bytes; i++) {
    signals.push(signal(`custom-signal${i}`, `Signal${i}`, 'Custom', { value: (at + i) % 997, unit: 'unit' }));
    (doc.meta as Record<string, unknown>).signalCount = signals.length;
    text = JSON.stringify(doc);
  }
  return text;
}

/** Arrival times (ms), in order: steady at `rate`/s, bursty (each hour's share in its first minute), or a daily curve. */
function arrivals(n: number, pattern: string, rate: number, start: number): number[] {
  const out: number[] = [];
  if (pattern === 'steady') for (let i = 0; i < n; i++) out.push(start + (i * 1000) / rate);
  else if (pattern === 'bursty') {
    const perHour = rate * 3600;
    for (let i = 0; i < n; i++) {
      const hour = Math.floor(i / perHour);
      out.push(start + hour * 3_600_000 + ((i % perHour) / perHour) * 60_000);
    }
  } else if (pattern === 'daily') {
    // Rate follows 1 + 0.8·sin over the day (peak 1.8×, trough 0.2× the average).
    let t = 0;
    for (let i = 0; i < n; i++) {
      out.push(start + t);
      const r = rate * (1 + 0.8 * Math.sin((2 * Math.PI * t) / 86_400_000));
      t += 1000 / r;
    }
  } else throw new Error(`--pattern must be steady, bursty or daily, not ${pattern}`);
  return out;
}

// Measuring what handlers print: the bytes (CloudWatch Logs ingests them), and the custom metrics in it.

let captured = 0;
let capturedText = '';
let capturing = false;
const realStdout = process.stdout.write.bind(process.stdout);
function startCapture() {
  captured = 0;
  capturedText = '';
  capturing = true;
}
/** Stops capturing; adds the embedded-metric-format metrics printed to `metrics`; returns the bytes. */
function stopCapture(metrics?: Set<string>): number {
  capturing = false;
  if (metrics) emfMetrics(capturedText, metrics);
  return captured;
}
const hook = (chunk: unknown) => {
  if (!capturing) return false;
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
  captured += Buffer.byteLength(text);
  if (capturedText.length < 4_000_000) capturedText += text;
  return true;
};
process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
  hook(chunk) ? true : (realStdout as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
const realStderr = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
  hook(chunk) ? true : (realStderr as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stderr.write;

/** Lambda's per-invocation records in JSON log format (START and REPORT), as documented; their size. */
const PLATFORM_RECORD_BYTES = Buffer.byteLength(
  JSON.stringify({
    time: '2026-11-27T07:00:00.000Z',
    type: 'platform.start',
    record: { requestId: randomUUID(), version: '$LATEST' },
  }) +
    JSON.stringify({
      time: '2026-11-27T07:00:00.012Z',
      type: 'platform.report',
      record: {
        requestId: randomUUID(),
        metrics: { durationMs: 12.34, billedDurationMs: 13, memorySizeMB: 256, maxMemoryUsedMB: 92 },
        status: 'success',
      },
    }),
);

// ---------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------

interface Queued {
  body: string;
  at: number;
}

interface Scenario {
  volume: number;
  pattern: (typeof PATTERNS)[number];
  rate: number;
}

interface Priced {
  /** $ per million deliveries, by item. */
  items: Record<string, number>;
  variable: number;
  rawObjectsPerMillion: number;
  /** Objects Firehose wrote to the landing zone (each ingested and deleted), per million deliveries. */
  landingObjectsPerMillion: number;
  /** Share of requests the stream refused (throttled), sent to the delivery queue instead. */
  fallbackShare: number;
  rawBytesPerDelivery: number;
  logBytesPerDelivery: number;
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      sample: { type: 'string', default: '4000' },
      'body-bytes': { type: 'string', default: '2048' },
      'aws-call-ms': { type: 'string', default: '8' },
      retried: { type: 'string', default: '0.01' },
      'write-readme': { type: 'boolean', default: false },
    },
  });
  const sampleFloor = Number(values.sample);
  const bodyBytes = Number(values['body-bytes']);
  const callMs = Number(values['aws-call-ms']);
  const retried = Number(values.retried);
  if (![sampleFloor, bodyBytes, callMs].every((x) => Number.isFinite(x) && x > 0) || !(retried >= 0 && retried < 1))
    throw new Error('--sample, --body-bytes and --aws-call-ms take positive numbers, --retried a share below 1');
  const out: string[] = [];
  const say = (line = '') => {
    out.push(line);
    realStdout(`${line}\n`);
  };
  say(
    `bench:cost: a month at 1, 10 and 100 million deliveries (${bodyBytes} B VEHICLE_STATE, 3 raw partitions: ` +
      `${KINDS.map((k) => `${k.eventType} ${k.mode.toLowerCase()} ${Math.round(k.share * 100)}%`).join(', ')}), ` +
      `${(retried * 100).toFixed(0)}% retried by Smartcar; a sample of at least ${sampleFloor} deliveries per scenario (three batching windows' worth); ` +
      `${availableParallelism()} cores, node ${process.version}; prices ${PRICES.region} as of ${PRICES.asOf} (scripts/cost/prices.ts)`,
  );

  buildHandlers();
  const shapes = new Map<string, Shape>();
  for (const c of CONFIGS) shapes.set(c.name, await shapeOf(c));
  const def = shapes.get('default') as Shape;

  // --- the verification handler: real SDK, a 256 MB function's CPU share, a stand-in for SQS
  const timingBodies = Array.from({ length: 201 }, (_, i) =>
    deliveryBody(randomUUID(), `veh-${i}`, Date.parse('2026-11-02T00:00:00Z') + i * 1000, bodyBytes),
  );
  const queueShape = shapes.get('queue') as Shape;
  const timings = {
    firehose: await timeVerify(timingBodies, def.verifyMemoryMb, { deliveryStream: true }),
    queue: await timeVerify(timingBodies, queueShape.verifyMemoryMb, { deliveryStream: false }),
  };
  for (const [buffer, t] of Object.entries(timings)) {
    const calls = buffer === 'firehose' ? t.calls.putRecord : t.calls.sendMessage;
    if (calls !== timingBodies.length || (buffer === 'firehose' && t.calls.sendMessage !== 0))
      throw new Error(
        `the ${buffer} timing made ${t.calls.putRecord} PutRecords and ${t.calls.sendMessage} SendMessages for ${timingBodies.length} deliveries`,
      );
    say(
      `  verification handler, ${buffer === 'firehose' ? 'Firehose buffer (DELIVERY_STREAM_NAME set): one PutRecord' : 'queue buffer: one SendMessage'} a delivery, ` +
        `real AWS SDK to a local stand-in, ${t.cpu}: cold ${t.coldMs.toFixed(0)} ms ` +
        `(INIT ${t.initMs.toFixed(0)} ms), warm median ${t.warmMedianMs.toFixed(1)} ms, p90 ${t.warmP90Ms.toFixed(1)} ms, ` +
        `${t.logBytesPerRequest.toFixed(0)} log bytes a request; + ${callMs} ms of AWS latency a call (modelled)`,
    );
  }
  const verifyOf = (s: Shape) => (s.firehose ? timings.firehose : timings.queue);

  // --- scenarios, and the objects goal's two rates
  const scenarios: Scenario[] = [];
  for (const volume of VOLUMES)
    for (const pattern of PATTERNS) scenarios.push({ volume, pattern, rate: volume / SECONDS_PER_MONTH });
  const objectsAt10 = { volume: 10 * SECONDS_PER_MONTH, pattern: 'steady' as const, rate: 10 };

  const published = new Set<string>();
  let curatedPerRaw = 0;
  const results = new Map<string, Priced>(); // `${config}|${volume}|${pattern}|${case}`
  for (const sc of [...scenarios, objectsAt10]) {
    const start = Date.parse('2026-11-02T00:00:00.000Z');
    // At least three batching windows of arrivals, so batches close on the window as they would, not on
    // the end of the sample (a bursty sample is its first minute's burst, where batches fill up).
    // (With the Firehose buffer, three of its intervals: the objects close on the interval.)
    const span = Math.max(
      ...[...shapes.values()].map((s) => Math.max(s.windowSeconds, s.firehose?.intervalSeconds ?? 0)),
    );
    const n = Math.max(sampleFloor, Math.ceil(sc.rate * span * 3));
    const times = arrivals(n, sc.pattern, sc.rate, start);
    const vehicles = Math.max(1, Math.round(sc.rate * 3600)); // hourly deliveries from a fleet of this size
    const deliveries: Queued[] = times.map((at, i) => ({
      at,
      body: deliveryBody(randomUUID(), `veh-${i % vehicles}`, at, bodyBytes, kindOf(i)),
    }));
    // Smartcar retries a share of them (timeouts on its side): the same body again, seconds later.
    // Retried are deliveries whose retry still falls inside the sample (a retry after its end would add a
    // buffer, a batch and objects that a month, where arrivals go on, spreads over many): when there are any.
    const retries = Math.round(n * retried);
    const last = times[times.length - 1];
    const inside = deliveries.filter((d) => d.at + 20_000 <= last);
    const retriable = inside.length > 0 ? inside : [...deliveries];
    for (let i = 0; i < retries; i++) {
      const d = retriable[Math.floor((i * retriable.length) / Math.max(1, retries))];
      deliveries.push({ ...d, at: d.at + 20_000 });
    }
    deliveries.sort((a, b) => a.at - b.at);
    const queued: Queued[] = deliveries.map((d, i) => ({
      at: d.at,
      body: JSON.stringify(deliveryMessage(d.body, new Date(d.at).toISOString(), `req-${i}`)),
    }));
    // The Firehose buffer: each request one PutRecord of its landing line; what the quota refuses falls back.
    const lines = queued.map((q) => {
      const line = landingLine(JSON.parse(q.body));
      return { at: q.at, line, bytes: Buffer.byteLength(line) };
    });
    const refusedFlags = fallbacks(lines).fellBack;
    const accepted = lines.filter((_, i) => !refusedFlags[i]);
    const refused = queued.filter((_, i) => refusedFlags[i]);
    const firehoseIn = {
      records: accepted.map((l) => l.bytes),
      fallbacks: refused.length,
    };
    const instancesOf = new Map<string, ReturnType<typeof simulateInstances>>();
    for (const [buffer, t] of Object.entries(timings))
      instancesOf.set(
        buffer,
        simulateInstances(
          deliveries.map((d) => ({ at: d.at, ms: t.warmMedianMs + callMs })),
          10 * 60_000,
        ),
      );
    for (const pc of POLLING_CASES) {
      if (sc === objectsAt10 && pc.name === 'best') continue;
      const runs = new Map<string, IngestRun>();
      for (const c of CONFIGS) {
        const shape = shapes.get(c.name) as Shape;
        const key = ingestKey(shape);
        if (!runs.has(key)) {
          let toQueue: Queued[] = queued;
          let queueRate = sc.rate;
          const landing = new Map<string, Buffer>();
          if (shape.firehose) {
            // Best case: the hints obeyed; worst: HINT_OVERRUN times the objects.
            const groups = landingGroups(accepted, shape.firehose, pc.name === 'worst' ? HINT_OVERRUN : 1);
            const notices = groups.map((g) => {
              const k = landingKey(g.writtenAt);
              const body = Buffer.from(g.items.map((l) => l.line).join(''));
              landing.set(k, body);
              // S3 notifies within a second or so of the object's write.
              return { at: g.writtenAt + 1000, body: s3Notification(k, body.length, g.writtenAt) };
            });
            toQueue = [...notices, ...refused].sort((a, b) => a.at - b.at);
            queueRate = (sc.rate * toQueue.length) / Math.max(1, queued.length);
          }
          const polled = poll(toQueue, pc, shape.batchSize, shape.windowSeconds, queueRate);
          const r = await runIngest(shape, polled, { sqs, s3, ddb, eb }, callMs, published, landing);
          if (r.landing.deletes !== landing.size)
            throw new Error(`ingest deleted ${r.landing.deletes} of ${landing.size} landing objects in the bench`);
          runs.set(key, r);
        }
        const run = runs.get(key) as IngestRun;
        if (!curatedPerRaw && c.name === 'default' && sc.volume === 1e7 && sc.pattern === 'steady')
          curatedPerRaw = await curatedRatio(run, times[times.length - 1]);
        results.set(
          `${c.name}|${sc.volume}|${sc.pattern}|${pc.name}`,
          price(shape, run, {
            n,
            requests: deliveries.length,
            instances: instancesOf.get(shape.firehose ? 'firehose' : 'queue') as ReturnType<typeof simulateInstances>,
            verify: verifyOf(shape),
            firehose: shape.firehose ? firehoseIn : undefined,
            callMs,
            rate: sc.rate,
            curatedPerRaw,
          }),
        );
      }
    }
  }

  // --- fixed and storage, per configuration
  const fixed = new Map(CONFIGS.map((c) => [c.name, fixedMonthly((shapes.get(c.name) as Shape).template, published)]));
  const storage = (c: Config, volume: number) => {
    const shape = shapes.get(c.name) as Shape;
    const r = results.get(`${c.name}|${volume}|steady|worst`) as Priced;
    const raw = storedOverAYear(r.rawBytesPerDelivery * volume, expiryDays(shape.template, 'raw/'));
    const curated = storedOverAYear(
      r.rawBytesPerDelivery * curatedPerRaw * volume,
      expiryDays(shape.template, 'curated/'),
    );
    // Logs: each group keeps its retention's worth (30 days by default) of what is ingested.
    const logGb = ((r.logBytesPerDelivery * volume) / 1e9) * Math.min(12, shape.logRetentionDays / 30.4375);
    return {
      gb: raw.gbMonth12 + curated.gbMonth12,
      dollars: raw.dollarsMonth12 + curated.dollarsMonth12 + logGb * PRICES.cloudWatchLogs.storedGbMonth,
    };
  };

  // --- print
  say('');
  say('  fixed, per month (counted from each synthesized template; custom metrics from what the functions printed):');
  for (const c of CONFIGS) {
    const items = fixed.get(c.name) ?? [];
    say(
      `    ${c.name.padEnd(13)} $${fixedTotal(items).toFixed(2).padStart(5)}  ${items
        .filter((i) => i.count > 0)
        .map((i) => `${i.item} ${i.count.toLocaleString('en-US')} ($${i.dollars.toFixed(2)})`)
        .join(' · ')}`,
    );
  }
  say(`    custom metrics published: ${[...published].sort().join(', ') || 'none'}`);

  // --- the Firehose buffer, in formulas (the month table below applies them to the measured runs)
  const hints = def.firehose;
  if (hints) {
    const record = Buffer.byteLength(
      landingLine(
        deliveryMessage(timingBodies[0], new Date(Date.parse('2026-11-02T00:00:00Z')).toISOString(), 'req-0'),
      ),
    );
    const billed = firehoseBilledBytes(record);
    const p = PRICES;
    const usd = (x: number, d = 3) => `$${x.toFixed(d)}`;
    const perObject =
      (S3_PUTS_PER_LANDING_OBJECT * p.s3.putPerThousand) / 1000 +
      p.sqs.requestsPerMillion / 1e6 + // S3's notification, billed to the queue owner
      (2 * p.sqs.requestsPerMillion) / 1e6 + // at worst a receive and a delete of its own
      p.lambda.requestsPerMillion / 1e6 +
      p.s3.getPerThousand / 1000 +
      (KINDS.length * p.s3.putPerThousand) / 1000;
    say('');
    say(`  the Firehose buffer (default), ${p.region} list prices:`);
    say(
      `    ingestion: a record is the DeliveryMessage JSON (the ${bodyBytes} B body in base64) + "\\n" = ${record.toLocaleString('en-US')} B, ` +
        `billed in ${FIREHOSE_BILLING_INCREMENT_BYTES.toLocaleString('en-US')} B steps: ceil(${record} / ${FIREHOSE_BILLING_INCREMENT_BYTES}) × ${FIREHOSE_BILLING_INCREMENT_BYTES} = ${billed.toLocaleString('en-US')} B; ` +
        `× $${p.firehose.directPutPerGb} per GB (10^9 B) = ${usd((billed / 1e9) * p.firehose.directPutPerGb * 1e6)} per million (SQS: $${p.sqs.requestsPerMillion.toFixed(2)})`,
    );
    say(
      `    landing objects a month = ${SECONDS_PER_MONTH.toLocaleString('en-US')} s ÷ min(${hints.intervalSeconds} s, ${hints.sizeMiB} MiB ÷ (rate × ${record.toLocaleString('en-US')} B)), ` +
        `up to ${HINT_OVERRUN}× that in the worst case (Firehose "might choose to use different values" than its buffering hints and documents no bound: an assumption): ` +
        [0.38, 3.8, 10, 38]
          .map((rate) => {
            const [best, worst] = [1, HINT_OVERRUN].map((o) =>
              landingObjectsPerMonth(rate, record, hints, SECONDS_PER_MONTH, o),
            );
            const perMillion = (x: number) =>
              Math.round((x / (rate * SECONDS_PER_MONTH)) * 1e6).toLocaleString('en-US');
            return `${rate}/s ${Math.round(best).toLocaleString('en-US')}–${Math.round(worst).toLocaleString('en-US')} a month (${perMillion(best)}–${perMillion(worst)} per million)`;
          })
          .join(', '),
    );
    say(
      `    per landing object: Firehose's S3 PUT (${S3_PUTS_PER_LANDING_OBJECT} × $${p.s3.putPerThousand}/1,000) + S3's notification SendMessage ($${p.sqs.requestsPerMillion}/M, billed to the queue owner) ` +
        `+ its receive and delete (at worst one each) + one ingest invocation ($${p.lambda.requestsPerMillion}/M + its measured GB-s) + one GET ($${p.s3.getPerThousand}/1,000) ` +
        `+ one raw PUT per partition in it (${KINDS.length} here) + DELETE (free) + storage for about ${landingLifetimeSeconds(def) / 60} minutes (bytes × $${p.s3.storageGbMonth}/GB-month × minutes ÷ a month's) ` +
        `= ${usd(perObject * 1e6, 2)} per million objects before the ingest's duration and storage`,
    );
    say(
      `    fallback: a stream takes ${FIREHOSE_QUOTA.requestsPerSecond.toLocaleString('en-US')} PutRecords/s and ${FIREHOSE_QUOTA.bytesPerSecond / 2 ** 20} MiB/s in ${p.region} ` +
        `(${Math.min(FIREHOSE_QUOTA.requestsPerSecond, Math.floor(FIREHOSE_QUOTA.bytesPerSecond / record)).toLocaleString('en-US')} records/s of this size); the excess of each second goes to the delivery queue, priced as the queue path ` +
        `(SendMessage, polling, raw objects), + 2 × ${callMs} ms + ${FALLBACK_BACKOFF_MS} ms of verification time (the SDK's retry; modelled); a month with any adds the DeliveryStreamFallbacks metric ($${p.monthly.customMetric.toFixed(2)})`,
    );
    say(
      `    share of requests to the queue (default, worst case): ${scenarios
        .map(
          (sc) =>
            `${sc.volume / 1e6} M ${sc.pattern} ${((results.get(`default|${sc.volume}|${sc.pattern}|worst`) as Priced).fallbackShare * 100).toFixed(1)}%`,
        )
        .join(', ')}`,
    );
  }
  say('');
  say(
    '  the month, $ = fixed + variable + storage (month 12 of a year at this volume; lifecycle as configured; + $0.30 for the DeliveryStreamFallbacks metric in a month the stream refuses some); ' +
      'variable is best–worst of the polling range (and, with Firehose, of its buffering hints); "to queue": the share of requests the stream refused, worst case',
  );
  say(
    `    ${'configuration'.padEnd(13)} ${'deliveries'.padStart(10)} ${'pattern'.padEnd(7)} ${'variable $/M'.padStart(13)}  ${'fixed'.padStart(6)} ${'storage'.padStart(8)}  ${'the month'.padStart(17)}  ${'raw objects/M'.padEnd(15)} ${'landing/M'.padEnd(13)} to queue`,
  );
  const month = (c: Config, sc: Scenario, pc: 'best' | 'worst') => {
    const r = results.get(`${c.name}|${sc.volume}|${sc.pattern}|${pc}`) as Priced;
    // A month in which the stream refuses deliveries publishes DeliveryStreamFallbacks: one more custom metric.
    const fallbackMetric = r.fallbackShare > 0 ? PRICES.monthly.customMetric : 0;
    return (
      fixedTotal(fixed.get(c.name) ?? []) +
      (r.variable * sc.volume) / 1e6 +
      storage(c, sc.volume).dollars +
      fallbackMetric
    );
  };
  for (const c of CONFIGS) {
    for (const sc of scenarios) {
      const best = results.get(`${c.name}|${sc.volume}|${sc.pattern}|best`) as Priced;
      const worst = results.get(`${c.name}|${sc.volume}|${sc.pattern}|worst`) as Priced;
      say(
        `    ${c.name.padEnd(13)} ${`${sc.volume / 1e6} M`.padStart(10)} ${sc.pattern.padEnd(7)} ${`${best.variable.toFixed(2)}–${worst.variable.toFixed(2)}`.padStart(13)}  ` +
          `${fixedTotal(fixed.get(c.name) ?? [])
            .toFixed(2)
            .padStart(6)} ${storage(c, sc.volume).dollars.toFixed(2).padStart(8)}  ` +
          `${`$${month(c, sc, 'best').toFixed(2)}–${month(c, sc, 'worst').toFixed(2)}`.padStart(17)}  ` +
          `${`${Math.round(best.rawObjectsPerMillion).toLocaleString('en-US')}–${Math.round(worst.rawObjectsPerMillion).toLocaleString('en-US')}`.padEnd(15)} ` +
          `${(shapes.get(c.name)?.firehose ? `${Math.round(best.landingObjectsPerMillion).toLocaleString('en-US')}–${Math.round(worst.landingObjectsPerMillion).toLocaleString('en-US')}` : '-').padEnd(13)} ` +
          `${shapes.get(c.name)?.firehose ? `${(worst.fallbackShare * 100).toFixed(1)}%` : 'all'}`,
      );
    }
  }
  const worstAt100 = (name: string) =>
    Math.max(...PATTERNS.map((p) => (results.get(`${name}|${1e8}|${p}|worst`) as Priced).variable));
  say('');
  for (const [name, volume] of [
    ['default', 1e6],
    ['default', 1e8],
    ['function-url', 1e8],
    ['queue', 1e8],
  ] as const) {
    const r = results.get(`${name}|${volume}|steady|worst`) as Priced;
    say(`  breakdown of ${name} at ${volume / 1e6} million, steady, worst case, $ per million:`);
    say(
      `    ${Object.entries(r.items)
        .filter(([, v]) => v >= 0.0005)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(' · ')}`,
    );
  }
  const defaultAt1M = Math.max(...scenarios.filter((s) => s.volume === 1e6).map((s) => month(CONFIGS[0], s, 'worst')));
  const stateAbove = Math.max(
    ...scenarios.map(
      (s) =>
        (results.get(`state-table|${s.volume}|${s.pattern}|worst`) as Priced).variable -
        (results.get(`default|${s.volume}|${s.pattern}|worst`) as Priced).variable,
    ),
  );
  const objectsOf = (name: string, volume: number) => {
    const r = results.get(`${name}|${volume}|steady|worst`) as Priced;
    return { raw: r.rawObjectsPerMillion, landing: r.landingObjectsPerMillion };
  };
  const objects10 = objectsOf('default', objectsAt10.volume).raw;
  say('');
  say(
    '  objects per million deliveries, steady, worst case (five pollers, three partitions; landing objects are deleted once ingested):',
  );
  for (const name of ['default', 'queue']) {
    const cell = (o: { raw: number; landing: number }) =>
      `raw ${Math.round(o.raw).toLocaleString('en-US')} + landing ${Math.round(o.landing).toLocaleString('en-US')} = ${Math.round(o.raw + o.landing).toLocaleString('en-US')}`;
    say(
      `    ${name.padEnd(13)} at 10/s: ${cell(objectsOf(name, objectsAt10.volume)).padEnd(40)} at 0.4/s: ${cell(objectsOf(name, 1e6))}`,
    );
  }
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  say('');
  say('  goals (worst case of the modelled range):');
  say(
    `    default at 1 million a month, all-in: $${defaultAt1M.toFixed(2)} (≤ $${GOALS.defaultMonthAt1M}: ${met(defaultAt1M <= GOALS.defaultMonthAt1M)})`,
  );
  say(
    `    default at 100 million, variable: $${worstAt100('default').toFixed(2)} per million (≤ $${GOALS.defaultVariableAt100M}: ${met(worstAt100('default') <= GOALS.defaultVariableAt100M)})`,
  );
  say(
    `    function-url at 100 million, variable: $${worstAt100('function-url').toFixed(2)} per million (≤ $${GOALS.cheapestVariableAt100M}: ${met(worstAt100('function-url') <= GOALS.cheapestVariableAt100M)})`,
  );
  say(
    `    state table above the default: $${stateAbove.toFixed(2)} per million (≤ $${GOALS.stateTableAboveDefault.toFixed(2)}: ${met(stateAbove <= GOALS.stateTableAboveDefault)})`,
  );
  say(
    `    raw objects per million at 10/s, five pollers, three partitions: ${Math.round(objects10).toLocaleString('en-US')} (≤ ${GOALS.objectsPerMillion.toLocaleString('en-US')}: ${met(objects10 <= GOALS.objectsPerMillion)}); ` +
      `at 0.4/s: ${Math.round(objectsOf('default', 1e6).raw).toLocaleString('en-US')}; ` +
      `landing objects beside them ${Math.round(objectsOf('default', objectsAt10.volume).landing).toLocaleString('en-US')} and ${Math.round(objectsOf('default', 1e6).landing).toLocaleString('en-US')}; ` +
      `queue buffer ${Math.round(objectsOf('queue', objectsAt10.volume).raw).toLocaleString('en-US')} and ${Math.round(objectsOf('queue', 1e6).raw).toLocaleString('en-US')}`,
  );

  if (values['write-readme']) writeReadme(out.join('\n'), { n: sampleFloor, bodyBytes, callMs });
}

// The SDK modules whose clients the ingest handler uses, replaced by counting fakes while it runs.
let sqs: typeof import('@aws-sdk/client-sqs');
let s3: typeof import('@aws-sdk/client-s3');
let ddb: typeof import('@aws-sdk/client-dynamodb');
let eb: typeof import('@aws-sdk/client-eventbridge');

/** Curated bytes per raw byte: `npm run compact` on the objects a run wrote. */
async function curatedRatio(run: IngestRun, last: number): Promise<number> {
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'bench-cost-'));
  try {
    for (const [key, body] of run.objects) await putLakeObject(lakeDir, key, body);
    await compactLocalLake(lakeDir, { now: new Date(last + 86_400_000 * 3) });
    const keys = (await listLakeKeys(lakeDir, 'curated')).filter((k) => k.endsWith('.parquet'));
    const bytes = keys.reduce((sum, k) => sum + statSync(path.join(lakeDir, ...k.split('/'))).size, 0);
    return bytes / Math.max(1, run.rawBytes);
  } finally {
    rmSync(lakeDir, { recursive: true, force: true });
  }
}

/** One configuration's variable cost per million deliveries, from an ingest run over one polling case. */
function price(
  shape: Shape,
  run: IngestRun,
  ctx: {
    n: number;
    requests: number;
    instances: { coldStarts: number; instanceSeconds: number };
    verify: Awaited<ReturnType<typeof timeVerify>>;
    /** The Firehose buffer: the bytes of each record the stream took, and how many it refused. */
    firehose?: { records: readonly number[]; fallbacks: number };
    callMs: number;
    rate: number;
    curatedPerRaw: number;
  },
): Priced {
  const { n, requests, instances, verify, callMs } = ctx;
  const perMillion = 1e6 / n; // deliveries Smartcar meant to send; retries are extra requests
  const refused = ctx.firehose?.fallbacks ?? 0;
  // A refused record costs the SDK's retry after its back-off, and the SendMessage to the queue.
  const verifyGbs =
    ((requests * Math.ceil(verify.warmMedianMs + callMs) +
      refused * (2 * callMs + FALLBACK_BACKOFF_MS) +
      instances.coldStarts * verify.initMs) /
      1000) *
    (shape.verifyMemoryMb / 1024);
  // Landing objects: Firehose's PUT each, the ingest's GET (counted by the fake), storage for their minutes.
  const landingPuts = run.landing.objects * S3_PUTS_PER_LANDING_OBJECT;
  const landingStorage =
    (run.landing.bytes / 1e9) * PRICES.s3.storageGbMonth * (landingLifetimeSeconds(shape) / SECONDS_PER_MONTH);
  const secretsCalls = instances.coldStarts + Math.floor(instances.instanceSeconds / shape.tokenTtlSeconds);
  const model = compactionModel(
    shape,
    {
      rawBytes: run.rawBytes / n,
      curatedBytes: (run.rawBytes * ctx.curatedPerRaw) / n,
      rawObjects: run.objects.size / n,
      curatedFiles: 0,
    },
    ctx.rate * 86400,
    KINDS.length,
  );
  const scale = model.runsPerDelivery * n;
  // The Athena minimum of each run is in the fixed cost; what scales with volume is the rest.
  const athenaBytes = Math.max(0, model.bytes - 4 * PRICES.athena.minimumBytesPerQuery) * scale;
  const logBytes =
    requests * verify.logBytesPerRequest +
    (shape.verifyQuietPlatform ? 0 : requests * PLATFORM_RECORD_BYTES) +
    run.logBytes +
    run.state.logBytes +
    (shape.ingestQuietPlatform ? 0 : (run.invocations + run.state.invocations) * PLATFORM_RECORD_BYTES) +
    (shape.httpApi ? requests * accessLogLineBytes(shape.accessLogFormat) : 0);
  const p = PRICES;
  const items: Record<string, number> = {
    'API Gateway': shape.httpApi ? (requests / 1e6) * p.apiGateway.httpApiPerMillion : 0,
    'Lambda requests': ((requests + run.invocations + run.state.invocations) / 1e6) * p.lambda.requestsPerMillion,
    'Lambda GB-s':
      (verifyGbs +
        (run.billedMs / 1000) * (shape.ingestMemoryMb / 1024) +
        (run.state.billedMs / 1000) * (shape.stateMemoryMb / 1024)) *
      p.lambda.gbSecondArm,
    SQS: ((run.sqsSends + run.sqsReceives + run.sqsDeletes + run.state.sqsRequests) / 1e6) * p.sqs.requestsPerMillion,
    'Firehose ingestion': ctx.firehose ? firehoseIngestDollars(ctx.firehose.records, p.firehose.directPutPerGb) : 0,
    'S3 requests':
      ((run.objects.size + landingPuts + model.puts * scale) / 1000) * p.s3.putPerThousand +
      ((model.gets * scale + run.state.s3Gets + run.landing.gets) / 1000) * p.s3.getPerThousand,
    'S3 landing storage': landingStorage,
    DynamoDB:
      (run.readUnits / 1e6) * p.dynamodb.readUnitsPerMillion + (run.writeUnits / 1e6) * p.dynamodb.writeUnitsPerMillion,
    'Secrets Manager': (secretsCalls / 1e4) * p.secretsManager.callsPerTenThousand,
    'CloudWatch Logs': (logBytes / 1e9) * p.cloudWatchLogs.ingestedPerGb,
    EventBridge: (run.events / 1e6) * p.eventBridge.customEventsPerMillion,
    'Athena + Step Functions': (athenaBytes / 1e12) * p.athena.perTbScanned,
  };
  for (const k of Object.keys(items)) items[k] *= perMillion;
  return {
    items,
    variable: Object.values(items).reduce((a, b) => a + b, 0),
    rawObjectsPerMillion: run.objects.size * perMillion,
    landingObjectsPerMillion: run.landing.objects * perMillion,
    fallbackShare: refused / requests,
    rawBytesPerDelivery: run.rawBytes / n,
    logBytesPerDelivery: logBytes / n,
  };
}

function writeReadme(output: string, run: { n: number; bodyBytes: number; callMs: number }) {
  const readme = readFileSync('docs/cost.md', 'utf8');
  const start = '<!-- cost:start -->';
  const end = '<!-- cost:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/cost.md has no ${start} … ${end} section`);
  const section = `${start}
Generated by \`npm run bench:cost -- --write-readme\` (a sample of at least ${run.n.toLocaleString('en-US')} deliveries per scenario, ${run.bodyBytes} B, ${run.callMs} ms per AWS call); do not edit by hand.

\`\`\`text
${output.trim()}
\`\`\`
${end}`;
  writeFileSync('docs/cost.md', readme.slice(0, i) + section + readme.slice(j + end.length));
  realStdout('  docs/cost.md cost section rewritten\n');
}

async function run() {
  [sqs, s3, ddb, eb] = await Promise.all([
    import('@aws-sdk/client-sqs'),
    import('@aws-sdk/client-s3'),
    import('@aws-sdk/client-dynamodb'),
    import('@aws-sdk/client-eventbridge'),
  ]);
  await main();
}

run().catch((err) => {
  realStderr(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

/**
 * Counting adapter: answers a client's commands with `handlers` (by command name) instead of calling AWS,
 * and throws on any other command. Returns the function that puts the real `send` back. (Lighter than
 * aws-sdk-client-mock, whose call history and argument matching would dominate a 100,000-request run.)
 */
function fake(
  client: { prototype: { send: unknown } },
  handlers: Record<string, (input: Record<string, unknown>) => unknown>,
): () => void {
  const real = client.prototype.send;
  client.prototype.send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const handle = handlers[command.constructor.name];
    if (!handle) throw new Error(`bench:cost has no fake for ${command.constructor.name}`);
    return handle(command.input);
  };
  return () => {
    client.prototype.send = real;
  };
}

/** Lambda instances serving the requests in simulated time: a new one when all are busy; gone after `idleMs`. */
function simulateInstances(requests: { at: number; ms: number }[], idleMs: number) {
  const free: number[] = []; // busy-until times of warm instances, as a simple list (few instances)
  const born: number[] = [];
  let coldStarts = 0;
  let instanceSeconds = 0;
  for (const r of requests) {
    // Retire instances idle longer than idleMs.
    for (let i = free.length - 1; i >= 0; i--) {
      if (r.at - free[i] > idleMs) {
        instanceSeconds += (free[i] - born[i]) / 1000;
        free.splice(i, 1);
        born.splice(i, 1);
      }
    }
    const idx = free.findIndex((until) => until <= r.at);
    if (idx >= 0) free[idx] = r.at + r.ms;
    else {
      coldStarts++;
      free.push(r.at + r.ms);
      born.push(r.at);
    }
  }
  for (let i = 0; i < free.length; i++) instanceSeconds += (free[i] - born[i]) / 1000;
  return { coldStarts, instanceSeconds };
}

interface IngestRun {
  /** The vehicle-state function's side, when the table is on. */
  state: { invocations: number; billedMs: number; logBytes: number; sqsRequests: number; s3Gets: number };
  invocations: number;
  billedMs: number;
  logBytes: number;
  sqsSends: number;
  sqsReceives: number;
  sqsDeletes: number;
  objects: Map<string, Buffer>;
  rawBytes: number;
  /** Landing objects: how many, their bytes, the GETs and DELETEs ingest made of them. */
  landing: { objects: number; bytes: number; gets: number; deletes: number };
  readUnits: number;
  writeUnits: number;
  events: number;
}

async function runIngest(
  shape: Shape,
  polled: Polled<Queued>,
  sdk: {
    sqs: typeof import('@aws-sdk/client-sqs');
    s3: typeof import('@aws-sdk/client-s3');
    ddb: typeof import('@aws-sdk/client-dynamodb');
    eb: typeof import('@aws-sdk/client-eventbridge');
  },
  callMs: number,
  metrics: Set<string>,
  /** The landing objects the queue's notifications name (the Firehose buffer), by key. */
  landingObjects: ReadonlyMap<string, Buffer> = new Map(),
): Promise<IngestRun> {
  const objects = new Map<string, Buffer>();
  const landing = { objects: landingObjects.size, bytes: 0, gets: 0, deletes: 0 };
  for (const b of landingObjects.values()) landing.bytes += b.length;

  const stateKeys: string[] = [];
  let calls = 0;
  let readUnits = 0;
  let writeUnits = 0;
  let events = 0;
  const seen = new Set<string>();
  const itemUnits = (input: unknown) => Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(input)) / 1024));
  type Input = Record<string, never>;
  const restore = [
    fake(sdk.s3.S3Client, {
      PutObjectCommand: (input) => {
        calls++;
        objects.set(input.Key as string, input.Body as Buffer);
        return {};
      },
      // A landing object; or the erasure ledger, read at most once a minute: there is none here.
      GetObjectCommand: (input) => {
        calls++;
        const body = landingObjects.get(input.Key as string);
        if (body) {
          landing.gets++;
          return { Body: { transformToByteArray: async () => new Uint8Array(body) } };
        }
        throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      },
      // A landing object, once stored (DELETE requests are free).
      DeleteObjectCommand: (input) => {
        calls++;
        if (landingObjects.has(input.Key as string)) landing.deletes++;
        return {};
      },
    }),
    fake(sdk.ddb.DynamoDBClient, {
      BatchGetItemCommand: (input) => {
        calls++;
        const items = (input as Input).RequestItems as Record<string, { Keys: { eventId: { S: string } }[] }>;
        const [table] = Object.keys(items);
        const keys = items[table].Keys;
        readUnits += keys.length * 0.5; // eventually consistent, items under 4 KB; a miss costs the same
        const far = String(Math.floor(Date.now() / 1000) + 86400);
        return {
          Responses: {
            [table]: keys
              .filter((k) => seen.has(k.eventId.S))
              .map((k) => ({ eventId: k.eventId, expiresAt: { N: far } })),
          },
        };
      },
      BatchWriteItemCommand: (input) => {
        calls++;
        const items = (input as Input).RequestItems as Record<
          string,
          { PutRequest: { Item: { eventId: { S: string } } } }[]
        >;
        const [table] = Object.keys(items);
        for (const w of items[table]) {
          seen.add(w.PutRequest.Item.eventId.S);
          writeUnits += Math.ceil(Buffer.byteLength(JSON.stringify(w.PutRequest.Item)) / 1024);
        }
        return {};
      },
      // Item size estimated from the request (names and values): what DynamoDB bills within a unit.
      // The state store's first read of a vehicle's item is eventually consistent (half a unit under 4 KB).
      GetItemCommand: () => {
        calls++;
        readUnits += 0.5;
        return {};
      },
      UpdateItemCommand: (input) => {
        calls++;
        writeUnits += itemUnits(input);
        return {};
      },
      // What DynamoDB bills: the item's attribute names and values (its binary as bytes, not base64 or JSON).
      PutItemCommand: (input) => {
        calls++;
        writeUnits += Math.max(1, Math.ceil(itemBytes(input.Item as never) / 1024));
        return {};
      },
    }),
    fake(sdk.sqs.SQSClient, {
      SendMessageCommand: (input) => {
        calls++;
        stateKeys.push((JSON.parse(input.MessageBody as string) as { key: string }).key);
        return { MessageId: randomUUID() };
      },
    }),
    fake(sdk.eb.EventBridgeClient, {
      PutEventsCommand: (input) => {
        calls++;
        const entries = input.Entries as unknown[];
        for (const e of entries)
          events += Math.ceil(Buffer.byteLength(JSON.stringify(e)) / PRICES.eventBridge.chunkBytes);
        return { Entries: entries.map(() => ({ EventId: randomUUID() })) };
      },
    }),
  ];

  // A fresh ingest module for this configuration's environment.
  for (const k of Object.keys(require.cache)) if (k.includes(`${path.sep}lambda${path.sep}`)) delete require.cache[k];
  Object.assign(process.env, {
    LAKE_BUCKET_NAME: 'lake',
    LAKE_RAW_PREFIX: 'raw',
    POWERTOOLS_SERVICE_NAME: 'SmartcarWebhooks',
    POWERTOOLS_DEV: 'false',
  });
  for (const [on, name, value] of [
    [shape.dedupe, 'DEDUP_TABLE_NAME', 'dedup'],
    [shape.events, 'EVENT_BUS_NAME', 'bus'],
    [shape.state, 'STATE_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/123456789012/state'],
    [shape.state, 'STATE_TABLE_NAME', 'state'],
    [shape.firehose !== undefined, 'LANDING_PREFIX', 'landing'],
    [shape.firehose !== undefined, 'DELIVERY_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/123456789012/deliveries'],
  ] as const) {
    if (on) process.env[name] = value;
    else delete process.env[name];
  }
  const { handler } = require('../lambda/ingest/index') as typeof import('../lambda/ingest/index');
  const batches = polled.batches;
  let billedMs = 0;
  let logBytes = 0;
  let sends = 0;
  for (const batch of batches) {
    for (const m of batch) sends += Math.ceil(Buffer.byteLength(m.body) / PRICES.sqs.chunkBytes);
    const event: SQSEvent = {
      Records: batch.map((m, i) => ({ messageId: `${m.at}-${i}`, body: m.body }) as SQSEvent['Records'][number]),
    };
    const before = calls;
    startCapture();
    const began = process.hrtime.bigint();
    const res = await handler(event);
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    logBytes += stopCapture(metrics);
    if (res.batchItemFailures.length) throw new Error('ingest failed in the bench');
    billedMs += Math.ceil(ms + (calls - before) * callMs);
  }
  // The state function: batches of 10 keys from its queue; reads each object back, conditional writes.
  const state = { invocations: 0, billedMs: 0, logBytes: 0, sqsRequests: stateKeys.length, s3Gets: 0 };
  if (stateKeys.length > 0) {
    restore.push(
      fake(sdk.s3.S3Client, {
        GetObjectCommand: (input) => {
          calls++;
          state.s3Gets++;
          const body = objects.get(input.Key as string) as Buffer;
          return { Body: { transformToByteArray: async () => new Uint8Array(body) } };
        },
      }),
    );
    const { handler: applyStates } = require('../lambda/state/index') as typeof import('../lambda/state/index');
    for (let i = 0; i < stateKeys.length; i += 10) {
      const keys = stateKeys.slice(i, i + 10);
      state.invocations++;
      state.sqsRequests += 2; // one receive and one batched delete per batch of up to 10
      const before = calls;
      startCapture();
      const began = process.hrtime.bigint();
      const res = await applyStates({
        Records: keys.map((key, j) => ({ messageId: `s${i + j}`, body: JSON.stringify({ key }) })),
      } as SQSEvent);
      const ms = Number(process.hrtime.bigint() - began) / 1e6;
      state.logBytes += stopCapture(metrics);
      if (res.batchItemFailures.length) throw new Error('state function failed in the bench');
      // Its writes go 16 vehicles at a time: count the latency of one in 16 calls.
      state.billedMs += Math.ceil(ms + ((calls - before) / 16) * callMs);
    }
  }
  for (const r of restore) r();
  let rawBytes = 0;
  for (const b of objects.values()) rawBytes += b.length;
  return {
    state,
    invocations: batches.length,
    billedMs,
    logBytes,
    sqsSends: sends,
    sqsReceives: polled.receives,
    sqsDeletes: polled.deletes,
    objects,
    rawBytes,
    landing,
    readUnits,
    writeUnits,
    events,
  };
}

/**
 * What the scheduled compaction costs per run, at the average daily volume of this run's arrival rate:
 * Athena bytes and queries, the S3 requests Athena makes for it (GETs of every object it scans, PUTs of
 * Parquet files and one result file per query), state transitions. Per-delivery bytes, objects and
 * files are this run's.
 */
function compactionModel(
  shape: Shape,
  perDelivery: { rawBytes: number; curatedBytes: number; rawObjects: number; curatedFiles: number },
  deliveriesPerDay: number,
  kinds: number,
) {
  if (!shape.compactionEverySeconds)
    return { bytes: 0, queries: 0, puts: 0, gets: 0, transitions: 0, runsPerDelivery: 0 };
  const interval = shape.compactionEverySeconds;
  const days = (x: number, n: number) => x * deliveriesPerDay * n;
  // Lookback 2 days: the claim reads ~2.5 days of raw, the curation ~3.5 (one day of margin), the signal
  // extraction ~3.5 days of curated, the commit nothing; each is billed at least Athena's 10 MB.
  const min = PRICES.athena.minimumBytesPerQuery;
  const bytes =
    Math.max(min, days(perDelivery.rawBytes, 2.5)) +
    Math.max(min, days(perDelivery.rawBytes, 3.5)) +
    Math.max(min, days(perDelivery.curatedBytes, 3.5)) +
    min;
  return {
    bytes,
    queries: 4,
    // Two curated tables × one file per partition (event type, mode, day) the run touches, plus results.
    puts: 2 * kinds * Math.ceil(interval / 86400 + 1) + 4,
    gets: days(perDelivery.rawObjects, 2.5 + 3.5) + days(perDelivery.curatedFiles, 3.5),
    transitions: 4 * 5,
    runsPerDelivery: 86400 / interval / deliveriesPerDay,
  };
}

/** Bytes of one HTTP API access log line in the stack's format, with typical values. */
function accessLogLineBytes(format: string | undefined): number {
  if (!format) return 0;
  const values: Record<string, string> = {
    '$context.requestId': 'Ab1cDeF2GhIjK3L=',
    '$context.apiId': 'a1b2c3d4e5',
    '$context.identity.sourceIp': '203.0.113.42',
    '$context.identity.userAgent': 'Smartcar-Webhooks/1.0',
    '$context.requestTimeEpoch': '1764226800000',
    '$context.requestTime': '27/Nov/2026:07:00:00 +0000',
    '$context.routeKey': 'POST /webhooks',
    '$context.status': '200',
    '$context.responseLength': '21',
    '$context.responseLatency': '31',
    '$context.integrationLatency': '29',
    '$context.integrationErrorMessage': '-',
  };
  let line = format;
  for (const [k, v] of Object.entries(values)) line = line.replaceAll(k, v);
  return Buffer.byteLength(line) + 1;
}
