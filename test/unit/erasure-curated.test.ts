/**
 * The curated layer's erasure in AWS: the Athena predicate (evaluated by DuckDB, with Athena's one
 * function DuckDB lacks defined as a macro) is NULL-safe and finds the subject wherever a row names it;
 * the partition swap copies before it deletes, clears its staging, and is finished by the next run when
 * it stops half-way; a dry run writes nothing.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import type { ErasureContext, PlaceResult, Subject } from '../../lambda/core/erasure';
import {
  type AthenaRunner,
  curatedAthenaPlace,
  deliveryMatchSql,
  type SwapObjects,
} from '../../lambda/core/erasure-curated';

const VEHICLE: Subject = { kind: 'vehicle', id: 'veh-erase-0001' };
const USER: Subject = { kind: 'user', id: 'user-erase-0001' };

describe('the Athena predicate', () => {
  const rows = [
    // event_id, user_id, vehicle_id, vehicle_ids, body, body_base64, body_json
    ['own', 'user-erase-0001', 'veh-erase-0001', ['veh-erase-0001'], '{"a":1}', null, null],
    ['listed', null, null, ['veh-other-0002', 'veh-erase-0001'], '{}', null, null],
    ['in-body', null, null, [], '{"data":{"vehicle":{"id":"veh-erase-0001"}},"u":"user-erase-0001"}', null, null],
    [
      'in-base64',
      null,
      null,
      [],
      null,
      Buffer.from('{"v":"veh-erase-0001","w":"user-erase-0001"}').toString('base64'),
      '{}',
    ],
    ['in-body-json', null, null, null, null, 'AAAA', '{"v":"veh-erase-0001","w":"user-erase-0001"}'],
    ['prefix-only', null, 'veh-erase-00012', ['veh-erase-00012'], '{"v":"veh-erase-00012"}', null, null],
    ['all-null', null, null, null, null, null, null],
    ['other', 'user-other-0002', 'veh-other-0002', ['veh-other-0002'], '{"v":"veh-other-0002"}', null, null],
  ] as const;

  async function select(where: string): Promise<string[]> {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      await c.run('CREATE MACRO from_utf8(b) AS decode(b)');
      await c.run(
        'CREATE TABLE t (event_id VARCHAR, user_id VARCHAR, vehicle_id VARCHAR, vehicle_ids VARCHAR[], body VARCHAR, body_base64 VARCHAR, body_json VARCHAR)',
      );
      for (const r of rows) {
        const list = r[3] === null ? 'NULL' : `[${r[3].map((v) => `'${v}'`).join(', ')}]::VARCHAR[]`;
        const v = (x: string | null) => (x === null ? 'NULL' : `'${x.replace(/'/g, "''")}'`);
        await c.run(
          `INSERT INTO t VALUES (${v(r[0])}, ${v(r[1])}, ${v(r[2])}, ${list}, ${v(r[4])}, ${v(r[5])}, ${v(r[6])})`,
        );
      }
      return (await c.runAndReadAll(`SELECT event_id FROM t WHERE ${where} ORDER BY event_id`))
        .getRows()
        .map((x) => String(x[0]));
    } finally {
      c.closeSync();
      db.closeSync();
    }
  }

  it.each([
    [VEHICLE, ['in-base64', 'in-body', 'in-body-json', 'listed', 'own']],
    [USER, ['in-base64', 'in-body', 'in-body-json', 'own']],
  ])('finds every row naming %o, and NOT of it keeps every other row (NULLs included)', async (subject, expected) => {
    const match = deliveryMatchSql(subject);
    expect(await select(match)).toEqual(expected);
    const all = rows.map((r) => r[0]).sort();
    expect(await select(`NOT ${match}`)).toEqual(all.filter((id) => !expected.includes(id)));
  });
});

describe('the partition swap', () => {
  /** In-memory objects that can be told to fail the n-th copy. */
  function memory(failCopyAt?: number) {
    const store = new Map<string, Buffer>();
    let copies = 0;
    const ops: string[] = [];
    const objects: SwapObjects = {
      list: async (prefix) => [...store.keys()].filter((k) => k.startsWith(prefix)).sort(),
      get: async (key) => {
        const v = store.get(key);
        if (!v) throw new Error(`no ${key}`);
        return v;
      },
      put: async (key, body) => {
        store.set(key, body);
      },
      copy: async (from, to) => {
        if (++copies === failCopyAt) throw new Error('copy failed (injected)');
        store.set(to, store.get(from) as Buffer);
        ops.push(`copy ${to}`);
      },
      delete: async (key) => {
        store.delete(key);
        ops.push(`delete ${key}`);
      },
    };
    return { store, objects, ops };
  }

  const P1 = 'event_type=VEHICLE_STATE/mode=live/dt=2026-11-01';
  const P2 = 'event_type=VEHICLE_STATE/mode=live/dt=2026-11-02';

  /** Athena as far as the place uses it: counts per partition, and UNLOAD writing one file per partition. */
  function athena(store: Map<string, Buffer>, counts: Record<string, Record<string, number>>) {
    const sql: string[] = [];
    const runner: AthenaRunner = {
      async query(q) {
        sql.push(q);
        const table = /FROM \w+\.(\w+) WHERE/.exec(q)?.[1] as string;
        return Object.entries(counts[table] ?? {}).map(([p, n]) => [
          ...p.split('/').map((kv) => kv.split('=')[1]),
          String(n),
        ]);
      },
      async run(q) {
        sql.push(q);
        const to = /TO 's3:\/\/lake\/([^']+)'/.exec(q)?.[1] as string;
        const table = /FROM \w+\.(\w+) WHERE/.exec(q)?.[1] as string;
        for (const p of Object.keys(counts[table] ?? {}))
          store.set(`${to}${p}/unload-${sql.length}.parquet`, Buffer.from('kept rows'));
      },
    };
    return { runner, sql };
  }

  function context(dryRun: boolean): ErasureContext {
    return {
      subject: VEHICLE,
      erasedAt: new Date('2026-12-04T00:00:00Z'),
      dryRun,
      vehicleIds: new Set(),
      eventIds: new Set(),
    };
  }

  function seed(store: Map<string, Buffer>) {
    for (const p of [P1, P2]) {
      store.set(`curated/deliveries/${p}/run-a.parquet`, Buffer.from('old'));
      store.set(`curated/signals/${p}/run-a.parquet`, Buffer.from('old'));
    }
    store.set(
      'curated/deliveries/event_type=VEHICLE_STATE/mode=live/dt=2026-11-03/run-a.parquet',
      Buffer.from('untouched'),
    );
  }

  const counts = {
    curated_deliveries: { [P1]: 3, [P2]: 1 },
    curated_signals: { [P1]: 57, [P2]: 19 },
  };

  it('rewrites only the affected partitions: new files copied in first, old ones deleted after, staging cleared', async () => {
    const { store, objects, ops } = memory();
    seed(store);
    const { runner, sql } = athena(store, counts);
    const place = curatedAthenaPlace({
      athena: runner,
      objects,
      bucket: 'lake',
      curatedPrefix: 'curated',
      database: 'db',
    });
    const results = (await place.erase(context(false))) as PlaceResult[];
    expect(results.map((r) => [r.unit, r.found, r.removed, r.rewritten])).toEqual([
      ['rows', 4, 4, 2],
      ['signal rows', 76, 76, 2],
    ]);
    expect([...store.keys()].sort()).toEqual([
      `curated/deliveries/${P1}/erased-unload-4.parquet`,
      `curated/deliveries/${P2}/erased-unload-4.parquet`,
      'curated/deliveries/event_type=VEHICLE_STATE/mode=live/dt=2026-11-03/run-a.parquet',
      `curated/signals/${P1}/erased-unload-2.parquet`,
      `curated/signals/${P2}/erased-unload-2.parquet`,
    ]);
    // Per table: every copy before the first delete of an old file.
    const deliveriesOps = ops.filter((o) => o.includes('curated/deliveries/'));
    expect(deliveriesOps.findIndex((o) => o.startsWith('delete'))).toBeGreaterThan(
      deliveriesOps.findLastIndex((o) => o.startsWith('copy')),
    );
    // Signals are found through the deliveries, so they are rewritten first; the UNLOAD keeps NOT-matching rows.
    expect(sql[1]).toMatch(
      /^UNLOAD \(SELECT .* FROM db\.curated_signals WHERE dt IN \('2026-11-01', '2026-11-02'\) .*AND NOT \(/,
    );
    expect(sql[1]).toMatch(/partitioned_by = ARRAY\['event_type', 'mode', 'dt'\]/);
  });

  it('a run that stops after UNLOAD is finished by the next one, with nothing lost or doubled', async () => {
    const { store, objects } = memory(2); // the second copy fails
    seed(store);
    const first = athena(store, counts);
    const place = curatedAthenaPlace({
      athena: first.runner,
      objects,
      bucket: 'lake',
      curatedPrefix: 'curated',
      database: 'db',
    });
    await expect(place.erase(context(false))).rejects.toThrow('copy failed');
    // The marker and both old files are still there: nothing is lost.
    expect(store.has('erasures/staging/signals/_SWAP.json')).toBe(true);
    expect(store.has(`curated/signals/${P2}/run-a.parquet`)).toBe(true);

    // The rerun finishes the swap before it looks again (by now Athena finds nothing left in signals).
    const second = athena(store, { curated_deliveries: counts.curated_deliveries });
    const again = curatedAthenaPlace({
      athena: second.runner,
      objects,
      bucket: 'lake',
      curatedPrefix: 'curated',
      database: 'db',
    });
    await again.erase(context(false));
    const signals = [...store.keys()].filter((k) => k.startsWith('curated/signals/')).sort();
    expect(signals).toEqual([
      `curated/signals/${P1}/erased-unload-2.parquet`,
      `curated/signals/${P2}/erased-unload-2.parquet`,
    ]);
    expect([...store.keys()].filter((k) => k.startsWith('erasures/'))).toEqual([]);
  });

  it('a dry run counts and writes nothing', async () => {
    const { store, objects, ops } = memory();
    seed(store);
    const before = [...store.keys()].sort();
    const { runner, sql } = athena(store, counts);
    const place = curatedAthenaPlace({
      athena: runner,
      objects,
      bucket: 'lake',
      curatedPrefix: 'curated',
      database: 'db',
    });
    const results = (await place.erase(context(true))) as PlaceResult[];
    expect(results.map((r) => [r.found, r.removed])).toEqual([
      [4, 0],
      [76, 0],
    ]);
    expect(ops).toEqual([]);
    expect(sql.every((q) => q.startsWith('SELECT'))).toBe(true);
    expect([...store.keys()].sort()).toEqual(before);
  });
});
