/**
 * Fault behaviour against moto: an unreadable secret and an unavailable queue are 5xx, never 2xx; a lake
 * that cannot be written keeps every delivery (retried, then dead-lettered, then redriven and stored);
 * a partial batch failure re-delivers only the failed records; replay re-derives records in place.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { LakeRecord } from '../../lambda/contract';
import { ingestBatch } from '../../lambda/core/ingest';
import { decodeNdjsonGzip, encodeNdjsonGzip, toLakeRecord } from '../../lambda/core/lake';
import { readLake } from '../../local/file-lake';
import { directoryLake, type LakeStore, s3Lake } from '../../scripts/ops/lake-store';
import { redrive } from '../../scripts/ops/redrive';
import { replay } from '../../scripts/ops/replay';
import { apiEvent } from '../support/api-event';
import { fixture, sign, TEST_TOKEN, vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { type Moto, startMoto, useMoto } from '../support/moto';

let moto: Moto;
let sqs: SQSClient;
let s3: S3Client;
let secretArn: string;
const silent = { info() {}, warn() {}, error() {} };

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
  sqs = new SQSClient({});
  s3 = new S3Client({});
  secretArn = (
    await new SecretsManagerClient({}).send(new CreateSecretCommand({ Name: 'faults/amt', SecretString: TEST_TOKEN }))
  ).ARN as string;
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(async () => {
  jest.restoreAllMocks();
  sqs?.destroy();
  s3?.destroy();
  await moto?.stop();
});

/** Loads a handler module afresh with the given environment (handlers read it at module scope). */
function loadHandler<T>(module: string, env: Record<string, string>): T {
  Object.assign(process.env, env);
  let handler: T | undefined;
  jest.isolateModules(() => {
    handler = require(module).handler;
  });
  return handler as T;
}
type VerifyHandler = typeof import('../../lambda/verify/index').handler;
type IngestHandler = typeof import('../../lambda/ingest/index').handler;

async function queuePair(name: string, maxReceiveCount = 3) {
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl as string;
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] })))
    .Attributes?.QueueArn as string;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: String(maxReceiveCount) }),
        },
      }),
    )
  ).QueueUrl as string;
  return { queueUrl, dlqUrl };
}

async function depth(queueUrl: string): Promise<number> {
  const a = (
    await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    )
  ).Attributes;
  return Number(a?.ApproximateNumberOfMessages) + Number(a?.ApproximateNumberOfMessagesNotVisible);
}

/**
 * One poll of the Lambda event source mapping: receive a batch, invoke, delete what succeeded, and make
 * the failures visible again at once (the real mapping waits for the visibility timeout).
 */
async function pollOnce(queueUrl: string, invoke: (event: SQSEvent) => Promise<SQSBatchResponse>): Promise<number> {
  const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
  const messages = out.Messages ?? [];
  if (messages.length === 0) return 0;
  const result = await invoke({
    Records: messages.map((m) => ({ messageId: m.MessageId, body: m.Body }) as SQSRecord),
  });
  const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
  for (const m of messages) {
    if (failed.has(m.MessageId as string)) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    } else {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return messages.length;
}

async function keys(bucket: string): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key as string);
}

describe('the receiver answers 5xx, never 2xx, when it cannot do its job', () => {
  it('500 when the secret cannot be read', async () => {
    const { queueUrl } = await queuePair('no-secret');
    const verify = loadHandler<VerifyHandler>('../../lambda/verify/index', {
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf',
      DELIVERY_QUEUE_URL: queueUrl,
    });
    const body = fixture('vehicle-state');
    expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(500);
    expect((await verify(apiEvent(fixture('verify-current')))).statusCode).toBe(500);
    expect(await depth(queueUrl)).toBe(0);
  });

  it('503 when the queue does not accept the delivery', async () => {
    const verify = loadHandler<VerifyHandler>('../../lambda/verify/index', {
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: secretArn,
      DELIVERY_QUEUE_URL: `${moto.endpoint}/123456789012/no-such-queue`,
    });
    const body = fixture('vehicle-error');
    expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(503);
  });
});

