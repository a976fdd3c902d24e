/**
 * The curated layer's erasure in AWS. The curated tables are Hive-partitioned Parquet that Athena cannot
 * `DELETE` from, so each affected partition is rewritten: one Athena `UNLOAD` per table writes every
 * affected partition again without the subject's rows into a staging prefix outside the tables, a marker
 * records which files each partition had, and the swap copies the new files in and only then deletes the
 * old ones. The swap is idempotent and resumable: a run that stops after the marker is written is finished
 * by the next run (same copies, same deletes), before it looks for anything new. During a swap a reader
 * can briefly see a partition's kept rows twice, never a missing row. Erasures hold the compaction lock,
 * so no compaction run writes a curated partition under the swap.
 *
 * `curated_signals` goes first: its rows are found through the subject's rows in `curated_deliveries`
 * (a signal row carries the event id and vehicle, not the user), which must still be there to be found.
 */
import {
  CURATED_DELIVERIES,
  CURATED_DELIVERY_COLUMNS,
  CURATED_SIGNAL_COLUMNS,
  CURATED_SIGNALS,
  CURATED_TABLE_FOLDERS,
} from '../../lib/queries';
import type { ErasureContext, ErasurePlace, PlaceResult, Subject } from './erasure';

/** Runs Athena statements in the stack's workgroup and database. */
export interface AthenaRunner {
  /** Runs a query and returns its rows (no header row), every value as text. */
  query(sql: string): Promise<string[][]>;
  /** Runs a statement that returns nothing (UNLOAD). */
  run(sql: string): Promise<void>;
}

/** The lake bucket's objects, as the swap needs them. */
export interface SwapObjects {
  list(prefix: string): Promise<string[]>;
  copy(from: string, to: string): Promise<void>;
  delete(key: string): Promise<void>;
  get(key: string): Promise<Buffer>;
  put(key: string, body: Buffer): Promise<void>;
}

export interface CuratedPlaceDeps {
  readonly athena: AthenaRunner;
  readonly objects: SwapObjects;
  readonly bucket: string;
  /** The curated layer's key prefix (no slashes around it), e.g. `curated`. */
  readonly curatedPrefix: string;
  /** Where UNLOAD writes and the swap's markers live, outside every table. @default erasures/staging */
  readonly stagingPrefix?: string;
}

const MARKER = '_SWAP.json';

interface SwapMarker {
  readonly table: string;
  /** Partition path (`event_type=…/mode=…/dt=…`) → the keys it had before the rewrite. */
  readonly old: Record<string, string[]>;
}

const lit = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * The Athena predicate for "this curated_deliveries row is the subject's", NULL-safe (a NULL column must
 * never turn `NOT match` into NULL and so drop an innocent row). Ids are validated by parseSubject: no
 * quotes, backslashes or control characters can reach this literal.
 */
export function deliveryMatchSql(subject: Subject): string {
  const id = lit(subject.id);
  const quoted = lit(`"${subject.id}"`);
  const column =
    subject.kind === 'user'
      ? `COALESCE(user_id = ${id}, false)`
      : `(COALESCE(vehicle_id = ${id}, false) OR COALESCE(contains(vehicle_ids, ${id}), false))`;
  const bodies = [
    `COALESCE(strpos(body, ${quoted}) > 0, false)`,
    `COALESCE(strpos(body_json, ${quoted}) > 0, false)`,
    `COALESCE(strpos(from_utf8(from_base64(body_base64)), ${quoted}) > 0, false)`,
  ];
  return `(${[column, ...bodies].join(' OR ')})`;
}

function signalMatchSql(database: string, subject: Subject, cutoff: string): string {
  const own = subject.kind === 'vehicle' ? `COALESCE(vehicle_id = ${lit(subject.id)}, false) OR ` : '';
  return (
    // NULL-safe like the deliveries' predicate: a row with a NULL event_id is not the subject's.
    `(${own}COALESCE(event_id IN (SELECT event_id FROM ${database}.${CURATED_DELIVERIES} ` +
    `WHERE ${deliveryMatchSql(subject)} AND received_at < ${lit(cutoff)}), false))`
  );
}

const PARTITION = /^event_type=[^/]+\/mode=[^/]+\/dt=\d{4}-\d{2}-\d{2}$/;

/**
 * The curated layer as one erasure place (two results: deliveries and signals). `database` is the Glue
 * database the tables are in.
 */
