/**
 * `npm run compact`: the curated layer of the local lake, made by DuckDB as the stack's scheduled
 * compaction makes it with Athena (lib/compaction.ts), from the same SQL (lib/queries.ts). A run claims
 * the raw objects of closed hours that no committed run claimed, writes their events once each (first
 * received, copies counted, events an earlier run curated left out) as Parquet sorted by vehicle, extracts
 * their signals, and commits. Until the commit nothing of the run counts; after it the views read those
 * events from Parquet and no longer from the raw objects. Raw objects are never changed or deleted.
 *
 * One run at a time, as in AWS: a run claims what no *committed* run claimed, so two at once would both
 * curate the same events. A run holds the lake's lock file (created exclusively) from before it clears
 * files of runs that never committed until after its commit; a second run fails at once with
 * {@link CompactionBusyError}, touching nothing. A lock left by a run that crashed is taken over when its
 * process is gone (same host) or its lease has expired; a run whose lock was taken over does not commit.
 * Unlike the AWS compaction there is no lookback: every closed hour not compacted yet is, however late.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { lakeDirOf, runCommand, str, UsageError } from '../cli/args';
import { SPECS } from '../cli/registry';
import { keyTime } from '../lambda/core/lake';
import {
  COMPACTED_OBJECTS,
  COMPACTION_COMMITS,
  CURATED_DELIVERIES,
  CURATED_PARTITION_COLUMNS,
  CURATED_SIGNALS,
  compactionSelect,
  compactionSignalsSelect,
  duckdbDialect,
} from '../lib/queries';
import { listLakeKeys } from './file-lake';
import { CURATED_DIRS, defineLakeTables, openLocalLake, readRawSql, sqlString } from './query';

export interface CompactOptions {
  /** The time the run takes as now. @default the clock */
  readonly now?: Date;
  /** How long after an hour ends it counts as closed (late objects after that wait for a later run). @default 60 */
  readonly settleMinutes?: number;
  /** How long the lock of a run whose process cannot be checked (another host) holds. @default 2 hours */
  readonly leaseMs?: number;
}

export interface CompactResult {
  /** The committed run, or null when there was nothing to compact. */
  readonly runId: string | null;
  readonly objects: number;
  readonly events: number;
  readonly signals: number;
  /** Files of runs that never committed, removed before this run. */
  readonly abandonedFiles: number;
  /** Raw objects not compacted because their hour has not closed yet. */
  readonly waiting: number;
  /** Runs committed before this one (0: the curated layer is empty). */
  readonly earlierRuns: number;
}

const RUN_FILE = /(?:^|\/)run-([0-9A-Za-z-]+?)(?:_\d+)?\.parquet$/;

/** The lake's compaction lock, relative to the lake. */
export const LOCK_FILE = 'curated/.compaction.lock';

/** Who holds the lock: written into the lock file by the run that created it. */
export interface LockHolder {
  readonly runId: string;
  readonly token: string;
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  readonly expiresAt: string;
}

/** Another run holds the lake's compaction lock: this one did nothing. */
export class CompactionBusyError extends Error {
  constructor(readonly holder: Partial<LockHolder>) {
    super(
      `another compaction run (${holder.runId ?? 'starting'}, pid ${holder.pid ?? '?'} on ${holder.host ?? '?'}, since ${holder.startedAt ?? '?'}) is compacting this lake; this run did nothing: try again once it has ended`,
    );
    this.name = 'CompactionBusyError';
  }
}

/** Whether a process of this host is still running. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<Partial<LockHolder> | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Partial<LockHolder>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return {}; // being written right now, or left half-written: judged by its expiry below (none: held)
  }
}

function stale(holder: Partial<LockHolder>): boolean {
  // On this machine the process itself is the proof: a live one keeps its lock however long it runs.
  if (holder.host === hostname() && typeof holder.pid === 'number') return !alive(holder.pid);
  return Boolean(holder.expiresAt && Date.parse(holder.expiresAt) < Date.now());
}

/**
 * Takes the lake's compaction lock for `runId`, or throws {@link CompactionBusyError}. A stale lock is
 * moved aside atomically (rename) and checked to be the one judged stale; a fresh lock moved aside by a
 * race is put back. Returns the holder, for {@link holdsLock} and {@link releaseLock}.
 */
