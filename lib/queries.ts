/**
 * The lake's views, written once and rendered for two engines: Athena (Trino) in AWS and DuckDB on the
 * local lake. Each view is a function of a small {@link Dialect}; the few places where the engines
 * differ (JSON access, timestamps, table names) are the dialect's methods, tested on their own, and the
 * DuckDB renderings run against a fixture lake in the tests.
 */

export interface Dialect {
  readonly name: 'athena' | 'duckdb';
  /** A table or view of the lake by its bare name. */
  table(name: string): string;
  /** A JSON scalar at `path` as text; null for objects, arrays and missing values. */
  jsonScalar(expr: string, path: string): string;
  /** The JSON text of whatever is at `path` (object, array or scalar); null when missing. */
  jsonText(expr: string, path: string): string;
  /** The JSON array at `path` as an array of JSON values, for UNNEST. */
  jsonArray(expr: string, path: string): string;
  /** The JSON array at `path` as an array of JSON values; null when it is missing or not an array. */
  jsonArrayOrNull(expr: string, path: string): string;
  /** Text as a JSON string literal (quoted and escaped); null for null. */
  jsonString(expr: string): string;
  /** Each element of an array mapped by `item` (given the element's name) and joined with commas. */
  mapJoin(array: string, item: (element: string) => string): string;
  /** An ISO 8601 string as a timestamp. */
  isoTimestamp(expr: string): string;
  /** Epoch milliseconds (number or numeric text) as a timestamp. */
  epochMs(expr: string): string;
  /** A timestamp as epoch seconds (a double). */
  epochSeconds(expr: string): string;
  /** The median of a numeric column (approximate in Athena). */
  median(expr: string): string;
  /** The current time as a timestamp. */
  now(): string;
  /** Whether text is an unsigned decimal number of at most `digits` integer digits (safe to CAST). */
  isNumber(expr: string, digits: number): string;
  /**
   * The raw rows not yet compacted into the curated layer: rows of raw objects that no committed
   * compaction run claimed. Every raw object is on exactly one side of that line.
   */
  rawTail(): string;
}

export const athenaDialect = (database: string): Dialect => ({
  name: 'athena',
  table: (name) => `"${database}"."${name}"`,
  jsonScalar: (e, p) => `json_extract_scalar(${e}, '${p}')`,
  jsonText: (e, p) => `json_format(json_extract(${e}, '${p}'))`,
  jsonArray: (e, p) => `CAST(json_extract(${e}, '${p}') AS ARRAY(JSON))`,
  // json_array_length is null for anything but an array, where the CAST would fail the query.
  jsonArrayOrNull: (e, p) =>
    `CASE WHEN json_array_length(json_extract(${e}, '${p}')) IS NOT NULL THEN CAST(json_extract(${e}, '${p}') AS ARRAY(JSON)) END`,
  jsonString: (e) => `json_format(CAST(${e} AS JSON))`,
  mapJoin: (a, item) => `array_join(transform(${a}, elem -> ${item('elem')}), ',')`,
  isoTimestamp: (e) => `from_iso8601_timestamp(${e})`,
  epochMs: (e) => `from_unixtime(CAST(${e} AS DOUBLE) / 1000)`,
  epochSeconds: (e) => `to_unixtime(${e})`,
  median: (e) => `approx_percentile(${e}, 0.5)`,
  now: () => 'current_timestamp',
  isNumber: (e, n) => `regexp_like(${e}, '^[0-9]{1,${n}}(\\.[0-9]+)?$')`,
  rawTail: () => `(SELECT r.* FROM "${database}"."${RAW_TABLE}" r
    WHERE NOT EXISTS (SELECT 1 FROM "${database}"."${COMPACTED_OBJECTS}" o
                      WHERE o.object = r."$path" AND o.run_id IN (SELECT run_id FROM "${database}"."${COMPACTION_COMMITS}")))`,
});

