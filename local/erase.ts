/**
 * The local lake's erasure places: everything `npm start`, `npm run compact` and the local workflows keep
 * under the lake folder (and the local workflow folder), each an {@link ErasurePlace} for
 * {@link runErasure}. Every place removes only the subject's records received before the erasure began,
 * leaves everything else as it was (files without a match are not even rewritten), replaces files
 * atomically (temporary file in the same folder, then rename) and is idempotent: running the same request
 * again finishes an interrupted one and then finds nothing.
 *
 * The ledger (`<lake>/erasures/ledger.json`) and the receipts (`<lake>/erasures/receipts/`) live here too;
 * {@link localLedgerStore} (local/erasure-ledger.ts) is what replay, rebuild-state, recover-rejected and the local receiver read.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DEFAULT_LANDING_PREFIX, RECOVERY_PREFIX } from '../lambda/contract';
import {
  containsId,
  type ErasureContext,
  type ErasurePlace,
  type PlaceResult,
  rawZonePlace,
  type Subject,
} from '../lambda/core/erasure';
import { bodyNamesSubject, deliveryBelongs, pruneLanding } from '../lambda/core/erasure-places';
import {
  decodeQuarantined,
  quarantineObjectInfo,
  quarantineObjectKey,
  recoveryMarkerKey,
} from '../lambda/core/quarantine';
import { directoryLake } from '../scripts/ops/lake-store';
import { readIfExists, replaceFile } from './erasure-ledger';
import { deleteLakeObject, getLakeObject, listLakeKeys, putLakeObject } from './file-lake';
import { readStateFile, STATE_FILE } from './state-file';

export { LEDGER_FILE, localLedgerStore, localReceiptStore, RECEIPTS_DIR } from './erasure-ledger';

const quoted = (s: Subject) => `"${s.id}"`;

/** Whether a queued or quarantined delivery (base64 body) is the subject's and older than the erasure. */
function deliveryNames(bodyBase64: unknown, receivedAt: unknown, context: ErasureContext): boolean {
  if (typeof bodyBase64 !== 'string') return false;
  // The same decision as the deployed places: envelope fields and JSON strings, escapes seen through.
  return deliveryBelongs(
    { bodyBase64, receivedAt: typeof receivedAt === 'string' ? receivedAt : '' },
    context.subject,
    context.erasedAt,
  );
}

