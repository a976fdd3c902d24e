/**
 * `trace`'s readers for the local world: the lake directory (raw zone pruned by partition folders, the
 * curated layer through DuckDB, the quarantine), the receiver's spools and landing zone, the state file and the local
 * workflow folder's reports. The same questions deployed go to S3, Athena, SQS and DynamoDB (cli/trace.ts).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { type QueryEngine, type Row, sqlCuratedIndex, sqlLiteral } from '../cli/query-engine';
import { DEFAULT_LANDING_PREFIX, type QuarantinedDelivery } from '../lambda/contract';
import { landingMessages } from '../lambda/core/landing';
import type {
  LakeReader,
  QuarantineReader,
  ReportReader,
  StateReader,
  TraceSources,
  WaitingReader,
} from '../lambda/core/trace';
import { COMPACTED_OBJECTS, COMPACTION_COMMITS, CURATED_DELIVERIES, CURATED_TABLE_FOLDERS } from '../lib/queries';
import { getLakeObject, listLakeKeys } from './file-lake';
import { fileKeys } from './quarantine';
import { Spool } from './spool';
import { readStateFile, STATE_FILE } from './state-file';

const names = (dir: string) => readdir(dir).catch(() => [] as string[]);

/**
 * Raw objects received since `since`, found by walking the partition folders and skipping every
 * `dt=`/`hour=` folder before it: the files of older hours are never listed, let alone read.
 */
export function localLakeReader(lakeDir: string, rawPrefix = 'raw'): LakeReader {
  const root = path.join(lakeDir, rawPrefix);
  return {
    describe: root,
    lists: 'window',
    async candidates(_id, since) {
      const iso = since.toISOString();
      const [sinceDt, sinceHour] = [iso.slice(0, 10), iso.slice(11, 13)];
      const keys: string[] = [];
      for (const type of (await names(root)).filter((n) => n.startsWith('event_type='))) {
        for (const mode of (await names(path.join(root, type))).filter((n) => n.startsWith('mode='))) {
          const modeDir = path.join(root, type, mode);
          for (const dt of (await names(modeDir)).filter((n) => n.startsWith('dt=') && n.slice(3) >= sinceDt)) {
            for (const hour of await names(path.join(modeDir, dt))) {
              if (!hour.startsWith('hour=') || (dt.slice(3) === sinceDt && hour.slice(5) < sinceHour)) continue;
              for (const file of await names(path.join(modeDir, dt, hour)))
                if (file.endsWith('.ndjson.gz')) keys.push([rawPrefix, type, mode, dt, hour, file].join('/'));
            }
          }
        }
      }
      return keys;
    },
    get: (key) => getLakeObject(lakeDir, key),
  };
}

/**
 * DuckDB over the local curated layer's Parquet: `curated_deliveries` from the `dt=` folders since
 * `sinceDt` only, and the compaction tables. Loaded only when trace runs locally (DuckDB is optional).
 */
export async function localCuratedEngine(lakeDir: string, sinceDt: string): Promise<QueryEngine & { close(): void }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const folder = (table: string) => `curated/${CURATED_TABLE_FOLDERS[table]}`;
  const empty: Record<string, string> = {
    [CURATED_DELIVERIES]:
      'event_id VARCHAR, vehicle_id VARCHAR, run_id VARCHAR, copies BIGINT, received_at VARCHAR, dt VARCHAR',
    [COMPACTION_COMMITS]: 'run_id VARCHAR, committed_at VARCHAR',
    [COMPACTED_OBJECTS]: 'object VARCHAR, run_id VARCHAR, dt VARCHAR, hour VARCHAR',
  };
  try {
    for (const table of [CURATED_DELIVERIES, COMPACTION_COMMITS, COMPACTED_OBJECTS]) {
      const files = (await listLakeKeys(lakeDir, folder(table))).filter(
        (k) =>
          k.endsWith('.parquet') &&
          (table !== CURATED_DELIVERIES || (/\/dt=([0-9-]+)\//.exec(k)?.[1] ?? '') >= sinceDt),
      );
      if (files.length === 0) {
        await connection.run(`CREATE TABLE "${table}" (${empty[table]})`);
        continue;
      }
      const list = files.map((k) => sqlLiteral(path.join(lakeDir, ...k.split('/')))).join(', ');
      const hive = table === CURATED_DELIVERIES ? ', hive_partitioning = true, hive_types_autocast = false' : '';
      // By name: a file of an older layout (fewer columns) must not shift the others' columns.
      const byName = ', union_by_name = true';
      await connection.run(`CREATE VIEW "${table}" AS SELECT * FROM read_parquet([${list}]${hive}${byName})`);
    }
  } catch (err) {
    connection.closeSync();
    instance.closeSync();
    throw err;
  }
  return {
    describe: `${path.join(lakeDir, 'curated')} (DuckDB)`,
    async query(sql) {
      const rows = (await connection.runAndReadAll(sql)).getRowObjectsJson();
      return rows.map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null || v === undefined ? null : String(v)])),
      ) as Row[];
    },
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