export const duckdbDialect: Dialect = {
  name: 'duckdb',
  table: (name) => `"${name}"`,
  // DuckDB's json_extract_string renders objects and arrays as text; Athena's returns null for them.
  jsonScalar: (e, p) =>
    `CASE WHEN json_type(${e}, '${p}') IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(${e}, '${p}') END`,
  jsonText: (e, p) => `CAST(json_extract(${e}, '${p}') AS VARCHAR)`,
  jsonArray: (e, p) => `COALESCE(CAST(json_extract(${e}, '${p}') AS JSON[]), [])`,
  jsonArrayOrNull: (e, p) =>
    `CASE WHEN json_type(${e}, '${p}') = 'ARRAY' THEN CAST(json_extract(${e}, '${p}') AS JSON[]) END`,
  jsonString: (e) => `CAST(to_json(${e}) AS VARCHAR)`,
  mapJoin: (a, item) => `array_to_string(list_transform(${a}, lambda elem: ${item('elem')}), ',')`,
  isoTimestamp: (e) => `CAST(${e} AS TIMESTAMPTZ)`,
  epochMs: (e) => `to_timestamp(CAST(${e} AS DOUBLE) / 1000)`,
  epochSeconds: (e) => `epoch(${e})`,
  median: (e) => `median(${e})`,
  now: () => 'now()',
  isNumber: (e, n) => `regexp_full_match(${e}, '[0-9]{1,${n}}(\\.[0-9]+)?')`,
  // The local lake resolves the claimed objects when it opens (local/query.ts) and reads only the others.
  rawTail: () => `"${RAW_TAIL}"`,
};

export interface LakeView {
  readonly name: string;
  readonly description: string;
  readonly sql: (d: Dialect) => string;
}

/** The raw table's columns, in order; the partition columns come last. */
export const DELIVERY_COLUMNS = [
  ['event_id', 'string'],
  ['payload_version', 'string'],
  ['webhook_id', 'string'],
  ['webhook_name', 'string'],
  ['delivery_id', 'string'],
  ['vehicle_ids', 'array<string>'],
  ['user_id', 'string'],
  ['delivered_at', 'string'],
  ['received_at', 'string'],
  ['ingested_at', 'string'],
  ['request_id', 'string'],
  ['body', 'string'],
  ['body_base64', 'string'],
  ['body_json', 'string'],
] as const;
/** Partition keys; in the table they replace the records' own event_type and mode fields. */
export const PARTITION_COLUMNS = ['event_type', 'mode', 'dt', 'hour'] as const;

const ALL_COLUMNS = [...DELIVERY_COLUMNS.map(([c]) => c), ...PARTITION_COLUMNS].join(', ');

/** The raw zone's table (gzip NDJSON, as the ingest function writes it). */
export const RAW_TABLE = 'deliveries';
/** Curated layer (Parquet): one row per event, whatever the raw zone holds. */
export const CURATED_DELIVERIES = 'curated_deliveries';
/** Curated layer (Parquet): the signals of the curated events, extracted once at compaction. */
export const CURATED_SIGNALS = 'curated_signals';
/** Which raw objects each compaction run claimed. */
export const COMPACTED_OBJECTS = 'compacted_objects';
/** One row per finished compaction run: only its rows and claims count. */
export const COMPACTION_COMMITS = 'compaction_commits';
/** The local lake's name for the raw rows not yet compacted (see {@link Dialect.rawTail}). */
export const RAW_TAIL = 'raw_tail';

/** Where each curated table lives under the curated prefix (the local lake uses the same folders). */
export const CURATED_TABLE_FOLDERS: Record<string, string> = {
  [CURATED_DELIVERIES]: 'deliveries',
  [CURATED_SIGNALS]: 'signals',
  [COMPACTED_OBJECTS]: 'compaction/objects',
  [COMPACTION_COMMITS]: 'compaction/commits',
};

/** Partition keys of the curated tables: the hour is a column, so a day is a handful of files. */
export const CURATED_PARTITION_COLUMNS = ['event_type', 'mode', 'dt'] as const;
/** Columns of `curated_deliveries`, in order, before its partition keys. */
export const CURATED_DELIVERY_COLUMNS = [
  ...DELIVERY_COLUMNS,
  ['vehicle_id', 'string'],
  ['make', 'string'],
  ['model', 'string'],
  ['year', 'string'],
  ['hour', 'string'],
  ['copies', 'bigint'],
  ['run_id', 'string'],
] as const;
/** Columns of `curated_signals`, in order, before its partition keys. Signal times are epoch milliseconds. */
export const CURATED_SIGNAL_COLUMNS = [
  ['event_id', 'string'],
  ['received_at', 'string'],
  ['vehicle_id', 'string'],
  ['signal_code', 'string'],
  ['signal_name', 'string'],
  ['signal_group', 'string'],
  ['value', 'string'],
  ['unit', 'string'],
  ['body_json', 'string'],
  ['status_code', 'int'],
  ['oem_updated_ms', 'bigint'],
  ['fetched_ms', 'bigint'],
  ['triggers', 'string'],
  ['hour', 'string'],
  ['run_id', 'string'],
] as const;
export const COMPACTED_OBJECT_COLUMNS = [
  ['object', 'string'],
  ['run_id', 'string'],
  ['dt', 'string'],
  ['hour', 'string'],
] as const;
export const COMPACTION_COMMIT_COLUMNS = [
  ['run_id', 'string'],
  ['committed_at', 'string'],
] as const;

