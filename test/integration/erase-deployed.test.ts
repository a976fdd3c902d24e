/**
 * Erasure from a deployed instance against moto, two ways over the same world (test/support/erasure-world.ts):
 * a versioned lake with old versions, the landing zone (five objects the delivery stream wrote that ingest has
 * not stored), the quarantine, both dead-letter queues, the state and dedupe tables, the run reports and the
 * Athena results. The erased vehicle's id must be in no object version anywhere
 * afterwards, everything else unchanged.
 *
 * - `erase --stack` (scripts/ops/erase-deployed.ts), finding the instance from a CloudFormation stack's
 *   outputs;
 * - the synthesized erase state machine, executed in-process by aws-local-stepfunctions, each task running
 *   the real erase function (lambda/erase), with page sizes of 2 so that the raw sweep and the landing loop loop.
 *
 * One file (one moto, one module registry) for both: each world has its own names, so neither sees the other.
 */
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Resources } from '../../cli/stack';
import { ERASE_ENV, ERASE_INGEST_WAIT_SECONDS } from '../../lambda/contract';
import { subjectHash } from '../../lambda/core/erasure';
import { landingLine } from '../../lambda/core/landing';
import { handler } from '../../lambda/erase';
import { definitionFromTemplate, runLocally } from '../../local/workflow-runner';
import { eraseDeployed } from '../../scripts/ops/erase-deployed';
import { buildWorld, OTHER, snapshot, VICTIM, versionsOf, type World } from '../support/erasure-world';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';
import { type Moto, startMoto, useMoto } from '../support/moto';
import { createMarkedStack } from '../support/stack-outputs';
import { synthStack } from '../support/synth';

let moto: Moto;

