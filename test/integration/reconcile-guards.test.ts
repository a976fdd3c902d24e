/**
 * Reconciliation when nobody is watching: the guard rails, each tried against a fake platform that
 * misbehaves the way a real one can (issue 18, items 1 to 5). Every test here failed on 0.3.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WORKFLOW_ERRORS } from '../../lambda/contract';
import { SMARTCAR_API_GENERATIONS } from '../../lambda/core/fleet-api';
import { MAX_RATE_LIMITED_STREAK } from '../../lambda/core/reconcile';
import { connections, type FakeConnection, type FakePlatform } from '../support/fake-platform';
import { createdOnce, type Drill, fleet, startDrill, UNLIMITED, WEBHOOK } from '../support/reconcile-drill';

let drill: Drill;
let fake: FakePlatform;

beforeAll(async () => {
  drill = await startDrill();
  fake = drill.fake;
});
afterAll(() => drill.stop());

/** A fresh fleet whose live vehicles are all subscribed, with a work directory of its own. */
async function subscribedFleet(extra: Parameters<typeof fleet>[0] = {}) {
  fake.reset(fleet({ rateLimit: UNLIMITED, ...extra }));
  drill.workDir = mkdtempSync(path.join(tmpdir(), 'reconcile-guards-'));
  for (const c of fake.options.connections) if (c.mode === 'live') fake.subscribe(c.vehicleId, c.userId);
}
const runWith = (input: Record<string, unknown>, extra: Parameters<Drill['run']>[1] = {}) =>
  drill.run(input, { rateLimit: UNLIMITED, maxRequestsPerStep: 500, ...extra });
const run = runWith;
const live = () => fake.options.connections.filter((c) => c.mode === 'live').map((c) => c.vehicleId);
const subscribed = (ids: string[]) => ids.filter((id) => fake.subscriptions.has(id)).length;
const deletes = () => fake.requests.filter((r) => r.method === 'DELETE').length;

