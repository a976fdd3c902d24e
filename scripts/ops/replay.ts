/**
 * Replay: re-ingests the raw zone for a time range with the current ingest code. Each record is rebuilt
 * from what the lake kept (raw body, receive time, request id); objects are rewritten in place, and
 * records whose partition changed move to `<source name>-replayed` in their new partition.
 *
 * It never loses a record, however often it runs and however the rules change between runs:
 * - a destination that exists already is merged into, never overwritten (records are matched by their
 *   identity, so a record is never added twice);
 * - a source is rewritten or deleted only after its moved records have been read back from their
 *   destination (durable elsewhere first);
 * - an interrupted run leaves at worst a record in both places, which the next run merges away.
 * Overwritten S3 objects stay recoverable as noncurrent versions.
 *
 *   smartcar-webhooks replay --from 2026-11-26T00 --to 2026-11-27T00 [--dry-run] [--lake-dir DIR | --stack NAME | --bucket NAME [--prefix raw]]
 * (in this repository: npm run replay -- …, the same flags)
 */
import { S3Client } from '@aws-sdk/client-s3';
import { flag, lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import { s3LedgerStore } from '../../lambda/adapters/erasure-stores';
import { DEFAULT_RAW_PREFIX, type LakeRecord } from '../../lambda/contract';
import { type Attributable, erasedFilter } from '../../lambda/core/erasure';
import {
  decodeNdjsonGzip,
  encodeNdjsonGzip,
  keyTime,
  partitionOf,
  partitionPrefix,
  rederive,
} from '../../lambda/core/lake';
import { localLedgerStore } from '../../local/erase';
import { directoryLake, type LakeStore, s3Lake } from './lake-store';

export interface ReplayOptions {
  readonly lake: LakeStore;
  readonly rawPrefix?: string;
  /** Inclusive start and exclusive end, as `YYYY-MM-DDTHH` (UTC hours, the partition grain). */
  readonly from: string;
  readonly to: string;
  readonly dryRun?: boolean;
  readonly now?: Date;
  /**
   * How a stored record is rebuilt. @default the current ingest code ({@link rederive}), keeping `ingested_at`
   * (for tests and one-off migrations that change the rules)
   */
  readonly derive?: (record: LakeRecord) => LakeRecord;
  /**
   * The erasure ledger's filter ({@link erasedFilter}): records it names are erased and are not written
   * back (an object holding some is rewritten without them, like an erasure would). @default none
   */
  readonly erased?: (record: Attributable) => boolean;
}

export interface ReplayReport {
  objectsRead: number;
  recordsRead: number;
  objectsRewritten: number;
  recordsMoved: number;
  objectsUnchanged: number;
  /** Records of erased subjects found (left out of what is written back). */
  recordsErased: number;
}

const HOUR = /^\d{4}-\d{2}-\d{2}T\d{2}$/;
const REPLAYED = '-replayed';

/** What makes two lake lines the same delivery copy: a record is never stored twice by a replay. */
function identity(r: LakeRecord): string {
  return JSON.stringify([r.event_id, r.received_at, r.request_id, r.body, r.body_base64]);
}

/** Writes `records` into `key`, keeping whatever is there already; returns once it is read back whole. */
async function mergeInto(lake: LakeStore, key: string, records: LakeRecord[]): Promise<void> {
  const existing = (await lake.exists(key)) ? decodeNdjsonGzip(await lake.get(key)) : [];
  const have = new Set(existing.map(identity));
  const added = records.filter((r) => !have.has(identity(r)));
  if (added.length > 0) await lake.put(key, encodeNdjsonGzip([...existing, ...added]));
  const stored = new Set(decodeNdjsonGzip(await lake.get(key)).map(identity));
  const missing = records.filter((r) => !stored.has(identity(r))).length;
  if (missing > 0)
    throw new Error(`${key}: ${missing} moved records are not there after writing; source left as it was`);
}

export async function replay(options: ReplayOptions): Promise<ReplayReport> {
  for (const [name, value] of [
    ['from', options.from],
    ['to', options.to],
  ] as const) {
    if (!HOUR.test(value)) throw new Error(`--${name} must be an hour as YYYY-MM-DDTHH (UTC), got "${value}"`);
  }
  if (options.from >= options.to) throw new Error(`--from ${options.from} must be before --to ${options.to}`);
  const rawPrefix = (options.rawPrefix ?? DEFAULT_RAW_PREFIX).replace(/^\/+|\/+$/g, '');
  const now = options.now ?? new Date();
  // ingested_at is kept: replays should not look like fresh arrivals.
  const derive =
    options.derive ?? ((record: LakeRecord) => ({ ...rederive(record, now), ingested_at: record.ingested_at }));
  const report: ReplayReport = {
    objectsRead: 0,
    recordsRead: 0,
    objectsRewritten: 0,
    recordsMoved: 0,
    objectsUnchanged: 0,
    recordsErased: 0,
  };

  const keys = (await options.lake.list(`${rawPrefix}/`)).filter((key) => {
    const t = keyTime(key);
    if (!t || !key.endsWith('.ndjson.gz')) return false;
    const hour = `${t.dt}T${t.hour}`;
    return hour >= options.from && hour < options.to;
  });
  for (const key of keys.sort()) {
    const read = decodeNdjsonGzip(await options.lake.get(key));
    report.objectsRead++;
    report.recordsRead += read.length;
    const isErased = options.erased;
    const records = isErased ? read.filter((r) => !isErased(r)) : read;
    const erasedHere = read.length - records.length;
    report.recordsErased += erasedHere;
    const sourcePrefix = key.slice(0, key.lastIndexOf('/') + 1);
    // A record moved twice keeps one suffix: `a-replayed`, not `a-replayed-replayed`.
    const name = key
      .slice(key.lastIndexOf('/') + 1)
      .replace(/\.ndjson\.gz$/, '')
      .replace(new RegExp(`${REPLAYED}$`), '');
    const byPrefix = new Map<string, LakeRecord[]>();
    for (const record of records) {
      const fresh = derive(record);
      const prefix = partitionPrefix(rawPrefix, partitionOf(fresh));
      byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), fresh]);
    }
    const stay = byPrefix.get(sourcePrefix) ?? [];
    const unchanged =
      erasedHere === 0 &&
      stay.length === records.length &&
      stay.every((r, i) => JSON.stringify(r) === JSON.stringify(records[i]));
    if (unchanged) {
      report.objectsUnchanged++;
      continue;
    }
    report.objectsRewritten++;
    report.recordsMoved += records.length - stay.length;
    if (options.dryRun) continue;
    for (const [prefix, moved] of byPrefix) {
      if (prefix !== sourcePrefix) await mergeInto(options.lake, `${prefix}${name}${REPLAYED}.ndjson.gz`, moved);
    }
    // Only now, with every moved record read back from its new place, may the source lose them.
    if (stay.length > 0) await options.lake.put(key, encodeNdjsonGzip(stay));
    else await options.lake.delete(key);
  }
  return report;
}