// ---------------------------------------------------------------------------------------------------
// Curated layer (Parquet, rewritten with DuckDB)
// ---------------------------------------------------------------------------------------------------

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * Every Parquet file under `<lake>/curated/`, by folder (a folder's files share a schema). Rows are the
 * subject's when a text column equals the id or holds it as a JSON string, a list column holds it, or
 * their event_id is one the raw zone removed (signal rows of a user's events name only the vehicle) or a
 * matching delivery row carries; and, where the rows have `received_at`, only those received before the
 * erasure. Signals are rewritten before deliveries, so an interrupted run still finds the deliveries'
 * event ids when run again. Tables without such columns (the compaction's claims and commits: object
 * keys and run ids) are searched like the others and never match.
 */
export function curatedPlace(lakeDir: string): ErasurePlace {
  return {
    place: 'curated',
    async erase(context) {
      const root = path.join(lakeDir, 'curated');
      const files = (await listLakeKeys(lakeDir, 'curated'))
        .filter((k) => k.endsWith('.parquet') && !k.startsWith('curated/.staging/'))
        .sort();
      const byFolder = new Map<string, string[]>();
      for (const key of files) {
        const folder = key
          .split('/')
          .filter((p) => !p.includes('='))
          .slice(0, -1)
          .join('/');
        byFolder.set(folder, [...(byFolder.get(folder) ?? []), path.join(lakeDir, ...key.split('/'))]);
      }
      if (!context.dryRun) {
        // Files of a compaction run that crashed before moving them into place (we hold the lock: nobody
        // else is writing there); the next compaction would clear them too.
        await rm(path.join(root, '.staging'), { recursive: true, force: true });
      }
      // Deliveries first in the search (their event ids find the signal rows), last in the rewriting.
      const folders = [...byFolder.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
      if (folders.length === 0) return { place: 'curated', where: root, unit: 'rows', found: 0, removed: 0 };
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      try {
        // A table of the in-memory database (not TEMP): the rewriting connections below read it too.
        await connection.run('CREATE TABLE erased_events (event_id VARCHAR)');
        const addEvents = async (ids: readonly string[]) => {
          for (let i = 0; i < ids.length; i += 1000)
            await connection.run(
              `INSERT INTO erased_events VALUES ${ids
                .slice(i, i + 1000)
                .map((e) => `(${sqlString(e)})`)
                .join(', ')}`,
            );
        };
        await addEvents([...context.eventIds]);
        const plans: { folder: string; matches: Map<string, number> }[] = [];
        for (const folder of folders) {
          const list = `[${byFolder.get(folder)?.map(sqlString).join(', ')}]`;
          const source = `read_parquet(${list}, filename = true, hive_partitioning = false, union_by_name = true)`;
          const columns = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`))
            .getRowObjectsJson()
            .map((r) => ({ name: String(r.column_name), type: String(r.column_type) }))
            .filter((c) => c.name !== 'filename');
          const where = predicate(columns, context);
          if (!where) {
            plans.push({ folder, matches: new Map() });
            continue;
          }
          const hasEvent = columns.some((c) => c.name === 'event_id');
          const rows = (
            await connection.runAndReadAll(
              `SELECT filename, ${hasEvent ? 'event_id' : 'NULL AS event_id'} FROM ${source} WHERE ${where}`,
            )
          ).getRowObjectsJson();
          const matches = new Map<string, number>();
          for (const r of rows) matches.set(String(r.filename), (matches.get(String(r.filename)) ?? 0) + 1);
          await addEvents(rows.flatMap((r) => (r.event_id === null ? [] : [String(r.event_id)])));
          plans.push({ folder, matches });
        }
        const results: PlaceResult[] = [];
        for (const { folder, matches } of [...plans].reverse()) {
          let removed = 0;
          let rewritten = 0;
          let deleted = 0;
          const found = [...matches.values()].reduce((a, b) => a + b, 0);
          if (!context.dryRun) {
            // A curated file is one row group or a few, which DuckDB reads and writes on one thread: files
            // are rewritten side by side, one connection each.
            const files = [...matches.keys()];
            let next = 0;
            const worker = async () => {
              const own = await instance.connect();
              try {
                while (next < files.length) {
                  const r = await rewriteParquet(own, files[next++], context);
                  if (r.kept === 0) deleted++;
                  else rewritten++;
                  removed += r.removed;
                }
              } finally {
                own.closeSync();
              }
            };
            await Promise.all(Array.from({ length: Math.min(REWRITERS, files.length) }, worker));
          }
          results.unshift({
            place: 'curated',
            where: path.join(lakeDir, ...folder.split('/')),
            unit: 'rows',
            found,
            removed,
            rewritten,
            deleted,
          });
        }
        return results;
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    },
  };
}

/** Curated files rewritten at once. */
const REWRITERS = Math.max(2, Math.min(4, availableParallelism()));

const rank = (folder: string) => (folder.endsWith('/deliveries') ? 0 : 1);

/** The SQL condition for the subject's rows, from the columns a folder's files have; undefined: none can match. */
function predicate(columns: readonly { name: string; type: string }[], context: ErasureContext): string | undefined {
  const id = sqlString(context.subject.id);
  const inBody = sqlString(quoted(context.subject));
  const terms: string[] = [];
  for (const { name, type } of columns) {
    const col = `"${name.replaceAll('"', '""')}"`;
    if (type === 'VARCHAR') terms.push(`${col} = ${id}`, `contains(${col}, ${inBody})`);
    else if (type === 'VARCHAR[]') terms.push(`list_contains(${col}, ${id})`);
  }
  if (columns.some((c) => c.name === 'event_id')) terms.push('event_id IN (SELECT event_id FROM erased_events)');
  if (terms.length === 0) return undefined;
  const cutoff = columns.some((c) => c.name === 'received_at' && c.type === 'VARCHAR')
    ? ` AND received_at < ${sqlString(context.erasedAt.toISOString())}`
    : '';
  // COALESCE: a NULL column makes the condition NULL, and `NOT NULL` would drop a row nobody asked for.
  return `COALESCE(((${terms.join(' OR ')})${cutoff}), false)`;
}

/**
 * Rewrites one Parquet file without the subject's rows (same compression, written beside it and renamed
 * over); a file left without rows is deleted. Returns the rows kept.
 */
async function rewriteParquet(
  connection: import('@duckdb/node-api').DuckDBConnection,
  file: string,
  context: ErasureContext,
): Promise<{ kept: number; removed: number }> {
  const source = `read_parquet(${sqlString(file)}, hive_partitioning = false)`;
  const columns = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`))
    .getRowObjectsJson()
    .map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
  const where = predicate(columns, context) ?? 'false';
  const rows = async (f: string) =>
    Number(
      (
        await connection.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${sqlString(f)})`)
      ).getRowObjectsJson()[0].num_rows,
    );
  const total = await rows(file);
  const codec =
    (
      await connection.runAndReadAll(`SELECT compression FROM parquet_metadata(${sqlString(file)}) LIMIT 1`)
    ).getRowObjectsJson()[0]?.compression ?? 'SNAPPY';
  // One pass: write what is kept, then count it from the new file's footer.
  const tmp = `${file}.${randomUUID()}.tmp`;
  await connection.run(
    `COPY (SELECT * FROM ${source} WHERE NOT ${where}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION ${String(codec).toLowerCase()})`,
  );
  const kept = await rows(tmp);
  const result = { kept, removed: total - kept };
  if (kept === 0) {
    await rm(tmp, { force: true });
    await rm(file, { force: true });
  } else await rename(tmp, file);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// State file, quarantine, spools, request log, workflow reports
// ---------------------------------------------------------------------------------------------------

/** `<lake>/state/vehicles.json`: the entries (`vehicleId|mode`) of the vehicles the subject's records named. */
export function stateFilePlace(lakeDir: string): ErasurePlace {
  return {
    place: 'state',
    async erase(context) {
      const file = path.join(lakeDir, STATE_FILE);
      const exists = (await readIfExists(file)) !== undefined;
      const state = exists ? await readStateFile(lakeDir) : {};
      let found = 0;
      let changed = false;
      for (const [key, vehicle] of Object.entries(state)) {
        const vehicleId = key.slice(0, key.lastIndexOf('|'));
        if (context.subject.kind === 'vehicle') {
          // A vehicle's erasure: all of its state (and only its own: a legacy delivery names others too).
          if (vehicleId !== context.subject.id) continue;
          found++;
          delete state[key];
          changed = true;
          continue;
        }
        // A user's erasure: the signals that came from the user's removed deliveries. A vehicle the user's
        // old deliveries named may be another user's today: what came from theirs stays.
        if (!context.vehicleIds.has(vehicleId)) continue;
        const signals = Object.entries(vehicle.signals);
        const theirs = signals.filter(([, signal]) => context.eventIds.has(signal.eventId));
        if (theirs.length === 0) continue;
        found++;
        changed = true;
        if (theirs.length === signals.length) {
          delete state[key];
          continue;
        }
        const kept = Object.fromEntries(signals.filter(([, signal]) => !context.eventIds.has(signal.eventId)));
        const lastDeliveryAt = Object.values(kept)
          .map((signal) => signal.receivedAt)
          .sort()
          .at(-1) as string;
        state[key] = { ...vehicle, signals: kept, lastDeliveryAt };
      }
      if (!context.dryRun && changed) await replaceFile(file, JSON.stringify(state));
      return {
        place: 'state',
        where: file,
        unit: 'vehicle states',
        found,
        removed: context.dryRun ? 0 : found,
        ...(context.subject.kind === 'user'
          ? { note: "signals from the user's removed deliveries; a vehicle with none left is removed" }
          : {}),
      };
    },
  };
}

/**
 * `<lake>/quarantine/`: quarantined deliveries whose body holds the id. An object keeping other records is
 * written under its new key (the key carries the record and byte counts the hourly budget reads) and the
 * old one deleted; recovery's marker of a changed object goes with it (it lists only eventIds).
 */
export function quarantinePlace(lakeDir: string): ErasurePlace {
  return {
    place: 'quarantine',
    async erase(context) {
      const keys = (await listLakeKeys(lakeDir, 'quarantine')).sort();
      let found = 0;
      let rewritten = 0;
      let deleted = 0;
      for (const key of keys) {
        const bytes = await getLakeObject(lakeDir, key);
        const text = key.endsWith('.gz') ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
        const lines = key.endsWith('.ndjson.gz') ? text.split('\n').filter((l) => l !== '') : [text];
        const kept: string[] = [];
        let bytesKept = 0;
        for (const line of lines) {
          let record: ReturnType<typeof decodeQuarantined> | undefined;
          try {
            record = decodeQuarantined(line);
          } catch {
            record = undefined;
          }
          const gone = record
            ? deliveryNames(record.bodyBase64, record.receivedAt, context)
            : containsId(line, context.subject.id);
          if (gone) continue;
          kept.push(line);
          if (record) bytesKept += Buffer.byteLength(record.bodyBase64, 'base64');
        }
        const removedHere = lines.length - kept.length;
        if (removedHere === 0) continue;
        found += removedHere;
        if (context.dryRun) continue;
        const info = quarantineObjectInfo(key);
        const marker = recoveryMarkerKey(key);
        if (kept.length > 0 && info && key.endsWith('.ndjson.gz')) {
          const body = gzipSync(Buffer.from(kept.map((l) => `${l}\n`).join('')));
          const next = quarantineObjectKey(info.at, kept.length, bytesKept, body);
          await putLakeObject(lakeDir, next, body);
          const markerText = await readIfExists(path.join(lakeDir, ...marker.split('/')));
          if (markerText !== undefined && !markerText.includes(context.subject.id))
            await putLakeObject(lakeDir, recoveryMarkerKey(next), Buffer.from(markerText));
          rewritten++;
        } else {
          deleted++;
        }
        await deleteLakeObject(lakeDir, marker);
        await deleteLakeObject(lakeDir, key);
      }
      // Markers that name the id themselves (none should: they list eventIds).
      for (const key of await listLakeKeys(lakeDir, RECOVERY_PREFIX)) {
        const text = await readIfExists(path.join(lakeDir, ...key.split('/')));
        if (text?.includes(context.subject.id) && !context.dryRun) await deleteLakeObject(lakeDir, key);
      }
      return {
        place: 'quarantine',
        where: path.join(lakeDir, 'quarantine'),
        unit: 'deliveries',
        found,
        removed: context.dryRun ? 0 : found,
        rewritten,
        deleted,
      };
    },
  };
}

/**
 * `<lake>/landing/`: the objects the local receiver's flush wrote (the delivery stream's stand-in) and has
 * not ingested yet (one a failed or interrupted flush left, or one `npm start` never got to), one
 * delivery a line. The subject's deliveries received before the erasure go; an object keeping others is
 * rewritten (their lines byte for byte, atomically), one left empty is deleted. A crashed write's
 * `*.tmp` there is searched the same way (leftovers leaves `landing/` to this place, so that other
 * people's deliveries in it stay). A receiver flushing meanwhile may ingest an object again after its
 * rewrite: the subject's deliveries stay out by the ledger's filter, the others may be stored twice, which
 * the views absorb (they count an event once).
 */
export function landingPlace(lakeDir: string, landingPrefix = DEFAULT_LANDING_PREFIX): ErasurePlace {
  return {
    place: 'landing',
    async erase(context) {
      const root = path.join(lakeDir, landingPrefix);
      const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
      const files = entries
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
      let found = 0;
      let rewritten = 0;
      let deleted = 0;
      for (const file of files) {
        const text = await readIfExists(file);
        if (text === undefined) continue; // ingested and deleted meanwhile
        const pruned = pruneLanding(text, context.subject, context.erasedAt);
        if (pruned.removed === 0) continue;
        found += pruned.removed;
        if (context.dryRun) continue;
        if (pruned.kept === 0) {
          await rm(file, { force: true });
          deleted++;
        } else {
          await replaceFile(file, pruned.text);
          rewritten++;
        }
      }
      return {
        place: 'landing',
        where: root,
        unit: 'deliveries',
        found,
        removed: context.dryRun ? 0 : found,
        rewritten,
        deleted,
        note: `${files.length} landing files searched`,
      };
    },
  };
}

/** A spool folder (`.spool`, `.quarantine-spool`): pending deliveries of the subject received before the erasure. */
export function spoolPlace(lakeDir: string, folder: string): ErasurePlace {
  return {
    place: 'spool',
    async erase(context) {
      const dir = path.join(lakeDir, folder);
      const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
      let found = 0;
      for (const name of names) {
        const text = await readIfExists(path.join(dir, name));
        if (text === undefined) continue;
        let gone: boolean;
        try {
          const m = JSON.parse(text) as { bodyBase64?: unknown; receivedAt?: unknown };
          gone = deliveryNames(m.bodyBase64, m.receivedAt, context);
        } catch {
          gone = containsId(text, context.subject.id);
        }
        if (!gone) continue;
        found++;
        if (!context.dryRun) await rm(path.join(dir, name), { force: true });
      }
      return { place: 'spool', where: dir, unit: 'deliveries', found, removed: context.dryRun ? 0 : found };
    },
  };
}

/**
 * The inspector's request log (`<lake>/.inspector/requests.ndjson`): entries from before the erasure that
 * hold the id anywhere (headers, body as text or base64, our answer). A running receiver keeps its log in
 * memory too: stop it first, or it writes them back when it next trims the file.
 */
export function requestLogPlace(lakeDir: string): ErasurePlace {
  return {
    place: 'request-log',
    async erase(context) {
      const file = path.join(lakeDir, '.inspector', 'requests.ndjson');
      const text = await readIfExists(file);
      const cutoff = context.erasedAt.toISOString();
      let found = 0;
      const kept: string[] = [];
      for (const line of (text ?? '').split('\n')) {
        if (line === '') continue;
        let entry: { at?: unknown; body?: unknown; bodyEncoding?: unknown } | undefined;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = undefined;
        }
        const body =
          typeof entry?.body === 'string'
            ? Buffer.from(entry.body, entry.bodyEncoding === 'base64' ? 'base64' : 'utf8')
            : Buffer.alloc(0);
        // Whole ids only (veh-1 is not veh-10), and the body as the raw zone reads it (escapes seen through).
        const names = containsId(line, context.subject.id) || bodyNamesSubject(body, context.subject);
        const before = typeof entry?.at !== 'string' || entry.at < cutoff;
        if (names && before) found++;
        else kept.push(line);
      }
      if (!context.dryRun && found > 0) await replaceFile(file, kept.map((l) => `${l}\n`).join(''), 0o600);
      return { place: 'request-log', where: file, unit: 'requests', found, removed: context.dryRun ? 0 : found };
    },
  };
}

/**
 * Removes from a JSON value what names the id, counting what it removes: an array element that is the id
 * or an entry about it (an object with a member whose value is the id: a vehicle's result, a connection)
 * goes whole; an object member whose key or text value names it goes; everything else is searched deeper
 * and otherwise kept, so a list of many vehicles loses only the subject's.
 */
function prune(value: unknown, subject: Subject, count: { n: number }): unknown {
  // Any text holding the id (an error message that quotes it too), not only the id itself.
  const names = (v: unknown) => typeof v === 'string' && containsId(v, subject.id);
  const isEntryOf = (v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).some(names);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) {
      if (names(v) || isEntryOf(v)) count.n++;
      else out.push(typeof v === 'object' && v !== null ? prune(v, subject, count) : v);
    }
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (containsId(k, subject.id) || names(v)) {
        count.n++;
        continue;
      }
      out[k] = typeof v === 'object' && v !== null ? prune(v, subject, count) : v;
    }
    return out;
  }
  return value;
}

