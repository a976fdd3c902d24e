/**
 * The cost model, measured: N signed deliveries (default 100,000, 2 KB each, 1% retried by Smartcar)
 * arrive in a pattern (steady, bursty or a daily curve) and go through the real verification handler and
 * the real ingest handler, whose AWS clients are counting mocks (aws-sdk-client-mock). What the handlers
 * print is captured and weighed; their durations are measured. Per configuration, synthesized from the
 * construct itself (memory, batch size, window, log levels, front door, tables), the counts are priced
 * with scripts/cost/prices.ts and printed per million deliveries, one line each.
 *
 *   npm run bench:cost [-- --deliveries 100000 --pattern steady|bursty|daily --rate 10 --aws-call-ms 8]
 *   npm run bench:cost -- --write-readme   (regenerates the cost section of docs/cost.md from this output)
 *
 * Modelled, not measured (and printed as such): the latency of each AWS call inside a handler
 * (--aws-call-ms), Lambda's platform log records (their documented shape), how long Lambda keeps an
 * idle instance (10 minutes), one SQS poller filling batches, and the Athena bytes the daily compaction
 * scans (from the raw and curated bytes this run wrote, and the statements' windows).
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { SQSEvent } from 'aws-lambda';
import { compactLocalLake } from '../local/compact';
import { listLakeKeys, putLakeObject } from '../local/file-lake';
import { PRICES } from './cost/prices';

process.env.CDK_VALIDATION = 'false';
const TOKEN = 'bench-management-token';

// ---------------------------------------------------------------------------------------------------
// Configurations: each synthesized, and what the cost depends on read from its template.

interface Config {
  name: string;
  label: string;
  props: Record<string, unknown>;
}

const CONFIGS: Config[] = [
  { name: 'default', label: 'Function URL, curated layer, no dedupe table: a plain cdk deploy', props: {} },
  { name: 'http-api', label: 'default, with the HTTP API front door', props: { endpoint: 'http-api' } },
  { name: 'dedupe', label: 'default + DynamoDB dedupe table', props: { deduplication: true } },
  {
    name: 'v0.2-defaults',
    label: 'HTTP API + dedupe table (the defaults before 0.3)',
    props: { endpoint: 'http-api', deduplication: true },
  },
  { name: 'events', label: 'default + one EventBridge event per delivery', props: { events: { enabled: true } } },
  { name: 'state-table', label: 'default + vehicle state table', props: { vehicleStateTable: true } },
];

interface Shape {
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
  return {
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
  };
}

// ---------------------------------------------------------------------------------------------------
// Deliveries and their arrival.

/** A VEHICLE_STATE delivery of about `bytes` bytes: a handful of signals, as a real one carries. */
function deliveryBody(eventId: string, vehicle: string, at: number, bytes: number): string {
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
  const doc = {
    eventId,
    eventType: 'VEHICLE_STATE',
    vehicleId: vehicle,
    data: {
      user: { id: '93b3ea96-ca37-43a9-9073-f4334719aaaa' },
      vehicle: { id: vehicle, make: 'TESLA', model: 'Model 3', year: 2020 },
      triggers: [{ code: 'tractionbattery-stateofcharge', name: 'StateOfCharge', group: 'TractionBattery' }],
      signals,
    },
    meta: {
      version: '4.0',
      deliveryId: randomUUID(),
      deliveredAt: at,
      webhookId: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
      webhookName: 'Fleet telemetry',
      signalCount: signals.length,
      mode: 'LIVE',
    },
  };
  let text = JSON.stringify(doc);
  // Pad with more signals of the same shape until the body is about the size asked for.
  for (let i = 0; text.length < bytes; i++) {
    signals.push(signal(`custom-signal${i}`, `Signal${i}`, 'Custom', { value: (at + i) % 997, unit: 'unit' }));
    doc.meta.signalCount = signals.length;
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

// ---------------------------------------------------------------------------------------------------
// Measuring what handlers print.

let captured = 0;
let capturing = false;
const realStdout = process.stdout.write.bind(process.stdout);
function startCapture() {
  captured = 0;
  capturing = true;
}
function stopCapture(): number {
  capturing = false;
  return captured;
}
const hook = (chunk: unknown) => {
  if (!capturing) return false;
  captured += Buffer.byteLength(typeof chunk === 'string' ? chunk : (chunk as Buffer));
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

interface Counts {
  deliveries: number;
  apiRequests: number;
  verifyInvocations: number;
  verifyGbSeconds: number;
  verifyColdStarts: number;
  ingestInvocations: number;
  ingestGbSeconds: number;
  sqsRequests: number;
  s3Puts: number;
  s3Gets: number;
  rawObjects: number;
  curatedObjects: number;
  dynamoReadUnits: number;
  dynamoWriteUnits: number;
  secretsCalls: number;
  logBytes: { verify: number; verifyPlatform: number; ingest: number; ingestPlatform: number; access: number };
  eventBridgeEvents: number;
  athenaBytes: number;
  athenaQueries: number;
  sfnTransitions: number;
  rawBytes: number;
  curatedBytes: number;
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      deliveries: { type: 'string', default: '100000' },
      pattern: { type: 'string', default: 'steady' },
      rate: { type: 'string', default: '10' },
      'body-bytes': { type: 'string', default: '2048' },
      'aws-call-ms': { type: 'string', default: '8' },
      retried: { type: 'string', default: '0.01' },
      'write-readme': { type: 'boolean', default: false },
    },
  });
  const n = Number(values.deliveries);
  const rate = Number(values.rate);
  const bodyBytes = Number(values['body-bytes']);
  const callMs = Number(values['aws-call-ms']);
  const retried = Number(values.retried);
  const pattern = String(values.pattern);
  const out: string[] = [];
  const say = (line = '') => {
    out.push(line);
    realStdout(`${line}\n`);
  };
  say(
    `bench:cost: ${n} deliveries of ${bodyBytes} B, ${pattern} at ${rate}/s on average, ${(retried * 100).toFixed(0)}% retried by Smartcar; ` +
      `${availableParallelism()} cores, node ${process.version}; prices ${PRICES.region} as of ${PRICES.asOf} (scripts/cost/prices.ts)`,
  );

  const shapes = new Map<string, Shape>();
  for (const c of CONFIGS) shapes.set(c.name, await shapeOf(c));

  // --- the deliveries
  const start = Date.parse('2026-11-02T00:00:00.000Z');
  const times = arrivals(n, pattern, rate, start);
  const vehicles = Math.max(1, Math.round(rate * 3600)); // hourly deliveries from a fleet of this size
  interface Delivery {
    at: number;
    body: string;
    signature: string;
  }
  const deliveries: Delivery[] = [];
  for (let i = 0; i < n; i++) {
    const body = deliveryBody(randomUUID(), `veh-${i % vehicles}`, times[i], bodyBytes);
    deliveries.push({ at: times[i], body, signature: createHmac('sha256', TOKEN).update(body).digest('hex') });
  }
  // Smartcar retries a share of them (timeouts on its side): the same body again, seconds later.
  const retries = Math.round(n * retried);
  for (let i = 0; i < retries; i++) {
    const d = deliveries[Math.floor((i * n) / Math.max(1, retries))];
    deliveries.push({ ...d, at: d.at + 20_000 });
  }
  deliveries.sort((a, b) => a.at - b.at);

  // --- the verification handler, with counting AWS clients
  const sm = await import('@aws-sdk/client-secrets-manager');
  const sqs = await import('@aws-sdk/client-sqs');
  const s3 = await import('@aws-sdk/client-s3');
  const ddb = await import('@aws-sdk/client-dynamodb');
  const eb = await import('@aws-sdk/client-eventbridge');
  let secretsInProcess = 0;
  const restoreSm = fake(sm.SecretsManagerClient, {
    GetSecretValueCommand: () => {
      secretsInProcess++;
      return { SecretString: TOKEN, VersionId: 'v1', CreatedDate: new Date(0) };
    },
  });
  const queued: { body: string; at: number }[] = [];
  const restoreSqs = fake(sqs.SQSClient, {
    SendMessageCommand: (input) => {
      queued.push({ body: input.MessageBody as string, at: currentAt });
      return { MessageId: randomUUID() };
    },
  });
  let currentAt = 0;
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:amt',
    DELIVERY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/deliveries',
    SMARTCAR_CALLBACK_PATH: '/webhooks',
    POWERTOOLS_SERVICE_NAME: 'SmartcarWebhooks',
    POWERTOOLS_DEV: 'false',
  });
  const { handler: verify } = await import('../lambda/verify/index');
  const { functionUrlEvent } = await import('../test/support/api-event');
  const verifyMs: number[] = [];
  let verifyLogBytes = 0;
  const t0 = Date.now();
  for (const d of deliveries) {
    currentAt = d.at;
    const event = functionUrlEvent(d.body, { 'sc-signature': d.signature }, { timeEpoch: d.at });
    startCapture();
    const began = process.hrtime.bigint();
    const res = await verify(event);
    verifyMs.push(Number(process.hrtime.bigint() - began) / 1e6);
    verifyLogBytes += stopCapture();
    if (res.statusCode !== 200) throw new Error(`verify answered ${res.statusCode}: ${res.body}`);
  }
  const verifySeconds = (Date.now() - t0) / 1000;
  restoreSqs();
  restoreSm();
  const medianVerify = [...verifyMs].sort((a, b) => a - b)[Math.floor(verifyMs.length / 2)];
  say(
    `  receive path: ${deliveries.length} requests through lambda/verify in ${verifySeconds.toFixed(1)} s ` +
      `(median ${medianVerify.toFixed(2)} ms of handler time), ${verifyLogBytes} log bytes printed, ${queued.length} queued, ` +
      `${secretsInProcess} Secrets Manager read(s) by this one warm instance`,
  );

  // --- cold starts and Secrets Manager calls: instances in simulated time
  const initMs = measureInitMs();
  const instances = simulateInstances(
    deliveries.map((d, i) => ({ at: d.at, ms: verifyMs[i] + callMs })),
    10 * 60_000,
  );

  // --- the ingest handler, per configuration that changes it
  const ingestRuns = new Map<string, IngestRun>();
  for (const c of CONFIGS) {
    const shape = shapes.get(c.name) as Shape;
    const key = `${shape.batchSize}|${shape.windowSeconds}|${shape.dedupe}|${shape.events}|${shape.state}`;
    if (!ingestRuns.has(key)) ingestRuns.set(key, await runIngest(shape, queued, { sqs, s3, ddb, eb }, callMs));
  }

  // --- the curated layer of the default run, made by npm run compact on the raw objects it wrote
  const defaultShape = shapes.get('default') as Shape;
  const defaultRun = ingestRuns.get(
    `${defaultShape.batchSize}|${defaultShape.windowSeconds}|${defaultShape.dedupe}|${defaultShape.events}|${defaultShape.state}`,
  ) as IngestRun;
  const lakeDir = mkdtempSync(path.join(tmpdir(), 'bench-cost-'));
  for (const [key, body] of defaultRun.objects) await putLakeObject(lakeDir, key, body);
  const compacted = await compactLocalLake(lakeDir, { now: new Date(times[times.length - 1] + 86_400_000 * 3) });
  const curatedKeys = (await listLakeKeys(lakeDir, 'curated')).filter((k) => k.endsWith('.parquet'));
  const curatedBytes = curatedKeys.reduce((sum, k) => sum + statSync(path.join(lakeDir, ...k.split('/'))).size, 0);
  rmSync(lakeDir, { recursive: true, force: true });
  say(
    `  curated layer (npm run compact on those objects): ${compacted.events} events in ${curatedKeys.length} Parquet files, ` +
      `${(curatedBytes / 2 ** 20).toFixed(1)} MiB from ${(defaultRun.rawBytes / 2 ** 20).toFixed(1)} MiB of raw gzip NDJSON`,
  );

  // --- price each configuration, per million deliveries
  const perMillion = 1e6 / n; // deliveries Smartcar meant to send; retries are extra requests
  // Event type and mode pairs: the partitions a compaction run writes per day, in each curated table.
  const kinds = new Set(curatedKeys.map((k) => /event_type=[^/]+\/mode=[^/]+/.exec(k)?.[0])).size || 1;
  const lines: { name: string; label: string; total: number; items: Record<string, number>; objects: number }[] = [];
  for (const c of CONFIGS) {
    const shape = shapes.get(c.name) as Shape;
    const run = ingestRuns.get(
      `${shape.batchSize}|${shape.windowSeconds}|${shape.dedupe}|${shape.events}|${shape.state}`,
    ) as IngestRun;
    const requests = deliveries.length;
    const accessBytes = shape.httpApi ? requests * accessLogLineBytes(shape.accessLogFormat) : 0;
    const verifyGbs =
      ((verifyMs.reduce((s, ms) => s + Math.ceil(ms + callMs), 0) + instances.coldStarts * initMs) / 1000) *
      (shape.verifyMemoryMb / 1024);
    const secretsCalls = instances.coldStarts + Math.floor(instances.instanceSeconds / shape.tokenTtlSeconds);
    const model = compactionModel(
      shape,
      {
        rawBytes: run.rawBytes / n,
        curatedBytes: curatedBytes / n,
        rawObjects: run.objects.size / n,
        curatedFiles: curatedKeys.length / n,
      },
      rate * 86400,
      kinds,
    );
    // Per run → for this run's n deliveries.
    const scale = model.runsPerDelivery * n;
    const compaction = {
      bytes: model.bytes * scale,
      queries: model.queries * scale,
      puts: model.puts * scale,
      gets: model.gets * scale,
      transitions: model.transitions * scale,
    };
    const logBytes = {
      verify: verifyLogBytes,
      verifyPlatform: shape.verifyQuietPlatform ? 0 : requests * PLATFORM_RECORD_BYTES,
      ingest: run.logBytes + run.state.logBytes,
      ingestPlatform: shape.ingestQuietPlatform ? 0 : (run.invocations + run.state.invocations) * PLATFORM_RECORD_BYTES,
      access: accessBytes,
    };
    const counts: Counts = {
      deliveries: n,
      apiRequests: shape.httpApi ? requests : 0,
      verifyInvocations: requests,
      verifyGbSeconds: verifyGbs,
      verifyColdStarts: instances.coldStarts,
      ingestInvocations: run.invocations + run.state.invocations,
      ingestGbSeconds:
        (run.billedMs / 1000) * (shape.ingestMemoryMb / 1024) +
        (run.state.billedMs / 1000) * (shape.stateMemoryMb / 1024),
      sqsRequests: run.sqsSends + run.sqsReceives + run.sqsDeletes + run.state.sqsRequests,
      s3Puts: run.objects.size + compaction.puts,
      s3Gets: compaction.gets + run.state.s3Gets,
      rawObjects: run.objects.size,
      curatedObjects: compaction.puts,
      dynamoReadUnits: run.readUnits,
      dynamoWriteUnits: run.writeUnits,
      secretsCalls,
      logBytes,
      eventBridgeEvents: run.events,
      athenaBytes: compaction.bytes,
      athenaQueries: compaction.queries,
      sfnTransitions: compaction.transitions,
      rawBytes: run.rawBytes,
      curatedBytes,
    };
    const p = PRICES;
    const logGb = Object.values(counts.logBytes).reduce((a, b) => a + b, 0) / 1e9;
    const items: Record<string, number> = {
      'API Gateway': (counts.apiRequests / 1e6) * p.apiGateway.httpApiPerMillion,
      'Lambda requests': ((counts.verifyInvocations + counts.ingestInvocations) / 1e6) * p.lambda.requestsPerMillion,
      'Lambda GB-s': (counts.verifyGbSeconds + counts.ingestGbSeconds) * p.lambda.gbSecondArm,
      SQS: (counts.sqsRequests / 1e6) * p.sqs.requestsPerMillion,
      'S3 requests': (counts.s3Puts / 1000) * p.s3.putPerThousand + (counts.s3Gets / 1000) * p.s3.getPerThousand,
      DynamoDB:
        (counts.dynamoReadUnits / 1e6) * p.dynamodb.readUnitsPerMillion +
        (counts.dynamoWriteUnits / 1e6) * p.dynamodb.writeUnitsPerMillion,
      'Secrets Manager': (counts.secretsCalls / 1e4) * p.secretsManager.callsPerTenThousand,
      'CloudWatch Logs': logGb * p.cloudWatchLogs.ingestedPerGb,
      EventBridge: (counts.eventBridgeEvents / 1e6) * p.eventBridge.customEventsPerMillion,
      'Athena + Step Functions':
        (counts.athenaBytes / 1e12) * p.athena.perTbScanned +
        (counts.sfnTransitions / 1000) * p.stepFunctions.transitionsPerThousand,
    };
    for (const k of Object.keys(items)) items[k] *= perMillion;
    const total = Object.values(items).reduce((a, b) => a + b, 0);
    lines.push({ name: c.name, label: c.label, total, items, objects: counts.rawObjects * perMillion });
    if (c.name === 'default') {
      const m = (x: number) => Math.round(x * perMillion).toLocaleString('en-US');
      say('');
      say(`  counts per million deliveries, default configuration (${(logGb * perMillion).toFixed(3)} GB of logs):`);
      say(
        `    API requests ${m(counts.apiRequests)} · Lambda invocations ${m(counts.verifyInvocations)} verify (${m(counts.verifyColdStarts)} cold starts, init ${initMs.toFixed(0)} ms measured) + ${m(counts.ingestInvocations)} ingest`,
      );
      say(
        `    Lambda GB-s ${(counts.verifyGbSeconds * perMillion).toFixed(0)} verify (${shape.verifyMemoryMb} MB, handler + ${callMs} ms per AWS call) + ${(counts.ingestGbSeconds * perMillion).toFixed(0)} ingest (${shape.ingestMemoryMb} MB)`,
      );
      say(
        `    SQS requests ${m(counts.sqsRequests)} (${m(run.sqsSends)} send, ${m(run.sqsReceives)} receive, ${m(run.sqsDeletes)} delete; batches of ${(queued.length / run.invocations).toFixed(0)})`,
      );
      say(
        `    S3 PUT ${m(counts.s3Puts)} (${m(counts.rawObjects)} raw objects, ${m(counts.curatedObjects)} by compaction) · S3 GET ${m(counts.s3Gets)} · DynamoDB RRU ${m(counts.dynamoReadUnits)} WRU ${m(counts.dynamoWriteUnits)}`,
      );
      say(
        `    Secrets Manager calls ${m(counts.secretsCalls)} · EventBridge events ${m(counts.eventBridgeEvents)} · Athena ${((counts.athenaBytes * perMillion) / 2 ** 30).toFixed(2)} GiB scanned in ${(counts.athenaQueries * perMillion).toFixed(1)} queries (daily compaction at ${Math.round(rate * 86400).toLocaleString('en-US')} deliveries a day)`,
      );
      say(
        `    log bytes: verify ${m(logBytes.verify)} + platform ${m(logBytes.verifyPlatform)}, ingest ${m(logBytes.ingest)} + platform ${m(logBytes.ingestPlatform)}, access log ${m(logBytes.access)}`,
      );
      say(
        `    stored: ${((counts.rawBytes * perMillion) / 2 ** 30).toFixed(2)} GiB raw + ${((counts.curatedBytes * perMillion) / 2 ** 30).toFixed(2)} GiB curated ` +
          `= $${((((counts.rawBytes + counts.curatedBytes) * perMillion) / 2 ** 30) * PRICES.s3.storageGbMonth).toFixed(3)} a month (holding cost, not in the totals)`,
      );
    }
  }

  say('');
  say(
    '  $ per million deliveries, all-in (per-delivery costs; fixed monthly costs such as the secret and the dashboard excluded):',
  );
  const cheapest = lines
    .filter((l) => l.name === 'default' || l.name === 'http-api')
    .sort((a, b) => a.total - b.total)[0];
  for (const l of lines) {
    const tag =
      l.name === 'default' ? (cheapest.name === 'default' ? 'default (cheapest supported)' : 'default') : l.name;
    say(`    ${tag.padEnd(30)} $${l.total.toFixed(2)}   ${l.label}`);
  }
  const def = lines.find((l) => l.name === 'default') as (typeof lines)[number];
  say('');
  say('  breakdown of the default, $ per million:');
  say(
    `    ${Object.entries(def.items)
      .filter(([, v]) => v >= 0.0005)
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(' · ')}`,
  );
  say(
    `  S3 objects written per million deliveries: ${Math.round(def.objects).toLocaleString('en-US')} raw (goal ≤ 2,000 under steady load)`,
  );
  const goals = [
    def.total <= 1.5 ? 'default ≤ $1.50: met' : 'default ≤ $1.50: NOT met',
    cheapest.total <= 0.8 ? 'cheapest ≤ $0.80: met' : 'cheapest ≤ $0.80: NOT met',
    pattern !== 'steady'
      ? 'objects: goal applies to steady load'
      : def.objects <= 2000
        ? 'objects ≤ 2,000: met'
        : 'objects ≤ 2,000: NOT met',
  ];
  say(`  goals: ${goals.join(' · ')}`);

  if (values['write-readme']) writeReadme(out.join('\n'), { n, pattern, rate, bodyBytes, callMs, lines });
}

