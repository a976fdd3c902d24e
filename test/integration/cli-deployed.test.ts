/**
 * The operations commands against a "deployed" stack in moto: a CloudFormation stack whose outputs carry
 * the construct's markers, the queues and bucket they name. Each command finds what it needs from
 * `--stack` (and `--instance`) alone, with the same flags as locally.
 */
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { main as resourcesMain } from '../../cli/resources';
import { encodeNdjsonGzip } from '../../lambda/core/lake';
import { main as redriveMain } from '../../scripts/ops/redrive';
import { main as replayMain } from '../../scripts/ops/replay';
import { expectCleanFailure, runInProcess } from '../support/cli';
import { type Moto, startMoto, useMoto } from '../support/moto';
import { createMarkedStack } from '../support/stack-outputs';

let moto: Moto;
const sqs = () => new SQSClient({});

async function queue(name: string): Promise<string> {
  return (await sqs().send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
}

async function depth(url: string): Promise<number> {
  const out = await sqs().send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(out.Attributes?.ApproximateNumberOfMessages);
}

/** A stack whose outputs describe instances as the construct's `outputs` prop writes them. */
async function stack(name: string, instances: Record<string, Record<string, string>>): Promise<void> {
  // An output of something else in the same stack: never mistaken for one of ours.
  await createMarkedStack(name, instances, {
    TheirDeliveryQueueUrl: { Value: 'https://example.invalid/q', Description: 'the team’s own queue' },
  });
}

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

it('redrive --stack moves the dead letters of the instance it names, and only those', async () => {
  const prod = { queue: await queue('prod-delivery'), dlq: await queue('prod-dlq') };
  const staging = { queue: await queue('staging-delivery'), dlq: await queue('staging-dlq') };
  await stack('Platform', {
    Prod: { DeliveryQueueUrl: prod.queue, DeadLetterQueueUrl: prod.dlq },
    Staging: { DeliveryQueueUrl: staging.queue, DeadLetterQueueUrl: staging.dlq },
  });
  for (const url of [prod.dlq, prod.dlq, staging.dlq])
    await sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"body":"x"}' }));

  const ambiguous = await runInProcess('redrive', redriveMain, ['--stack', 'Platform']);
  expectCleanFailure(ambiguous, 2, /stack Platform has 2 instances \(Prod, Staging\): pass --instance PREFIX/);

  const moved = await runInProcess('redrive', redriveMain, ['--stack', 'Platform', '--instance', 'Staging']);
  expect(moved.stdout).toBe('moved 1 message(s) back to the delivery queue');
  expect(moved.code).toBe(0);
  expect(await depth(staging.queue)).toBe(1);
  expect(await depth(prod.dlq)).toBe(2); // production's dead letters were not touched

  const unknown = await runInProcess('redrive', redriveMain, ['--stack', 'Platform', '--instance', 'Dev']);
  expectCleanFailure(unknown, 2, /stack Platform has no instance "Dev"; it has Prod, Staging/);
  const noState = await runInProcess('redrive', redriveMain, [
    '--stack',
    'Platform',
    '--instance',
    'Prod',
    '--queue',
    'state',
  ]);
  expectCleanFailure(noState, 2, /stack Platform has no ProdStateDeadLetterQueueUrl output/);
}, 30_000);

it('replay --stack reads the lake bucket and raw prefix from the outputs', async () => {
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: 'team-lake' }));
  const record = {
    event_id: 'e1',
    event_type: 'VEHICLE_STATE',
    mode: 'live',
    received_at: '2026-11-26T10:00:00.000Z',
    ingested_at: '2026-11-26T10:00:01.000Z',
    request_id: 'r1',
    body: '{}',
    body_base64: null,
  };
  await s3.send(
    new PutObjectCommand({
      Bucket: 'team-lake',
      Key: 'smartcar/raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=10/a.ndjson.gz',
      Body: encodeNdjsonGzip([record as never]),
    }),
  );
  await stack('Lake', { '': { LakeBucketName: 'team-lake', RawPrefix: 'smartcar/raw' } });
  const dry = await runInProcess('replay', replayMain, [
    '--stack',
    'Lake',
    '--from',
    '2026-11-26T00',
    '--to',
    '2026-11-27T00',
    '--dry-run',
  ]);
  expect(dry.stderr).toBe('');
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/^dry run: s3:\/\/team-lake: \{"objectsRead":1,"recordsRead":1,/);

  const listed = await runInProcess('resources', resourcesMain, ['--stack', 'Lake', '--json']);
  expect(JSON.parse(listed.stdout)).toEqual({
    stack: 'Lake',
    instance: '',
    outputs: { LakeBucketName: 'team-lake', RawPrefix: 'smartcar/raw' },
  });
}, 30_000);

it('a stack without the outputs, or none at all, is one line that says what to do', async () => {
  await new CloudFormationClient({}).send(
    new CreateStackCommand({
      StackName: 'Bare',
      TemplateBody: JSON.stringify({
        Resources: { Q: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'bare' } } },
      }),
    }),
  );
  const bare = await runInProcess('redrive', redriveMain, ['--stack', 'Bare']);
  expectCleanFailure(
    bare,
    2,
    /stack Bare has no smartcar-webhooks outputs: turn them on with the construct's `outputs` prop/,
  );
  const missing = await runInProcess('replay', replayMain, [
    '--stack',
    'Nowhere',
    '--from',
    '2026-11-26T00',
    '--to',
    '2026-11-27T00',
  ]);
  expectCleanFailure(missing, 2, /stack Nowhere does not exist/);
  expectCleanFailure(
    await runInProcess('resources', resourcesMain, ['--stack', 'Nowhere']),
    2,
    /stack Nowhere does not exist/,
  );
}, 30_000);