/**
 * The local subscription workflow's and reconcile's files (`$LOCAL_WORKFLOW_DIR`, default
 * ./.local-workflow: pages of vehicle ids, per-vehicle results, reports, reconcile's pages and handoffs):
 * every entry that names the id is removed from the JSON it is in. Totals in a report are left as they
 * were (they count what happened, and name nobody).
 */
export function workflowReportsPlace(workDir: string): ErasurePlace {
  return {
    place: 'reports',
    async erase(context) {
      const entries = await readdir(workDir, { recursive: true, withFileTypes: true }).catch(() => []);
      let found = 0;
      let rewritten = 0;
      for (const e of entries) {
        if (!e.isFile() || !e.name.endsWith('.json')) continue;
        const file = path.join(e.parentPath, e.name);
        const text = await readIfExists(file);
        if (!text?.includes(context.subject.id)) continue;
        const count = { n: 0 };
        let pruned: string;
        try {
          pruned = JSON.stringify(prune(JSON.parse(text), context.subject, count));
        } catch {
          continue; // not JSON: not a workflow file
        }
        if (count.n === 0) continue;
        found += count.n;
        if (context.dryRun) continue;
        await replaceFile(file, pruned);
        rewritten++;
      }
      return {
        place: 'reports',
        where: workDir,
        unit: 'entries',
        found,
        removed: context.dryRun ? 0 : found,
        rewritten,
      };
    },
  };
}

