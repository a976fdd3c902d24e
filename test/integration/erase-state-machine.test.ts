/**
 * The synthesized erase state machine, executed in-process by aws-local-stepfunctions, each task running
 * the real erase function (lambda/erase) against moto: the same world and outcome as `erase --stack`,
 * with a page size of 2 so that the raw sweep loops.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { ERASE_ENV } from '../../lambda/contract';
import { handler } from '../../lambda/erase';
import { definitionFromTemplate, runLocally } from '../../local/workflow-runner';
import { buildWorld, OTHER, snapshot, VICTIM, versionsOf, type World } from '../support/erasure-world';
import { type Moto, startMoto, useMoto } from '../support/moto';
import { synthStack } from '../support/synth';

let moto: Moto;
let definition: Record<string, unknown>;
let world: World;

beforeAll(async () => {
  definition = definitionFromTemplate(synthStack().template.toJSON() as never, 'ErasureStateMachine');
  moto = await startMoto();
  useMoto(moto.endpoint);
  world = await buildWorld('sfn');
  const { names } = world;
  Object.assign(process.env, {
    [ERASE_ENV.lakeBucketName]: names.lakeBucket,
    [ERASE_ENV.lakeRawPrefix]: 'raw',
    [ERASE_ENV.workBucketName]: names.workBucket,
    [ERASE_ENV.stateTableName]: names.stateTable,
    [ERASE_ENV.dedupTableName]: names.dedupTable,
    [ERASE_ENV.quarantineBucketName]: names.quarantineBucket,
    [ERASE_ENV.deadLetterQueueUrl]: names.dlq,
    [ERASE_ENV.stateDeadLetterQueueUrl]: names.stateDlq,
    [ERASE_ENV.athenaResultsBucketName]: names.resultsBucket,
    [ERASE_ENV.lockTableName]: names.lockTable,
    [ERASE_ENV.pageSize]: '2',
    [ERASE_ENV.deadLetterWaitSeconds]: '0',
  });
}, 60_000);

afterAll(async () => {
  for (const name of Object.values(ERASE_ENV)) delete process.env[name];
  await moto?.stop();
});

async function run(input: unknown, name: string) {
  return runLocally({
    definition,
    input,
    executionName: name,
    handlers: { EraseFunction: handler as never },
    waitMs: 0,
    retryMs: 1,
  });
}

type Summary = { found: number; removed: number; receipt: string | null; places: { place: string; found: number }[] };

it('bad input fails at once with a one-line cause that does not repeat the id, touching nothing', async () => {
  const before = await snapshot(world);
  const bad = `${VICTIM} `;
  await expect(run({ vehicleId: bad }, 'bad')).rejects.toMatchObject({
    name: 'Erasure.BadInput',
    message: 'vehicleId must be 8–200 characters without surrounding spaces; nothing was erased.',
  });
  await expect(run({ userId: VICTIM, vehicleId: VICTIM }, 'both')).rejects.toMatchObject({
    name: 'Erasure.BadInput',
    message: 'name exactly one of userId or vehicleId; nothing was erased.',
  });
  await expect(run({ vehicleId: VICTIM, dryRun: 'yes' }, 'flag')).rejects.toMatchObject({
    name: 'Erasure.BadInput',
    message: 'dryRun must be true or false; nothing was erased.',
  });
  expect(await snapshot(world)).toEqual(before);
});

it('a dry run counts what the real run then removes; the sweep loops page by page', async () => {
  const untouched = await snapshot(world);
  const dry = await run({ vehicleId: VICTIM, dryRun: true }, 'dry');
  const drySummary = dry.output as Summary;
  expect(drySummary.removed).toBe(0);
  expect(await snapshot(world)).toEqual(untouched);
  const sweeps = (events: Record<string, unknown>[]) =>
    events.filter(
      (e) => e.type === 'StateEntered' && (e.state as { name?: string })?.name === 'Sweep a page of the raw zone',
    ).length;
  // 5 keys under raw/ at 2 a page: 3 pages.
  expect(sweeps(dry.events)).toBe(3);

  const real = await run({ vehicleId: VICTIM, reference: 'DPO-7' }, 'real');
  const summary = real.output as Summary;
  expect(summary.places.map((p) => [p.place, p.found])).toEqual(drySummary.places.map((p) => [p.place, p.found]));
  expect(summary.removed).toBe(summary.found);
  expect(summary.found).toBe(6 + 3 + 6 + 2 + 2 + 0 + 3 + 1); // raw, state, dedupe, quarantine, two DLQs, reports, results
  expect(summary.receipt).toMatch(new RegExp(`^s3://${world.names.workBucket}/erasures/receipts/`));

  const after = await snapshot(world);
  for (const [where, versions] of after.objects)
    for (const v of versions) expect({ where, hasId: v.text.includes(VICTIM) }).toEqual({ where, hasId: false });
  for (const [where, versions] of after.objects)
    expect({ where, pending: where.includes('erasures/pending/') && versions.some((v) => v.latest) }).toEqual({
      where,
      pending: false,
    });
  expect(after.state).toHaveLength(3);
  expect(after.dedupe).toHaveLength(5);
  expect(after.dlq).toHaveLength(1);
  expect(after.stateDlq).toEqual(untouched.stateDlq);
  expect(after.lock).toEqual([]);
  const lake = await versionsOf(new S3Client({}), world.names.lakeBucket);
  const c = lake.filter((v) => v.key.endsWith('c.ndjson.gz'));
  expect(c).toHaveLength(2); // the other vehicle's object and its old version, untouched
  expect(c.every((v) => v.text.includes(OTHER))).toBe(true);
  const ledger = JSON.parse(lake.find((v) => v.key === 'erasures/ledger.json' && v.latest)?.text ?? '{}');
  expect(ledger.entries.map((e: { status: string }) => e.status)).toEqual(['completed']);
}, 30_000);

it('a held lock fails the run with the holder named, and the run gives nothing back it does not hold', async () => {
  const { DynamoDBClient, PutItemCommand } = await import('@aws-sdk/client-dynamodb');
  const ddb = new DynamoDBClient({});
  await ddb.send(
    new PutItemCommand({
      TableName: world.names.lockTable,
      Item: {
        pk: { S: 'compaction' },
        owner: { S: 'run-9' },
        execution: { S: 'compaction run-9' },
        expiresAt: { N: String(Date.now() + 60_000) },
      },
    }),
  );
  await expect(run({ vehicleId: OTHER, dryRun: true }, 'busy')).rejects.toThrow(
    /compaction lock is held by compaction run-9/,
  );
  expect((await snapshot(world)).lock).toHaveLength(1); // still compaction's
});
