/**
 * `smartcar-webhooks trace <eventId|vehicleId> [--since ISO] [--json]`: where each matching delivery is
 * and what happened to it (raw key and line, curated by which committed compaction run, quarantined and
 * why, waiting or dead-lettered, the vehicle state), and for a vehicle a timeline of its deliveries,
 * changed signals, errors and subscription changes.
 * - Locally it reads the lake directory (and $LOCAL_WORKFLOW_DIR's reports); DuckDB answers for the
 *   curated layer.
 * - With `--stack` (or the resources as flags) it asks S3 (the raw and landing zones), SQS (the dead-letter queue, peeked: never
 *   consumed), DynamoDB (the state table) and Athena, through the stack's workgroup, for the scans.
 * It prints no body, token or signature: ids, keys, times, types and signal values only.
 * Locally an eventId the curated layer knows is looked for in its first copy's hours and the objects not
 * compacted yet (then everywhere if copies are missing); `--full-scan` reads every object of the window.
 */
import * as path from 'node:path';
import { type AttributeValue, DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { decodeStateItem, isStateItem } from '../lambda/adapters/dynamodb-state-store';
import { s3Keys } from '../lambda/adapters/recovery';
import { getObjectBytes, getObjectIfThere } from '../lambda/adapters/s3-objects';
import { DEFAULT_LANDING_PREFIX, DEFAULT_RAW_PREFIX } from '../lambda/contract';
import { landingMessages } from '../lambda/core/landing';
import {
  type Finding,
  type LakeReader,
  type QuarantineReader,
  type ReportReader,
  type StateReader,
  TRACE_ID_PATTERN,
  type TraceResult,
  type TraceSources,
  trace,
  type WaitingReader,
} from '../lambda/core/trace';
import type { VehicleState } from '../lambda/core/vehicle-state';
import { athenaDialect } from '../lib/queries';
import { flag, lakeDirOf, missingDependency, type ParsedArgs, runCommand, str, UsageError } from './args';
import { athenaQueryEngine, type QueryEngine, sqlCuratedIndex, sqlLiteral } from './query-engine';
import { SPECS } from './registry';
import { Resources } from './stack';

const DEPLOYED_FLAGS = [
  'bucket',
  'quarantine-bucket',
  'work-bucket',
  'dlq-url',
  'state-table',
  'workgroup',
  'database',
];

/** Messages a peek of the dead-letter queue looks at, at most. */
const PEEK_LIMIT = 100;
/** Landing objects (up to the stream's buffer size each, 16 MiB by default) a trace reads, at most. */
export const LANDING_PEEK_LIMIT = 50;

export interface TraceDeps {
  /** Stands in for Athena (tests: moto runs no SQL). */
  readonly engine?: QueryEngine;
  readonly s3?: S3Client;
  readonly sqs?: SQSClient;
  readonly dynamodb?: DynamoDBClient;
}

export async function main(argv: string[] = process.argv.slice(2), deps: TraceDeps = {}): Promise<number> {
  return runCommand(SPECS.trace, argv, async (args) => {
    const id = args.positionals[0];
    if (!TRACE_ID_PATTERN.test(id))
      throw new UsageError(`"${id}" is not an eventId or a vehicleId (letters, digits, - and _; or sha256:<hex>)`);
    const since = sinceOf(args);
    const deployed = Boolean(str(args, 'stack')) || DEPLOYED_FLAGS.some((f) => str(args, f) !== undefined);
    let result: TraceResult;
    if (deployed) {
      if (str(args, 'lake-dir'))
        throw new UsageError('--lake-dir is for the local lake, not with --stack or resource flags');
      const sources = await deployedSources(await Resources.of(args), deps, since);
      result = await trace(id, since, sources, { fullScan: flag(args, 'full-scan') });
    } else {
      const lakeDir = lakeDirOf(args);
      const workDir = path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow');
      const { localTraceSources } = await import('../local/trace-sources').catch((err) => {
        throw missingDependency(err) ?? err;
      });
      const local = await localTraceSources(lakeDir, workDir, since).catch((err) => {
        throw missingDependency(err) ?? err;
      });
      try {
        result = await trace(id, since, local.sources, { fullScan: flag(args, 'full-scan') });
      } finally {
        local.close();
      }
    }
    const print = (line: string) => console.log(line);
    if (flag(args, 'json')) printJson(result, print);
    else printReport(result, print);
    return 0;
  });
}

function sinceOf(args: ParsedArgs): Date {
  const given = str(args, 'since');
  if (given === undefined) return new Date(Date.now() - 7 * 24 * 3_600_000);
  const at = new Date(given);
  if (!/^\d{4}-\d{2}-\d{2}/.test(given) || Number.isNaN(at.getTime()))
    throw new UsageError(`--since takes an ISO 8601 time (2026-11-26 or 2026-11-26T10:00Z), got "${given}"`);
  return at;
}

// ---------------------------------------------------------------------------------------------------
// Deployed readers
// ---------------------------------------------------------------------------------------------------

/** The stack's (or the flags') resources as trace's readers; the optional parts are left out when absent. */
export async function deployedSources(resources: Resources, deps: TraceDeps = {}, since?: Date): Promise<TraceSources> {
  const s3 = deps.s3 ?? new S3Client({});
  const bucket = resources.required('bucket', 'LakeBucketName', 'the lake bucket');
  const rawPrefix = (resources.optional(undefined, 'RawPrefix') ?? DEFAULT_RAW_PREFIX).replace(/^\/+|\/+$/g, '');
  const workGroup = resources.optional('workgroup', 'AthenaWorkGroup');
  const database = resources.optional('database', 'GlueDatabase');
  if (!deps.engine && Boolean(workGroup) !== Boolean(database))
    throw new UsageError('Athena needs both the workgroup and the database (--workgroup and --database, or --stack)');
  const engine = deps.engine ?? (workGroup && database ? athenaQueryEngine({ workGroup, database }) : undefined);
  const db = database ?? 'default';
  const uri = (key: string) => `s3://${bucket}/${key}`;
  const quarantineBucket = resources.optional('quarantine-bucket', 'QuarantineBucketName');
  const dlqUrl = resources.optional('dlq-url', 'DeadLetterQueueUrl');
  const stateTable = resources.optional('state-table', 'StateTableName');
  const workBucket = resources.optional('work-bucket', 'WorkBucketName');
  return {
    lake: engine ? athenaLakeReader(s3, bucket, engine, db) : s3LakeReader(s3, bucket, rawPrefix),
    curated: engine ? sqlCuratedIndex(engine, athenaDialect(db).table, uri) : undefined,
    quarantine: quarantineBucket ? s3QuarantineReader(s3, quarantineBucket) : undefined,
    waiting: [
      landingPeeker(s3, bucket, DEFAULT_LANDING_PREFIX, since),
      ...(dlqUrl ? [dlqPeeker(deps.sqs ?? new SQSClient({}), dlqUrl)] : []),
    ],
    state: stateTable ? dynamoStateReader(deps.dynamodb ?? new DynamoDBClient({}), stateTable) : undefined,
    reports: workBucket ? s3ReportReader(s3, workBucket) : undefined,
  };
}

/** The raw objects holding `id`, found by Athena (partition-pruned by dt and hour), read from S3. */
export function athenaLakeReader(s3: S3Client, bucket: string, engine: QueryEngine, database: string): LakeReader {
  const prefix = `s3://${bucket}/`;
  return {
    describe: `s3://${bucket} (objects found by ${engine.describe})`,
    async candidates(id, since) {
      const iso = since.toISOString();
      const [dt, hour] = [iso.slice(0, 10), iso.slice(11, 13)];
      const rows =
        await engine.query(`SELECT DISTINCT "$path" AS object FROM ${athenaDialect(database).table('deliveries')}
WHERE (dt > ${sqlLiteral(dt)} OR (dt = ${sqlLiteral(dt)} AND hour >= ${sqlLiteral(hour)}))
  AND (event_id = ${sqlLiteral(id)} OR contains(vehicle_ids, ${sqlLiteral(id)}))`);
      return rows
        .map((r) => String(r.object ?? ''))
        .filter((o) => o.startsWith(prefix))
        .map((o) => o.slice(prefix.length));
    },
    get: (key) => getObjectBytes(s3, bucket, key),
  };
}

/**
 * Without Athena: the raw objects since `since`, listed per event type and mode from since's dt/hour
 * on (keys sort by time within a mode), every one of them read. Fine for a small lake or a short --since.
 */
export function s3LakeReader(s3: S3Client, bucket: string, rawPrefix: string): LakeReader {
  const root = rawPrefix ? `${rawPrefix}/` : '';
  const folders = async (prefix: string) => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      );
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
      token = page.NextContinuationToken;
    } while (token);
    return out;
  };
  return {
    describe: `s3://${bucket}/${root} (listed: no Athena workgroup)`,
    async candidates(_id, since) {
      const iso = since.toISOString();
      const from = `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
      const keys: string[] = [];
      for (const type of await folders(root)) {
        for (const mode of await folders(type)) {
          for await (const key of s3Keys(s3, bucket)(mode, `${mode}${from.slice(0, -1)}`))
            if (key.endsWith('.ndjson.gz') && key.slice(mode.length) >= from) keys.push(key);
        }
      }
      return keys;
    },
    get: (key) => getObjectBytes(s3, bucket, key),
  };
}

export function s3QuarantineReader(s3: S3Client, bucket: string): QuarantineReader {
  return {
    describe: `s3://${bucket}/quarantine/`,
    keys: s3Keys(s3, bucket),
    get: (key) => getObjectBytes(s3, bucket, key),
  };
}

