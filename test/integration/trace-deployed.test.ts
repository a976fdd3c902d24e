/**
 * `trace --stack` against moto: the lake, quarantine and work buckets (S3), the dead-letter queue (SQS,
 * peeked and left in place) and the state table (DynamoDB), found from a CloudFormation stack's outputs.
 * Moto's Athena runs no SQL, so a fake query engine stands in for it; it checks the SQL it is given
 * and answers what Athena would.
 */

import { gzipSync } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { QueryEngine, Row } from '../../cli/query-engine';
import { main as traceMain } from '../../cli/trace';
import { dynamoStateStore } from '../../lambda/adapters/dynamodb-state-store';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { landingLine } from '../../lambda/core/landing';
import { quarantineObjectKey } from '../../lambda/core/quarantine';
import { statesOf } from '../../lambda/core/vehicle-state';
import { runInProcess } from '../support/cli';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { createStateTable, type Moto, startMoto, useMoto } from '../support/moto';
import { createMarkedStack } from '../support/stack-outputs';

const VEHICLE = 'veh-deployed';
const SIGNATURE = 'e'.repeat(64);
const now = Date.now();
let moto: Moto;
let rawKey: string;
let dlqUrl: string;
const sql: string[] = [];

/** Athena's answers: the raw object holding evt-d1 (or the vehicle), and evt-d1's committed curation. */
const engine: QueryEngine = {
  describe: 'fake Athena',
  async query(text): Promise<Row[]> {
    sql.push(text);
    if (text.includes('"$path"'))
      return /'(evt-d1|veh-deployed)'/.test(text) ? [{ object: `s3://trace-lake/${rawKey}` }] : [];
    if (text.includes('"curated_deliveries"') && text.includes("'evt-d1'"))
      return [
        {
          event_id: 'evt-d1',
          vehicle_id: VEHICLE,
          run_id: 'run-1',
          copies: '1',
          received_at: new Date(now - 3_600_000).toISOString(),
          committed_at: '2026-01-01T00:00:00Z',
        },
      ];
    return [];
  },
};

const trace = (argv: string[]) =>
  runInProcess('trace', () => traceMain(undefined, { engine }), [...argv, '--stack', 'Traced']);

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  const s3 = new S3Client({});
  for (const b of ['trace-lake', 'trace-quarantine', 'trace-work'])
    await s3.send(new CreateBucketCommand({ Bucket: b }));
  const at = new Date(now - 3_600_000);
  const records = [
    vehicleState('evt-other', { vehicleId: 'x' }),
    vehicleState('evt-d1', { vehicleId: VEHICLE, value: 64 }),
  ].map((b) => toLakeRecord(deliveryMessage(b, at.toISOString()), at));
  rawKey = objectKey(partitionPrefix('smartcar/raw', partitionOf(records[0])), records, ['m1']);
  await s3.send(new PutObjectCommand({ Bucket: 'trace-lake', Key: rawKey, Body: encodeNdjsonGzip(records) }));

  // Accepted, in a landing object the delivery stream wrote this hour; ingest has not stored it yet.
  const stamp = new Date(now).toISOString().slice(0, 13).replace(/[-T]/g, '/');
  await s3.send(
    new PutObjectCommand({
      Bucket: 'trace-lake',
      Key: `landing/${stamp}/stream-1-x`,
      Body: [
        landingLine(deliveryMessage(vehicleState('evt-o', { vehicleId: 'veh-o' }), at.toISOString())),
        landingLine(deliveryMessage(vehicleState('evt-landed', { vehicleId: 'veh-l' }), at.toISOString())),
      ].join(''),
    }),
  );
  // An hour before --since: not listed.
  const early = new Date(now - 3 * 3_600_000).toISOString().slice(0, 13).replace(/[-T]/g, '/');
  await s3.send(
    new PutObjectCommand({
      Bucket: 'trace-lake',
      Key: `landing/${early}/stream-1-y`,
      Body: landingLine(deliveryMessage(vehicleState('evt-early', { vehicleId: 'veh-e' }), at.toISOString())),
    }),
  );

  const rejected = {
    v: 1,
    bodyBase64: Buffer.from(vehicleState('evt-q', { vehicleId: 'veh-q' })).toString('base64'),
    signature: SIGNATURE,
    receivedAt: at.toISOString(),
  };
  const qBody = gzipSync(`${JSON.stringify(rejected)}\n`);
  await s3.send(
    new PutObjectCommand({ Bucket: 'trace-quarantine', Key: quarantineObjectKey(at, 1, 10, qBody), Body: qBody }),
  );
  await s3.send(
    new PutObjectCommand({
      Bucket: 'trace-work',
      Key: 'reconcile/runs/nightly-1/report.json',
      Body: JSON.stringify({
        dryRun: false,
        outcomes: [{ result: 'accepted', op: { op: 'create', vehicleId: VEHICLE, userId: 'u' } }],
      }),
    }),
  );

  const sqs = new SQSClient({});
  dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'trace-dlq' }))).QueueUrl as string;
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlqUrl,
      MessageBody: JSON.stringify(
        deliveryMessage(vehicleState('evt-dead', { vehicleId: 'veh-dead' }), at.toISOString()),
      ),
    }),
  );

  const dynamodb = new DynamoDBClient({});
  await createStateTable(dynamodb, 'trace-state');
  await dynamoStateStore(dynamodb, 'trace-state').apply(statesOf(records));

  const outputs = {
    LakeBucketName: 'trace-lake',
    RawPrefix: 'smartcar/raw',
    QuarantineBucketName: 'trace-quarantine',
    WorkBucketName: 'trace-work',
    DeadLetterQueueUrl: dlqUrl,
    StateTableName: 'trace-state',
    AthenaWorkGroup: 'trace-wg',
    GlueDatabase: 'trace_db',
  };
  await createMarkedStack('Traced', { '': outputs });
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

