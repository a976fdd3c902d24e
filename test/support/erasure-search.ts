/**
 * Where strings still occur under a folder, searched the way a data-protection officer would want:
 * every file's path, the inflated text of every `.gz`, the bytes of every other file (Parquet footers
 * and statistics included), and every row of every Parquet file read by DuckDB (its pages are
 * compressed, so their bytes alone prove nothing). Shared by the erasure tests and `npm run bench:erase`.
 */
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface Occurrence {
  readonly file: string;
  readonly needle: string;
  readonly how: 'path' | 'bytes' | 'gzip' | 'parquet';
}

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

export async function occurrences(root: string, needles: readonly string[]): Promise<Occurrence[]> {
  const found: Occurrence[] = [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const parquet: string[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    const rel = path.relative(root, file);
    for (const n of needles) if (rel.includes(n)) found.push({ file: rel, needle: n, how: 'path' });
    const bytes = await readFile(file);
    for (const n of needles) if (bytes.includes(n)) found.push({ file: rel, needle: n, how: 'bytes' });
    if (e.name.endsWith('.gz')) {
      const text = gunzipSync(bytes);
      for (const n of needles) if (text.includes(n)) found.push({ file: rel, needle: n, how: 'gzip' });
    }
    if (e.name.endsWith('.parquet')) parquet.push(file);
  }
  if (parquet.length > 0) {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      // Each row as text (a struct cast renders every column), one scan for every needle.
      const list = `[${parquet.map(sqlString).join(', ')}]`;
      const hits = needles.map((n, i) => `COUNT(*) FILTER (WHERE contains(t.row_text, ${sqlString(n)})) AS n${i}`);
      const rows = (
        await connection.runAndReadAll(
          `SELECT filename, ${hits.join(', ')} FROM (
             SELECT filename, CAST(p AS VARCHAR) AS row_text
             FROM read_parquet(${list}, filename = true, hive_partitioning = false, union_by_name = true) AS p
           ) AS t GROUP BY filename`,
        )
      ).getRowObjectsJson();
      for (const r of rows) {
        needles.forEach((n, i) => {
          if (Number(r[`n${i}`]) > 0)
            found.push({ file: path.relative(root, String(r.filename)), needle: n, how: 'parquet' });
        });
      }
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  }
  return found;
}