/**
 * The dead-letter queue, looked at without consuming: ReceiveMessage with a visibility timeout of 0 and
 * never DeleteMessage, so each message is visible again at once. A look still counts as a receive (its
 * ApproximateReceiveCount grows) and SQS samples, so a large queue is seen in part: the description
 * says how many of how many.
 */
export function dlqPeeker(sqs: SQSClient, queueUrl: string): WaitingReader {
  let seen = 0;
  let approx = '?';
  const reader = {
    get describe() {
      return `dead-letter queue ${queueUrl} (peeked ${seen} of about ${approx} message(s), none consumed)`;
    },
    async peek() {
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
      );
      approx = attrs.Attributes?.ApproximateNumberOfMessages ?? '?';
      const messages = new Map<string, string>();
      for (let round = 0; round < PEEK_LIMIT / 10 && messages.size < PEEK_LIMIT; round++) {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            VisibilityTimeout: 0,
            WaitTimeSeconds: 0,
          }),
        );
        const fresh = (out.Messages ?? []).filter((m) => m.MessageId && !messages.has(m.MessageId));
        if (fresh.length === 0) break;
        for (const m of fresh) messages.set(m.MessageId as string, m.Body ?? '');
      }
      seen = messages.size;
      return [...messages].map(([id, body]) => ({ id, body }));
    },
  };
  return reader;
}

