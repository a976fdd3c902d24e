/**
 * Auto-enrollment awareness, drilled against the fake platform: when the last webhook health check read
 * that the webhook auto-subscribes every vehicle, a reconcile run says so in one line and neither creates
 * nor prunes (no request at all); a stale check, or a webhook that does not auto-subscribe, changes nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main as fleetMain } from '../../local/fleet';
import { webhookHealthLocally } from '../../local/reconcile';
import { runInProcess } from '../support/cli';
import { createdOnce, type Drill, fleet, startDrill, UNLIMITED, WEBHOOK } from '../support/reconcile-drill';

let drill: Drill;
beforeAll(async () => {
  drill = await startDrill(fleet({ rateLimit: UNLIMITED, appearAfterSeconds: 0 }));
});
afterAll(() => drill.stop());

const check = (lines: string[] = []) =>
  webhookHealthLocally({
    apiOrigin: drill.origin,
    clientId: 'client-1',
    clientSecret: 'client-secret-1',
    webhookId: WEBHOOK,
    workDir: drill.workDir,
    expectedCallbackUrl: 'https://example.com/webhook',
    print: (l) => lines.push(l),
    now: () => drill.fake.now(),
  });

it('stands aside for a webhook that auto-subscribes every vehicle: one line, no create, no prune', async () => {
  drill.fake.options.webhook = { autoSubscribe: true };
  drill.fake.subscribe('veh-gone', 'user-gone'); // would be pruned by a normal run
  const lines: string[] = [];
  const report = await check(lines);
  expect(lines).toEqual([expect.stringMatching(/^webhook wh-fleet: healthy \(.*auto-subscribes every vehicle\)$/)]);
  expect(report.webhook?.autoEnroll).toBe(true);
  const { summary, requests } = await drill.run({ kind: 'full', prune: true, mode: 'all' });
  expect(summary.autoEnroll).toBe(true);
  expect(summary.skipped).toMatch(
    /^skipped: auto-enrollment: webhook wh-fleet auto-subscribes every vehicle .*; reconcile neither creates nor prunes its subscriptions$/,
  );
  expect(summary).toMatchObject({ subscribed: 0, unsubscribed: 0, toSubscribe: 0, toUnsubscribe: 0, failure: null });
  expect(requests).toBe(0);
  expect(drill.fake.created.size).toBe(0);
  expect(drill.fake.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
});

it('heeds only a recent check: an hour later the run reconciles as usual', async () => {
  drill.fake.advance(3601);
  const { summary } = await drill.run({ kind: 'full' });
  expect(summary.skipped).toBeNull();
  expect(summary.autoEnroll).toBeNull();
  expect(summary.subscribed).toBe(250);
  expect(createdOnce(drill.fake)).toBe(true);
});

it('reconciles as usual, saying autoEnroll false, when the webhook does not auto-subscribe', async () => {
  drill.fake.options.webhook = { autoSubscribe: false };
  await check();
  drill.fake.connect({ userId: 'user-new', vehicleId: 'veh-new', connectedAt: '2026-11-26T00:00:00Z', mode: 'live' });
  const { summary } = await drill.run({ kind: 'incremental' });
  expect(summary).toMatchObject({ skipped: null, autoEnroll: false, subscribed: 1 });
});

it('npm run fleet shows the last check of the webhook, without a request', async () => {
  drill.fake.options.webhook = { enabled: false };
  await check();
  const before = drill.fake.requests.length;
  const out = await runInProcess('fleet', fleetMain, [], {
    LOCAL_LAKE_DIR: mkdtempSync(path.join(tmpdir(), 'fleet-empty-')),
    LOCAL_WORKFLOW_DIR: drill.workDir,
  });
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/webhook wh-fleet: UNHEALTHY: the webhook is disabled, not enabled \(.*\) \[checked /);
  expect(drill.fake.requests.length).toBe(before);
});