// ---------------------------------------------------------------------------------------------------

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

/** Measured: how long loading the built verification bundle takes in a fresh Node process (the INIT phase). */
function measureInitMs(): number {
  const bundle = path.resolve('dist/handlers/verify/index.js');
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(bundle)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const runs = [0, 1, 2].map(() =>
    Number(
      execFileSync(process.execPath, ['-e', script], {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: {
          ...process.env,
          AWS_REGION: 'us-east-1',
          SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'x',
          DELIVERY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q',
        },
      }).toString(),
    ),
  );
  return runs.sort((a, b) => a - b)[1];
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
  readUnits: number;
  writeUnits: number;
  events: number;
}

/** One SQS poller filling batches: a batch closes at batchSize, 6 MB, or windowSeconds after its first message. */
function batchesOf(queued: { body: string; at: number }[], batchSize: number, windowSeconds: number) {
  const batches: { body: string; at: number }[][] = [];
  let current: { body: string; at: number }[] = [];
  let bytes = 0;
  for (const m of queued) {
    const size = Buffer.byteLength(m.body);
    if (
      current.length > 0 &&
      (current.length >= batchSize || bytes + size > 6 * 2 ** 20 || m.at - current[0].at > windowSeconds * 1000)
    ) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length) batches.push(current);
  return batches;
}