/** A curated table's rows from committed compaction runs only. */
function committed(d: Dialect, table: string): string {
  return `(SELECT * FROM ${d.table(table)} WHERE run_id IN (SELECT run_id FROM ${d.table(COMPACTION_COMMITS)}))`;
}

/** The vehicle a delivery is about, and its make/model/year where the payload names them. */
function vehicleColumns(d: Dialect, payload: string): string {
  return `COALESCE(${d.jsonScalar(payload, '$.vehicleId')}, ${d.jsonScalar(payload, '$.data.vehicle.id')}, ${d.jsonScalar(payload, '$.payload.vehicleId')}) AS vehicle_id,
       ${d.jsonScalar(payload, '$.data.vehicle.make')} AS make,
       ${d.jsonScalar(payload, '$.data.vehicle.model')} AS model,
       ${d.jsonScalar(payload, '$.data.vehicle.year')} AS year`;
}

/**
 * What prompted a delivery, as JSON text: the payload's `triggers` (top level, or under `data` as some
 * of Smartcar's pages show it) normalized to `[{"type":…,"code":…}]`, whichever of the documented shapes
 * each item has (see {@link normalizeTriggers} in lambda/core/envelope.ts, which this must match):
 * `{type, signal:{code,…}}`, `{code, name, group}` (a signal change), `{code: "FIRST_DELIVERY"}` or
 * `{type: "FIRST_DELIVERY"}` (code null), `{type, signal: "Group.Name"}` (code `group-name`, Smartcar's
 * code for that signal). Null when the payload has no triggers array: never fails a row.
 */
export function triggersJson(d: Dialect, payload: string): string {
  const array = `COALESCE(${d.jsonArrayOrNull(payload, '$.triggers')}, ${d.jsonArrayOrNull(payload, '$.data.triggers')})`;
  const item = (x: string) => {
    const code = d.jsonScalar(x, '$.code');
    const type = `COALESCE(${d.jsonScalar(x, '$.type')}, CASE WHEN ${code} = '${FIRST_DELIVERY}' THEN '${FIRST_DELIVERY}' END, '${SIGNAL_UPDATED}')`;
    const signalCode = `COALESCE(${d.jsonScalar(x, '$.signal.code')}, lower(replace(${d.jsonScalar(x, '$.signal')}, '.', '-')), ${code})`;
    return `'{"type":' || ${d.jsonString(type)} || ',"code":' || COALESCE(${d.jsonString(
      `CASE WHEN ${type} = '${FIRST_DELIVERY}' THEN NULL ELSE ${signalCode} END`,
    )}, 'null') || '}'`;
  };
  return `CASE WHEN ${array} IS NOT NULL THEN '[' || ${d.mapJoin(array, item)} || ']' END`;
}

/** Trigger types Smartcar documents (normalized `type` of a triggers item). */
const FIRST_DELIVERY = 'FIRST_DELIVERY';
const SIGNAL_UPDATED = 'SIGNAL_UPDATED';

/**
 * One row per vehicle and signal (current VEHICLE_STATE) or vehicle and endpoint (legacy schedule) of
 * `source`, a relation with event_id, event_type, mode, received_at, payload, dt and hour. Signal times
 * stay epoch milliseconds here: the curated layer stores them so, and the `signals` view converts.
 * `triggers` is the delivery's (the same on each of its rows), so "what changed" is one query.
 */