describe('1. prune deletes only what a complete, well-formed listing proves gone', () => {
  it.each(
    [
      [
        'an empty listing',
        'empty',
        WORKFLOW_ERRORS.pruneStopped,
        /connections listing is empty while the webhook has 250/,
      ],
      [
        'a first page without a cursor',
        'truncated',
        WORKFLOW_ERRORS.pruneStopped,
        /would delete 150 of 250 subscriptions/,
      ],
      ['items with renamed fields', 'renamed', WORKFLOW_ERRORS.listingAnomaly, /270 connection\(s\) lacked vehicleId/],
    ]
      .map((c) => c as unknown as readonly [string, 'empty' | 'truncated' | 'renamed', string, RegExp])
      .flatMap(([name, fault, error, reason]) =>
        SMARTCAR_API_GENERATIONS.map((api) => [name, api, fault, error, reason] as const),
      ),
  )(
    '%s (API %s) deletes nothing, fails the execution with a one-line reason, and a dry run says the same',
    async (_, smartcarApi, fault, expectedError, expectedReason) => {
      // v3 reports its total: a listing that stops short is an anomaly in itself.
      const short = smartcarApi === 'v3' && fault === 'truncated';
      const error = short ? WORKFLOW_ERRORS.listingAnomaly : expectedError;
      const reason = short ? /ended 170 connection\(s\) short of the total it reported/ : expectedReason;
      await subscribedFleet({ connectionsFault: fault });
      const run = (input: Record<string, unknown>) => runWith(input, { smartcarApi });
      const dry = await run({ kind: 'full', prune: true, dryRun: true });
      expect(dry.summary).toMatchObject({ dryRun: true, toUnsubscribe: 0, failure: null });
      expect(dry.summary.refused).toMatch(reason);
      const { summary, failedWith } = await run({ kind: 'full', prune: true });
      expect(failedWith).toBe(error); // the execution fails (the failed-runs alarm) after writing its summary
      expect(summary.failure).toMatchObject({ error, cause: expect.stringMatching(reason) });
      expect(summary.refused?.split('\n')).toHaveLength(1);
      expect(summary.unsubscribed).toBe(0);
      expect(deletes()).toBe(0);
      expect(subscribed(live())).toBe(250);
    },
  );

  it('deletions above maxPruneFraction stop the prune; allowMassPrune removes them on purpose', async () => {
    await subscribedFleet();
    const gone = live().slice(0, 30); // 12% of 250
    fake.options.connections = fake.options.connections.filter((c) => !gone.includes(c.vehicleId));
    const stopped = await run({ kind: 'full', prune: true });
    expect(stopped.summary.failure?.error).toBe(WORKFLOW_ERRORS.pruneStopped);
    expect(stopped.summary.refused).toMatch(/would delete 30 of 250 subscriptions \(12%\), above maxPruneFraction 10%/);
    expect(deletes()).toBe(0);
    const intended = await run({ kind: 'full', prune: true, allowMassPrune: true });
    expect(intended.summary).toMatchObject({ unsubscribed: 30, failure: null });
    expect(subscribed(gone)).toBe(0);
  });

  it('each delete first looks the vehicle up: one gone is deleted; one the listing left out but still connected is kept, and stops the rest', async () => {
    await subscribedFleet();
    fake.options.connections = fake.options.connections.filter((c) => c.vehicleId !== 'veh-000001');
    expect((await run({ kind: 'full', prune: true })).summary).toMatchObject({
      unsubscribed: 1,
      kept: 0,
      failure: null,
    });
    expect(fake.subscriptions.has('veh-000001')).toBe(false);

    await subscribedFleet({ hiddenFromListing: ['veh-000007', 'veh-000008'] });
    const { summary, failedWith } = await run({ kind: 'full', prune: true });
    expect(failedWith).toBe(WORKFLOW_ERRORS.listingAnomaly);
    expect(summary).toMatchObject({ unsubscribed: 0, kept: 2 });
    expect(summary.refused).toMatch(/left out vehicle veh-00000[78], which is still connected/);
    expect(subscribed(['veh-000007', 'veh-000008'])).toBe(2);
    expect(deletes()).toBe(0);
  });

  it.each(SMARTCAR_API_GENERATIONS)(
    "API %s: a lookup that ignores its vehicle filter is not taken as proof: nothing it can't confirm is deleted",
    async (smartcarApi) => {
      await subscribedFleet({ connectionsFault: 'unfiltered' });
      fake.options.connections = fake.options.connections.filter((c) => c.vehicleId !== 'veh-000001');
      const { summary, failedWith } = await run({ kind: 'full', prune: true }, { smartcarApi });
      expect(summary).toMatchObject({ unsubscribed: 0, kept: 1 });
      expect(failedWith).toBe(WORKFLOW_ERRORS.listingAnomaly);
      expect(fake.subscriptions.has('veh-000001')).toBe(true);
    },
  );

  it("deletions check the subscription's own webhook: a listing that ignores its filter deletes nothing", async () => {
    await subscribedFleet({ ignoreWebhookFilter: true });
    fake.subscribe('veh-000005', 'user-000005', 'another-webhook');
    fake.subscribe('veh-999999', 'user-999999', 'another-webhook'); // not connected at all
    const { summary } = await run({ kind: 'full', prune: true });
    expect(summary.failure?.error).toBe(WORKFLOW_ERRORS.listingAnomaly);
    expect(summary.refused).toMatch(/returned 2 subscription\(s\) of other webhooks/);
    expect(deletes()).toBe(0);
    expect(fake.subscriptions.has('another-webhook/veh-999999')).toBe(true);
  });
});

describe('2. mode and selection decide what to subscribe, never what to delete', () => {
  it.each([
    ['live', 'simulated'],
    ['simulated', 'live'],
  ])('a %s prune keeps the subscriptions of connected %s vehicles', async (mode, other) => {
    await subscribedFleet();
    for (const c of fake.options.connections) if (c.mode === 'simulated') fake.subscribe(c.vehicleId, c.userId);
    const otherIds = fake.options.connections.filter((c) => c.mode === other).map((c) => c.vehicleId);
    const { summary } = await run({ kind: 'full', prune: true, mode });
    expect(summary).toMatchObject({ unsubscribed: 0, failure: null });
    expect(subscribed(otherIds)).toBe(otherIds.length);
  });

  it('an excluded user is not subscribed, and not unsubscribed either', async () => {
    await subscribedFleet();
    const { summary } = await run({ kind: 'full', prune: true, excludeUserIds: ['user-000003'] });
    expect(summary).toMatchObject({ desired: 249, unsubscribed: 0 });
    expect(fake.subscriptions.has('veh-000003')).toBe(true);
  });
});