export async function takeLock(lakeDir: string, runId: string, leaseMs: number): Promise<LockHolder> {
  const file = path.join(lakeDir, ...LOCK_FILE.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  const now = Date.now();
  const me: LockHolder = {
    runId,
    token: randomBytes(8).toString('hex'),
    pid: process.pid,
    host: hostname(),
    startedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + leaseMs).toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(JSON.stringify(me));
      } finally {
        await handle.close();
      }
      return me;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (holder === undefined) continue; // released meanwhile
    if (!stale(holder)) throw new CompactionBusyError(holder);
    const aside = `${file}.${me.token}`;
    try {
      await rename(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another run moved it first
      throw err;
    }
    const moved = await readHolder(aside);
    if (moved?.token !== holder.token) {
      // A run took the stale lock over between the read and the rename: give its lock back.
      await link(aside, file).catch(() => undefined);
      await rm(aside, { force: true });
      throw new CompactionBusyError(moved ?? {});
    }
    await rm(aside, { force: true });
  }
  throw new CompactionBusyError((await readHolder(file)) ?? {});
}

/** Whether `me` still holds the lock (nobody took it over as stale). */
async function holdsLock(lakeDir: string, me: LockHolder): Promise<boolean> {
  return (await readHolder(path.join(lakeDir, ...LOCK_FILE.split('/'))))?.token === me.token;
}

/** Removes the lock if `me` still holds it. */
export async function releaseLock(lakeDir: string, me: LockHolder): Promise<void> {
  if (await holdsLock(lakeDir, me)) await rm(path.join(lakeDir, ...LOCK_FILE.split('/')), { force: true });
}

/** Whether the hour of a raw key ended at least `settleMinutes` before `now`. */
export function isClosed(key: string, now: Date, settleMinutes: number): boolean {
  const t = keyTime(key);
  if (!t) return false;
  const end = Date.parse(`${t.dt}T${t.hour}:00:00.000Z`) + 3_600_000 + settleMinutes * 60_000;
  return end <= now.getTime();
}

export async function compactLocalLake(lakeDir: string, options: CompactOptions = {}): Promise<CompactResult> {
  const now = options.now ?? new Date();
  const settle = options.settleMinutes ?? 60;
  // Unique whatever the clock says: the time the run takes as now, and 32 random bits.
  const runId = `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
  const lock = await takeLock(lakeDir, runId, options.leaseMs ?? 2 * 3_600_000);
  try {
    return await compactLocked(lakeDir, now, settle, runId, lock);
  } finally {
    await releaseLock(lakeDir, lock);
  }
}

/** One run, holding the lock: only now are files of runs that never committed known to be abandoned. */
async function compactLocked(
  lakeDir: string,
  now: Date,
  settle: number,
  runId: string,
  lock: LockHolder,
): Promise<CompactResult> {
  const lake = await openLocalLake(lakeDir);
  const { connection } = lake;
  const one = async (sql: string) => (await lake.query(sql))[0];
  try {
    // Files of runs that never committed count for nothing; remove them so they cannot be mistaken later.
    const commits = new Set(
      (await lake.query(`SELECT run_id FROM "${COMPACTION_COMMITS}"`)).map((r) => String(r.run_id)),
    );
    let abandonedFiles = 0;
    for (const table of [CURATED_DELIVERIES, CURATED_SIGNALS, COMPACTED_OBJECTS]) {
      for (const key of await listLakeKeys(lakeDir, CURATED_DIRS[table])) {
        const run = RUN_FILE.exec(key)?.[1];
        if (run && !commits.has(run)) {
          await rm(path.join(lakeDir, ...key.split('/')), { force: true });
          abandonedFiles++;
        }
      }
    }
    await rm(path.join(lakeDir, 'curated', '.staging'), { recursive: true, force: true });
    const { tailKeys } = await defineLakeTables(connection, lakeDir);
    const pending = tailKeys.filter((k) => isClosed(k, now, settle));
    const waiting = tailKeys.length - pending.length;
    const earlierRuns = commits.size;
    if (pending.length === 0)
      return { runId: null, objects: 0, events: 0, signals: 0, abandonedFiles, waiting, earlierRuns };

    const staging = path.join(lakeDir, 'curated', '.staging', runId);
    const staged = (table: string) => path.join(staging, ...CURATED_DIRS[table].split('/'));
    const d = duckdbDialect;
    // 1. Claim the objects (uncommitted until step 4).
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE claim AS SELECT unnest([${pending.map(sqlString).join(', ')}]) AS object`,
    );
    await mkdir(staged(COMPACTED_OBJECTS), { recursive: true });
    await connection.run(`COPY (SELECT c.object, '${runId}' AS run_id,
        regexp_extract(c.object, '/dt=([0-9-]+)/', 1) AS dt, regexp_extract(c.object, '/hour=([0-9]+)/', 1) AS hour
      FROM claim c) TO ${sqlString(path.join(staged(COMPACTED_OBJECTS), `run-${runId}.parquet`))} (FORMAT parquet)`);
    // 2. Their events, once each, left out when an earlier run curated them.
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE batch AS ${compactionSelect(d, `(SELECT * FROM ${readRawSql(lakeDir, pending)})`, runId)}`,
    );
    const partitioned = `FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${CURATED_PARTITION_COLUMNS.join(', ')}), FILENAME_PATTERN 'run-${runId}_{i}', OVERWRITE_OR_IGNORE true`;
    await connection.run(`COPY batch TO ${sqlString(staged(CURATED_DELIVERIES))} (${partitioned})`);
    // 3. Their signals, extracted once.
    await connection.run(`CREATE OR REPLACE TEMP TABLE batch_signals AS ${compactionSignalsSelect(d, 'batch', runId)}`);
    await connection.run(`COPY batch_signals TO ${sqlString(staged(CURATED_SIGNALS))} (${partitioned})`);
    const events = Number((await one('SELECT COUNT(*) AS n FROM batch')).n);
    const signals = Number((await one('SELECT COUNT(*) AS n FROM batch_signals')).n);
    // Move the complete files into place: still invisible to the views until the commit exists.
    for (const table of [CURATED_DELIVERIES, CURATED_SIGNALS, COMPACTED_OBJECTS]) {
      for (const key of await listLakeKeys(staging, CURATED_DIRS[table])) {
        const target = path.join(lakeDir, ...key.split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        await rename(path.join(staging, ...key.split('/')), target);
      }
    }
    // 4. Commit: written aside and renamed, so it appears whole or not at all; never by a run whose lock
    // was taken over as stale (its files are then abandoned, and the next run clears them).
    if (!(await holdsLock(lakeDir, lock)))
      throw new Error(`run ${runId} lost the lake's compaction lock before committing; it counts for nothing`);
    const commitDir = path.join(lakeDir, ...CURATED_DIRS[COMPACTION_COMMITS].split('/'));
    await mkdir(commitDir, { recursive: true });
    const commitTmp = path.join(staging, `run-${runId}.parquet`);
    await connection.run(
      `COPY (SELECT '${runId}' AS run_id, '${now.toISOString()}' AS committed_at) TO ${sqlString(commitTmp)} (FORMAT parquet)`,
    );
    await rename(commitTmp, path.join(commitDir, `run-${runId}.parquet`));
    await rm(staging, { recursive: true, force: true });
    return { runId, objects: pending.length, events, signals, abandonedFiles, waiting, earlierRuns };
  } finally {
    lake.close();
  }
}

