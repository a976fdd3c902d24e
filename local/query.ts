/**
 * `npm run query -- "<sql>" | <view> | --list`: the lake's views and any SQL, run by DuckDB against the
 * local lake written by `npm start` (LOCAL_LAKE_DIR, default ./local-lake). The views are the same
 * definitions the stack registers in Athena (lib/queries.ts), rendered for DuckDB.
 */
import * as path from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { flag, lakeDirOf, runCommand, UsageError } from '../cli/args';
import { SPECS } from '../cli/registry';
import {
  COMPACTED_OBJECT_COLUMNS,
  COMPACTED_OBJECTS,
  COMPACTION_COMMIT_COLUMNS,
  COMPACTION_COMMITS,
  CURATED_DELIVERIES,
  CURATED_DELIVERY_COLUMNS,
  CURATED_PARTITION_COLUMNS,
  CURATED_SIGNAL_COLUMNS,
  CURATED_SIGNALS,
  CURATED_TABLE_FOLDERS,
  createViewSql,
  DELIVERY_COLUMNS,
  duckdbDialect,
  PARTITION_COLUMNS,
  RAW_TABLE,
  RAW_TAIL,
  VIEWS,
} from '../lib/queries';
import { listLakeKeys } from './file-lake';

export type Row = Record<string, unknown>;

export interface LocalLake {
  /** The DuckDB connection, for commands that write (npm run compact). */
  readonly connection: DuckDBConnection;
  query(sql: string): Promise<Row[]>;
  close(): void;
}

const DUCK_TYPES: Record<string, string> = {
  string: 'VARCHAR',
  'array<string>': 'VARCHAR[]',
  bigint: 'BIGINT',
  int: 'INTEGER',
};

/** Where each curated table lives in the local lake: `curated/` and the stack's folders under it. */
export const CURATED_DIRS: Record<string, string> = Object.fromEntries(
  Object.entries(CURATED_TABLE_FOLDERS).map(([table, folder]) => [table, `curated/${folder}`]),
);

/** A DuckDB string literal. */
export const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Raw objects of the local lake, as keys relative to it (`raw/event_type=…/….ndjson.gz`). */
export async function rawObjectKeys(lakeDir: string, rawPrefix = 'raw'): Promise<string[]> {
  return (await listLakeKeys(lakeDir, rawPrefix)).filter((k) => k.endsWith('.ndjson.gz')).sort();
}

/** `read_json` of raw objects, with the partition columns taken from their keys as in Athena. */
export function readRawSql(lakeDir: string, keys: readonly string[]): string {
  const columns = DELIVERY_COLUMNS.map(([name, type]) => `'${name}': '${DUCK_TYPES[type]}'`).join(', ');
  const files = keys.map((k) => sqlString(path.join(lakeDir, ...k.split('/')))).join(', ');
  // The records' own event_type and mode are not read: the key's partition values are.
  return `read_json([${files}], format = 'newline_delimited', columns = {${columns}},
                    hive_partitioning = true, hive_types_autocast = false)`;
}

function emptyTable(name: string, columns: readonly (readonly [string, string])[], partitions: readonly string[]) {
  const cols = [
    ...columns.map(([c, type]) => `"${c}" ${DUCK_TYPES[type]}`),
    ...partitions.filter((p) => !columns.some(([c]) => c === p)).map((p) => `"${p}" VARCHAR`),
  ].join(', ');
  return `CREATE OR REPLACE TABLE "${name}" (${cols})`;
}

/** A row-less SELECT with the table's columns and types. */
function noRows(columns: readonly (readonly [string, string])[], partitions: readonly string[]): string {
  const cols = [
    ...columns.map(([c, type]) => `CAST(NULL AS ${DUCK_TYPES[type]}) AS "${c}"`),
    ...partitions.filter((p) => !columns.some(([c]) => c === p)).map((p) => `CAST(NULL AS VARCHAR) AS "${p}"`),
  ].join(', ');
  return `SELECT ${cols} WHERE false`;
}

async function dropRelation(connection: DuckDBConnection, name: string): Promise<void> {
  const found = await connection.runAndReadAll(
    `SELECT table_type FROM information_schema.tables WHERE table_name = ${sqlString(name)}`,
  );
  for (const row of found.getRowObjectsJson())
    await connection.run(`DROP ${row.table_type === 'VIEW' ? 'VIEW' : 'TABLE'} "${name}"`);
}

async function parquetFiles(lakeDir: string, table: string): Promise<string[]> {
  return (await listLakeKeys(lakeDir, CURATED_DIRS[table])).filter((k) => k.endsWith('.parquet'));
}

