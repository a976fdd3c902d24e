/**
 * Expire: the local lake's retention, as the deployed bucket's lifecycle rules apply it (lib/retention.ts).
 * Raw objects and quarantined deliveries (and recovery's markers about them) go once their partition hour
 * is older than the retention, curated Parquet files once their `dt` day is, request-log lines once their
 * time is. The local lake counts from the partition, not the file's time, which an erasure or a replay
 * resets: a rewritten object is not kept longer for having been rewritten.
 *
 * Never touched: `erasures/` (the ledger and the receipts outlive every delivery they speak of), the
 * compaction's bookkeeping (`curated/compaction/`: without it old raw objects would be curated again),
 * and any key outside the partition layout (reported, left).
 *
 * Deleting is unattended, so every zone is planned before anything is removed, and the run stops with a
 * one-line reason and removes nothing when a retention is not whole days of at least one, when the clock
 * is behind the newest data, or when every raw object or curated file would go (`--all` says that is
 * meant). It holds the compaction lock while it deletes, as compaction and erasure do, so it never deletes
 * under a run that is rewriting the same files.
 *
 *   smartcar-webhooks expire [--dry-run] [--lake-dir DIR] [--raw-days N] [--curated-days N]
 *                            [--quarantine-days N] [--request-log-days N] [--all]
 * (in this repository: npm run expire -- …, the same flags)
 */