export function signalRows(d: Dialect, source: string): string {
  // A value that is not a number (or absurdly large) becomes null rather than failing the statement: one
  // odd delivery must not stop every compaction run or every query of the view.
  const ms = (e: string) => `CASE WHEN ${d.isNumber(e, 15)} THEN CAST(CAST(${e} AS DOUBLE) AS BIGINT) END`;
  // A signal Smartcar could not read carries `error` (or `status.value` ERROR, or a null body) instead of a
  // reading: it has no value, body or unit here (the raw payload keeps the error), as in the state table.
  const readable = `(COALESCE(${d.jsonText('s.signal', '$.error')}, 'null') = 'null'
         AND COALESCE(upper(${d.jsonScalar('s.signal', '$.status.value')}), '') <> 'ERROR'
         AND COALESCE(${d.jsonText('s.signal', '$.body')}, 'null') <> 'null')`;
  const reading = (e: string) => `CASE WHEN ${readable} THEN ${e} END`;
  return `SELECT e.event_id, e.event_type, e.mode, e.dt, e.hour, e.received_at,
       COALESCE(${d.jsonScalar('e.payload', '$.vehicleId')}, ${d.jsonScalar('e.payload', '$.data.vehicle.id')}) AS vehicle_id,
       ${d.jsonScalar('s.signal', '$.code')} AS signal_code,
       ${d.jsonScalar('s.signal', '$.name')} AS signal_name,
       ${d.jsonScalar('s.signal', '$.group')} AS signal_group,
       ${reading(d.jsonScalar('s.signal', '$.body.value'))} AS value,
       ${reading(d.jsonScalar('s.signal', '$.body.unit'))} AS unit,
       ${reading(d.jsonText('s.signal', '$.body'))} AS body_json,
       CAST(NULL AS INTEGER) AS status_code,
       ${ms(d.jsonScalar('s.signal', '$.meta.oemUpdatedAt'))} AS oem_updated_ms,
       ${ms(`COALESCE(${d.jsonScalar('s.signal', '$.meta.fetchedAt')}, ${d.jsonScalar('s.signal', '$.meta.retrievedAt')})`)} AS fetched_ms,
       ${triggersJson(d, 'e.payload')} AS triggers
FROM ${source} e
CROSS JOIN UNNEST(${d.jsonArray('e.payload', '$.data.signals')}) AS s (signal)
WHERE e.event_type = 'VEHICLE_STATE'
UNION ALL
SELECT e.event_id, e.event_type, e.mode, e.dt, e.hour, e.received_at,
       ${d.jsonScalar('v.vehicle', '$.vehicleId')} AS vehicle_id,
       ${d.jsonScalar('p.endpoint', '$.path')} AS signal_code,
       ${d.jsonScalar('p.endpoint', '$.path')} AS signal_name,
       CAST(NULL AS VARCHAR) AS signal_group,
       CAST(NULL AS VARCHAR) AS value,
       CAST(NULL AS VARCHAR) AS unit,
       ${d.jsonText('p.endpoint', '$.body')} AS body_json,
       CASE WHEN ${d.isNumber(d.jsonScalar('p.endpoint', '$.code'), 9)} THEN CAST(CAST(${d.jsonScalar('p.endpoint', '$.code')} AS DOUBLE) AS INTEGER) END AS status_code,
       CAST(NULL AS BIGINT) AS oem_updated_ms,
       CAST(NULL AS BIGINT) AS fetched_ms,
       CAST(NULL AS VARCHAR) AS triggers
FROM ${source} e
CROSS JOIN UNNEST(${d.jsonArray('e.payload', '$.payload.vehicles')}) AS v (vehicle)
CROSS JOIN UNNEST(${d.jsonArray('v.vehicle', '$.data')}) AS p (endpoint)
WHERE e.event_type IN ('schedule', 'scheduled')`;
}

/**
 * The rows one compaction run adds to `curated_deliveries`, in the table's column order: the records of
 * `pending` (the raw rows of the objects the run claimed), one per eventId (the first received, with the
 * number of copies), leaving out events an earlier committed run already curated; sorted so that each
 * file holds a vehicle's rows together.
 */
export function compactionSelect(d: Dialect, pending: string, runId: string): string {
  const out = [...CURATED_DELIVERY_COLUMNS.map(([c]) => c), ...CURATED_PARTITION_COLUMNS]
    .map((c) => (c === 'run_id' ? `'${runId}' AS run_id` : c))
    .join(', ');
  return `SELECT ${out}
FROM (
  SELECT p.*, ${vehicleColumns(d, 'COALESCE(p.body_json, p.body)')},
         ROW_NUMBER() OVER (PARTITION BY p.event_id ORDER BY p.received_at, p.ingested_at) AS copy,
         COUNT(*) OVER (PARTITION BY p.event_id) AS copies
  FROM ${pending} p
) ranked
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM ${committed(d, CURATED_DELIVERIES)} c WHERE c.event_id = ranked.event_id)
ORDER BY event_type, mode, dt, vehicle_id, received_at`;
}

/**
 * The rows one compaction run adds to `curated_signals`: the signals of the events it curated. `curated`
 * is a relation holding those events, with curated_deliveries' columns (Athena: that table, by run).
 */
export function compactionSignalsSelect(d: Dialect, curated: string, runId: string): string {
  const out = [...CURATED_SIGNAL_COLUMNS.map(([c]) => c), ...CURATED_PARTITION_COLUMNS]
    .map((c) => (c === 'run_id' ? `'${runId}' AS run_id` : c))
    .join(', ');
  const source = `(SELECT event_id, event_type, mode, dt, hour, received_at, COALESCE(body_json, body) AS payload
  FROM ${curated} WHERE run_id = '${runId}')`;
  return `SELECT ${out}
FROM (
${signalRows(d, source)}
) s
ORDER BY event_type, mode, dt, vehicle_id, signal_code, received_at`;
}

