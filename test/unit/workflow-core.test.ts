import { MAX_RATE_LIMIT_WAITS, type RunPlan, SUMMARY_LIST_LIMIT, type VehicleOutcome } from '../../lambda/contract';
import { SmartcarApiError, type SmartcarClient } from '../../lambda/core/smartcar-client';
import {
  listPage,
  prepare,
  processVehicle,
  summarize,
  taskHandlers,
  type WorkflowDeps,
  type WorkStore,
} from '../../lambda/core/workflow';

const silent = { info() {}, warn() {}, error() {} };
const ctx = { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:sm:run-1', executionName: 'run-1' };
const plan: RunPlan = {
  runId: 'run-1',
  action: 'subscribe',
  webhookId: 'wh-1',
  tokenRef: { kind: 'executionInput', executionArn: ctx.executionArn },
  vehiclesGiven: false,
};

function memoryStore(): WorkStore & { objects: Map<string, unknown> } {
  const objects = new Map<string, unknown>();
  return {
    objects,
    async putJson(key, value) {
      objects.set(key, JSON.parse(JSON.stringify(value)));
    },
    async getJson<T>(key: string) {
      return objects.get(key) as T;
    },
    async getJsonIfExists<T>(key: string) {
      return objects.get(key) as T | undefined;
    },
    async listKeys(prefix) {
      return [...objects.keys()].filter((k) => k.startsWith(prefix));
    },
    uri: (key) => `mem://${key}`,
  };
}

function deps(client: Partial<SmartcarClient>, extra: Partial<WorkflowDeps> = {}) {
  const store = memoryStore();
  const d: WorkflowDeps = {
    client: client as SmartcarClient,
    store,
    logger: silent,
    resolveAccessToken: async () => 'token',
    managementToken: async () => 'amt',
    defaultWebhookId: 'wh-1',
    accessTokenSecretPrefix: 'smartcar/access-tokens/',
    ...extra,
  };
  return { d, store };
}

const rateLimited = new SmartcarApiError({
  status: 429,
  type: 'RATE_LIMIT',
  retryAfterSeconds: 7,
  retryable: true,
  operation: 'x',
});

describe('prepare', () => {
  it('fails when no webhook id is given or configured', async () => {
    const { d } = deps({}, { defaultWebhookId: undefined });
    await expect(prepare({ accessToken: 't' }, ctx, d)).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringContaining('-c webhookId=<id>'),
    });
  });

  it('accepts unsubscribe of named vehicles without a user token', async () => {
    const { d, store } = deps({});
    const state = await prepare({ action: 'unsubscribe', vehicleIds: ['a', 'b'] }, ctx, d);
    expect(state).toMatchObject({ done: true, vehicleCount: 2, pageOffsets: [0] });
    expect(store.objects.get('runs/run-1/pages/0000000.json')).toEqual(['a', 'b']);
  });

  it('stages given vehicles in pages of 50, without duplicates', async () => {
    const { d, store } = deps({});
    const ids = Array.from({ length: 120 }, (_, i) => `v${i}`);
    const state = await prepare({ accessToken: 't', vehicleIds: [...ids, 'v0'] }, ctx, d);
    expect(state.pageOffsets).toEqual([0, 50, 100]);
    expect(state.vehicleCount).toBe(120);
    expect(store.objects.get('runs/run-1/pages/0000100.json')).toEqual(ids.slice(100));
  });

  it('rejects a token secret it cannot read, at once', async () => {
    const { d } = deps({}, { resolveAccessToken: async () => Promise.reject(new Error('AccessDenied')) });
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:smartcar/access-tokens/u1-AbCdEf';
    await expect(prepare({ accessTokenSecretArn: arn }, ctx, d)).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringContaining('AccessDenied'),
    });
  });

  it('never puts the token in the state it returns', async () => {
    const { d } = deps({});
    const state = await prepare({ accessToken: 'secret-user-token' }, ctx, d);
    expect(JSON.stringify(state)).not.toContain('secret-user-token');
  });
});

describe('listPage', () => {
  const first = { plan, nextOffset: 0, done: false, vehicleCount: 0, pageOffsets: [], rateLimitWaits: 0 };

  it('asks for a wait on 429, and gives up after the bound', async () => {
    const { d } = deps({ listVehicles: async () => Promise.reject(rateLimited) });
    expect(await listPage(first, d)).toMatchObject({ retryAfterSeconds: 7, rateLimitWaits: 1 });
    await expect(listPage({ ...first, rateLimitWaits: MAX_RATE_LIMIT_WAITS }, d)).rejects.toMatchObject({
      name: 'Smartcar.ListingFailed',
    });
  });

  it('turns transient errors into the retryable error name and permanent ones into a failed run', async () => {
    const server = new SmartcarApiError({ status: 500, type: 'SERVER', retryable: true, operation: 'x' });
    const auth = new SmartcarApiError({ status: 401, type: 'AUTHENTICATION', retryable: false, operation: 'x' });
    await expect(listPage(first, deps({ listVehicles: async () => Promise.reject(server) }).d)).rejects.toMatchObject({
      name: 'Smartcar.Retryable',
    });
    await expect(listPage(first, deps({ listVehicles: async () => Promise.reject(auth) }).d)).rejects.toMatchObject({
      name: 'Smartcar.ListingFailed',
    });
  });
});

describe('processVehicle', () => {
  it('reports a vehicle still rate limited after the bound as failed with 429', async () => {
    const { d } = deps({ subscribe: async () => Promise.reject(rateLimited) });
    expect(await processVehicle({ vehicleId: 'v', plan, rateLimitWaits: 0 }, d)).toMatchObject({
      outcome: 'rate_limited',
      retryAfterSeconds: 7,
      rateLimitWaits: 1,
    });
    expect(await processVehicle({ vehicleId: 'v', plan, rateLimitWaits: MAX_RATE_LIMIT_WAITS }, d)).toMatchObject({
      outcome: 'failed',
      failure: { vehicleId: 'v', status: 429, type: 'RATE_LIMIT' },
    });
  });
});

describe('summarize', () => {
  it('caps the lists it returns and keeps them all in the report', async () => {
    const { d, store } = deps({});
    const n = SUMMARY_LIST_LIMIT + 5;
    const results: VehicleOutcome[] = Array.from({ length: n }, (_, i) => ({
      outcome: 'succeeded',
      vehicleId: `v${i}`,
    }));
    await store.putJson('runs/run-1/results/0000000.json', results);
    const summary = await summarize({ plan, vehicleCount: n }, d);
    expect(summary).toMatchObject({ succeededCount: n, truncated: true, report: 'mem://runs/run-1/report.json' });
    expect(summary.succeeded).toHaveLength(SUMMARY_LIST_LIMIT);
    expect((store.objects.get('runs/run-1/report.json') as { succeeded: string[] }).succeeded).toHaveLength(n);
  });
});

describe('taskHandlers', () => {
  it('rejects unknown tasks', async () => {
    const tasks = taskHandlers(deps({}).d, async () => ({}));
    await expect(tasks.plan({ task: 'nope' } as never)).rejects.toThrow(/unknown task "nope"/);
    await expect(tasks.vehicle({} as never)).rejects.toThrow(/unknown task/);
    await expect(tasks.results(undefined as never)).rejects.toThrow(/unknown task/);
  });
});