import { mkdir, readdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { flag, lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import {
  DEFAULT_QUARANTINE_RETENTION_DAYS,
  DEFAULT_RAW_PREFIX,
  DEFAULT_REQUEST_LOG_RETENTION_DAYS,
  QUARANTINE_PREFIX,
  RECOVERY_PREFIX,
} from '../../lambda/contract';
import { DAY_MS, ExpiryRefused, planZone, pruneLines, retentionDays, type ZonePlan } from '../../lambda/core/retention';
import { CURATED_DELIVERIES, CURATED_SIGNALS, CURATED_TABLE_FOLDERS } from '../../lib/queries';
import { deleteLakeObject, listLakeKeys } from '../../local/file-lake';

/** The request log's file, relative to the lake (see local/inspector/request-log.ts). */
export const REQUEST_LOG_FILE = '.inspector/requests.ndjson';
/** How long expire's hold on the compaction lock lasts if it dies holding it. */
const LOCK_LEASE_MS = 15 * 60 * 1000;

export interface ExpireOptions {
  /** Days raw objects are kept. @default - kept */
  readonly rawDays?: number;
  /** Days curated Parquet files are kept. @default - kept */
  readonly curatedDays?: number;
  /** @default DEFAULT_QUARANTINE_RETENTION_DAYS (14) */
  readonly quarantineDays?: number;
  /** @default DEFAULT_REQUEST_LOG_RETENTION_DAYS (7) */
  readonly requestLogDays?: number;
  readonly dryRun?: boolean;
  /** Let a zone lose every object (an idle lake whose data all outlived its retention). */
  readonly allowAll?: boolean;
  /** @default the clock */
  readonly now?: Date;
  readonly rawPrefix?: string;
}

export interface ZoneOutcome {
  readonly zone: string;
  /** The retention applied; undefined when the zone is kept. */
  readonly days?: number;
  readonly cutoff?: string;
  /** Objects (lines for the request log) older than the retention. */
  readonly found: number;
  /** Removed: `found` in a real run, 0 in a dry run. */
  readonly removed: number;
  readonly kept: number;
  /** Keys outside the partition layout, left as they are. */
  readonly unplaced: number;
}

export interface ExpireReport {
  readonly dryRun: boolean;
  readonly zones: ZoneOutcome[];
}

async function keysUnder(lakeDir: string, prefixes: readonly string[], suffix: string): Promise<string[]> {
  const all = await Promise.all(prefixes.map((p) => listLakeKeys(lakeDir, p)));
  return all.flat().filter((k) => k.endsWith(suffix));
}

/** Removes the now-empty partition folders between a deleted file and its zone's root. */
async function removeEmptyFolders(lakeDir: string, key: string, root: string): Promise<void> {
  let dir = path.posix.dirname(key);
  while (dir.startsWith(`${root}/`)) {
    const full = path.join(lakeDir, ...dir.split('/'));
    const left = await readdir(full).catch(() => ['?']);
    if (left.length > 0) return;
    await rmdir(full).catch(() => undefined);
    dir = path.posix.dirname(dir);
  }
}

/**
 * Drops request-log lines older than `days` (atomically: a temporary file renamed over it). A receiver
 * that is running keeps the entries it loaded until it restarts; `npm start` prunes at start.
 */
export async function pruneRequestLog(
  lakeDir: string,
  days: number,
  now: Date,
  dryRun = false,
): Promise<{ found: number; removed: number; kept: number; cutoff: Date }> {
  retentionDays('request log retention', days);
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  const file = path.join(lakeDir, ...REQUEST_LOG_FILE.split('/'));
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const pruned = pruneLines(text, cutoff);
  if (pruned.removed > 0 && !dryRun) {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.expire.tmp`;
    await writeFile(tmp, pruned.text, { mode: 0o600 });
    await rename(tmp, file);
  }
  return { found: pruned.removed, removed: dryRun ? 0 : pruned.removed, kept: pruned.kept, cutoff };
}

function outcome(plan: ZonePlan, dryRun: boolean): ZoneOutcome {
  return {
    zone: plan.zone,
    days: plan.days,
    cutoff: plan.cutoff.toISOString(),
    found: plan.expired.length,
    removed: dryRun ? 0 : plan.expired.length,
    kept: plan.kept,
    unplaced: plan.unplaced.length,
  };
}

/** Applies the retention to the local lake; throws {@link ExpiryRefused} (nothing removed) on bad input. */
export async function expireLocalLake(lakeDir: string, options: ExpireOptions = {}): Promise<ExpireReport> {
  const now = options.now ?? new Date();
  const dryRun = options.dryRun ?? false;
  const rawPrefix = options.rawPrefix ?? DEFAULT_RAW_PREFIX;
  const curatedRoots = [CURATED_DELIVERIES, CURATED_SIGNALS].map((t) => `curated/${CURATED_TABLE_FOLDERS[t]}`);
  const quarantineRoots = [QUARANTINE_PREFIX, `${RECOVERY_PREFIX}/${QUARANTINE_PREFIX}`];
  const guard = { guardAll: true, allowAll: options.allowAll };

  // Every zone is planned (and may refuse) before anything is removed.
  const plans: { plan: ZonePlan; roots: string[] }[] = [];
  const kept: ZoneOutcome[] = [];
  if (options.rawDays === undefined) kept.push({ zone: 'raw zone', found: 0, removed: 0, kept: 0, unplaced: 0 });
  else {
    const keys = await keysUnder(lakeDir, [rawPrefix], '.ndjson.gz');
    plans.push({ plan: planZone('raw zone', keys, options.rawDays, now, guard), roots: [rawPrefix] });
  }
  if (options.curatedDays === undefined)
    kept.push({ zone: 'curated layer', found: 0, removed: 0, kept: 0, unplaced: 0 });
  else {
    const keys = await keysUnder(lakeDir, curatedRoots, '.parquet');
    plans.push({ plan: planZone('curated layer', keys, options.curatedDays, now, guard), roots: curatedRoots });
  }
  const quarantineKeys = await keysUnder(lakeDir, quarantineRoots, '');
  plans.push({
    plan: planZone('quarantine', quarantineKeys, options.quarantineDays ?? DEFAULT_QUARANTINE_RETENTION_DAYS, now),
    roots: quarantineRoots,
  });
  const requestLogDays = options.requestLogDays ?? DEFAULT_REQUEST_LOG_RETENTION_DAYS;
  const logPlan = await pruneRequestLog(lakeDir, requestLogDays, now, true);

  const removing = plans.some((p) => p.plan.expired.length > 0);
  if (!dryRun && removing) {
    // The compaction lock: no compaction or erasure rewrites these files while they go. Loaded here only,
    // as compaction's module brings DuckDB with it.
    const { releaseLock, takeLock } = await import('../../local/compact');
    const holder = await takeLock(lakeDir, `expire-${now.getTime().toString(36)}`, LOCK_LEASE_MS).catch((err) => {
      throw new ExpiryRefused(
        `${(err as Error).message.replace(/; this run did nothing.*$/, '')}; nothing removed: try again once it has ended`,
      );
    });
    try {
      for (const { plan, roots } of plans) {
        for (const key of plan.expired) {
          await deleteLakeObject(lakeDir, key);
          const root = roots.find((r) => key.startsWith(`${r}/`));
          if (root) await removeEmptyFolders(lakeDir, key, root);
        }
      }
    } finally {
      await releaseLock(lakeDir, holder);
    }
  }
  const log = dryRun || logPlan.found === 0 ? logPlan : await pruneRequestLog(lakeDir, requestLogDays, now);
  const requestLog: ZoneOutcome = {
    zone: 'request log',
    days: requestLogDays,
    cutoff: log.cutoff.toISOString(),
    found: log.found,
    removed: log.removed,
    kept: log.kept,
    unplaced: 0,
  };
  const zones = [...kept, ...plans.map(({ plan }) => outcome(plan, dryRun)), requestLog];
  const order = ['raw zone', 'curated layer', 'quarantine', 'request log'];
  return { dryRun, zones: zones.sort((a, b) => order.indexOf(a.zone) - order.indexOf(b.zone)) };
}

function days(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return retentionDays(`--${name}`, value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function describe(z: ZoneOutcome, dryRun: boolean): string {
  if (z.days === undefined) return `${z.zone}: kept (no retention given)`;
  const what = z.zone === 'request log' ? 'line(s)' : 'object(s)';
  const verb = dryRun ? 'would remove' : 'removed';
  const extra = z.unplaced > 0 ? `; ${z.unplaced} outside the partition layout left as they are` : '';
  return `${z.zone}: ${verb} ${z.found} ${what} older than ${z.days} days (before ${z.cutoff}), ${z.kept} kept${extra}`;
}

/** The command: `npm run expire -- …` or `smartcar-webhooks expire …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.expire, argv, async (args) => {
    const options: ExpireOptions = {
      rawDays: days(str(args, 'raw-days'), 'raw-days'),
      curatedDays: days(str(args, 'curated-days'), 'curated-days'),
      quarantineDays: days(str(args, 'quarantine-days'), 'quarantine-days'),
      requestLogDays: days(str(args, 'request-log-days'), 'request-log-days'),
      dryRun: flag(args, 'dry-run'),
      allowAll: flag(args, 'all'),
    };
    const lakeDir = lakeDirOf(args);
    let report: ExpireReport;
    try {
      report = await expireLocalLake(lakeDir, options);
    } catch (err) {
      if (!(err instanceof ExpiryRefused)) throw err;
      console.error(`expire: ${err.message}`);
      return 1;
    }
    for (const z of report.zones) console.log(describe(z, report.dryRun));
    console.log(
      report.dryRun
        ? 'dry run: nothing removed. erasures/ (ledger, receipts) is never expired.'
        : 'erasures/ (ledger, receipts) is never expired.',
    );
    return 0;
  });
}