export interface LocalPlacesOptions {
  /** The local workflows' folder. @default $LOCAL_WORKFLOW_DIR, else ./.local-workflow */
  readonly workDir?: string;
  readonly rawPrefix?: string;
}

/**
 * Files a crashed write left behind (`*.tmp`, written and renamed into place when a write succeeds): never
 * read by anything, but they may hold the subject. One that does is deleted (gzip ones are inflated to be
 * searched). The erasure ledger's folder is not looked at, nor `landing/` ({@link landingPlace} rewrites
 * its files line by line).
 */
export function leftoversPlace(lakeDir: string): ErasurePlace {
  return {
    place: 'leftovers',
    async erase(context) {
      const entries = await readdir(lakeDir, { recursive: true, withFileTypes: true }).catch(() => []);
      let found = 0;
      for (const e of entries) {
        if (!e.isFile() || !e.name.endsWith('.tmp')) continue;
        const file = path.join(e.parentPath, e.name);
        const relative = path.relative(lakeDir, file);
        // The ledger's folder is not looked at; landing files hold other people's deliveries: landingPlace's.
        if (relative.startsWith(`erasures${path.sep}`) || relative.startsWith(`${DEFAULT_LANDING_PREFIX}${path.sep}`))
          continue;
        const bytes = await readFile(file).catch(() => undefined);
        if (!bytes) continue;
        let text = bytes.toString('utf8');
        try {
          text = gunzipSync(bytes).toString('utf8');
        } catch {
          // not gzip: the bytes as text
        }
        if (!containsId(text, context.subject.id) && !bodyNamesSubject(Buffer.from(text), context.subject)) continue;
        found++;
        if (!context.dryRun) await rm(file, { force: true });
      }
      return { place: 'leftovers', where: lakeDir, unit: 'files', found, removed: context.dryRun ? 0 : found };
    },
  };
}

/** The local lake's places, raw zone first (it fills the context's vehicle and event ids for the others). */
export function localErasurePlaces(lakeDir: string, options: LocalPlacesOptions = {}): ErasurePlace[] {
  const rawPrefix = options.rawPrefix ?? 'raw';
  const workDir = options.workDir ?? path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow');
  return [
    rawZonePlace(directoryLake(lakeDir), rawPrefix, path.join(lakeDir, rawPrefix)),
    curatedPlace(lakeDir),
    stateFilePlace(lakeDir),
    landingPlace(lakeDir),
    quarantinePlace(lakeDir),
    spoolPlace(lakeDir, '.spool'),
    spoolPlace(lakeDir, '.quarantine-spool'),
    requestLogPlace(lakeDir),
    workflowReportsPlace(workDir),
    leftoversPlace(lakeDir),
  ];
}
