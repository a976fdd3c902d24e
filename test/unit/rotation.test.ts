/**
 * Token mistakes lose nothing (issue 12), at the core: the previous token during the grace period, the
 * quarantine of Smartcar-shaped rejections within its caps, and the flood drill.
 */
import type { QuarantinedDelivery } from '../../lambda/contract';
import { QuarantineWriter, quarantineKey, quarantineKeyTime, recoverRejected } from '../../lambda/core/quarantine';
import { type ReceiverDeps, receive } from '../../lambda/core/receive';
import { RotatingTokens } from '../../lambda/core/rotating-tokens';
import { fixture, sign, vehicleState } from '../support/fixtures';
import { RecordingMetrics } from '../support/metrics';

const OLD = 'amt-old-0000';
const NEW = 'amt-new-1111';
const HOUR = 3_600_000;
const silent = { info() {}, warn() {}, error() {} };

/** A secret as Secrets Manager keeps it: versions with their creation time, AWSCURRENT and AWSPREVIOUS. */
function secret(clock: () => number) {
  const versions: { token: string; created: number }[] = [{ token: OLD, created: clock() }];
  const reads = { current: 0, previous: 0 };
  return {
    reads,
    rotate: (token: string) => versions.push({ token, created: clock() }),
    tokens: (graceMs = 24 * HOUR) =>
      new RotatingTokens(
        async () => {
          reads.current++;
          const v = versions[versions.length - 1];
          return { token: v.token, since: v.created };
        },
        async () => {
          reads.previous++;
          return versions[versions.length - 2]?.token;
        },
        { ttlMs: 5 * 60_000, graceMs, now: clock },
      ),
  };
}

function delivery(eventId: string, token: string) {
  const body = Buffer.from(vehicleState(eventId));
  return { body, headers: { 'sc-signature': sign(body, token) }, receivedAt: new Date('2026-11-27T10:00:00.000Z') };
}

function deps(token: ReceiverDeps['token'], extra: Partial<ReceiverDeps> = {}) {
  const queued: string[] = [];
  const metrics = new RecordingMetrics();
  const d: ReceiverDeps = {
    token,
    logger: silent,
    metrics,
    enqueue: async (m) => void queued.push(m.bodyBase64),
    ...extra,
  };
  return { d, queued, metrics };
}

describe('rotation drill (core)', () => {
  it('accepts the previous token within the grace period, rejects it after, and the new one at once', async () => {
    let now = Date.parse('2026-11-27T00:00:00Z');
    const s = secret(() => now);
    const tokens = s.tokens();
    const { d, metrics } = deps(tokens);
    expect((await receive(delivery('before', OLD), d)).statusCode).toBe(200); // loads and caches OLD

    now += 60_000;
    s.rotate(NEW); // put-secret-value: NEW is AWSCURRENT, OLD is AWSPREVIOUS
    // Signed with the new token, one minute after the cache was filled (its TTL is 5): accepted at once.
    expect((await receive(delivery('new-1', NEW), d)).statusCode).toBe(200);
    // Smartcar still retrying deliveries it signed with the old token: accepted during the grace period.
    expect((await receive(delivery('old-1', OLD), d)).statusCode).toBe(200);
    expect(metrics.total('AcceptedWithPreviousToken')).toBe(1);

    now += 24 * HOUR + 1;
    expect((await receive(delivery('old-2', OLD), d)).statusCode).toBe(401);
    expect((await receive(delivery('new-2', NEW), d)).statusCode).toBe(200);
    expect((await receive(delivery('forged', 'not-a-token'), d)).statusCode).toBe(401);
  });

  it('a typo in the new secret value: the previous (still right) token keeps deliveries flowing', async () => {
    let now = 0;
    const s = secret(() => now);
    const { d } = deps(s.tokens());
    await receive(delivery('warm', OLD), d);
    now += 60_000;
    s.rotate(`${OLD}x`); // the operator pasted a typo
    expect((await receive(delivery('after-typo', OLD), d)).statusCode).toBe(200);
  });

  it('VERIFY is answered with the current token only', async () => {
    let now = 0;
    const s = secret(() => now);
    const tokens = s.tokens();
    await tokens.get();
    now += 60_000;
    s.rotate(NEW);
    await tokens.refresh();
    const body = Buffer.from(JSON.stringify({ eventType: 'VERIFY', data: { challenge: 'abc-123' } }));
    const res = await receive({ body, headers: {}, receivedAt: new Date() }, deps(tokens).d);
    expect(res.body).toEqual({ challenge: sign('abc-123', NEW) });
  });

  it('never rotated: no previous token, and forged floods cost a bounded number of reads', async () => {
    const now = 0;
    const s = secret(() => now);
    const tokens = s.tokens();
    const { d } = deps(tokens);
    for (let i = 0; i < 100; i++) expect((await receive(delivery(`f${i}`, `forged-${i}`), d)).statusCode).toBe(401);
    expect(s.reads.current).toBeLessThanOrEqual(4); // one load and the burst of early re-reads
    expect(s.reads.previous).toBeLessThanOrEqual(1);
  });
});

