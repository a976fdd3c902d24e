/**
 * Retention as configuration: how long each place that holds deliveries keeps them, in one prop
 * (`SmartcarWebhooksProps.retention`), turned into S3 lifecycle rules that can only ever reach the keys
 * they name. Every rule that deletes is scoped to a prefix (`raw/`, `curated/deliveries/`,
 * `curated/signals/`, `quarantine/`, `runs/`, …): none can reach `erasures/`, where the erasure ledger
 * (lake bucket) and the receipts (work bucket) must outlive every delivery they speak of.
 *
 * No storage-class transitions by default, because for this lake they would not happen or not pay:
 * - since September 2024 S3 does not transition objects under 128 KB unless a rule says otherwise
 *   (`transitionDefaultMinimumObjectSize`), and a raw object is about 84 KB (a 60-second batch of gzip
 *   NDJSON), so a "Standard-IA after 30 days" rule skips almost every raw object;
 * - and forcing it (an `objectSizeGreaterThan` filter below 128 KB) would lose money: Standard-IA and
 *   Glacier Instant Retrieval bill every object as at least 128 KB (and 30 or 90 days). In us-east-1 an
 *   84 KB object costs $1.84 per million objects-month in Standard ($0.023/GB), $1.53 in Standard-IA
 *   ($0.0125/GB × 128 KB) and $0.49 in Glacier IR ($0.004/GB × 128 KB); the transition itself costs $10
 *   (IA) or $20 (Glacier IR) per million requests, so it pays back after 32 or 15 months, and Athena then
 *   pays $0.01 or $0.03 per GB retrieved on every scan.
 * The curated Parquet files are large (megabytes) but are what Athena reads on every query, so they stay
 * in Standard too. `lifecycle` ({@link LakeLifecycle}) still adds transitions for raw objects that are
 * over 128 KB (said explicitly in the rule's size filter) for a team that wants them.
 *
 * Expiry counts from the time S3 wrote an object. An erasure rewrites the objects that held a subject's
 * records: what else they hold is then kept for up to the retention after the erasure. The local
 * `expire` command counts from the partition's hour instead (see scripts/ops/expire.ts).
 */
import { Duration, Token } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  DEFAULT_NONCURRENT_VERSION_DAYS,
  DEFAULT_QUARANTINE_RETENTION_DAYS,
  DEFAULT_QUERY_RESULTS_RETENTION_DAYS,
  DEFAULT_REQUEST_LOG_RETENTION_DAYS,
  DEFAULT_WORK_RETENTION_DAYS,
  ERASURES_PREFIX,
} from '../lambda/contract';
import { CURATED_DELIVERIES, CURATED_SIGNALS, CURATED_TABLE_FOLDERS } from './queries';
import { ConfigurationError } from './validation';

/**
 * How long each place keeps deliveries. Whole days; every value is a deletion that runs unattended, so
 * nonsense (0, hours, more than 100 years) fails `cdk synth`. The erasure ledger and receipts are never
 * expired. Related settings elsewhere: `logRetention` (the functions' CloudWatch log groups, which hold
 * no bodies), `deduplicationWindow` (the stored-eventId table's TTL), and the queues' fixed retention
 * (delivery queue 4 days, dead-letter queues 14 days).
 */
export interface RetentionOptions {
  /**
   * Delete raw-zone objects (gzip NDJSON, every delivery as received) this long after they are written.
   * At least the compaction's `lookbackDays` + 2, so that every closed hour is curated before it goes.
   * @default - kept until you set this (the raw zone is the lake's record; erase removes a subject from it)
   */
  readonly raw?: Duration;
  /**
   * Delete the curated Parquet files (`curated_deliveries`, `curated_signals`) this long after they are
   * written. The compaction's bookkeeping (`compaction/`) is kept: without it old raw objects would be
   * curated again. @default - kept until you set this
   */
  readonly curated?: Duration;
  /** Delete quarantined deliveries (and their recovery markers). Same as `quarantine.retention`. @default Duration.days(14) */
  readonly quarantine?: Duration;
  /**
   * Delete the subscription workflow's and reconcile's run pages and reports (`runs/`, `reconcile/runs/`
   * in the work bucket) this long after they are written; at least 14 days. Same as
   * `subscriptionWorkflow.workRetention`. @default Duration.days(30)
   */
  readonly work?: Duration;
  /**
   * The local receiver's request log (`npm start`, `<lake>/.inspector/requests.ndjson`): entries older
   * than this are dropped at start and by `expire`. The deployed stack keeps no request log (the HTTP
   * API's access logs follow `logRetention`); the local commands read the default from
   * `DEFAULT_REQUEST_LOG_RETENTION_DAYS` or `--request-log-days`. @default Duration.days(7)
   */
  readonly requestLog?: Duration;
  /** Delete Athena query results and the fleet check's reports. Same as `catalog.resultsRetention`. @default Duration.days(30) */
  readonly queryResults?: Duration;
  /**
   * Delete overwritten or deleted versions of raw and curated objects this long after they stop being
   * current (the lake bucket is versioned; an erasure deletes the versions it made itself, this is the
   * backstop). Same as `lifecycle.noncurrentVersionExpiration`. @default Duration.days(30)
   */
  readonly noncurrentVersions?: Duration;
}