describe('a lake that cannot be written loses nothing', () => {
  it('retries, dead-letters after the configured receives, and a redrive stores every delivery', async () => {
    const { queueUrl, dlqUrl } = await queuePair('s3-down', 3);
    const bucket = 'lake-comes-back';
    const verify = loadHandler<VerifyHandler>('../../lambda/verify/index', {
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: secretArn,
      DELIVERY_QUEUE_URL: queueUrl,
    });
    const sent = ['vehicle-state', 'vehicle-error', 'schedule-legacy', 'event-based-legacy'] as const;
    for (const name of sent) {
      const body = fixture(name);
      expect((await verify(apiEvent(body, { 'sc-signature': sign(body) }))).statusCode).toBe(200);
    }
    // The bucket does not exist yet: every write fails.
    const ingest = loadHandler<IngestHandler>('../../lambda/ingest/index', {
      LAKE_BUCKET_NAME: bucket,
      LAKE_RAW_PREFIX: 'raw',
    });
    for (let attempt = 0; attempt < 6 && (await depth(queueUrl)) > 0; attempt++) await pollOnce(queueUrl, ingest);
    expect(await depth(queueUrl)).toBe(0);
    expect(await depth(dlqUrl)).toBe(sent.length);

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    expect(await redrive({ dlqUrl, queueUrl, sqs })).toBe(sent.length);
    expect(await depth(dlqUrl)).toBe(0);
    while ((await pollOnce(queueUrl, ingest)) > 0);
    expect(await depth(queueUrl)).toBe(0);
    expect((await keys(bucket)).length).toBe(sent.length); // four partitions, one object each
  });

  it('a partial batch failure re-delivers only the failed records', async () => {
    const { queueUrl } = await queuePair('partial', 5);
    const bucket = 'lake-partial';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const { SendMessageCommand } = await import('@aws-sdk/client-sqs');
    for (const name of ['vehicle-state', 'vehicle-error', 'schedule-legacy'] as const) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(deliveryMessage(fixture(name), new Date().toISOString())),
        }),
      );
    }
    const attemptsByEvent = new Map<string, number>();
    let failVehicleErrorOnce = true;
    const invoke = async (event: SQSEvent): Promise<SQSBatchResponse> => {
      for (const r of event.Records) {
        const id = toLakeRecord(JSON.parse(r.body), new Date()).event_type;
        attemptsByEvent.set(id, (attemptsByEvent.get(id) ?? 0) + 1);
      }
      const result = await ingestBatch(
        event.Records.map((r) => ({ id: r.messageId, body: r.body })),
        {
          rawPrefix: 'raw',
          logger: silent,
          putObject: async (key, body) => {
            if (failVehicleErrorOnce && key.includes('VEHICLE_ERROR')) {
              failVehicleErrorOnce = false;
              throw new Error('SlowDown');
            }
            await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
          },
        },
      );
      return { batchItemFailures: result.failedIds.map((itemIdentifier) => ({ itemIdentifier })) };
    };
    while ((await pollOnce(queueUrl, invoke)) > 0);
    expect(Object.fromEntries(attemptsByEvent)).toEqual({ VEHICLE_STATE: 1, VEHICLE_ERROR: 2, schedule: 1 });
    expect((await keys(bucket)).length).toBe(3);
  });
});