describe('3. a watermark per webhook, mode and selection, compared as instants', () => {
  it('a simulated incremental run does not hide new live vehicles from the live one', async () => {
    await subscribedFleet();
    await run({ kind: 'full' });
    await run({ kind: 'full', mode: 'simulated' });
    fake.connect(...connections(2, 5000));
    fake.connect(...connections(1, 9000, 'simulated'));
    expect((await run({ kind: 'incremental', mode: 'simulated' })).summary).toMatchObject({ subscribed: 1 });
    expect((await run({ kind: 'incremental' })).summary).toMatchObject({ desired: 2, subscribed: 2 });
  });

  it('is kept outside the expiring run folders', async () => {
    await subscribedFleet();
    await run({ kind: 'full' });
    const dir = path.join(drill.workDir, 'reconcile', 'watermarks', WEBHOOK);
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^live-[0-9a-f]{16}-v3\.json$/)]);
  });

  it('one that cannot be read fails the run loudly instead of subscribing everything', async () => {
    await subscribedFleet();
    await run({ kind: 'full' });
    const dir = path.join(drill.workDir, 'reconcile', 'watermarks', WEBHOOK);
    const file = path.join(dir, readdirSync(dir)[0]);
    writeFileSync(file, '{"connectedAt": "yesterday"');
    const before = fake.counts().api;
    await expect(run({ kind: 'incremental' })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.watermarkUnreadable,
      message: expect.stringMatching(/cannot be read/),
    });
    expect(fake.counts().api).toBe(before);
    // A full run repairs it, as the message says; the next incremental run is one request again.
    expect((await run({ kind: 'full' })).summary).toMatchObject({ unchanged: 250, failure: null });
    expect((await run({ kind: 'incremental' })).requests).toBe(1);
  });

  it('with none yet, an incremental run compares with the subscriptions instead of creating every one', async () => {
    await subscribedFleet();
    const { summary, requests } = await run({ kind: 'incremental' });
    expect(summary).toMatchObject({ comparedAll: true, desired: 250, unchanged: 250, subscribed: 0 });
    expect(requests).toBe(3 + 3); // connections and subscriptions listed, nothing created
  });

  it('compares instants, not strings, and never asks again for connections at exactly the watermark', async () => {
    const at = (iso: string, id: string): FakeConnection => ({
      userId: `u-${id}`,
      vehicleId: id,
      connectedAt: iso,
      mode: 'live',
    });
    await subscribedFleet({ connections: [at('2026-03-01T00:00:00Z', 'veh-a')] });
    await run({ kind: 'full' });
    fake.connect(at('2026-03-01T00:00:00.500Z', 'veh-b')); // sorts before "…00Z" as a string
    expect((await run({ kind: 'incremental' })).summary).toMatchObject({ desired: 1, subscribed: 1 });
    fake.connect(at('2026-03-01T00:00:00.500Z', 'veh-c')); // at exactly the watermark
    expect((await run({ kind: 'incremental' })).summary).toMatchObject({ desired: 1, subscribed: 1 });
    const again = await run({ kind: 'incremental' });
    expect(again.summary).toMatchObject({ desired: 0 });
    expect(again.requests).toBe(1);
    expect(fake.requests.filter((r) => r.status === 409)).toHaveLength(0);
    expect(createdOnce(fake)).toBe(true);
  });
});

describe('3b. a listing that is not newest first', () => {
  it('an oldest-first listing is read to its end: the watermark never stops it early, and new vehicles are found', async () => {
    await subscribedFleet({ connections: connections(250), connectionsOrder: 'oldest' });
    await run({ kind: 'full' });
    fake.connect(...connections(2, 5000)); // listed last
    const { summary, requests } = await run({ kind: 'incremental' });
    expect(summary).toMatchObject({ listingOrder: 'unordered', desired: 2, subscribed: 2, failure: null });
    expect(requests).toBe(3 + 2 + 2); // every page of connections, two creates, two lookups
    expect(createdOnce(fake)).toBe(true);
  });

  it('v3: a first page of ties older than the watermark is no evidence of order: new vehicles listed last are still found', async () => {
    // Oldest first, and the oldest 100 connected at one instant (a bulk import): page 1 looks ordered.
    const bulk = connections(100, 0).map((c) => ({ ...c, connectedAt: '2025-01-01T00:00:00.000Z' }));
    await subscribedFleet({ connections: [...connections(20, 100), ...bulk], connectionsOrder: 'oldest' });
    await run({ kind: 'full' });
    fake.connect(...connections(5, 5000)); // newest, so listed last
    for (const round of [1, 2]) {
      const { summary } = await run({ kind: 'incremental' });
      expect({ round, ...summary }).toMatchObject({ round, desired: round === 1 ? 5 : 0, failure: null });
      expect(summary.listingOrder).toBe('unordered'); // learnt by the full run, kept with the watermark
    }
    expect(['veh-005001', 'veh-005005'].every((v) => fake.created.get(v) === 1)).toBe(true);
  });

  it('a listing whose pages are empty yet say more follow fails the run after one such page', async () => {
    await subscribedFleet({ connectionsFault: 'hollow' });
    await expect(run({ kind: 'full' })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.runaway,
      message: expect.stringMatching(/answered page 1 empty yet said more would follow/),
    });
    expect(fake.counts().api).toBeLessThanOrEqual(2);
  });

  it("each generation keeps its own watermark: a switch starts by comparing, never from the other's instant", async () => {
    await subscribedFleet();
    await run({ kind: 'full' }, { smartcarApi: 'v2' });
    await run({ kind: 'full' }, { smartcarApi: 'v3' });
    const dir = path.join(drill.workDir, 'reconcile', 'watermarks', WEBHOOK);
    const names = readdirSync(dir).sort();
    expect(names).toEqual([
      expect.stringMatching(/^live-[0-9a-f]{16}-v3\.json$/),
      expect.stringMatching(/^live-[0-9a-f]{16}\.json$/),
    ]);
    expect(JSON.parse(readFileSync(path.join(dir, names[0]), 'utf8'))).toMatchObject({ order: 'newest-first' });
  });
});

