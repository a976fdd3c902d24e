/**
 * The query engine behind commands that ask the lake a question in SQL: Athena through the stack's
 * workgroup (which fixes where results go and how much a query may scan), or DuckDB on the local lake.
 * One small interface, so a command's logic is tested against a fake and the Athena client alone
 * against a mocked SDK.
 */
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import type { CuratedIndex, CuratedRow } from '../lambda/core/trace';
import { COMPACTED_OBJECTS, COMPACTION_COMMITS, CURATED_DELIVERIES } from '../lib/queries';

export type Row = Record<string, string | null>;

export interface QueryEngine {
  readonly describe: string;
  query(sql: string): Promise<Row[]>;
}

export interface AthenaEngineOptions {
  readonly workGroup: string;
  readonly database: string;
  readonly athena?: AthenaClient;
  /** First wait between two looks at a running query; doubles up to 2 s. @default 200 */
  readonly pollMs?: number;
  /** Give up waiting after this long. @default 300000 */
  readonly timeoutMs?: number;
}

/** Athena: start, poll until the query ends, read every page; a failed query is one line saying why. */
export function athenaQueryEngine(options: AthenaEngineOptions): QueryEngine {
  const athena = options.athena ?? new AthenaClient({});
  return {
    describe: `Athena workgroup ${options.workGroup}, database ${options.database}`,
    async query(sql) {
      const started = await athena.send(
        new StartQueryExecutionCommand({
          QueryString: sql,
          WorkGroup: options.workGroup,
          QueryExecutionContext: { Database: options.database },
        }),
      );
      const id = started.QueryExecutionId as string;
      const deadline = Date.now() + (options.timeoutMs ?? 300_000);
      let wait = options.pollMs ?? 200;
      for (;;) {
        const status = (await athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution
          ?.Status;
        const state = status?.State;
        if (state === 'SUCCEEDED') break;
        if (state === 'FAILED' || state === 'CANCELLED') {
          const reason = (status?.StateChangeReason ?? status?.AthenaError?.ErrorMessage ?? 'no reason given')
            .split('\n')[0]
            .trim();
          throw new Error(`Athena query ${id} ${state.toLowerCase()}: ${reason}`);
        }
        if (Date.now() > deadline)
          throw new Error(
            `Athena query ${id} still ${state ?? 'starting'} after ${(options.timeoutMs ?? 300_000) / 1000} s`,
          );
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(2000, wait * 2);
      }
      const rows: Row[] = [];
      let columns: string[] | undefined;
      let token: string | undefined;
      do {
        const page = await athena.send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token }));
        columns ??= (page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? []).map((c) => c.Name ?? '');
        for (const [i, r] of (page.ResultSet?.Rows ?? []).entries()) {
          const values = (r.Data ?? []).map((d) => d.VarCharValue ?? null);
          // A SELECT's first row is its header.
          if (token === undefined && i === 0 && values.every((v, j) => v === columns?.[j])) continue;
          rows.push(Object.fromEntries(columns.map((c, j) => [c, values[j] ?? null])));
        }
        token = page.NextToken;
      } while (token);
      return rows;
    },
  };
}

/** A SQL string literal (both engines). */
export const sqlLiteral = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The curated layer through a query engine, in SQL both engines run. `table` renders a table's name
 * (quoted, with its database in Athena); `objectRef` turns a raw key into what `compacted_objects`
 * holds (the key locally, Athena's `$path`, an s3:// URI, deployed).
 */
export function sqlCuratedIndex(
  engine: QueryEngine,
  table: (name: string) => string,
  objectRef: (key: string) => string = (k) => k,
): CuratedIndex {
  return {
    describe: engine.describe,
    async rows({ eventIds, vehicleId, sinceDt }) {
      const ids = eventIds.map(sqlLiteral).join(', ');
      const rows =
        await engine.query(`SELECT c.event_id, c.vehicle_id, c.run_id, CAST(c.copies AS VARCHAR) AS copies, c.received_at, m.committed_at
FROM ${table(CURATED_DELIVERIES)} c LEFT JOIN ${table(COMPACTION_COMMITS)} m ON m.run_id = c.run_id
WHERE c.dt >= ${sqlLiteral(sinceDt)} AND (c.event_id IN (${ids}) OR c.vehicle_id = ${sqlLiteral(vehicleId)})`);
      return rows.map(
        (r): CuratedRow => ({
          eventId: String(r.event_id),
          vehicleId: r.vehicle_id ?? null,
          runId: String(r.run_id),
          committedAt: r.committed_at ?? null,
          copies: r.copies === null || r.copies === undefined ? null : Number(r.copies),
          receivedAt: String(r.received_at ?? ''),
        }),
      );
    },
    async claims(keys, sinceDt) {
      if (keys.length === 0) return new Map();
      const byRef = new Map(keys.map((k) => [objectRef(k), k]));
      const rows = await engine.query(`SELECT o.object, o.run_id
FROM ${table(COMPACTED_OBJECTS)} o JOIN ${table(COMPACTION_COMMITS)} m ON m.run_id = o.run_id
WHERE o.dt >= ${sqlLiteral(sinceDt)} AND o.object IN (${[...byRef.keys()].map(sqlLiteral).join(', ')})`);
      return new Map(rows.map((r) => [byRef.get(String(r.object)) as string, String(r.run_id)]));
    },
  };
}
