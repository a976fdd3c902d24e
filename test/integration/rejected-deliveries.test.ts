/**
 * Drills for token mistakes (issues 12 and 18) on the deployed code paths, against moto: the
 * verification, quarantine, recovery and ingest handlers with real SDK clients, Secrets Manager versions
 * (AWSCURRENT and AWSPREVIOUS), the quarantine queue and bucket, the delivery queue, the dedupe table and
 * the lake bucket.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import type { LakeRecord } from '../../lambda/contract';
import { main as recoverMain } from '../../scripts/ops/recover-rejected';
import { apiEvent } from '../support/api-event';
import { runInProcess } from '../support/cli';
import { sign, vehicleState } from '../support/fixtures';
import { decodeNdjsonGzip } from '../support/lake';
import { drainQueue, type Moto, startMoto, useMoto } from '../support/moto';

const OLD = 'amt-old-aaaa';
const NEW = 'amt-new-bbbb';
const LAKE = 'drill-lake';
const QUARANTINE = 'drill-quarantine';
let moto: Moto;
let s3: S3Client;
let sqs: SQSClient;
let sm: SecretsManagerClient;
let queueUrl: string;
let quarantineQueueUrl: string;
let secretArn: string;
type Handler<E, R> = (event: E) => Promise<R>;
let verify: Handler<ReturnType<typeof apiEvent>, { statusCode?: number }>;
let ingest: Handler<SQSEvent, unknown>;
let recover: Handler<Record<string, unknown>, Record<string, number | boolean>>;
let writeQuarantine: Handler<SQSEvent, unknown>;

function handlers(env: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let loaded:
    | { verify: typeof verify; ingest: typeof ingest; recover: typeof recover; writeQuarantine: typeof writeQuarantine }
    | undefined;
  jest.isolateModules(() => {
    loaded = {
      verify: require('../../lambda/verify/index').handler,
      ingest: require('../../lambda/ingest/index').handler,
      recover: require('../../lambda/recover/index').handler,
      writeQuarantine: require('../../lambda/quarantine/index').handler,
    };
  });
  process.env = saved;
  return loaded as NonNullable<typeof loaded>;
}

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  s3 = new S3Client({});
  sqs = new SQSClient({});
  sm = new SecretsManagerClient({});
  secretArn = (await sm.send(new CreateSecretCommand({ Name: 'smartcar/amt-drill', SecretString: OLD }))).ARN as string;
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'drill-deliveries' }))).QueueUrl as string;
  quarantineQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'drill-quarantine' }))).QueueUrl as string;
  for (const Bucket of [LAKE, QUARANTINE]) await s3.send(new CreateBucketCommand({ Bucket }));
  await new DynamoDBClient({}).send(
    new CreateTableCommand({
      TableName: 'drill-ids',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'eventId', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'eventId', KeyType: 'HASH' }],
    }),
  );
  Object.assign(process.env, {
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: secretArn,
    DELIVERY_QUEUE_URL: queueUrl,
    LAKE_BUCKET_NAME: LAKE,
    LAKE_RAW_PREFIX: 'raw',
    DEDUP_TABLE_NAME: 'drill-ids',
    QUARANTINE_BUCKET_NAME: QUARANTINE,
    QUARANTINE_QUEUE_URL: quarantineQueueUrl,
    QUARANTINE_MAX_PER_HOUR: '1000',
    QUARANTINE_MAX_BYTES_PER_HOUR: String(64 * 1024 ** 2),
  });
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  ({ verify, ingest, recover, writeQuarantine } = handlers());
});

afterAll(async () => {
  jest.restoreAllMocks();
  await moto?.stop();
});

const body = (eventId: string) => vehicleState(eventId);
const send = async (eventId: string, token: string) => {
  const b = body(eventId);
  return (await verify(apiEvent(b, { 'sc-signature': sign(b, token) }))).statusCode;
};

async function keys(Bucket: string, Prefix = ''): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket, Prefix }));
  return (out.Contents ?? []).map((o) => o.Key as string);
}

const drain = (url: string) => drainQueue(sqs, url);

async function ingestQueue(): Promise<void> {
  const records = await drain(queueUrl);
  if (records.length > 0) await ingest({ Records: records });
}

/** The quarantine queue's batch through the quarantine function: one object. */
async function writeQuarantined(): Promise<void> {
  const records = await drain(quarantineQueueUrl);
  if (records.length > 0) await writeQuarantine({ Records: records });
}

async function lakeEventIds(): Promise<string[]> {
  const ids: string[] = [];
  for (const Key of await keys(LAKE, 'raw/')) {
    const out = await s3.send(new GetObjectCommand({ Bucket: LAKE, Key }));
    const bytes = await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    ids.push(...decodeNdjsonGzip(bytes).map((r: LakeRecord) => r.event_id));
  }
  return ids.sort();
}

