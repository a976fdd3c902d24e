/**
 * A deployed instance's data in moto for the erasure tests (erase --stack and the erase state machine):
 * a versioned lake bucket with raw objects of two vehicles (old versions too), the quarantine, both
 * dead-letter queues, the state, dedupe and lock tables, the work bucket's run reports and the Athena
 * results. `VICTIM` is erased; everything of `OTHER` must come through byte for byte.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { CreateTableCommand, DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryMessage, QuarantinedDelivery } from '../../lambda/contract';
import { encodeNdjsonGzip, toLakeRecord } from '../../lambda/core/lake';
import { dedupeKey } from '../../lambda/core/seen-store';
import { vehicleState } from './fixtures';
import { createStateTable } from './moto';

export const VICTIM = '11111111-aaaa-4bbb-8ccc-000000000001';
export const OTHER = '22222222-aaaa-4bbb-8ccc-000000000002';
const RECEIVED = '2026-11-26T10:00:00.000Z';

export interface World {
  readonly names: {
    lakeBucket: string;
    workBucket: string;
    quarantineBucket: string;
    resultsBucket: string;
    stateTable: string;
    dedupTable: string;
    lockTable: string;
    dlq: string;
    stateDlq: string;
  };
  /** Stack outputs as the construct writes them. */
  readonly outputs: Record<string, string>;
  /** Every current object's bytes, by bucket/key, before the erasure. */
  readonly before: Map<string, Buffer>;
  /** Event ids of each vehicle's records. */
  readonly eventIds: { victim: string[]; other: string[] };
}

const message = (vehicleId: string, eventId: string): DeliveryMessage => ({
  v: 1,
  bodyBase64: Buffer.from(vehicleState(eventId, { vehicleId })).toString('base64'),
  receivedAt: RECEIVED,
});

const recordsOf = (vehicleId: string, eventIds: string[]) =>
  eventIds.map((id) => toLakeRecord(message(vehicleId, id), new Date(RECEIVED)));