/**
 * The landing zone (`landing/` in the lake bucket): objects the delivery stream wrote that ingest has not
 * stored and deleted yet (minutes normally; days when their notification is in the dead-letter queue), one
 * delivery a line, each a message named `<key>#<line>` as ingest names it. Keys carry the hour Firehose
 * wrote them (`landing/YYYY/MM/DD/HH/…`, UTC), so the listing starts at `since`'s hour; at most
 * {@link LANDING_PEEK_LIMIT} objects are read, oldest first, and the description says when there were more.
 */
export function landingPeeker(s3: S3Client, bucket: string, landingPrefix: string, since?: Date): WaitingReader {
  const prefix = `${landingPrefix.replace(/^\/+|\/+$/g, '')}/`;
  let read = 0;
  let more = false;
  return {
    get describe() {
      return `landing zone s3://${bucket}/${prefix} (${read} object(s) read${more ? `, the first ${LANDING_PEEK_LIMIT}: more are waiting` : ''}; accepted, not yet written to the lake)`;
    },
    async peek() {
      const hour = since?.toISOString().slice(0, 13).replace(/[-T]/g, '/');
      const keys: string[] = [];
      // Every key of since's hour and later sorts after `landing/YYYY/MM/DD/HH`; one more than the limit
      // says whether more are waiting.
      for await (const key of s3Keys(s3, bucket)(prefix, hour ? `${prefix}${hour}` : undefined)) {
        keys.push(key);
        if (keys.length > LANDING_PEEK_LIMIT) break;
      }
      more = keys.length > LANDING_PEEK_LIMIT;
      const messages: { id: string; body: string }[] = [];
      read = 0;
      for (const key of keys.slice(0, LANDING_PEEK_LIMIT)) {
        // Gone means ingested and deleted since the listing.
        const bytes = (await getObjectIfThere(s3, bucket, key))?.bytes;
        if (!bytes) continue;
        read++;
        messages.push(...landingMessages(key, bytes));
      }
      return messages;
    },
  };
}

/** The state table's items of one vehicle (lambda/adapters/dynamodb-state-store.ts), as one state per mode. */
export function dynamoStateReader(client: DynamoDBClient, table: string): StateReader {
  return {
    describe: `DynamoDB table ${table}`,
    async vehicle(vehicleId) {
      // One item per mode; items of the pre-0.4 shape (one per signal) are ignored.
      const states: VehicleState[] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const out = await client.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'vehicleId = :v',
            ExpressionAttributeValues: { ':v': { S: vehicleId } },
            ExclusiveStartKey: start,
          }),
        );
        for (const item of out.Items ?? []) if (isStateItem(item)) states.push(decodeStateItem(item).state);
        start = out.LastEvaluatedKey;
      } while (start);
      return states;
    },
  };
}

