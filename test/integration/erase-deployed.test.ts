/**
 * `erase --stack` (scripts/ops/erase-deployed.ts) against moto: a versioned lake with old versions, the
 * quarantine, both dead-letter queues, the state and dedupe tables, the run reports and the Athena results.
 * The erased vehicle's id must be in no object version anywhere afterwards, everything else unchanged.
 */
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { Resources } from '../../cli/stack';
import { subjectHash } from '../../lambda/core/erasure';
import { eraseDeployed } from '../../scripts/ops/erase-deployed';
import { buildWorld, OTHER, snapshot, VICTIM, type World } from '../support/erasure-world';
import { type Moto, startMoto, useMoto } from '../support/moto';

let moto: Moto;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

async function deploy(name: string, world: World): Promise<Resources> {
  const Outputs: Record<string, { Value: string; Description: string }> = {};
  for (const [key, value] of Object.entries(world.outputs))
    Outputs[key] = { Value: value, Description: `[smartcar-webhooks:default] ${key}` };
  await new CloudFormationClient({}).send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify({
        Resources: { Marker: { Type: 'AWS::SQS::Queue', Properties: { QueueName: `${name}-marker` } } },
        Outputs,
      }),
    }),
  );
  return Resources.of({ values: { stack: name }, positionals: [] });
}

const options = (dryRun: boolean, lines: string[] = []) => ({
  subject: { kind: 'vehicle' as const, id: VICTIM },
  dryRun,
  reference: 'DPO-42',
  smartcar: false,
  log: (line: string) => lines.push(line),
  wait: async () => {},
  deadLetters: { waitSeconds: 0 },
  clients: { s3: new S3Client({}) },
});