/** Every retention with its default applied (undefined: kept). */
export interface ResolvedRetention {
  readonly raw?: Duration;
  readonly curated?: Duration;
  readonly quarantine: Duration;
  readonly work: Duration;
  readonly requestLog: Duration;
  readonly queryResults: Duration;
  readonly noncurrentVersions: Duration;
}

/** What the retention may be folded with: the older per-part settings that say the same thing. */
export interface RetentionAliases {
  readonly quarantineRetention?: Duration;
  readonly workRetention?: Duration;
  readonly resultsRetention?: Duration;
  readonly noncurrentVersionExpiration?: Duration;
  readonly lakeExpireAfter?: Duration;
  /** The compaction's lookback: raw objects must outlive it. @default 2 */
  readonly compactionLookbackDays?: number;
}

const MAX_DAYS = 36_500;

/** Throws unless `value` is absent, a token, or whole days in [min, MAX_DAYS]. */
export function checkRetentionDays(setting: string, value: Duration | undefined, min = 1, why = ''): void {
  if (value === undefined || Token.isUnresolved(value.toSeconds())) return;
  const days = value.toDays({ integral: false });
  if (Number.isInteger(days) && days >= 1 && days < min)
    throw new ConfigurationError(
      `${setting} is ${value.toHumanString()}; give at least ${min} days${why ? ` (${why})` : ''}.`,
    );
  if (!Number.isInteger(days) || days < min || days > MAX_DAYS)
    throw new ConfigurationError(
      `${setting} is ${value.toHumanString()}; use whole days from ${min} to ${MAX_DAYS}, e.g. Duration.days(${Math.max(min, 30)}).`,
    );
}

/**
 * The one value of a setting that has two names, and the name it was given under; throws when both are
 * given and differ.
 */
function either(
  name: string,
  a: Duration | undefined,
  alias: string,
  b: Duration | undefined,
): [Duration | undefined, string] {
  if (a !== undefined && b !== undefined && a.toSeconds() !== b.toSeconds()) {
    throw new ConfigurationError(
      `${name} is ${a.toHumanString()} but ${alias} is ${b.toHumanString()}: they are the same setting; give one.`,
    );
  }
  return [a ?? b, a === undefined && b !== undefined ? alias : name];
}

/** Validates `retention` and the settings it folds in, and applies the defaults. */
export function resolveRetention(r: RetentionOptions = {}, aliases: RetentionAliases = {}): ResolvedRetention {
  const [raw, rawName] = either('retention.raw', r.raw, 'lifecycle.expireAfter', aliases.lakeExpireAfter);
  const [quarantine, quarantineName] = either(
    'retention.quarantine',
    r.quarantine,
    'quarantine.retention',
    aliases.quarantineRetention,
  );
  const [work, workName] = either(
    'retention.work',
    r.work,
    'subscriptionWorkflow.workRetention',
    aliases.workRetention,
  );
  const [queryResults, resultsName] = either(
    'retention.queryResults',
    r.queryResults,
    'catalog.resultsRetention',
    aliases.resultsRetention,
  );
  const [noncurrentVersions, versionsName] = either(
    'retention.noncurrentVersions',
    r.noncurrentVersions,
    'lifecycle.noncurrentVersionExpiration',
    aliases.noncurrentVersionExpiration,
  );
  const lookback = aliases.compactionLookbackDays ?? 2;
  checkRetentionDays(
    rawName,
    raw,
    Token.isUnresolved(lookback) ? 1 : lookback + 2,
    `the compaction curates an hour within its lookback of ${lookback} days; raw objects must outlive it`,
  );
  checkRetentionDays('retention.curated', r.curated);
  checkRetentionDays(quarantineName, quarantine);
  checkRetentionDays(workName, work, 14, 'a long reconcile run reads its plan from the work bucket for days');
  checkRetentionDays('retention.requestLog', r.requestLog);
  checkRetentionDays(resultsName, queryResults);
  checkRetentionDays(versionsName, noncurrentVersions);
  return {
    raw,
    curated: r.curated,
    quarantine: quarantine ?? Duration.days(DEFAULT_QUARANTINE_RETENTION_DAYS),
    work: work ?? Duration.days(DEFAULT_WORK_RETENTION_DAYS),
    requestLog: r.requestLog ?? Duration.days(DEFAULT_REQUEST_LOG_RETENTION_DAYS),
    queryResults: queryResults ?? Duration.days(DEFAULT_QUERY_RESULTS_RETENTION_DAYS),
    noncurrentVersions: noncurrentVersions ?? Duration.days(DEFAULT_NONCURRENT_VERSION_DAYS),
  };
}