/** The command: `npm run replay -- …` or `smartcar-webhooks replay …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.replay, argv, async (args) => {
    const from = str(args, 'from');
    const to = str(args, 'to');
    if (!from || !to) throw new UsageError('pass --from and --to (YYYY-MM-DDTHH, UTC)');
    if (str(args, 'lake-dir') && (str(args, 'stack') || str(args, 'bucket')))
      throw new UsageError('pass either --lake-dir or --stack/--bucket');
    const resources = await Resources.of(args);
    const deployed = resources.deployed || str(args, 'bucket') !== undefined;
    const bucket = deployed ? resources.required('bucket', 'LakeBucketName', 'the lake bucket') : undefined;
    const lake = bucket ? s3Lake(bucket) : directoryLake(lakeDirOf(args));
    // The erasure ledger: erased records must not come back. An unreadable ledger stops the replay.
    const ledger = bucket ? s3LedgerStore(new S3Client({}), bucket) : localLedgerStore(lakeDirOf(args));
    const erased = erasedFilter(await ledger.read());
    const report = await replay({
      erased,
      lake,
      rawPrefix: resources.optional('prefix', 'RawPrefix'),
      from,
      to,
      dryRun: flag(args, 'dry-run'),
    });
    console.log(`${flag(args, 'dry-run') ? 'dry run: ' : ''}${lake.describe()}: ${JSON.stringify(report)}`);
    return 0;
  });
}