async function runIngest(
  shape: Shape,
  queued: { body: string; at: number }[],
  sdk: {
    sqs: typeof import('@aws-sdk/client-sqs');
    s3: typeof import('@aws-sdk/client-s3');
    ddb: typeof import('@aws-sdk/client-dynamodb');
    eb: typeof import('@aws-sdk/client-eventbridge');
  },
  callMs: number,
): Promise<IngestRun> {
  const objects = new Map<string, Buffer>();
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
      UpdateItemCommand: (input) => {
        calls++;
        writeUnits += itemUnits(input);
        return {};
      },
      PutItemCommand: (input) => {
        calls++;
        writeUnits += itemUnits(input);
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
  Object.assign(process.env, { LAKE_BUCKET_NAME: 'lake', LAKE_RAW_PREFIX: 'raw' });
  for (const [on, name, value] of [
    [shape.dedupe, 'DEDUP_TABLE_NAME', 'dedup'],
    [shape.events, 'EVENT_BUS_NAME', 'bus'],
    [shape.state, 'STATE_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/123456789012/state'],
    [shape.state, 'STATE_TABLE_NAME', 'state'],
  ] as const) {
    if (on) process.env[name] = value;
    else delete process.env[name];
  }
  const { handler } = require('../lambda/ingest/index') as typeof import('../lambda/ingest/index');
  const batches = batchesOf(queued, shape.batchSize, shape.windowSeconds);
  let billedMs = 0;
  let logBytes = 0;
  let receives = 0;
  let deletes = 0;
  let sends = 0;
  for (const batch of batches) {
    for (const m of batch) sends += Math.ceil(Buffer.byteLength(m.body) / PRICES.sqs.chunkBytes);
    receives += Math.ceil(batch.length / 10); // ReceiveMessage returns at most 10 messages
    deletes += Math.ceil(batch.length / 10); // DeleteMessageBatch takes at most 10
    const event: SQSEvent = {
      Records: batch.map((m, i) => ({ messageId: `${m.at}-${i}`, body: m.body }) as SQSEvent['Records'][number]),
    };
    const before = calls;
    startCapture();
    const began = process.hrtime.bigint();
    const res = await handler(event);
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    logBytes += stopCapture();
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
      state.logBytes += stopCapture();
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
    sqsReceives: receives,
    sqsDeletes: deletes,
    objects,
    rawBytes,
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

function writeReadme(
  output: string,
  run: {
    n: number;
    pattern: string;
    rate: number;
    bodyBytes: number;
    callMs: number;
    lines: { name: string; label: string; total: number }[];
  },
) {
  const readme = readFileSync('docs/cost.md', 'utf8');
  const start = '<!-- cost:start -->';
  const end = '<!-- cost:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/cost.md has no ${start} … ${end} section`);
  const table = [
    '| configuration | $ per million deliveries | what it is |',
    '| --- | --- | --- |',
    ...run.lines.map((l) => `| \`${l.name}\` | $${l.total.toFixed(2)} | ${l.label} |`),
  ].join('\n');
  const section = `${start}
Generated by \`npm run bench:cost -- --write-readme\` (${run.n.toLocaleString('en-US')} deliveries of ${run.bodyBytes} B, ${run.pattern} at ${run.rate}/s, ${run.callMs} ms per AWS call); do not edit by hand.

${table}

\`\`\`text
${output.trim()}
\`\`\`
${end}`;
  writeFileSync('docs/cost.md', readme.slice(0, i) + section + readme.slice(j + end.length));
  realStdout('  docs/cost.md cost section rewritten\n');
}

main().catch((err) => {
  realStderr(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