/** Storage-class transitions a team may ask for (the advanced form, `lifecycle`). */
export interface RawTransitions {
  readonly infrequentAccessAfter?: Duration;
  readonly glacierInstantRetrievalAfter?: Duration;
  readonly disableTransition?: boolean;
  readonly abortIncompleteMultipartUploadAfter?: Duration;
}

/** Objects at most this big are billed as this big in Standard-IA and Glacier IR, and skipped by default. */
export const TRANSITION_MIN_OBJECT_BYTES = 128 * 1024;

/**
 * The lake bucket's lifecycle rules: each scoped to the raw or the curated prefix, none reaching
 * `erasures/` (checked here, so a prefix that would cover it fails synth).
 */
export function lakeLifecycleRules(
  prefixes: { raw: string; curated: string; landing?: string },
  retention: Pick<ResolvedRetention, 'raw' | 'curated' | 'noncurrentVersions'>,
  transitions: RawTransitions = {},
): s3.LifecycleRule[] {
  const raw = `${prefixes.raw}/`;
  const curated = `${prefixes.curated}/`;
  for (const [name, p] of [
    ['rawPrefix', raw],
    ['curatedPrefix', curated],
  ] as const) {
    const landing = prefixes.landing ? `${prefixes.landing}/` : undefined;
    if (landing && !Token.isUnresolved(p) && (p.startsWith(landing) || landing.startsWith(p)))
      throw new ConfigurationError(
        `${name} "${p}" overlaps ${landing}, where Firehose writes the buffered deliveries; choose another prefix.`,
      );
    if (!Token.isUnresolved(p) && (p.startsWith(`${ERASURES_PREFIX}/`) || `${ERASURES_PREFIX}/`.startsWith(p)))
      throw new ConfigurationError(
        `${name} "${p}" overlaps ${ERASURES_PREFIX}/, where the erasure ledger lives; choose another prefix.`,
      );
  }
  const moves: s3.Transition[] = [];
  if (!transitions.disableTransition && transitions.infrequentAccessAfter)
    moves.push({ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: transitions.infrequentAccessAfter });
  if (!transitions.disableTransition && transitions.glacierInstantRetrievalAfter)
    moves.push({
      storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
      transitionAfter: transitions.glacierInstantRetrievalAfter,
    });
  const abort = transitions.abortIncompleteMultipartUploadAfter ?? Duration.days(7);
  const rules: s3.LifecycleRule[] = [
    {
      id: 'raw-zone',
      prefix: raw,
      expiration: retention.raw,
      noncurrentVersionExpiration: retention.noncurrentVersions,
      abortIncompleteMultipartUploadAfter: abort,
    },
  ];
  // Transitions have their own rule: its size filter must not keep small objects from expiring.
  if (moves.length > 0)
    rules.push({
      id: 'raw-zone-transitions',
      prefix: raw,
      objectSizeGreaterThan: TRANSITION_MIN_OBJECT_BYTES,
      transitions: moves,
    });
  if (retention.curated) {
    for (const table of [CURATED_DELIVERIES, CURATED_SIGNALS])
      rules.push({
        id: `curated-${CURATED_TABLE_FOLDERS[table]}`,
        prefix: `${curated}${CURATED_TABLE_FOLDERS[table]}/`,
        expiration: retention.curated,
      });
  }
  rules.push({
    id: 'curated-versions',
    prefix: curated,
    noncurrentVersionExpiration: retention.noncurrentVersions,
    abortIncompleteMultipartUploadAfter: abort,
  });
  if (prefixes.landing) {
    // The ingest function deletes each landing object (the version it read) once stored. One it could not
    // store stays until it is (its notification waits in the dead-letter queue, and a redrive may restart
    // that clock): no expiry of current objects here, which would drop deliveries answered 200. Old
    // versions (an erasure's rewrite leaves none, a person's overwrite might) go after a day.
    rules.push({
      id: 'landing-zone',
      prefix: `${prefixes.landing}/`,
      noncurrentVersionExpiration: Duration.days(1),
      abortIncompleteMultipartUploadAfter: Duration.days(1),
    });
  }
  return rules;
}
