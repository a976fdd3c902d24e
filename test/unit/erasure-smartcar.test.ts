/**
 * `erase --smartcar` against the fake platform: subscriptions, then connections, then (for a user) the
 * user; a dry run lists and deletes nothing; a rerun finds nothing; missing credentials are said, not
 * skipped silently; a rate-limited call is retried.
 */
import type { ErasureContext, PlaceResult, Subject } from '../../lambda/core/erasure';
import { smartcarPlace } from '../../lambda/core/erasure-smartcar';
import { ApplicationTokens, SmartcarPlatform } from '../../lambda/core/smartcar-platform';
import { type FakeConnection, FakePlatform } from '../support/fake-platform';

const WEBHOOK = 'wh-erase-test';
const alice: FakeConnection[] = [
  { userId: 'user-alice-0001', vehicleId: 'veh-alice-car-1', connectedAt: '2026-11-02T00:00:00Z', mode: 'live' },
  { userId: 'user-alice-0001', vehicleId: 'veh-alice-car-2', connectedAt: '2026-11-01T00:00:00Z', mode: 'live' },
];
const bob: FakeConnection = {
  userId: 'user-bob-00001',
  vehicleId: 'veh-bob-car-001',
  connectedAt: '2026-10-01T00:00:00Z',
  mode: 'live',
};

let fake: FakePlatform;
let origin: string;

beforeAll(async () => {
  fake = new FakePlatform(options());
  origin = await fake.start();
});
afterAll(() => fake.stop());

function options(extra: Partial<ConstructorParameters<typeof FakePlatform>[0]> = {}) {
  return {
    clientId: 'client-id',
    clientSecret: 'client-secret',
    managementToken: 'amt-erase-test',
    webhookId: WEBHOOK,
    connections: [...alice, bob],
    ...extra,
  };
}

function fresh(extra: Partial<ConstructorParameters<typeof FakePlatform>[0]> = {}) {
  fake.reset(options(extra));
  fake.deletedUsers.clear();
  fake.knownUsers.clear();
  for (const c of fake.options.connections) fake.subscribe(c.vehicleId, c.userId);
  fake.subscribe(bob.vehicleId, bob.userId, 'another-webhook');
}

function place(withCredentials = true) {
  const platform = new SmartcarPlatform({ iam: origin, management: origin, subscriptions: origin, vehicle: origin });
  return smartcarPlace({
    platform,
    managementToken: async () => 'amt-erase-test',
    appTokens: withCredentials
      ? new ApplicationTokens(() => platform.applicationToken('client-id', 'client-secret'))
      : undefined,
    webhookId: WEBHOOK,
    where: 'Smartcar (fake)',
    // The fake keeps simulated time: waiting is moving its clock.
    sleep: async (ms) => fake.advance(ms / 1000),
  });
}

function context(subject: Subject, dryRun: boolean): ErasureContext {
  return {
    subject,
    erasedAt: new Date(),
    dryRun,
    vehicleIds: new Set(subject.kind === 'vehicle' ? [subject.id] : []),
    eventIds: new Set(),
  };
}

const byUnit = (results: PlaceResult | PlaceResult[]) =>
  Object.fromEntries((Array.isArray(results) ? results : [results]).map((r) => [r.unit, [r.found, r.removed]]));

it("erases a user's subscriptions, connections and the user itself; a dry run first counts the same and deletes nothing", async () => {
  fresh();
  const user: Subject = { kind: 'user', id: 'user-alice-0001' };
  const dry = byUnit(await place().erase(context(user, true)));
  expect(dry).toEqual({ subscriptions: [2, 0], connections: [2, 0], users: [1, 0] });
  expect(fake.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);

  const real = byUnit(await place().erase(context(user, false)));
  expect(real).toEqual({ subscriptions: [2, 2], connections: [2, 2], users: [1, 1] });
  // Bob is untouched, on both webhooks.
  expect(fake.options.connections.map((c) => c.vehicleId)).toEqual([bob.vehicleId]);
  expect([...fake.subscriptions.values()].map((s) => s.vehicleId).sort()).toEqual([bob.vehicleId, bob.vehicleId]);
  expect([...fake.deletedUsers]).toEqual(['user-alice-0001']);
  // Subscriptions go before connections, connections before the user.
  const order = fake.requests.filter((r) => r.method === 'DELETE').map((r) => r.path.split('/')[2]);
  expect(order).toEqual(['subscriptions', 'subscriptions', 'management', 'users']);

  // A rerun finds nothing left.
  expect(byUnit(await place().erase(context(user, false)))).toEqual({
    subscriptions: [0, 0],
    connections: [0, 0],
    users: [0, 0],
  });
});

it("erases one vehicle's subscription on this webhook and its connection, nothing of its owner's other vehicle", async () => {
  fresh();
  const vehicle: Subject = { kind: 'vehicle', id: 'veh-alice-car-1' };
  expect(byUnit(await place().erase(context(vehicle, false)))).toEqual({
    subscriptions: [1, 1],
    connections: [1, 1],
  });
  expect(fake.options.connections.map((c) => c.vehicleId)).toEqual(['veh-alice-car-2', bob.vehicleId]);
  expect(fake.subscriptions.has('veh-alice-car-2')).toBe(true);
  expect(fake.deletedUsers.size).toBe(0);
});

it('says on the receipt what it could not do without client credentials, and still removes the connections', async () => {
  fresh();
  const results = (await place(false).erase(context({ kind: 'user', id: 'user-alice-0001' }, false))) as PlaceResult[];
  const notes = results.map((r) => `${r.unit}: ${r.note ?? ''}`);
  expect(notes).toEqual([
    expect.stringMatching(/^subscriptions: not looked at: no client credentials/),
    'connections: ',
    expect.stringMatching(/^users: not asked: DELETE \/v3\/users needs client credentials/),
  ]);
  expect(fake.options.connections.map((c) => c.vehicleId)).toEqual([bob.vehicleId]);
});

it('retries a rate-limited call and never puts a token or an id in what it reports', async () => {
  fresh({ rateLimit: { capacity: 1, perMinute: 60 } });
  const results = (await place().erase(context({ kind: 'user', id: 'user-alice-0001' }, false))) as PlaceResult[];
  expect(fake.rateLimited).toBeGreaterThan(0);
  expect(byUnit(results)).toEqual({ subscriptions: [2, 2], connections: [2, 2], users: [1, 1] });
  const text = JSON.stringify(results);
  for (const secret of ['amt-erase-test', 'client-secret', 'user-alice-0001', 'veh-alice-car-1'])
    expect(text).not.toContain(secret);
});

it("leaves alone the subscription of a vehicle the user's old deliveries named that another user has now", async () => {
  fresh();
  // Bob's vehicle was Alice's once: her deliveries named it, so the raw zone put it in the context.
  const ctx = context({ kind: 'user', id: 'user-alice-0001' }, false);
  ctx.vehicleIds.add(bob.vehicleId);
  expect(byUnit(await place().erase(ctx))).toEqual({ subscriptions: [2, 2], connections: [2, 2], users: [1, 1] });
  expect([...fake.subscriptions.values()].filter((s) => s.vehicleId === bob.vehicleId)).toHaveLength(2);
});