/** The work bucket's run reports written since `since` (LastModified stands for the run's end). */
export function s3ReportReader(s3: S3Client, bucket: string): ReportReader {
  return {
    describe: `s3://${bucket} (runs/ and reconcile/runs/)`,
    async reports(since) {
      const out: { key: string; at: Date; json: unknown }[] = [];
      for (const prefix of ['runs/', 'reconcile/runs/']) {
        let token: string | undefined;
        do {
          const page = await s3.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
          );
          for (const o of page.Contents ?? []) {
            if (!o.Key?.endsWith('/report.json') || o.Key.split('/').length !== prefix.split('/').length + 1) continue;
            if (!o.LastModified || o.LastModified < since) continue;
            try {
              out.push({
                key: o.Key,
                at: o.LastModified,
                json: JSON.parse((await getObjectBytes(s3, bucket, o.Key)).toString('utf8')),
              });
            } catch {
              // not JSON: not a report
            }
          }
          token = page.NextContinuationToken;
        } while (token);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------

export function printJson(result: TraceResult, print: (line: string) => void): void {
  const all = [...result.findings, ...result.timeline];
  if (all.length === 0)
    print(JSON.stringify({ kind: 'nothing', id: result.id, since: result.since, looked: result.looked }));
  for (const f of all) print(JSON.stringify({ id: result.id, ...f }));
}

function table(rows: string[][], print: (line: string) => void): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  print(line(rows[0]));
  print(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows.slice(1)) print(line(r));
}

export function printReport(result: TraceResult, print: (line: string) => void): void {
  const { findings, timeline } = result;
  if (findings.length === 0 && timeline.length === 0) {
    print(`nothing found for ${result.id} since ${result.since}; looked in: ${result.looked.join('; ')}`);
    return;
  }
  const as = result.matchedAs.length ? ` (as ${result.matchedAs.join(' and ')})` : '';
  print(`trace ${result.id}${as}, since ${result.since}`);
  const of = <K extends Finding['kind']>(kind: K) =>
    findings.filter((f): f is Extract<Finding, { kind: K }> => f.kind === kind);

  const raw = of('raw');
  if (raw.length > 0) {
    print(`\nRaw zone: ${raw.length} cop${raw.length === 1 ? 'y' : 'ies'}`);
    table(
      [
        ['received', 'type', 'mode', 'eventId', 'curated by (committed run)', 'object:line'],
        ...raw.map((f) => [
          f.receivedAt,
          f.eventType,
          f.mode,
          f.eventId,
          f.curatedBy ?? (f.objectCompactedBy ? `no (object compacted by ${f.objectCompactedBy}: a copy)` : 'not yet'),
          `${f.key}:${f.line}`,
        ]),
      ],
      print,
    );
  }
  for (const f of of('curated'))
    print(`\nCurated: ${f.eventId} by committed run ${f.runId} (${f.committedAt}); ${f.note}`);
  for (const f of of('quarantine')) {
    print(`\nQuarantine: ${f.key}:${f.line}`);
    print(`  ${f.eventType} ${f.eventId}, received ${f.receivedAt}`);
    print(`  reason: ${f.reason}`);
    print(
      `  recovered: ${f.recovered ? 'yes, handed to ingest by recover-rejected' : 'no (npm run recover-rejected, once the token is right)'}`,
    );
  }
  for (const f of of('waiting')) {
    print(`\nWaiting: ${f.where}`);
    print(`  ${f.eventType} ${f.eventId}, received ${f.receivedAt}, message ${f.messageId}`);
  }
  for (const f of of('state')) {
    print(
      `\nState of vehicle ${f.vehicleId} (${f.mode}): last delivery ${f.lastDeliveryAt}${f.note ? `; ${f.note}` : ''}`,
    );
    if (f.signals.length > 0)
      table(
        [['signal', 'value', 'since', 'eventId'], ...f.signals.map((s) => [s.code, s.value, s.receivedAt, s.eventId])],
        (l) => print(`  ${l}`),
      );
  }
  if (timeline.length > 0) {
    print(`\nTimeline of vehicle ${result.id}`);
    table(
      [['time', 'what', 'detail', 'eventId'], ...timeline.map((t) => [t.at, t.what, t.detail, t.eventId ?? ''])],
      print,
    );
  }
  const narrowed = !result.rawSearch.startsWith('all ');
  print(`\nRaw objects searched: ${result.rawSearch}${narrowed ? ' (--full-scan reads them all)' : ''}`);
}