/**
 * (Re)defines the lake's tables in a DuckDB connection from what is on disk now: the raw table over
 * every raw object, the curated tables over their Parquet files, and `raw_tail` over the raw objects no
 * committed compaction run claimed (so queries read only those, as the Athena view filters by `$path`).
 */
export async function defineLakeTables(
  connection: DuckDBConnection,
  lakeDir: string,
  rawPrefix = 'raw',
): Promise<{ rawKeys: string[]; tailKeys: string[] }> {
  const curated: [string, readonly (readonly [string, string])[], readonly string[]][] = [
    [CURATED_DELIVERIES, CURATED_DELIVERY_COLUMNS, CURATED_PARTITION_COLUMNS],
    [CURATED_SIGNALS, CURATED_SIGNAL_COLUMNS, CURATED_PARTITION_COLUMNS],
    [COMPACTED_OBJECTS, COMPACTED_OBJECT_COLUMNS, []],
    [COMPACTION_COMMITS, COMPACTION_COMMIT_COLUMNS, []],
  ];
  for (const [name, columns, partitions] of curated) {
    await dropRelation(connection, name);
    const files = await parquetFiles(lakeDir, name);
    if (files.length === 0) {
      await connection.run(emptyTable(name, columns, partitions));
      continue;
    }
    const list = files.map((k) => sqlString(path.join(lakeDir, ...k.split('/')))).join(', ');
    const hive = partitions.length > 0 ? ', hive_partitioning = true, hive_types_autocast = false' : '';
    // Files written before a column was added lack it: read by name, and union with the empty table of
    // today's columns so a column no file has yet (e.g. curated_signals.triggers) still exists, as null.
    await connection.run(
      `CREATE VIEW "${name}" AS SELECT * FROM read_parquet([${list}]${hive}, union_by_name = true) UNION ALL BY NAME ${noRows(columns, partitions)}`,
    );
  }
  const claimed = new Set(
    (
      await (
        await connection.runAndReadAll(
          `SELECT object FROM "${COMPACTED_OBJECTS}" WHERE run_id IN (SELECT run_id FROM "${COMPACTION_COMMITS}")`,
        )
      ).getRowObjectsJson()
    ).map((r) => String(r.object)),
  );
  const rawKeys = await rawObjectKeys(lakeDir, rawPrefix);
  const tailKeys = rawKeys.filter((k) => !claimed.has(k));
  for (const [name, keys] of [
    [RAW_TABLE, rawKeys],
    [RAW_TAIL, tailKeys],
  ] as const) {
    await dropRelation(connection, name);
    if (keys.length > 0) await connection.run(`CREATE VIEW "${name}" AS SELECT * FROM ${readRawSql(lakeDir, keys)}`);
    else await connection.run(emptyTable(name, DELIVERY_COLUMNS, PARTITION_COLUMNS));
  }
  return { rawKeys, tailKeys };
}

/** Opens the local lake in an in-memory DuckDB with the raw and curated tables and every view defined. */
export async function openLocalLake(lakeDir: string, rawPrefix = 'raw'): Promise<LocalLake> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await defineLakeTables(connection, lakeDir, rawPrefix);
    for (const view of VIEWS) await connection.run(createViewSql(view, duckdbDialect));
  } catch (err) {
    // A lake that cannot be read (a damaged Parquet file, say) still closes what was opened.
    connection.closeSync();
    instance.closeSync();
    throw err;
  }
  return {
    connection,
    async query(sql) {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowObjectsJson() as Row[];
    },
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/** Turns a bare view name into a query of it; anything else is taken as SQL. */
export function toSql(arg: string): string {
  const view = VIEWS.find((v) => v.name === arg.trim());
  return view ? `SELECT * FROM "${view.name}"` : arg;
}

function printTable(rows: Row[]): void {
  if (rows.length === 0) {
    console.log('(no rows)');
    return;
  }
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  };
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
  console.log(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
}

/** The command: `npm run query -- …` or `smartcar-webhooks query …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.query, argv, async (args) => {
    if (flag(args, 'list')) {
      if (args.positionals.length > 0) throw new UsageError('--list takes no SQL');
      for (const v of VIEWS) console.log(`${v.name.padEnd(26)} ${v.description}`);
      return 0;
    }
    if (args.positionals.length !== 1)
      throw new UsageError('what to run? give SQL (quoted as one argument) or a view name');
    const lakeDir = lakeDirOf(args);
    const lake = await openLocalLake(lakeDir);
    try {
      const rows = await lake.query(toSql(args.positionals[0]));
      if (flag(args, 'json')) for (const r of rows) console.log(JSON.stringify(r));
      else printTable(rows);
      return 0;
    } catch (err) {
      console.error(`query: ${(err as Error).message.split('\n')[0]}`);
      return 1;
    } finally {
      lake.close();
    }
  });
}