/** Builds the world under names suffixed with `tag` (each test its own). */
export async function buildWorld(tag: string): Promise<World> {
  const s3 = new S3Client({});
  const ddb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  const names = {
    lakeBucket: `lake-${tag}`,
    workBucket: `work-${tag}`,
    quarantineBucket: `quarantine-${tag}`,
    resultsBucket: `results-${tag}`,
    stateTable: `state-${tag}`,
    dedupTable: `dedup-${tag}`,
    lockTable: `lock-${tag}`,
    dlq: '',
    stateDlq: '',
  };
  // Independent requests go together (the world is the same; only its build is quicker). The versions of
  // one key stay in order: each put is a version after the one before.
  const buckets = [names.lakeBucket, names.workBucket, names.quarantineBucket, names.resultsBucket];
  await Promise.all(
    buckets.map(async (b) => {
      await s3.send(new CreateBucketCommand({ Bucket: b }));
      await s3.send(new PutBucketVersioningCommand({ Bucket: b, VersioningConfiguration: { Status: 'Enabled' } }));
    }),
  );
  const ev = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}-${tag}-${i}`);
  const eventIds = { victim: ev('victim', 6), other: ev('other', 5) };
  const put = (Bucket: string, Key: string, Body: Buffer | string) =>
    s3.send(new PutObjectCommand({ Bucket, Key, Body }));
  /** Puts each body in turn under one key: the older versions first, the current one last. */
  const versions = async (Bucket: string, Key: string, ...bodies: (Buffer | string)[]) => {
    for (const body of bodies) await put(Bucket, Key, body);
  };
  const raw = 'raw/dt=2026-11-26/hour=10';
  const quarantined = (vehicleId: string, eventId: string): QuarantinedDelivery => ({
    ...message(vehicleId, eventId),
    signature: 'ab'.repeat(32),
  });
  const qLines = [quarantined(OTHER, 'q-other'), quarantined(VICTIM, 'q-victim'), quarantined(OTHER, 'q-other-2')];
  const qKey = 'quarantine/dt=2026-11-26/hour=10/20261126T100000000Z-3n-100b-abcdef.ndjson.gz';
  const dedupeTables = [
    [names.dedupTable, 'eventId'],
    [names.lockTable, 'pk'],
  ];
  await Promise.all([
    // Mixed: the victim's and the other's records; an older version held only the victim's first one.
    versions(
      names.lakeBucket,
      `${raw}/a.ndjson.gz`,
      encodeNdjsonGzip(recordsOf(VICTIM, eventIds.victim.slice(0, 1))),
      encodeNdjsonGzip([
        ...recordsOf(OTHER, eventIds.other.slice(0, 2)),
        ...recordsOf(VICTIM, eventIds.victim.slice(0, 2)),
        ...recordsOf(OTHER, eventIds.other.slice(2, 3)),
      ]),
    ),
    // Only the victim's: deleted, with its old version.
    versions(
      names.lakeBucket,
      `${raw}/b.ndjson.gz`,
      encodeNdjsonGzip(recordsOf(VICTIM, eventIds.victim.slice(2, 3))),
      encodeNdjsonGzip(recordsOf(VICTIM, eventIds.victim.slice(2, 4))),
    ),
    // Only the other's, with an old version of its own that must survive.
    versions(
      names.lakeBucket,
      `${raw}/c.ndjson.gz`,
      encodeNdjsonGzip(recordsOf(OTHER, eventIds.other.slice(3, 4))),
      encodeNdjsonGzip(recordsOf(OTHER, eventIds.other.slice(3, 5))),
    ),
    // More of the victim's, so that a small page size needs several pages.
    put(names.lakeBucket, `${raw}/d.ndjson.gz`, encodeNdjsonGzip(recordsOf(VICTIM, eventIds.victim.slice(4, 6)))),
    put(names.lakeBucket, 'raw/README.txt', `not an object of the raw zone: ${OTHER}`),

    put(names.quarantineBucket, qKey, gzipSync(qLines.map((l) => JSON.stringify(l)).join('\n'))),
    put(
      names.quarantineBucket,
      'quarantine/dt=2026-11-26/hour=10/20261126T100001000Z-1n-100b-abcdef.ndjson.gz',
      gzipSync(JSON.stringify(quarantined(VICTIM, 'q-victim-2'))),
    ),

    (async () => {
      names.dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `dlq-${tag}` }))).QueueUrl as string;
      await Promise.all(
        [
          [VICTIM, 'dlq-victim'],
          [OTHER, 'dlq-other'],
          [VICTIM, 'dlq-victim-2'],
        ].map(([vehicle, id]) =>
          sqs.send(new SendMessageCommand({ QueueUrl: names.dlq, MessageBody: JSON.stringify(message(vehicle, id)) })),
        ),
      );
    })(),
    (async () => {
      names.stateDlq = (await sqs.send(new CreateQueueCommand({ QueueName: `state-dlq-${tag}` }))).QueueUrl as string;
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: names.stateDlq,
          MessageBody: JSON.stringify({ key: `${raw}/c.ndjson.gz` }),
        }),
      );
    })(),

    (async () => {
      await createStateTable(ddb, names.stateTable);
      await Promise.all(
        [VICTIM, OTHER].flatMap((v) =>
          ['live#vehicle', 'live#signal#a', 'live#signal#b'].map((sk) =>
            ddb.send(new PutItemCommand({ TableName: names.stateTable, Item: { vehicleId: { S: v }, sk: { S: sk } } })),
          ),
        ),
      );
    })(),
    (async () => {
      await Promise.all(
        dedupeTables.map(([table, key]) =>
          ddb.send(
            new CreateTableCommand({
              TableName: table,
              BillingMode: 'PAY_PER_REQUEST',
              AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
              KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
            }),
          ),
        ),
      );
      await Promise.all(
        [...eventIds.victim, ...eventIds.other].map((id) =>
          ddb.send(
            new PutItemCommand({
              TableName: names.dedupTable,
              Item: { eventId: { S: dedupeKey(id) }, expiresAt: { N: String(2e9) } },
            }),
          ),
        ),
      );
    })(),

    put(names.workBucket, 'runs/r1/pages/0000000.json', JSON.stringify([OTHER, VICTIM])),
    put(
      names.workBucket,
      'runs/r1/report.json',
      JSON.stringify({
        runId: 'r1',
        subscribed: 2,
        results: [
          { vehicleId: OTHER, status: 'ok' },
          { vehicleId: VICTIM, status: 'ok' },
        ],
      }),
    ),
    put(names.workBucket, 'reconcile/runs/x/plan.json', JSON.stringify([{ vehicleId: VICTIM, op: 'subscribe' }])),
    put(names.workBucket, 'reconcile/runs/x/outcomes/0000000.json', JSON.stringify([{ vehicleId: OTHER, ok: true }])),
    put(
      names.resultsBucket,
      'reports/silent-vehicles/2026-11-26.csv',
      `vehicle_id,last_seen\n${VICTIM},x\n${OTHER},y\n`,
    ),
    put(names.resultsBucket, 'results/q1.csv', `vehicle_id\n${OTHER}\n`),
  ]);

  const before = new Map<string, Buffer>();
  for (const [bucket, found] of await Promise.all(buckets.map(async (b) => [b, await versionsOf(s3, b)] as const)))
    for (const v of found) if (v.latest) before.set(`${bucket}/${v.key}`, v.body);
  return {
    names,
    eventIds,
    before,
    outputs: {
      LakeBucketName: names.lakeBucket,
      RawPrefix: 'raw',
      WorkBucketName: names.workBucket,
      StateTableName: names.stateTable,
      DedupTableName: names.dedupTable,
      QuarantineBucketName: names.quarantineBucket,
      DeadLetterQueueUrl: names.dlq,
      StateDeadLetterQueueUrl: names.stateDlq,
      AthenaResultsBucketName: names.resultsBucket,
      CompactionLockTableName: names.lockTable,
    },
  };
}

/** Every version (and whether it is the current one) of every object of a bucket, bodies gunzipped. */
export async function versionsOf(
  s3: S3Client,
  bucket: string,
): Promise<{ key: string; latest: boolean; body: Buffer; text: string }[]> {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
  // Fetched together, listed in the listing's order.
  return Promise.all(
    (out.Versions ?? []).map(async (v) => {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
      const body = Buffer.from(
        await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      const text = (v.Key ?? '').endsWith('.gz') ? gunzipSync(body).toString('utf8') : body.toString('utf8');
      return { key: v.Key as string, latest: Boolean(v.IsLatest), body, text };
    }),
  );
}

/** What the world looks like now, for the assertions: every place's remaining content. */
export async function snapshot(world: World) {
  const s3 = new S3Client({});
  const ddb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  const { names } = world;
  const objects = new Map<string, { latest: boolean; text: string; body: Buffer }[]>();
  const buckets = [names.lakeBucket, names.workBucket, names.quarantineBucket, names.resultsBucket];
  const listed = await Promise.all(buckets.map(async (b) => [b, await versionsOf(s3, b)] as const));
  for (const [bucket, found] of listed)
    for (const v of found) {
      const list = objects.get(`${bucket}/${v.key}`) ?? [];
      list.push(v);
      objects.set(`${bucket}/${v.key}`, list);
    }
  const items = async (table: string) =>
    ((await ddb.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? []).map((i) =>
      JSON.stringify(i),
    );
  const messages = async (url: string) => {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
    );
    return (out.Messages ?? []).map((m) => m.Body ?? '').sort();
  };
  const [state, dedupe, dlq, stateDlq, lock] = await Promise.all([
    items(names.stateTable),
    items(names.dedupTable),
    messages(names.dlq),
    messages(names.stateDlq),
    items(names.lockTable),
  ]);
  return { objects, state: state.sort(), dedupe: dedupe.sort(), dlq, stateDlq, lock };
}
