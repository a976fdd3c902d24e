/**
 * The synthesized subscription state machine, executed in-process by aws-local-stepfunctions with the
 * real task handlers, against a fake Smartcar API on 127.0.0.1 and moto for S3 and Secrets Manager.
 * Waits and retry intervals are shortened here, not in the definition.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import type { WorkflowSummary } from '../../lambda/contract';
import { definitionFromTemplate, executionArnOf, runLocally } from '../../local/workflow-runner';
import { FakeSmartcar, type FakeSmartcarOptions } from '../support/fake-smartcar';
import { type Moto, startMoto, useMoto } from '../support/moto';
import { synthStack } from '../support/synth';

const USER_TOKEN = 'user-access-token-7c1f0e';
const AMT = 'management-token-5d2a9b';
const WEBHOOK = 'wh-1';
const BUCKET = 'workflow-work';
const vehicles = (n: number) => Array.from({ length: n }, (_, i) => `veh-${String(i).padStart(5, '0')}`);

let moto: Moto;
let fake: FakeSmartcar;
let definition: Record<string, unknown>;
let s3: S3Client;
let accessTokenSecretArn: string;
const inputs = new Map<string, unknown>();
const sfn = mockClient(SFNClient);
let logs: string[] = [];
let handlers: Record<string, (event: never) => Promise<unknown>>;

beforeAll(async () => {
  definition = definitionFromTemplate(synthStack().template.toJSON() as never);
  moto = await startMoto();
  useMoto(moto.endpoint);
  fake = new FakeSmartcar(scenario(23));
  const origin = await fake.start();
  s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const sm = new SecretsManagerClient({});
  const amt = await sm.send(new CreateSecretCommand({ Name: 'smartcar/amt', SecretString: AMT }));
  accessTokenSecretArn = (
    await sm.send(new CreateSecretCommand({ Name: 'smartcar/access-tokens/user-1', SecretString: USER_TOKEN }))
  ).ARN as string;
  Object.assign(process.env, {
    WORKFLOW_BUCKET_NAME: BUCKET,
    SMARTCAR_API_ORIGIN: origin,
    SMARTCAR_WEBHOOK_ID: WEBHOOK,
    ACCESS_TOKEN_SECRET_PREFIX: 'smartcar/access-tokens/',
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: amt.ARN,
  });
  // The task handlers read the token back from their execution's input; stand in for Step Functions there.
  sfn
    .on(DescribeExecutionCommand)
    .callsFake(({ executionArn }) => ({ input: JSON.stringify(inputs.get(executionArn)) }));
  handlers = {
    PlanFunction: require('../../lambda/workflow-plan/index').handler,
    VehicleFunction: require('../../lambda/workflow-vehicle/index').handler,
    ResultsFunction: require('../../lambda/workflow-results/index').handler,
  };
});

afterAll(async () => {
  await fake?.stop();
  s3?.destroy();
  await moto?.stop();
  sfn.restore();
});

beforeEach(() => {
  logs = [];
  for (const stream of [process.stdout, process.stderr]) {
    jest.spyOn(stream, 'write').mockImplementation((chunk) => {
      logs.push(String(chunk));
      return true;
    });
  }
});
afterEach(() => jest.restoreAllMocks());

function scenario(n: number, extra: Partial<FakeSmartcarOptions> = {}): FakeSmartcarOptions {
  return { vehicles: vehicles(n), accessToken: USER_TOKEN, managementToken: AMT, webhookId: WEBHOOK, ...extra };
}

let runSeq = 0;
async function run(input: unknown) {
  const executionName = `run-${++runSeq}`;
  inputs.set(executionArnOf(executionName), input);
  const result = await runLocally({ definition, input, handlers, executionName, waitMs: 5, retryMs: 1 });
  return { ...result, summary: result.output as WorkflowSummary, executionName };
}

async function failureOf(input: unknown): Promise<{ name: string; message: string }> {
  const err = await run(input).then(
    () => undefined,
    (e: unknown) => e as Error & { cause?: unknown },
  );
  if (!err) throw new Error('expected the execution to fail');
  return { name: err.name, message: err.message };
}

async function workObjects(prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return Promise.all(
    (out.Contents ?? []).map(async (o) => {
      const obj = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key }));
      return (obj.Body as { transformToString(): Promise<string> }).transformToString();
    }),
  );
}

describe("subscribing all of a user's vehicles", () => {
  it('pages, waits out 429s, retries transient errors and reports permanent ones; each vehicle once', async () => {
    fake.reset(
      scenario(23, {
        maxPageSize: 10,
        rateLimit: { capacity: 8, refillPerSecond: 40, retryAfterSeconds: 1 },
        transient: { 'veh-00004': [500, 502], 'veh-00011': [409], 'veh-00015': [502] },
        permanent: { 'veh-00002': 404, 'veh-00007': 400, 'veh-00013': 403, 'veh-00019': 430, 'veh-00021': 501 },
      }),
    );
    const { summary, events, executionName } = await run({ accessToken: USER_TOKEN });

    const permanent = ['veh-00002', 'veh-00007', 'veh-00013', 'veh-00019', 'veh-00021'];
    expect(summary).toMatchObject({
      action: 'subscribe',
      webhookId: WEBHOOK,
      vehicleCount: 23,
      succeededCount: 18,
      failedCount: 5,
      truncated: false,
    });
    expect(summary.report).toBe(`s3://${BUCKET}/runs/${executionName}/report.json`);
    expect([...summary.succeeded].sort()).toEqual(vehicles(23).filter((v) => !permanent.includes(v)));
    expect(summary.failed.map((f) => [f.vehicleId, f.status, f.type]).sort()).toEqual([
      ['veh-00002', 404, 'RESOURCE_NOT_FOUND'],
      ['veh-00007', 400, 'VALIDATION'],
      ['veh-00013', 403, 'PERMISSION'],
      ['veh-00019', 430, 'BILLING'],
      ['veh-00021', 501, 'COMPATIBILITY'],
    ]);
    for (const f of summary.failed) expect(f.requestId).toMatch(/^req-/);

    // Exactly once: no vehicle subscribed twice, none of the failed ones subscribed at all.
    expect([...fake.subscribed.values()].every((n) => n === 1)).toBe(true);
    expect([...fake.subscribed.keys()].sort()).toEqual([...summary.succeeded].sort());
    // The run really was rate limited and really paged (3 pages of at most 10).
    expect(fake.rateLimited).toBeGreaterThan(0);
    expect(fake.calls.filter((c) => c.method === 'GET' && c.status === 200)).toHaveLength(3);
    expect(
      events.some(
        (e) => e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === 'Wait for Retry-After',
      ),
    ).toBe(true);

    // The token is in no state, output, log line or S3 object: only in the execution input the caller
    // gave, which the first state necessarily receives (and which accessTokenSecretArn avoids).
    const stateData = events
      .filter((e) => e.type !== 'ExecutionStarted')
      .map((e) => {
        const state = (e as { state?: { name?: string; input?: unknown } }).state;
        return state?.name === 'Check input' ? { ...e, state: { ...state, input: '(execution input)' } } : e;
      });
    expect(JSON.stringify(stateData)).not.toContain(USER_TOKEN);
    expect(JSON.stringify(summary)).not.toContain(USER_TOKEN);
    expect(logs.join('')).not.toContain(USER_TOKEN);
    expect((await workObjects(`runs/${executionName}/`)).join('')).not.toContain(USER_TOKEN);
  });

  it('takes the token from a secret named in accessTokenSecretArn', async () => {
    fake.reset(scenario(3));
    const { summary } = await run({ accessTokenSecretArn, vehicleIds: ['veh-00001'] });
    expect(summary).toMatchObject({ vehicleCount: 1, succeeded: ['veh-00001'], failed: [] });
  });

  it('handles a user without vehicles', async () => {
    fake.reset(scenario(0));
    const { summary } = await run({ accessToken: USER_TOKEN });
    expect(summary).toMatchObject({ vehicleCount: 0, succeeded: [], failed: [], succeededCount: 0 });
  });
});

describe('unsubscribing', () => {
  it("uses the application management token, not the user's", async () => {
    fake.reset(scenario(5));
    const { summary } = await run({ action: 'unsubscribe', vehicleIds: ['veh-00001', 'veh-00003', 'veh-00001'] });
    expect(summary).toMatchObject({ action: 'unsubscribe', vehicleCount: 2, succeededCount: 2 });
    const deletes = fake.calls.filter((c) => c.method === 'DELETE');
    expect(deletes).toHaveLength(2);
    expect(deletes.every((c) => c.authorization === `Bearer ${AMT}`)).toBe(true);
  });
});

describe('failing the run', () => {
  it('fails at once when the listing says 401: the token is bad', async () => {
    fake.reset(scenario(5, { listingStatus: 401 }));
    const err = await failureOf({ accessToken: USER_TOKEN });
    expect(err.name).toBe('Smartcar.ListingFailed');
    expect(err.message).toContain('401');
    expect(fake.calls.filter((c) => c.method === 'POST')).toHaveLength(0);
  });

  it.each([
    [{}, /No access token/],
    [{ accessToken: '' }, /non-empty string/],
    [{ accessToken: USER_TOKEN, action: 'resubscribe' }, /"subscribe" or "unsubscribe"/],
    [{ accessToken: USER_TOKEN, vehicleID: ['x'] }, /Unknown input field\(s\) "vehicleID"/],
    [{ accessToken: USER_TOKEN, vehicleIds: [] }, /is empty/],
    [{ accessToken: USER_TOKEN, webhookId: 'bad id!' }, /webhookId/],
    [{ accessToken: USER_TOKEN, webhookId: 'another-webhook' }, /"another-webhook" is not allowed/],
    [{ action: 'unsubscribe', vehicleIds: ['v1'], webhookId: 'another-webhook' }, /not allowed/],
    [
      {
        accessToken: USER_TOKEN,
        accessTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:smartcar/access-tokens/u-AbC',
      },
      /not both/,
    ],
    [
      { accessTokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x' },
      /starts with "smartcar\/access-tokens\/"/,
    ],
  ])('rejects %p as InvalidInput', async (input, message) => {
    fake.reset(scenario(2));
    const err = await failureOf(input);
    expect(err.name).toBe('InvalidInput');
    expect(err.message).toMatch(message);
    expect(fake.calls).toHaveLength(0);
  });
});