export const VIEWS: readonly LakeView[] = [
  {
    name: 'recent_deliveries',
    description:
      'The deliveries not yet compacted into the curated layer, one row per event not already curated, with the copies stored of it. `payload` is the body as JSON every engine reads.',
    sql: (d) => `SELECT ${ALL_COLUMNS}, payload, copies
FROM (
  SELECT ${ALL_COLUMNS}, COALESCE(body_json, body) AS payload,
         ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at, ingested_at) AS copy,
         COUNT(*) OVER (PARTITION BY event_id) AS copies
  FROM ${d.rawTail()} t
) ranked
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM ${committed(d, CURATED_DELIVERIES)} c WHERE c.event_id = ranked.event_id)`,
  },
  {
    name: 'deliveries_deduplicated',
    description:
      'One row per event (eventId, or body hash for legacy payloads), the first received, with the copies stored: the curated layer plus what is not compacted yet. `payload` is the body as JSON every engine reads.',
    sql: (d) => `SELECT ${ALL_COLUMNS}, COALESCE(body_json, body) AS payload, copies
FROM ${committed(d, CURATED_DELIVERIES)} c
UNION ALL
SELECT ${ALL_COLUMNS}, payload, copies
FROM ${d.table('recent_deliveries')}`,
  },
  {
    name: 'signals',
    description:
      'One row per vehicle and signal of current VEHICLE_STATE payloads, and per vehicle and endpoint of legacy schedule payloads. `triggers` is what prompted the delivery (JSON text: a list of type and code).',
    sql: (d) => `SELECT event_id, event_type, mode, received_at, vehicle_id, signal_code, signal_name, signal_group,
       value, unit, body_json, status_code,
       ${d.epochMs('oem_updated_ms')} AS oem_updated_at, ${d.epochMs('fetched_ms')} AS fetched_at, triggers
FROM (
  SELECT event_id, event_type, mode, received_at, vehicle_id, signal_code, signal_name, signal_group,
         value, unit, body_json, status_code, oem_updated_ms, fetched_ms, triggers
  FROM ${committed(d, CURATED_SIGNALS)} cs
  UNION ALL
  SELECT event_id, event_type, mode, received_at, vehicle_id, signal_code, signal_name, signal_group,
         value, unit, body_json, status_code, oem_updated_ms, fetched_ms, triggers
  FROM (
${signalRows(d, d.table('recent_deliveries'))}
  ) rs
) s`,
  },
  {
    // A legacy `schedule` delivery names several vehicles and none at the top: it counts once for each of
    // its vehicle_ids (what the ingest function found in the payload), so the fleet views see them report.
    name: 'delivery_vehicles',
    description:
      'One row per event and vehicle it is about, with make/model/year where known (a legacy schedule delivery counts once for each of its vehicles).',
    sql: (d) => `SELECT event_id, event_type, mode, received_at, vehicle_id, make, model, year
FROM (
  SELECT event_id, event_type, mode, received_at, vehicle_id, make, model, year
  FROM ${committed(d, CURATED_DELIVERIES)} c
  UNION ALL
  SELECT event_id, event_type, mode, received_at, ${vehicleColumns(d, 'r.payload')}
  FROM ${d.table('recent_deliveries')} r
) named
WHERE vehicle_id IS NOT NULL
UNION ALL
SELECT event_id, event_type, mode, received_at, v.vehicle_id,
       CAST(NULL AS VARCHAR) AS make, CAST(NULL AS VARCHAR) AS model, CAST(NULL AS VARCHAR) AS year
FROM (
  SELECT event_id, event_type, mode, received_at, vehicle_ids
  FROM ${committed(d, CURATED_DELIVERIES)} c
  WHERE vehicle_id IS NULL
  UNION ALL
  SELECT event_id, event_type, mode, received_at, vehicle_ids
  FROM ${d.table('recent_deliveries')} r
  WHERE COALESCE(${d.jsonScalar('r.payload', '$.vehicleId')}, ${d.jsonScalar('r.payload', '$.data.vehicle.id')}, ${d.jsonScalar('r.payload', '$.payload.vehicleId')}) IS NULL
) unnamed
CROSS JOIN UNNEST(unnamed.vehicle_ids) AS v (vehicle_id)`,
  },
  {
    // Both engines sort nulls last by default, also for DESC: rows without oemUpdatedAt rank after those with it.
    name: 'latest_signals',
    description:
      'The latest value of each signal (or legacy endpoint) per vehicle, by oemUpdatedAt, then fetchedAt, then receipt.',
    sql: (d) => `SELECT vehicle_id, signal_code, signal_name, signal_group, value, unit, body_json, status_code,
       oem_updated_at, fetched_at, received_at, event_id, mode
FROM (
  SELECT s.*,
         ROW_NUMBER() OVER (
           PARTITION BY vehicle_id, signal_code, mode
           ORDER BY oem_updated_at DESC, fetched_at DESC, received_at DESC
         ) AS recency
  FROM ${d.table('signals')} s
  WHERE vehicle_id IS NOT NULL AND signal_code IS NOT NULL AND (status_code IS NULL OR status_code = 200)
    -- A signal Smartcar could not read carries an error instead of a body: it is no value (curated rows
    -- written before 0.4 may still hold a JSON null body).
    AND body_json IS NOT NULL AND body_json <> 'null'
) ranked
WHERE recency = 1`,
  },
  {
    name: 'vehicle_errors',
    description: 'One row per error of current VEHICLE_ERROR payloads.',
    sql: (d) => `SELECT e.event_id, e.mode, e.received_at,
       COALESCE(${d.jsonScalar('e.payload', '$.vehicleId')}, ${d.jsonScalar('e.payload', '$.data.vehicle.id')}) AS vehicle_id,
       ${d.jsonScalar('x.error', '$.type')} AS error_type,
       ${d.jsonScalar('x.error', '$.code')} AS error_code,
       ${d.jsonScalar('x.error', '$.state')} AS state,
       ${d.jsonScalar('x.error', '$.description')} AS description,
       ${d.jsonScalar('x.error', '$.resolution.type')} AS resolution
FROM ${d.table('deliveries_deduplicated')} e
CROSS JOIN UNNEST(${d.jsonArray('e.payload', '$.data.errors')}) AS x (error)
WHERE e.event_type = 'VEHICLE_ERROR'`,
  },
  {
    name: 'vehicle_activity',
    description:
      'One row per vehicle and mode: first and last delivery, deliveries, make/model/year where known, and the typical gap between its deliveries (median of its own gaps).',
    sql: (
      d,
    ) => `SELECT vehicle_id, mode, MIN(received_at) AS first_seen, MAX(received_at) AS last_seen, COUNT(*) AS deliveries,
       MAX(make) AS make, MAX(model) AS model, MAX(year) AS year,
       ${d.median('gap_seconds')} AS typical_gap_seconds
FROM (
  SELECT vehicle_id, mode, received_at, make, model, year,
         ${d.epochSeconds(d.isoTimestamp('received_at'))} - ${d.epochSeconds(d.isoTimestamp('LAG(received_at) OVER (PARTITION BY vehicle_id, mode ORDER BY received_at)'))} AS gap_seconds
  FROM (
    SELECT vehicle_id, mode, received_at, make, model, year FROM ${d.table('delivery_vehicles')}
  ) named
  WHERE vehicle_id IS NOT NULL
) gaps
GROUP BY vehicle_id, mode`,
  },
  {
    // Silent: no delivery for longer than three of its own typical gaps (at least an hour, so hourly
    // schedules are not flagged by a late delivery); vehicles with too few deliveries to have a typical
    // gap fall back to 24 hours.
    name: 'silent_vehicles',
    description:
      'Vehicles that stopped reporting: no delivery for more than 3 typical gaps (at least 1 hour; 24 hours when the gap is unknown).',
    sql: (d) => `SELECT vehicle_id, mode, last_seen, typical_gap_seconds, expected_within_seconds,
       ${d.epochSeconds(d.now())} - ${d.epochSeconds(d.isoTimestamp('last_seen'))} AS silent_for_seconds
FROM (
  SELECT a.*, CASE WHEN typical_gap_seconds IS NULL OR deliveries < 3 THEN 86400
                   ELSE GREATEST(3 * typical_gap_seconds, 3600) END AS expected_within_seconds
  FROM ${d.table('vehicle_activity')} a
) expected
WHERE ${d.epochSeconds(d.now())} - ${d.epochSeconds(d.isoTimestamp('last_seen'))} > expected_within_seconds`,
  },
  {
    // An error opens with an ERROR event for a vehicle and error type/code, and closes with RESOLVED.
    name: 'open_vehicle_errors',
    description:
      'Errors still open per vehicle, type and code: opened at the first ERROR after the last RESOLVED, with their age and what the user must do (resolution).',
    sql: (d) => `SELECT vehicle_id, mode, error_type, error_code, opened_at, last_error_at, resolution, description,
       ${d.epochSeconds(d.now())} - ${d.epochSeconds(d.isoTimestamp('opened_at'))} AS age_seconds
FROM (
  SELECT vehicle_id, mode, error_type, error_code,
         MIN(CASE WHEN state = 'ERROR' AND (last_resolved IS NULL OR received_at > last_resolved) THEN received_at END) AS opened_at,
         MAX(CASE WHEN state = 'ERROR' THEN received_at END) AS last_error_at,
         MAX(last_resolved) AS last_resolved,
         MAX(CASE WHEN state = 'ERROR' AND received_at = last_error THEN resolution END) AS resolution,
         MAX(CASE WHEN state = 'ERROR' AND received_at = last_error THEN description END) AS description
  FROM (
    SELECT x.*,
           MAX(CASE WHEN state = 'RESOLVED' THEN received_at END) OVER (PARTITION BY vehicle_id, mode, error_type, error_code) AS last_resolved,
           MAX(CASE WHEN state = 'ERROR' THEN received_at END) OVER (PARTITION BY vehicle_id, mode, error_type, error_code) AS last_error
    FROM ${d.table('vehicle_errors')} x
  ) marked
  GROUP BY vehicle_id, mode, error_type, error_code
) errors
WHERE last_error_at IS NOT NULL AND (last_resolved IS NULL OR last_error_at > last_resolved)`,
  },
  {
    name: 'error_resolution_times',
    description: 'Per error code: errors resolved and the median and longest time from ERROR to the next RESOLVED.',
    sql: (
      d,
    ) => `SELECT error_type, error_code, COUNT(*) AS resolved, ${d.median('seconds')} AS median_seconds, MAX(seconds) AS max_seconds
FROM (
  SELECT e.error_type, e.error_code,
         MIN(${d.epochSeconds(d.isoTimestamp('r.received_at'))} - ${d.epochSeconds(d.isoTimestamp('e.received_at'))}) AS seconds
  FROM ${d.table('vehicle_errors')} e
  JOIN ${d.table('vehicle_errors')} r
    ON r.vehicle_id = e.vehicle_id AND r.mode = e.mode AND r.error_type = e.error_type
   AND COALESCE(r.error_code, '') = COALESCE(e.error_code, '') AND r.state = 'RESOLVED' AND r.received_at > e.received_at
  WHERE e.state = 'ERROR'
  GROUP BY e.vehicle_id, e.mode, e.error_type, e.error_code, e.received_at
) spans
GROUP BY error_type, error_code`,
  },
  {
    name: 'deliveries_per_hour',
    description:
      'Health, per hour of first receipt, event type and mode: distinct events and the copies of them stored (Smartcar retries; a copy stored after its event was compacted is not counted).',
    sql: (d) => `SELECT dt, hour, event_type, mode, SUM(copies) AS deliveries, COUNT(*) AS distinct_events
FROM (
  SELECT dt, hour, event_type, mode, copies FROM ${committed(d, CURATED_DELIVERIES)} c
  UNION ALL
  SELECT dt, hour, event_type, mode, copies FROM ${d.table('recent_deliveries')} r
) x
GROUP BY dt, hour, event_type, mode`,
  },
];