beforeAll(async () => {
  moto = await startMoto();
  useMoto(moto.endpoint);
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

const LANDING = 'landing/2026/11/26/10/stream-1-2026-11-26-10';
/** One delivery a line, as the delivery stream writes them; `keep` picks the lines (their event ids stay). */
const landingLines = (i: number, vehicles: string[], keep = (_v: string) => true) =>
  vehicles
    .map((v, j) =>
      keep(v)
        ? landingLine(deliveryMessage(vehicleState(`l${i}-${j}`, { vehicleId: v }), '2026-11-26T10:00:00.000Z'))
        : '',
    )
    .join('');
/** What ingest has not stored yet: 5 objects, the victim's 4 deliveries in 0 (with another's), 2 (only theirs) and 4. */
const LANDING_OBJECTS = [[VICTIM, OTHER], [OTHER], [VICTIM, VICTIM], [OTHER], [OTHER, VICTIM]].map((vehicles, i) => ({
  key: `${LANDING}-0${i}-uuid`,
  body: landingLines(i, vehicles),
  kept: landingLines(i, vehicles, (v) => v !== VICTIM),
}));

async function putLanding(world: World): Promise<void> {
  const s3 = new S3Client({});
  for (const o of LANDING_OBJECTS)
    await s3.send(new PutObjectCommand({ Bucket: world.names.lakeBucket, Key: o.key, Body: o.body }));
}

/** The landing objects now: every one left holds the other deliveries byte for byte, 2 (only the victim's) is gone. */
function expectLandingErased(after: Awaited<ReturnType<typeof snapshot>>, world: World): void {
  for (const o of LANDING_OBJECTS) {
    const versions = after.objects.get(`${world.names.lakeBucket}/${o.key}`);
    if (o.kept === '') expect(versions).toBeUndefined();
    else expect(versions?.map((v) => [v.latest, v.text])).toEqual([[true, o.kept]]);
  }
}

describe('erase --stack', () => {
  async function deploy(name: string, world: World): Promise<Resources> {
    await createMarkedStack(name, { '': world.outputs });
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
    await putLanding(world);
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
    // Everything found is removed, but for the dedupe items, kept on purpose (event ids only; they stop redeliveries).
    expect(receipt.removed).toBe(receipt.found - 6);
    const byPlace = Object.fromEntries(
      receipt.places.map((p) => [p.place + (p.where.includes('state-dlq') ? '-state' : ''), p]),
    );
    expect(byPlace.raw).toMatchObject({ found: 6, removed: 6, rewritten: 1, deleted: 2 });
    // a: 2 old versions; b: 2 and its delete marker; d: 1 and its delete marker.
    expect(byPlace.raw.versionsDeleted).toBe(7); // a: 2 old versions; b: 2 and its marker; d: 1 and its marker
    expect(byPlace.state).toMatchObject({ found: 3, removed: 3 });
    expect(byPlace.dedupe).toMatchObject({ found: 6, removed: 0, note: expect.stringMatching(/^kept on purpose/) });
    expect(byPlace['raw-versions']).toMatchObject({ found: 0, removed: 0 });
    expect(byPlace.quarantine).toMatchObject({ found: 2, rewritten: 1, deleted: 1 });
    // In-process, the landing zone in one page of keys (it loops when there are more).
    expect(byPlace.landing).toMatchObject({ found: 4, removed: 4, rewritten: 2, deleted: 1, versionsDeleted: 2 + 2 });
    expect(byPlace.landing.note).toMatch(/^5 landing objects searched;/);
    expect(byPlace['dead-letters']).toMatchObject({ found: 2, removed: 2 });
    expect(byPlace['dead-letters-state']).toMatchObject({ found: 0 });
    expect(byPlace.reports).toMatchObject({ found: 3, rewritten: 2, deleted: 1 });
    expect(byPlace['athena-results']).toMatchObject({ found: 1, deleted: 1 });
    expect(lines).toContain(`waiting ${ERASE_INGEST_WAIT_SECONDS} s for the ingest function to see the ledger entry…`);
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

    expectLandingErased(after, world);
    expect(after.state).toEqual(untouched.state.filter((i) => !i.includes(VICTIM)));
    expect(after.state).toHaveLength(3);
    expect(after.dedupe).toEqual(untouched.dedupe);
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
});

describe('the erase state machine', () => {
  let definition: Record<string, unknown>;
  let world: World;

  beforeAll(async () => {
    definition = definitionFromTemplate(synthStack().template.toJSON() as never, 'ErasureStateMachine');
    world = await buildWorld('sfn');
    await putLanding(world);
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
      // Page ends fall on keys that stay (01, 03, 04): moto, given a key marker alone whose key is gone,
      // skips the next version (S3 lists the keys after it).
      [ERASE_ENV.landingPageSize]: '2',
      [ERASE_ENV.deadLetterWaitSeconds]: '0',
    });
  }, 60_000);

  afterAll(async () => {
    for (const name of Object.values(ERASE_ENV)) delete process.env[name];
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
    const entered = (events: Record<string, unknown>[], name: string) =>
      events.filter((e) => e.type === 'StateEntered' && (e.state as { name?: string })?.name === name).length;
    const sweeps = (events: Record<string, unknown>[]) => entered(events, 'Sweep a page of the raw zone');
    // 5 keys under raw/ at 2 a page: 3 pages.
    expect(sweeps(dry.events)).toBe(3);
    // 5 keys under landing/ at 2 a page: 3 pages, whose counts add up on the receipt.
    expect(entered(dry.events, 'Erase a page of landing deliveries')).toBe(3);
    expect(drySummary.places.find((p) => p.place === 'landing')).toMatchObject({ found: 4, removed: 0 });

    const real = await run({ vehicleId: VICTIM, reference: 'DPO-7' }, 'real');
    const summary = real.output as Summary;
    expect(summary.places.map((p) => [p.place, p.found])).toEqual(drySummary.places.map((p) => [p.place, p.found]));
    expect(summary.removed).toBe(summary.found - 6); // the dedupe items are kept on purpose
    // raw, old raw versions, state, dedupe, landing, quarantine, two DLQs, reports, results
    expect(summary.found).toBe(6 + 0 + 3 + 6 + 4 + 2 + 2 + 0 + 3 + 1);
    expect(entered(real.events, 'Erase a page of landing deliveries')).toBe(3);
    expect(summary.places.find((p) => p.place === 'landing')).toMatchObject({ found: 4, removed: 4 });
    expect(summary.receipt).toMatch(new RegExp(`^s3://${world.names.workBucket}/erasures/receipts/`));

    const after = await snapshot(world);
    for (const [where, versions] of after.objects)
      for (const v of versions) expect({ where, hasId: v.text.includes(VICTIM) }).toEqual({ where, hasId: false });
    for (const [where, versions] of after.objects)
      expect({ where, pending: where.includes('erasures/pending/') && versions.some((v) => v.latest) }).toEqual({
        where,
        pending: false,
      });
    expectLandingErased(after, world);
    expect(after.state).toHaveLength(3);
    expect(after.dedupe).toEqual(untouched.dedupe);
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
});
