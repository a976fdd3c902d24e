/**
 * `npm run query -- "<sql>" | <view> | --list`: the lake's views and any SQL, run by DuckDB against the
 * local lake written by `npm start` (LOCAL_LAKE_DIR, default ./local-lake). The views are the same
 * definitions the stack registers in Athena (lib/queries.ts), rendered for DuckDB.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { createViewSql, DELIVERY_COLUMNS, duckdbDialect, PARTITION_COLUMNS, RAW_TABLE, VIEWS } from '../lib/queries';
import { runCli } from './cli';

export type Row = Record<string, unknown>;

export interface LocalLake {
  query(sql: string): Promise<Row[]>;
  close(): void;
}

const DUCK_TYPES: Record<string, string> = { string: 'VARCHAR', 'array<string>': 'VARCHAR[]' };

async function hasObjects(rawDir: string): Promise<boolean> {
  const entries = await readdir(rawDir, { recursive: true }).catch(() => [] as string[]);
  return entries.some((e) => String(e).endsWith('.ndjson.gz'));
}

/** Opens the local lake in an in-memory DuckDB with the raw table and every view defined. */
export async function openLocalLake(lakeDir: string, rawPrefix = 'raw'): Promise<LocalLake> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const rawDir = path.join(lakeDir, rawPrefix);
  const columns = DELIVERY_COLUMNS.map(([name, type]) => `'${name}': '${DUCK_TYPES[type]}'`).join(', ');
  if (await hasObjects(rawDir)) {
    const glob = path.join(rawDir, '**', '*.ndjson.gz').replaceAll("'", "''");
    // The partition columns come from the key, as in Athena; the records' own event_type and mode are not read.
    await connection.run(`CREATE VIEW "${RAW_TABLE}" AS
      SELECT * FROM read_json('${glob}', format = 'newline_delimited', columns = {${columns}},
                              hive_partitioning = true, hive_types_autocast = false)`);
  } else {
    const cols = [
      ...DELIVERY_COLUMNS.map(([name, type]) => `"${name}" ${DUCK_TYPES[type]}`),
      ...PARTITION_COLUMNS.map((c) => `"${c}" VARCHAR`),
    ].join(', ');
    await connection.run(`CREATE TABLE "${RAW_TABLE}" (${cols})`);
  }
  for (const view of VIEWS) await connection.run(createViewSql(view, duckdbDialect));
  return {
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

const USAGE = `usage: npm run query -- "<sql>" | <view> | --list  [--json]

  views: ${VIEWS.map((v) => v.name).join(', ')}; the raw table is "${RAW_TABLE}".
  The lake is $LOCAL_LAKE_DIR (default ./local-lake), as written by npm start.
  example: npm run query -- "SELECT vehicle_id, signal_name, value, unit FROM latest_signals"`;

/** The command, as `npm run` runs it: reads process.argv and process.env, returns the exit code. */
export async function main(): Promise<number> {
  let parsed: { values: Record<string, boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { list: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }) as never;
  } catch (err) {
    console.error(`query: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || (!values.list && positionals.length !== 1)) {
    if (!values.help)
      console.error(
        positionals.length === 0
          ? 'query: what to run? give SQL or a view name\n'
          : 'query: quote the SQL as one argument\n',
      );
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.list) {
    for (const v of VIEWS) console.log(`${v.name.padEnd(26)} ${v.description}`);
    return 0;
  }
  const lakeDir = path.resolve(process.env.LOCAL_LAKE_DIR || 'local-lake');
  const lake = await openLocalLake(lakeDir);
  try {
    const rows = await lake.query(toSql(positionals[0]));
    if (values.json) for (const r of rows) console.log(JSON.stringify(r));
    else printTable(rows);
    return 0;
  } catch (err) {
    console.error(`query: ${(err as Error).message.split('\n')[0]}`);
    return 1;
  } finally {
    lake.close();
  }
}

if (require.main === module) runCli('query', main);