export function curatedAthenaPlace(deps: CuratedPlaceDeps & { database: string }): ErasurePlace {
  const staging = (deps.stagingPrefix ?? 'erasures/staging').replace(/^\/+|\/+$/g, '');
  const tableRoot = (table: string) => `${deps.curatedPrefix}/${CURATED_TABLE_FOLDERS[table]}`;

  /** Finishes a swap whose marker exists: copy the new files in, delete the old, clear the staging. */
  async function finish(markerKey: string): Promise<{ partitions: number; deleted: number }> {
    const marker = JSON.parse((await deps.objects.get(markerKey)).toString('utf8')) as SwapMarker;
    const stagingRoot = markerKey.slice(0, -MARKER.length);
    const staged = (await deps.objects.list(stagingRoot)).filter((k) => k !== markerKey);
    const fresh = new Set<string>();
    for (const key of staged) {
      const rel = key.slice(stagingRoot.length);
      const partition = rel.slice(0, rel.lastIndexOf('/'));
      if (!(partition in marker.old)) continue; // UNLOAD writes only the partitions asked for
      const target = `${tableRoot(marker.table)}/${partition}/erased-${rel.slice(rel.lastIndexOf('/') + 1)}`;
      await deps.objects.copy(key, target);
      fresh.add(target);
    }
    let deleted = 0;
    for (const keys of Object.values(marker.old)) {
      for (const key of keys) {
        if (fresh.has(key)) continue; // a second erasure of the same partition: its file was rewritten in place
        await deps.objects.delete(key);
        deleted++;
      }
    }
    for (const key of staged) await deps.objects.delete(key);
    await deps.objects.delete(markerKey);
    return { partitions: Object.keys(marker.old).length, deleted };
  }

  async function eraseTable(table: string, context: ErasureContext): Promise<PlaceResult> {
    const cutoff = context.erasedAt.toISOString();
    const where = `s3://${deps.bucket}/${tableRoot(table)}/`;
    const stagingRoot = `${staging}/${CURATED_TABLE_FOLDERS[table]}/`;
    const markerKey = `${stagingRoot}${MARKER}`;
    // An earlier run that stopped after its marker: finish it first (a dry run only says so).
    const pending = (await deps.objects.list(stagingRoot)).includes(markerKey);
    if (pending && !context.dryRun) await finish(markerKey);

    const match =
      table === CURATED_SIGNALS
        ? signalMatchSql(deps.database, context.subject, cutoff)
        : `${deliveryMatchSql(context.subject)} AND received_at < ${lit(cutoff)}`;
    const rows = await deps.athena.query(
      `SELECT event_type, mode, dt, count(*) FROM ${deps.database}.${table} WHERE ${match} GROUP BY 1, 2, 3`,
    );
    const partitions = rows
      .map(([eventType, mode, dt, n]) => ({ path: `event_type=${eventType}/mode=${mode}/dt=${dt}`, n: Number(n) }))
      .filter((p) => PARTITION.test(p.path));
    if (partitions.length !== rows.length)
      throw new Error(`${table}: Athena returned partition values outside the layout; nothing rewritten`);
    const found = partitions.reduce((sum, p) => sum + p.n, 0);
    const result = (removed: number, rewritten: number, deleted: number, note?: string): PlaceResult => ({
      place: 'curated',
      where,
      unit: table === CURATED_SIGNALS ? 'signal rows' : 'rows',
      found,
      removed,
      rewritten,
      deleted,
      note,
    });
    if (context.dryRun || found === 0) {
      return result(
        0,
        0,
        0,
        pending ? 'an interrupted erasure left a swap to finish; the real run finishes it' : undefined,
      );
    }

    // Leftovers of an UNLOAD that never got its marker are not trusted: cleared, then written again.
    for (const key of await deps.objects.list(stagingRoot)) await deps.objects.delete(key);
    const old: Record<string, string[]> = {};
    for (const p of partitions) {
      old[p.path] = (await deps.objects.list(`${tableRoot(table)}/${p.path}/`)).filter((k) => !k.endsWith('/'));
    }
    const columns = (table === CURATED_SIGNALS ? CURATED_SIGNAL_COLUMNS : CURATED_DELIVERY_COLUMNS).map(([c]) => c);
    const keys = partitions.map((p) => {
      const [, eventType, mode, dt] = /^event_type=(.+)\/mode=(.+)\/dt=(.+)$/.exec(p.path) as RegExpExecArray;
      return `${eventType}/${mode}/${dt}`;
    });
    const dts = [...new Set(partitions.map((p) => p.path.slice(-10)))];
    await deps.athena.run(
      `UNLOAD (SELECT ${columns.join(', ')}, event_type, mode, dt FROM ${deps.database}.${table} ` +
        `WHERE dt IN (${dts.map(lit).join(', ')}) ` +
        `AND concat(event_type, '/', mode, '/', dt) IN (${keys.map(lit).join(', ')}) ` +
        `AND NOT (${match})) ` +
        `TO ${lit(`s3://${deps.bucket}/${stagingRoot}`)} ` +
        `WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['event_type', 'mode', 'dt'])`,
    );
    const marker: SwapMarker = { table, old };
    await deps.objects.put(markerKey, Buffer.from(JSON.stringify(marker)));
    const { deleted } = await finish(markerKey);
    return result(found, partitions.length, deleted);
  }

  return {
    place: 'curated',
    async erase(context) {
      // Signals first: they are found through the deliveries, which must still hold the subject's rows.
      const signals = await eraseTable(CURATED_SIGNALS, context);
      const deliveries = await eraseTable(CURATED_DELIVERIES, context);
      return [deliveries, signals];
    },
  };
}