describe('4. confirmation proportional to the change', () => {
  it('one new vehicle in a fleet of 2,000 costs a handful of requests, not a listing of the webhook', async () => {
    await subscribedFleet({ connections: connections(2000) });
    await run({ kind: 'full' });
    fake.connect(...connections(1, 9000));
    const { summary, requests } = await run({ kind: 'incremental' });
    expect(summary).toMatchObject({ subscribed: 1, pending: 0 });
    expect(requests).toBe(3); // the newest page of connections, the create, its lookup
  });
});

describe('5. bounded runs', () => {
  it.each([
    ['v2', 'a cursor that never advances', /with the cursor it was asked for/],
    ['v3', 'a page number that is ignored', /with the very connections of the page before/],
  ] as const)('API %s: %s fails the run with a clear error', async (smartcarApi, _, message) => {
    await subscribedFleet({ connectionsFault: 'stuck' });
    await expect(run({ kind: 'full' }, { smartcarApi })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.runaway,
      message: expect.stringMatching(message),
    });
    expect(fake.counts().api).toBeLessThanOrEqual(3);
  });

  it('a 429 that never ends fails the run after a bounded streak', async () => {
    await subscribedFleet({ alwaysRateLimited: true });
    await expect(run({ kind: 'full' })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.runaway,
      message: expect.stringMatching(/429 \d+ times in a row/),
    });
    expect(fake.rateLimited).toBe(MAX_RATE_LIMITED_STREAK + 1);
  });

  it.each([
    ['v2', 1, 'newest-first'],
    ['v3', 30, 'unknown'],
  ] as const)(
    '3,000 vehicles connected at one instant keep the state small; the ids go to the store (API %s)',
    async (smartcarApi, rerun, listingOrder) => {
      const same = connections(3000).map((c) => ({ ...c, connectedAt: '2026-05-01T12:00:00.000Z' }));
      await subscribedFleet({ connections: same });
      const { summary, largestStateBytes } = await run({ kind: 'incremental' }, { smartcarApi });
      expect(summary).toMatchObject({ comparedAll: true, desired: 3000, unchanged: 3000 });
      expect(largestStateBytes).toBeLessThan(8 * 1024);
      const dir = path.join(drill.workDir, 'reconcile', 'watermarks', WEBHOOK);
      const watermark = JSON.parse(readFileSync(path.join(dir, readdirSync(dir)[0]), 'utf8'));
      expect(watermark.vehicleIds).toHaveLength(3000);
      // v2.0 is documented newest first: one page. Ties say nothing of v3's order, so it reads every page.
      const again = await run({ kind: 'incremental' }, { smartcarApi });
      expect(again.requests).toBe(rerun);
      expect(again.summary).toMatchObject({ desired: 0, listingOrder });
    },
  );

  it('a long run continues in new executions, each well under the history limit, and subscribes each vehicle once', async () => {
    fake.reset(fleet({ connections: connections(300) }));
    drill.workDir = mkdtempSync(path.join(tmpdir(), 'reconcile-long-'));
    const { summary, executions, maxExecutionEvents } = await drill.run(
      { kind: 'full' },
      { maxExecutionSteps: 8, maxRequestsPerStep: 25 },
    );
    expect(summary).toMatchObject({ subscribed: 300, pending: 0, failed: [] });
    expect(executions).toBeGreaterThan(2);
    expect(summary.executions).toBe(executions);
    expect(maxExecutionEvents).toBeLessThanOrEqual(8 * 9 + 20); // a step loop logs at most 9 history events
    expect(fake.created.size).toBe(300);
    expect(createdOnce(fake)).toBe(true);
    expect(drill.lines.some((l) => /continuing in a new execution: run-\d+-p2/.test(l))).toBe(true);
  });

  it('a continuation input names only a run this workflow saved', async () => {
    await expect(run({ continueRun: 'run-nope', part: 2 })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.invalidInput,
      message: expect.stringMatching(/No run run-nope was handed on/),
    });
  });

  it('one run at a time: a run that finds another holding the rate limit does nothing and says why; the lease is given back at the end', async () => {
    await subscribedFleet();
    const lease = path.join(drill.workDir, 'reconcile', 'lease.json');
    mkdirSync(path.dirname(lease), { recursive: true });
    writeFileSync(lease, JSON.stringify({ runId: 'run-elsewhere', until: fake.now() + 3600_000 }));
    const skipped = await run({ kind: 'incremental' });
    expect(skipped.requests).toBe(0);
    expect(skipped.summary.skipped).toMatch(
      /^skipped: run run-elsewhere holds the application's rate limit until .*delete .*lease\.json$/,
    );
    fake.advance(3601);
    const next = await run({ kind: 'incremental' });
    expect(next.summary).toMatchObject({ skipped: null, comparedAll: true, unchanged: 250 });
    expect(JSON.parse(readFileSync(lease, 'utf8'))).toMatchObject({ until: 0 });
  });

  it('a full run that finds another run going waits for it, then fails with the reason: never a silent skip', async () => {
    await subscribedFleet();
    const lease = path.join(drill.workDir, 'reconcile', 'lease.json');
    mkdirSync(path.dirname(lease), { recursive: true });
    writeFileSync(lease, JSON.stringify({ runId: 'run-elsewhere', until: fake.now() + 24 * 3600_000 }));
    await expect(run({ kind: 'full', prune: true })).rejects.toMatchObject({
      name: WORKFLOW_ERRORS.busy,
      message: expect.stringMatching(/run run-elsewhere holds the application's rate limit/),
    });
    expect(fake.counts().api).toBe(0);
  });
});