describe('quarantine', () => {
  function memoryStore() {
    const objects = new Map<string, Buffer>();
    return {
      objects,
      put: async (key: string, body: Buffer) => void objects.set(key, body),
      store: {
        list: async (prefix: string) => [...objects.keys()].filter((k) => k.startsWith(prefix)),
        get: async (key: string) => objects.get(key) as Buffer,
        delete: async (key: string) => void objects.delete(key),
      },
    };
  }

  it('keeps only Smartcar-shaped signature failures: not unsigned, malformed, oversized or odd signatures', async () => {
    const mem = memoryStore();
    const writer = new QuarantineWriter(mem.put, { maxPerMinute: 100, maxBytesPerHour: 10 ** 9 });
    const { d } = deps(
      { get: async () => OLD, refresh: async () => undefined },
      { quarantine: (q) => writer.offer(q) },
    );
    const body = fixture('vehicle-state');
    const at = new Date('2026-11-27T10:00:00.000Z');
    const cases: [Buffer, Record<string, string>, number][] = [
      [body, { 'sc-signature': sign(body, NEW) }, 401], // kept
      [body, {}, 401], // unsigned
      [body, { 'sc-signature': 'not-hex' }, 401], // signature of the wrong shape
      [Buffer.from('not json'), { 'sc-signature': sign('not json', NEW) }, 400],
      [Buffer.from(`{"x":"${'a'.repeat(140 * 1024)}"}`), { 'sc-signature': sign('x', NEW) }, 413],
    ];
    for (const [b, headers, status] of cases) {
      expect((await receive({ body: b, headers, receivedAt: at }, d)).statusCode).toBe(status);
    }
    expect([...mem.objects.keys()]).toEqual([
      expect.stringMatching(/^quarantine\/dt=2026-11-27\/hour=10\/20261127T100000000Z-[0-9a-f]{20}\.json$/),
    ]);
    const kept = JSON.parse((mem.objects.values().next().value as Buffer).toString()) as QuarantinedDelivery;
    expect(Buffer.from(kept.bodyBase64, 'base64').equals(body)).toBe(true);
    expect(kept).toMatchObject({ v: 1, signature: sign(body, NEW), receivedAt: at.toISOString() });
    expect(quarantineKeyTime(quarantineKey(kept))?.toISOString()).toBe(at.toISOString());
  });

  it('flood drill: 10,000 bad-signature requests keep at most the cap, genuine deliveries still go through', async () => {
    const mem = memoryStore();
    const metrics = new RecordingMetrics();
    const now = Date.parse('2026-11-27T10:00:00Z');
    const writer = new QuarantineWriter(
      mem.put,
      { maxPerMinute: 60, maxBytesPerHour: 64 * 1024 ** 2 },
      metrics,
      undefined,
      () => now,
    );
    const { d, queued } = deps(
      { get: async () => OLD, refresh: async () => undefined },
      { quarantine: (q) => writer.offer(q), metrics },
    );
    const genuine: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const forged = delivery(`flood-${i}`, 'attacker-key');
      expect((await receive(forged, d)).statusCode).toBe(401);
      if (i % 1000 === 0) genuine.push((await receive(delivery(`genuine-${i}`, OLD), d)).statusCode);
    }
    expect(genuine).toEqual(Array(10).fill(200));
    expect(queued).toHaveLength(10);
    expect(mem.objects.size).toBe(60);
    expect(metrics.total('Quarantined')).toBe(60);
    expect(metrics.total('QuarantineDropped')).toBe(10_000 - 60);
    expect(metrics.total('SignatureMismatches')).toBe(10_000);
  });

  it('caps bytes per hour as well as count', async () => {
    const mem = memoryStore();
    let now = 0;
    const writer = new QuarantineWriter(
      mem.put,
      { maxPerMinute: 1000, maxBytesPerHour: 3000 },
      undefined,
      undefined,
      () => now,
    );
    const one = (i: number): QuarantinedDelivery => ({
      v: 1,
      bodyBase64: Buffer.alloc(1000, i).toString('base64'),
      signature: 'ab'.repeat(32),
      receivedAt: new Date(now).toISOString(),
    });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await writer.offer(one(i)));
    expect(results).toEqual(['stored', 'stored', 'stored', 'dropped', 'dropped']);
    now += HOUR;
    expect(await writer.offer(one(9))).toBe('stored');
  });

  it('recovery re-ingests what now verifies once, leaves the rest, and a second run stores nothing', async () => {
    const mem = memoryStore();
    const writer = new QuarantineWriter(mem.put, { maxPerMinute: 100, maxBytesPerHour: 10 ** 9 });
    const { d } = deps(
      { get: async () => OLD, refresh: async () => undefined },
      { quarantine: (q) => writer.offer(q) },
    );
    for (const id of ['a', 'b', 'c']) await receive(delivery(id, NEW), d);
    await receive(delivery('a', NEW), d); // Smartcar's retry of a
    await receive(delivery('forged', 'attacker'), d);
    expect(mem.objects.size).toBe(4); // the retry of a is byte-identical: same key

    const stored = new Set<string>();
    const run = () =>
      recoverRejected({
        store: mem.store,
        tokens: [NEW, OLD],
        isStored: async (ids) => new Set(ids.filter((id) => stored.has(id))),
        deliver: async (messages) => {
          for (const m of messages) stored.add(JSON.parse(Buffer.from(m.bodyBase64, 'base64').toString()).eventId);
        },
        logger: silent,
      });
    expect(await run()).toEqual({ examined: 4, recovered: 3, stillRejected: 1, alreadyStored: 0, unreadable: 0 });
    expect([...stored].sort()).toEqual(['a', 'b', 'c']);
    expect(await run()).toEqual({ examined: 1, recovered: 0, stillRejected: 1, alreadyStored: 0, unreadable: 0 });
  });
});