describe('replay', () => {
  it('re-derives records in place, moves records whose partition changed, and is idempotent', async () => {
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'replay-'));
    const lake = directoryLake(lakeDir);
    const at = '2026-11-26T21:04:59.000Z';
    const good = toLakeRecord(deliveryMessage(fixture('vehicle-state'), at), new Date(at));
    // As an older, buggy ingest might have written it: wrong event type, partition and columns.
    const stale = {
      ...toLakeRecord(deliveryMessage(fixture('vehicle-error'), at), new Date(at)),
      event_type: 'UNKNOWN',
      vehicle_ids: [],
    };
    await lake.put('raw/event_type=UNKNOWN/mode=live/dt=2026-11-26/hour=21/old.ndjson.gz', encodeNdjsonGzip([stale]));
    await lake.put(
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=21/ok.ndjson.gz',
      encodeNdjsonGzip([good]),
    );
    await lake.put(
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-27/hour=03/later.ndjson.gz',
      encodeNdjsonGzip([good]),
    );

    const dry = await replay({ lake, from: '2026-11-26T00', to: '2026-11-27T00', dryRun: true });
    expect(dry).toMatchObject({ objectsRead: 2, objectsRewritten: 1, recordsMoved: 1, objectsUnchanged: 1 });
    expect((await readLake(lakeDir)).has('raw/event_type=UNKNOWN/mode=live/dt=2026-11-26/hour=21/old.ndjson.gz')).toBe(
      true,
    );

    const done = await replay({ lake, from: '2026-11-26T00', to: '2026-11-27T00' });
    expect(done).toMatchObject({ objectsRewritten: 1, recordsMoved: 1 });
    const objects = await readLake(lakeDir);
    expect([...objects.keys()].sort()).toEqual([
      'raw/event_type=VEHICLE_ERROR/mode=live/dt=2026-11-26/hour=21/old-replayed.ndjson.gz',
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=21/ok.ndjson.gz',
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-27/hour=03/later.ndjson.gz',
    ]);
    const [fixed] =
      objects.get('raw/event_type=VEHICLE_ERROR/mode=live/dt=2026-11-26/hour=21/old-replayed.ndjson.gz') ?? [];
    expect(fixed).toMatchObject({
      event_type: 'VEHICLE_ERROR',
      vehicle_ids: ['9af13248-3b73-4c9d-9a4b-d937ce6bc8e2'],
      body: stale.body,
    });

    expect(await replay({ lake, from: '2026-11-26T00', to: '2026-11-27T00' })).toMatchObject({
      objectsRewritten: 0,
      objectsUnchanged: 2,
    });
    await expect(replay({ lake, from: '2026-11-26', to: '2026-11-27T00' })).rejects.toThrow(/YYYY-MM-DDTHH/);
  });

  describe.each([
    ['a local lake directory', async () => directoryLake(mkdtempSync(path.join(tmpdir(), 'replay-merge-')))],
    [
      'an S3 bucket (moto)',
      async () => {
        const bucket = `replay-merge-${Date.now()}`;
        await new S3Client({}).send(new CreateBucketCommand({ Bucket: bucket }));
        return s3Lake(bucket);
      },
    ],
  ])('on %s', (_, makeLake) => {
    const at = (m: number) => `2026-11-26T21:${String(m).padStart(2, '0')}:00.000Z`;
    const ids = ['evt-1', 'evt-2', 'evt-3', 'evt-4'];
    const source = 'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=21/batch.ndjson.gz';
    const body = (id: string) => vehicleState(id);
    /** Partition rules that send the named events to event_type=MOVED and the rest where they belong. */
    const movingTo = (moved: string[]) => (r: LakeRecord) => ({
      ...r,
      event_type: moved.includes(r.event_id) ? 'MOVED' : 'VEHICLE_STATE',
    });
    const census = async (lake: LakeStore) => {
      const count = new Map<string, number>();
      for (const key of await lake.list('raw/')) {
        for (const r of decodeNdjsonGzip(await lake.get(key))) count.set(r.event_id, (count.get(r.event_id) ?? 0) + 1);
      }
      return Object.fromEntries([...count].sort());
    };
    const once = Object.fromEntries(ids.map((id) => [id, 1]));
    const range = { from: '2026-11-26T00', to: '2026-11-27T00' };

    it('successive replays with changed partition rules keep every record exactly once', async () => {
      const lake = await makeLake();
      const records = ids.map((id, i) => toLakeRecord(deliveryMessage(body(id), at(i)), new Date(at(i))));
      await lake.put(source, encodeNdjsonGzip(records));
      expect(await census(lake)).toEqual(once);

      // Rule change 1 moves evt-1; rule change 2 also moves evt-2, into the same destination object.
      await replay({ lake, ...range, derive: movingTo(['evt-1']) });
      expect(await census(lake)).toEqual(once);
      await replay({ lake, ...range, derive: movingTo(['evt-1', 'evt-2']) });
      expect(await census(lake)).toEqual(once);
      const moved = decodeNdjsonGzip(
        await lake.get('raw/event_type=MOVED/mode=live/dt=2026-11-26/hour=21/batch-replayed.ndjson.gz'),
      );
      expect(moved.map((r) => r.event_id).sort()).toEqual(['evt-1', 'evt-2']);

      // The same rules again change nothing; moving everything back merges into one object, still once each.
      expect(await replay({ lake, ...range, derive: movingTo(['evt-1', 'evt-2']) })).toMatchObject({
        objectsRewritten: 0,
      });
      await replay({ lake, ...range, derive: movingTo([]) });
      expect(await census(lake)).toEqual(once);
      expect((await lake.list('raw/event_type=MOVED/')).length).toBe(0);
    });

    it('a source is never changed when its moved records could not be written', async () => {
      const lake = await makeLake();
      const records = ids.map((id, i) => toLakeRecord(deliveryMessage(body(id), at(i)), new Date(at(i))));
      await lake.put(source, encodeNdjsonGzip(records));
      const failing: LakeStore = {
        ...lake,
        put: async (key, bytes) => {
          if (key.includes('-replayed')) throw new Error('injected: destination unwritable');
          return lake.put(key, bytes);
        },
      };
      await expect(replay({ lake: failing, ...range, derive: movingTo(['evt-3']) })).rejects.toThrow(/injected/);
      expect(decodeNdjsonGzip(await lake.get(source)).map((r) => r.event_id)).toEqual(ids);
      // Rerun once the destination is writable: everything lands, once.
      await replay({ lake, ...range, derive: movingTo(['evt-3']) });
      expect(await census(lake)).toEqual(once);
    });
  });
});