export function localQuarantineReader(lakeDir: string): QuarantineReader {
  return {
    describe: path.join(lakeDir, 'quarantine'),
    keys: fileKeys(lakeDir),
    get: (key) => getLakeObject(lakeDir, key),
  };
}

/**
 * The landing zone (`<lake>/landing/`): objects the receiver's flush wrote and has not ingested yet, one
 * delivery a line; each line is a message named `<key>#<line>` as ingest names it.
 */
export function localLandingReader(lakeDir: string, landingPrefix = DEFAULT_LANDING_PREFIX): WaitingReader {
  return {
    describe: `landing zone ${path.join(lakeDir, landingPrefix)} (accepted, not yet written to the lake)`,
    async peek() {
      const out: { id: string; body: string }[] = [];
      for (const key of (await listLakeKeys(lakeDir, landingPrefix)).sort()) {
        const bytes = await getLakeObject(lakeDir, key).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined; // ingested and deleted since the listing
          throw err;
        });
        if (bytes) out.push(...landingMessages(key, bytes));
      }
      return out;
    },
  };
}

/**
 * The receiver's spools and landing zone: accepted deliveries not yet written, rejected ones not yet
 * quarantined.
 */
export function localWaitingReaders(lakeDir: string): WaitingReader[] {
  const spool = new Spool(path.join(lakeDir, '.spool'));
  const rejected = new Spool<QuarantinedDelivery>(path.join(lakeDir, '.quarantine-spool'));
  return [
    {
      describe: `spool ${path.join(lakeDir, '.spool')} (accepted, not yet written to the lake)`,
      peek: () => spool.pending(),
    },
    localLandingReader(lakeDir),
    {
      describe: `quarantine spool ${path.join(lakeDir, '.quarantine-spool')} (rejected, not yet quarantined)`,
      peek: () => rejected.pending(),
    },
  ];
}

export function localStateReader(lakeDir: string): StateReader {
  return {
    describe: path.join(lakeDir, STATE_FILE),
    async vehicle(vehicleId) {
      return Object.values(await readStateFile(lakeDir)).filter((s) => s.vehicleId === vehicleId);
    },
  };
}

/** The local workflows' reports (npm run subscribe, npm run reconcile), their file times as the runs' ends. */
export function localReportReader(workDir: string): ReportReader {
  return {
    describe: workDir,
    async reports(since) {
      const out: { key: string; at: Date; json: unknown }[] = [];
      for (const base of ['runs', 'reconcile/runs']) {
        for (const run of await names(path.join(workDir, base))) {
          const key = `${base}/${run}/report.json`;
          const file = path.join(workDir, ...key.split('/'));
          const info = await stat(file).catch(() => undefined);
          if (!info || info.mtime < since) continue;
          try {
            out.push({ key, at: info.mtime, json: JSON.parse(await readFile(file, 'utf8')) });
          } catch {
            // half-written or not a report: nothing to say about it
          }
        }
      }
      return out;
    },
  };
}

/** Every local source of a trace; `close` releases DuckDB. */
export async function localTraceSources(
  lakeDir: string,
  workDir: string,
  since: Date,
): Promise<{ sources: TraceSources; close(): void }> {
  const sinceDt = new Date(since.getTime() - 86_400_000).toISOString().slice(0, 10);
  const engine = await localCuratedEngine(lakeDir, sinceDt);
  return {
    sources: {
      lake: localLakeReader(lakeDir),
      curated: sqlCuratedIndex(engine, (t) => `"${t}"`),
      quarantine: localQuarantineReader(lakeDir),
      waiting: localWaitingReaders(lakeDir),
      state: localStateReader(lakeDir),
      reports: localReportReader(workDir),
    },
    close: () => engine.close(),
  };
}
