/**
 * Reconciliation end to end: the synthesized reconcile state machine run in-process with the real task
 * code against a fake of Smartcar's platform (tokens that expire, cursor and page-number paging,
 * asynchronous 202 creation, 409 duplicates, a token bucket with Retry-After, transient and permanent
 * errors), on simulated time that moves with the state machine's Wait states. Every test runs against both
 * generations of Smartcar's API (v3 connections with the application token, v2.0 management connections
 * with the management token), with the same request counts: the goal is the same cost either way.
 */
import { SMARTCAR_API_GENERATIONS } from '../../lambda/core/fleet-api';
import type { ReconcileSummary } from '../../lambda/core/reconcile';
import { connections, type FakePlatform } from '../support/fake-platform';
import { fleet as base, createdOnce, type Drill, startDrill, UNLIMITED, WEBHOOK } from '../support/reconcile-drill';

describe.each(SMARTCAR_API_GENERATIONS)('Smartcar API %s', (api) => {
  // What does not depend on how connections are listed (tokens, asynchronous creation, input checks) runs
  // once, with the default generation; the figures and the listings run with both (npm run bench:reconcile
  // compares both at 10,000 vehicles).
  const v3only = (name: string, test: () => Promise<void>) => {
    if (api === 'v3') it(name, test);
  };
  let drill: Drill;
  let fake: FakePlatform;
  let lines: string[];

  beforeAll(async () => {
    drill = await startDrill(base(), { smartcarApi: api });
    fake = drill.fake;
    lines = drill.lines;
  });
  afterAll(() => drill.stop());
  beforeEach(() => {
    lines.length = 0;
  });

  const reconcile = (input: Record<string, unknown>, extra: Parameters<Drill['run']>[1] = {}) =>
    drill.run(input, extra);

  const once = () => createdOnce(fake);

  it('first full run: every live connection subscribed once, paced, confirmed; failures reported per vehicle', async () => {
    fake.reset(base({ transient: { 'veh-000010': [500, 502] }, permanent: { 'veh-000020': 403 } }));
    const { summary, requests } = await reconcile({ kind: 'full' });
    expect(summary).toMatchObject<Partial<ReconcileSummary>>({
      kind: 'full',
      mode: 'live',
      webhookId: WEBHOOK,
      desired: 250,
      subscribed: 249,
      unsubscribed: 0,
      unchanged: 0,
      pending: 0,
    });
    expect(summary.failed).toEqual([
      expect.objectContaining({ vehicleId: 'veh-000020', op: 'create', status: 403, type: 'PERMISSION' }),
    ]);
    expect(fake.created.size).toBe(249);
    // Connections came from this generation's endpoint only, with its credential.
    const paths = new Set(fake.requests.map((r) => r.path));
    expect(paths.has(api === 'v3' ? '/v3/connections' : '/v2.0/management/connections')).toBe(true);
    expect(paths.has(api === 'v3' ? '/v2.0/management/connections' : '/v3/connections')).toBe(false);
    expect(summary).toMatchObject({ api, listingOrder: 'newest-first' });
    expect(summary.endpoints).toMatch(api === 'v3' ? /v3\/connections/ : /v2\.0\/management\/connections/);
    expect(once()).toBe(true);
    expect([...fake.created.keys()].some((id) => Number(id.slice(4)) > 250)).toBe(false); // no simulated vehicle
    // Paced under the bucket (120, then 2 a minute): almost never answered 429, and the waits were printed.
    expect(fake.rateLimited).toBeLessThanOrEqual(2);
    expect(lines.some((l) => /waiting \d+ s: pacing under the rate limit/.test(l))).toBe(true);
    expect(lines.some((l) => /waiting \d+ s: transient error, backing off/.test(l))).toBe(true);
    // The run counts its requests; the fake also saw the one retry after the application token expired (401).
    expect(summary.requests).toBe(requests - fake.requests.filter((r) => r.status === 401).length);
  });

  it('a rerun that changes nothing: a full run lists, an incremental run makes one request', async () => {
    const full = await reconcile({ kind: 'full' });
    expect(full.summary).toMatchObject({ desired: 250, unchanged: 249, subscribed: 0, failed: [expect.anything()] });
    expect(full.requests).toBe(3 + 3 + 1); // 3 pages of connections, 3 of subscriptions, the 403 again
    const incremental = await reconcile({ kind: 'incremental' });
    expect(incremental.summary).toMatchObject({ kind: 'incremental', desired: 0, subscribed: 0 });
    expect(incremental.requests).toBe(1);
    expect(once()).toBe(true);
  });

  it('an incremental run subscribes newly connected vehicles, confirming them', async () => {
    fake.connect(...connections(3, 5000));
    const limitedBefore = fake.rateLimited;
    const { summary, requests } = await reconcile({ kind: 'incremental' });
    // A new run's pacer starts from a full bucket; the real one may still be low from the last run (one 429).
    const limited = fake.rateLimited - limitedBefore;
    expect(summary).toMatchObject({ kind: 'incremental', desired: 3, subscribed: 3, pending: 0 });
    expect(['veh-005001', 'veh-005002', 'veh-005003'].every((v) => fake.created.get(v) === 1)).toBe(true);
    expect(requests - limited).toBe(1 + 3 + 3); // a page of connections, 3 creates, 3 confirming lookups
    expect(limited).toBeLessThanOrEqual(1);
    const limitedAgain = fake.rateLimited;
    const again = await reconcile({ kind: 'incremental' });
    expect(again.requests - (fake.rateLimited - limitedAgain)).toBe(1);
  });

  it('dry run reports the plan and changes nothing; prune removes what is no longer wanted', async () => {
    const gone = ['veh-000001', 'veh-000002'];
    fake.options.connections = fake.options.connections.filter((c) => !gone.includes(c.vehicleId));
    const created = fake.created.size;
    const dry = await reconcile({ kind: 'full', prune: true, dryRun: true });
    expect(dry.summary).toMatchObject({
      dryRun: true,
      toSubscribe: 1,
      toUnsubscribe: 2,
      subscribed: 0,
      unsubscribed: 0,
    });
    expect(fake.created.size).toBe(created);
    expect(fake.subscriptions.has('veh-000001')).toBe(true);
    const pruned = await reconcile({ kind: 'full', prune: true });
    expect(pruned.summary).toMatchObject({ unsubscribed: 2 });
    expect(gone.some((v) => fake.subscriptions.has(v))).toBe(false);
  });

  v3only('an application token that expires mid-run is replaced and the run goes on', async () => {
    fake.reset(base({ tokenLifetimeSeconds: 900 }));
    const { summary } = await reconcile({ kind: 'full' });
    expect(summary).toMatchObject({ subscribed: 250, failed: [] });
    const tokenRequests = fake.requests.filter((r) => r.path === '/oauth2/token').length;
    expect(tokenRequests).toBeGreaterThan(1); // the run outlived its first token
    expect(fake.requests.filter((r) => r.status === 401).length).toBeLessThanOrEqual(tokenRequests);
    expect(once()).toBe(true);
  });

  v3only(
    'subscriptions not listed yet are reported pending, and a rerun meets 409 (already subscribed), never a duplicate',
    async () => {
      fake.reset(base({ connections: connections(5), appearAfterSeconds: 24 * 3600 }));
      const first = await reconcile({ kind: 'full' });
      expect(first.summary).toMatchObject({ subscribed: 0, pending: 5 });
      expect(first.summary.pendingVehicleIds).toHaveLength(5);
      const again = await reconcile({ kind: 'full' });
      expect(again.summary).toMatchObject({ subscribed: 5, pending: 0, failed: [] }); // 409: already subscribed
      expect(fake.requests.filter((r) => r.status === 409)).toHaveLength(5);
      expect(once()).toBe(true);
    },
  );

  v3only('bad input fails with InvalidInput before any request', async () => {
    const before = fake.counts().all;
    await expect(reconcile({ kind: 'incremental', prune: true })).rejects.toMatchObject({ name: 'InvalidInput' });
    await expect(reconcile({ kind: 'full', webhookId: 'another' })).rejects.toMatchObject({
      message: expect.stringMatching(/not allowed/),
    });
    await expect(reconcile({ kind: 'full', vehicleID: 'x' })).rejects.toMatchObject({
      message: expect.stringMatching(/Unknown input/),
    });
    expect(fake.counts().all).toBe(before);
  });

  // Fleet scale (100,000 connections, several executions) is npm run bench:reconcile's; this keeps the count exact.
  it('1,000 connections: each vehicle subscribed exactly once, confirmed by listing when that is cheaper', async () => {
    fake.reset(base({ connections: connections(1000), rateLimit: UNLIMITED }));
    const { summary, requests } = await reconcile({ kind: 'full' }, { maxRequestsPerStep: 500, rateLimit: UNLIMITED });
    expect(summary).toMatchObject({ desired: 1000, subscribed: 1000, pending: 0, failed: [] });
    expect(fake.created.size).toBe(1000);
    expect(once()).toBe(true);
    expect(requests).toBe(10 + 1 + 1000 + 10); // connection pages, empty subscriptions, creates, confirming pages
  });
});