it('late secret update: rejected and quarantined, then recovered into the lake exactly once; forgeries stay out', async () => {
  // Smartcar already signs with NEW; the secret still holds OLD.
  for (const id of ['late-1', 'late-2', 'late-3', 'late-1']) expect(await send(id, NEW)).toBe(401); // late-1 retried
  expect(await send('forged-1', 'attacker-key')).toBe(401);
  await writeQuarantined();
  expect(await keys(QUARANTINE, 'quarantine/')).toHaveLength(1); // one batch, one object
  expect(await keys(LAKE, 'raw/')).toEqual([]);

  await sm.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: NEW }));
  // A dry run from a workstation (npm run recover-rejected, deployed mode) counts without changing anything.
  const dry = await runInProcess('recover-rejected', recoverMain, [
    '--bucket',
    QUARANTINE,
    '--secret-id',
    secretArn,
    '--queue-url',
    queueUrl,
    '--dedup-table',
    'drill-ids',
    '--dry-run',
  ]);
  // The retry of late-1 is byte-identical here: the same eventId, handed over once.
  expect(dry.stdout).toContain('examined 5, recovered 3, still rejected 1, already stored 1');
  expect(await keys(QUARANTINE, 'recovery/')).toEqual([]); // a dry run writes no progress

  // The recovery function (what rotate-token --recover-function invokes).
  expect(await recover({})).toEqual({
    examined: 5,
    recovered: 3,
    stillRejected: 1,
    alreadyStored: 1,
    unreadable: 0,
    done: true,
  });
  await ingestQueue();
  expect(await lakeEventIds()).toEqual(['late-1', 'late-2', 'late-3']);
  // The object holding the forgery stays until it expires, with recovery's marker beside it.
  expect(await keys(QUARANTINE, 'quarantine/')).toHaveLength(1);
  expect(await keys(QUARANTINE, 'recovery/')).toHaveLength(1);

  // Twice stores nothing twice; the forgery is still rejected, before and after.
  expect(await recover({})).toMatchObject({ recovered: 0, stillRejected: 1, done: true });
  await ingestQueue();
  expect(await lakeEventIds()).toEqual(['late-1', 'late-2', 'late-3']);
  expect(await send('forged-1', 'attacker-key')).toBe(401);
});

it('rotation: the previous token within the grace period only, the new one at once', async () => {
  // A receiver with a warm cache (NEW, from the drill above) that has not just spent its early re-reads on
  // rejected deliveries; after a burst of rejections a re-read comes at most every 30 s (flood protection).
  ({ verify } = handlers());
  expect(await send('rot-warm', NEW)).toBe(200);
  await sm.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: `${NEW}-2` }));
  // Signed with the newest token, right after the warm cache: no wait for its TTL.
  expect(await send('rot-new', `${NEW}-2`)).toBe(200);
  // Signed with the one it replaced: still accepted within the (default, 24 h) grace period.
  expect(await send('rot-prev', NEW)).toBe(200);
  // Older than the previous version: never.
  expect(await send('rot-older', OLD)).toBe(401);

  // The same function configured with no grace period left (as it is 24 h after the rotation).
  const expired = handlers({ SMARTCAR_TOKEN_GRACE_SECONDS: '0' });
  const b = body('rot-prev-late');
  expect((await expired.verify(apiEvent(b, { 'sc-signature': sign(b, NEW) }))).statusCode).toBe(401);
  const c = body('rot-new-late');
  expect((await expired.verify(apiEvent(c, { 'sc-signature': sign(c, `${NEW}-2`) }))).statusCode).toBe(200);
  await ingestQueue();
  expect(await lakeEventIds()).toEqual([
    'late-1',
    'late-2',
    'late-3',
    'rot-new',
    'rot-new-late',
    'rot-prev',
    'rot-warm',
  ]);
});

it('a warm recovery function reads the token afresh: right after the fix it recovers what it rejected before', async () => {
  const fresh = handlers();
  // The rejections of the rotation drill above, settled first by this (now warm) recovery function.
  await fresh.writeQuarantine({ Records: await drain(quarantineQueueUrl) });
  const before = (await fresh.recover({})) as { stillRejected: number };
  // Smartcar moves on to a token the secret does not hold yet: rejected, kept, and not recoverable yet.
  const b = body('after-warm');
  expect((await fresh.verify(apiEvent(b, { 'sc-signature': sign(b, `${NEW}-3`) }))).statusCode).toBe(401);
  await fresh.writeQuarantine({ Records: await drain(quarantineQueueUrl) });
  expect(await fresh.recover({})).toMatchObject({ recovered: 0, stillRejected: before.stillRejected + 1 });
  // The operator fixes the secret; the same warm recovery function is invoked at once, within the token TTL.
  await sm.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: `${NEW}-3` }));
  expect(await fresh.recover({})).toMatchObject({ recovered: 1, done: true });
  await ingestQueue();
  expect(await lakeEventIds()).toContain('after-warm');
});