/** What a run that compacted nothing says: not yet, nothing at all, or nothing new. */
export function nothingToCompact(r: CompactResult, settleMinutes: number): string {
  if (r.waiting > 0)
    return (
      `nothing to compact yet: ${r.waiting} raw object(s) are in hours that have not closed ` +
      `(an hour closes ${settleMinutes} minutes after it ends; --settle-minutes changes that)`
    );
  if (r.earlierRuns === 0) return 'nothing to compact: the lake has no deliveries yet';
  return 'nothing to compact: every closed hour is already in the curated layer';
}

/** The command: `npm run compact -- …` or `smartcar-webhooks compact …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.compact, argv, async (args) => {
    const settleMinutes = args.values['settle-minutes'] === undefined ? 60 : Number(args.values['settle-minutes']);
    const now = str(args, 'now') === undefined ? new Date() : new Date(String(str(args, 'now')));
    if (!Number.isInteger(settleMinutes) || settleMinutes < 0 || Number.isNaN(now.getTime()))
      throw new UsageError('--settle-minutes takes a whole number ≥ 0 and --now an ISO 8601 time');
    const lakeDir = lakeDirOf(args);
    const started = process.hrtime.bigint();
    const r = await compactLocalLake(lakeDir, { now, settleMinutes });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.abandonedFiles > 0) console.log(`removed ${r.abandonedFiles} file(s) of runs that never committed`);
    if (r.runId === null) console.log(nothingToCompact(r, settleMinutes));
    else
      console.log(
        `run ${r.runId}: ${r.objects} raw object(s) → ${r.events} event(s), ${r.signals} signal row(s) in ${path.join(lakeDir, 'curated')} (${seconds.toFixed(1)} s)` +
          (r.waiting > 0 ? `; ${r.waiting} more wait for their hour to close` : ''),
      );
    return 0;
  });
}