/** `CREATE OR REPLACE VIEW` for a view, in a dialect. */
export function createViewSql(view: LakeView, d: Dialect): string {
  return `CREATE OR REPLACE VIEW ${d.table(view.name)} AS\n${view.sql(d)}`;
}

/**
 * A dialect in which the views are common table expressions of one statement (for scheduled queries that
 * must not depend on views someone created in the catalog): views by their bare name, the raw table as before.
 */
export function inlineViews(d: Dialect): Dialect {
  const views = new Set(VIEWS.map((v) => v.name));
  return { ...d, table: (name) => (views.has(name) ? `"${name}"` : d.table(name)) };
}

/** One statement: the named views (and those they use, in definition order) as CTEs, then `select`. */
export function withViews(d: Dialect, select: string): string {
  const inline = inlineViews(d);
  const ctes = VIEWS.map((v) => `"${v.name}" AS (\n${v.sql(inline)}\n)`);
  return `WITH ${ctes.join(',\n')}\n${select}`;
}

/** The fleet check: how many vehicles are silent, out of how many reporting at all. */
export const FLEET_CHECK_SELECT =
  'SELECT (SELECT COUNT(*) FROM "silent_vehicles") AS silent, (SELECT COUNT(*) FROM "vehicle_activity") AS fleet';