it('erases a vehicle from every deployed place, old versions included, and nothing else', async () => {
  const world = await buildWorld('one');
  const resources = await deploy('EraseOne', world);
  const untouched = await snapshot(world);

  const dryLines: string[] = [];
  const dry = await eraseDeployed(resources, options(true, dryLines));
  expect(await snapshot(world)).toEqual(untouched); // a dry run changes nothing, writes no ledger
  expect(dry.removed).toBe(0);

  const lines: string[] = [];
  const receipt = await eraseDeployed(resources, options(false, lines));
  const found = (r: typeof receipt) => Object.fromEntries(r.places.map((p) => [`${p.place} ${p.where}`, p.found]));
  expect(found(receipt)).toEqual(found(dry)); // the dry run counted what the real run removed
  expect(receipt.removed).toBe(receipt.found);
  const byPlace = Object.fromEntries(
    receipt.places.map((p) => [p.place + (p.where.includes('state-dlq') ? '-state' : ''), p]),
  );
  expect(byPlace.raw).toMatchObject({ found: 6, removed: 6, rewritten: 1, deleted: 2 });
  // a: 2 old versions; b: 2 and its delete marker; d: 1 and its delete marker.
  expect(byPlace.raw.versionsDeleted).toBe(7); // a: 2 old versions; b: 2 and its marker; d: 1 and its marker
  expect(byPlace.state).toMatchObject({ found: 3, removed: 3 });
  expect(byPlace.dedupe).toMatchObject({ found: 6, removed: 6 });
  expect(byPlace.quarantine).toMatchObject({ found: 2, rewritten: 1, deleted: 1 });
  expect(byPlace['dead-letters']).toMatchObject({ found: 2, removed: 2 });
  expect(byPlace['dead-letters-state']).toMatchObject({ found: 0 });
  expect(byPlace.reports).toMatchObject({ found: 3, rewritten: 2, deleted: 1 });
  expect(byPlace['athena-results']).toMatchObject({ found: 1, deleted: 1 });
  expect(lines).toContain('waiting 70 s for the ingest function to see the ledger entry…');
  expect(dryLines.some((l) => l.startsWith('waiting'))).toBe(false);
  expect(receipt.outside.join('\n')).toMatch(/list-archives/);
  expect(receipt.requestedBy).toMatch(/^arn:aws:/);

  const after = await snapshot(world);
  // The id is in no version of any object, current or not (the ledger and the receipt included).
  for (const [where, versions] of after.objects)
    for (const v of versions) expect({ where, hasId: v.text.includes(VICTIM) }).toEqual({ where, hasId: false });
  // Every object without the victim is byte for byte what it was; the rewritten ones keep the others' lines.
  for (const [where, body] of world.before) {
    const text = body.toString('utf8');
    const now = after.objects.get(where)?.find((v) => v.latest);
    if (!where.includes('.gz') && !text.includes(VICTIM)) expect(now?.body.equals(body)).toBe(true);
  }
  const lake = world.names.lakeBucket;
  const c = after.objects.get(`${lake}/raw/dt=2026-11-26/hour=10/c.ndjson.gz`) ?? [];
  expect(c.length).toBe(2); // the other vehicle's object keeps its old version
  expect(
    c.find((v) => v.latest)?.body.equals(world.before.get(`${lake}/raw/dt=2026-11-26/hour=10/c.ndjson.gz`) as Buffer),
  ).toBe(true);
  const a = after.objects.get(`${lake}/raw/dt=2026-11-26/hour=10/a.ndjson.gz`) ?? [];
  expect(a.map((v) => v.latest)).toEqual([true]);
  const beforeLines = (await import('node:zlib'))
    .gunzipSync(world.before.get(`${lake}/raw/dt=2026-11-26/hour=10/a.ndjson.gz`) as Buffer)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.includes(OTHER));
  expect(a[0].text.split('\n').filter((l) => l !== '')).toEqual(beforeLines);
  expect(after.objects.has(`${lake}/raw/dt=2026-11-26/hour=10/b.ndjson.gz`)).toBe(false);

  expect(after.state).toEqual(untouched.state.filter((i) => !i.includes(VICTIM)));
  expect(after.state).toHaveLength(3);
  expect(after.dedupe).toEqual(untouched.dedupe.filter((i) => !world.eventIds.victim.some((id) => i.includes(id))));
  expect(after.dedupe).toHaveLength(5);
  // The other dead letters are still there and receivable.
  const decoded = (m: string) => Buffer.from(JSON.parse(m).bodyBase64, 'base64').toString('utf8');
  expect(after.dlq).toEqual(untouched.dlq.filter((m) => !decoded(m).includes(VICTIM)));
  expect(after.dlq).toHaveLength(1);
  expect(after.stateDlq).toEqual(untouched.stateDlq);
  expect(after.lock).toEqual([]); // the lock was given back

  const ledger = JSON.parse(after.objects.get(`${lake}/erasures/ledger.json`)?.find((v) => v.latest)?.text ?? '{}');
  expect(ledger.entries).toHaveLength(1);
  expect(ledger.entries[0]).toMatchObject({
    kind: 'vehicle',
    status: 'completed',
    subject: subjectHash(ledger.salt, 'vehicle', VICTIM),
  });
  expect(receipt.receiptKey).toBe(`s3://${world.names.workBucket}/erasures/receipts/${receipt.erasureId}.json`);
  const stored = JSON.parse(
    after.objects.get(`${world.names.workBucket}/erasures/receipts/${receipt.erasureId}.json`)?.[0].text ?? '{}',
  );
  expect(stored).toMatchObject({
    reference: 'DPO-42',
    removed: receipt.removed,
    subject: { hash: ledger.entries[0].subject },
  });

  // A rerun finds nothing more (idempotent).
  const again = await eraseDeployed(resources, options(false));
  expect(again.found).toBe(0);
}, 30_000);

it('refuses while compaction (or another erasure) holds the lock, naming the holder, and changes nothing', async () => {
  const world = await buildWorld('busy');
  const resources = await deploy('EraseBusy', world);
  await new DynamoDBClient({}).send(
    new PutItemCommand({
      TableName: world.names.lockTable,
      Item: {
        pk: { S: 'compaction' },
        owner: { S: 'run-1' },
        execution: { S: 'arn:aws:states:us-east-1:123456789012:execution:Compaction:run-1' },
        expiresAt: { N: String(Date.now() + 60_000) },
      },
    }),
  );
  const untouched = await snapshot(world);
  await expect(eraseDeployed(resources, options(false))).rejects.toThrow(
    /^the compaction lock is held by arn:aws:states:.*execution:Compaction:run-1 until \S+ at the latest/,
  );
  expect(await snapshot(world)).toEqual(untouched);
}, 20_000);