describe('what a run reports', () => {
  it('fails when a tenth of the desired subscriptions fail for good (bad credentials), not for one odd vehicle', async () => {
    await subscribedFleet();
    fake.subscriptions.clear();
    const permanent = Object.fromEntries(
      live()
        .slice(0, 30)
        .map((id) => [id, 403]),
    );
    fake.options.permanent = permanent;
    const { summary, failedWith } = await run({ kind: 'full' });
    expect(failedWith).toBe(WORKFLOW_ERRORS.operationsFailed);
    expect(summary.failure?.cause).toMatch(
      /^30 subscription request\(s\) failed for good, 250 vehicle\(s\) desired \(first: create veh-\d+: 403 PERMISSION\)/,
    );
    expect(summary.failed).toHaveLength(30);

    await subscribedFleet({ permanent: { 'veh-000009': 403 } });
    fake.subscriptions.delete('veh-000009');
    const one = await run({ kind: 'full' });
    expect(one.failedWith).toBeNull();
    expect(one.summary.failed).toHaveLength(1);
  });

  it('lists at most 100 ids in the returned summary (the report has them all), so the state stays small', async () => {
    await subscribedFleet({ appearAfterSeconds: 24 * 3600, connections: connections(400) });
    fake.subscriptions.clear();
    const { summary, largestStateBytes } = await run({ kind: 'full' });
    expect(summary.pending).toBe(400);
    expect(summary.pendingVehicleIds).toHaveLength(100);
    expect(largestStateBytes).toBeLessThan(16 * 1024);
  });

  it('a connection dated in the future is subscribed but never moves the watermark past now', async () => {
    await subscribedFleet();
    await run({ kind: 'full' });
    const future = new Date(fake.now() + 30 * 24 * 3600_000).toISOString();
    fake.connect({ userId: 'u-future', vehicleId: 'veh-future', connectedAt: future, mode: 'live' });
    expect((await run({ kind: 'incremental' })).summary).toMatchObject({ desired: 1, subscribed: 1 });
    fake.connect(
      ...connections(1, 7000).map((c) => ({ ...c, connectedAt: new Date(fake.now() - 1000).toISOString() })),
    );
    expect((await run({ kind: 'incremental' })).summary.desired).toBe(2); // the new one, and the future one again (409)
  });

  it('a small fleet may lose one vehicle without an alarm', async () => {
    await subscribedFleet({ connections: connections(5) });
    fake.options.connections = fake.options.connections.slice(1);
    expect((await run({ kind: 'full', prune: true })).summary).toMatchObject({ unsubscribed: 1, failure: null });
  });
});