/** The silent vehicles' report. */
export const SILENT_REPORT_SELECT =
  'SELECT vehicle_id, mode, last_seen, typical_gap_seconds, silent_for_seconds FROM "silent_vehicles" ORDER BY silent_for_seconds DESC';

/** How the scheduled compaction picks its hours. */
export interface CompactionWindow {
  /**
   * Days back from today whose raw objects a run considers (a missed run is caught up within them): a
   * number, or a placeholder (capital letters) the state machine replaces with each run's whole number.
   */
  readonly lookbackDays: number | string;
  /** Minutes after an hour ends before it counts as closed. */
  readonly settleMinutes: number;
  /** Days before the lookback window in which late raw objects are counted. @default 14 */
  readonly lateObjectWindowDays?: number;
}

/** The lookback as SQL: a whole number of days, or a placeholder the state machine fills with one. */
function lookbackSql(w: CompactionWindow): string {
  const days = w.lookbackDays;
  if (typeof days === 'number' ? !Number.isInteger(days) || days < 1 : !/^[A-Z]{1,40}$/.test(days))
    throw new Error(`lookbackDays "${days}" must be a whole number of days ≥ 1 or a placeholder of capital letters`);
  return String(days);
}

/** The first day (YYYY-MM-DD) of a window reaching `days` back from today, `days` being SQL. */
const since = (days: string) => `date_format(date_add('day', -(${days}), current_date), '%Y-%m-%d')`;