it('an eventId: Athena finds the object, S3 gives the line, the curated layer and the state table say the rest', async () => {
  sql.length = 0;
  const r = await trace(['evt-d1', '--json']);
  expect(r.stderr).toBe('');
  const rows = r.stdout.split('\n').map((l) => JSON.parse(l));
  expect(rows.find((x) => x.kind === 'raw')).toMatchObject({
    key: rawKey,
    line: 2,
    curatedBy: 'run-1',
    vehicleIds: [VEHICLE],
  });
  expect(rows.find((x) => x.kind === 'state')).toMatchObject({
    vehicleId: VEHICLE,
    signals: [
      expect.objectContaining({ code: 'tractionbattery-stateofcharge', value: '64 percent', eventId: 'evt-d1' }),
    ],
  });
  // Partition-pruned, in the stack's database, the id a literal.
  expect(sql[0]).toMatch(
    /FROM "trace_db"\."deliveries"\s+WHERE \(dt > '[0-9-]+' OR \(dt = '[0-9-]+' AND hour >= '\d\d'\)\)/,
  );
  expect(sql[0]).toContain("contains(vehicle_ids, 'evt-d1')");
  expect(sql.some((s) => s.includes('"trace_db"."compaction_commits"'))).toBe(true);
}, 20_000);

it('the dead-letter queue is peeked, not consumed; the quarantine keeps no signature on screen', async () => {
  const dead = await trace(['evt-dead']);
  expect(dead.code).toBe(0);
  expect(dead.stdout).toMatch(
    /Waiting: dead-letter queue \S+trace-dlq \(peeked 1 of about 1 message\(s\), none consumed\)/,
  );
  const attrs = await new SQSClient({}).send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  expect(attrs.Attributes?.ApproximateNumberOfMessages).toBe('1'); // still there, visible at once

  const q = await trace(['evt-q']);
  expect(q.stdout).toMatch(/Quarantine: quarantine\/dt=\S+:1/);
  expect(q.stdout).toMatch(/reason: SC-Signature did not match/);
  expect(q.stdout + q.stderr).not.toContain(SIGNATURE);
}, 20_000);

it('landing objects are read as waiting deliveries, from --since hour on', async () => {
  const since = new Date(now - 2 * 3_600_000).toISOString();
  const r = await trace(['evt-landed', '--since', since, '--json']);
  expect(r.code).toBe(0);
  const rows = r.stdout.split('\n').map((l) => JSON.parse(l));
  expect(rows.find((x) => x.kind === 'waiting')).toMatchObject({
    where: 'landing zone s3://trace-lake/landing/ (1 object(s) read; accepted, not yet written to the lake)',
    messageId: expect.stringMatching(/^landing\/\d{4}\/\d\d\/\d\d\/\d\d\/stream-1-x#2$/),
    eventId: 'evt-landed',
  });
  const early = await trace(['evt-early', '--since', since]);
  expect(early.stdout).toMatch(/^nothing found for evt-early/);
}, 20_000);

it("a vehicle: its deliveries, its state from the table, its subscription from reconcile's report", async () => {
  const r = await trace([VEHICLE]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/State of vehicle veh-deployed \(live\)/);
  expect(r.stdout).toMatch(/delivery\s+VEHICLE_STATE \(live\)\s+evt-d1/);
  expect(r.stdout).toMatch(/subscribed\s+reconcile run nightly-1: create accepted/);
  const none = await trace(['veh-unknown']);
  expect(none.stdout).toMatch(
    /^nothing found for veh-unknown since \S+; looked in: raw zone: s3:\/\/trace-lake .*dead-letter queue/,
  );
}, 20_000);