/**
 * The four Athena statements of one compaction run, in order: claim the unclaimed raw objects of closed
 * hours, curate their events once each, extract their signals, commit. Nothing of a run counts until its
 * commit row exists, so a run that fails part way is simply left out and the next run starts afresh.
 * Only committed runs' claims are left out of a claim, so two runs must never overlap: the state
 * machine holds a lease for the length of a run (lib/compaction.ts), the local command a lock file.
 * `runId` must be letters, digits, `_` and `-` (the state machine sanitizes the execution name).
 */
export function athenaCompactionStatements(database: string, w: CompactionWindow, runId: string): string[] {
  if (!/^[A-Za-z0-9_-]{1,80}$/.test(runId)) throw new Error(`run id "${runId}" must match [A-Za-z0-9_-]{1,80}`);
  const d = athenaDialect(database);
  const t = (name: string) => d.table(name);
  const lookback = lookbackSql(w);
  // One more day of margin when reading back, in case the statements straddle midnight.
  const claim = `INSERT INTO ${t(COMPACTED_OBJECTS)}
SELECT DISTINCT r."$path" AS object, '${runId}' AS run_id, r.dt, r.hour
FROM ${t(RAW_TABLE)} r
WHERE r.dt >= ${since(lookback)}
  AND concat(r.dt, ' ', r.hour) <= date_format(current_timestamp - interval '${60 + w.settleMinutes}' minute, '%Y-%m-%d %H')
  AND NOT EXISTS (SELECT 1 FROM ${t(COMPACTED_OBJECTS)} o
                  WHERE o.object = r."$path" AND o.run_id IN (SELECT run_id FROM ${t(COMPACTION_COMMITS)}))`;
  const pending = `(SELECT r.* FROM ${t(RAW_TABLE)} r
  WHERE r.dt >= ${since(`${lookback} + 1`)}
    AND r."$path" IN (SELECT object FROM ${t(COMPACTED_OBJECTS)} WHERE run_id = '${runId}'))`;
  const curated = `INSERT INTO ${t(CURATED_DELIVERIES)}\n${compactionSelect(d, pending, runId)}`;
  const signals = `INSERT INTO ${t(CURATED_SIGNALS)}\n${compactionSignalsSelect(
    d,
    `(SELECT * FROM ${t(CURATED_DELIVERIES)} WHERE dt >= ${since(`${lookback} + 1`)})`,
    runId,
  )}`;
  const commit = `INSERT INTO ${t(COMPACTION_COMMITS)} VALUES ('${runId}', to_iso8601(current_timestamp))`;
  return [claim, curated, signals, commit];
}

/**
 * Late raw objects: those of the `lateObjectWindowDays` before the lookback window that no committed run
 * claimed (written after their day left the window: a dead-letter redrive, a recovery, runs that failed
 * for longer than the lookback). One row: `objects` and the `oldest` day among them (null when none).
 * It scans those days of the raw zone once, rather than every day there is.
 */
export function athenaLateObjectsSelect(database: string, w: CompactionWindow): string {
  const t = (name: string) => athenaDialect(database).table(name);
  const lookback = lookbackSql(w);
  const late = w.lateObjectWindowDays ?? 14;
  if (!Number.isInteger(late) || late < 1) throw new Error(`lateObjectWindowDays ${late} must be a whole number ≥ 1`);
  return `SELECT COUNT(DISTINCT r."$path") AS objects, MIN(r.dt) AS oldest
FROM ${t(RAW_TABLE)} r
WHERE r.dt >= ${since(`${lookback} + ${late}`)}
  AND r.dt < ${since(lookback)}
  AND NOT EXISTS (SELECT 1 FROM ${t(COMPACTED_OBJECTS)} o
                  WHERE o.object = r."$path" AND o.run_id IN (SELECT run_id FROM ${t(COMPACTION_COMMITS)}))`;
}
