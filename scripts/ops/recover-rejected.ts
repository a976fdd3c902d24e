/**
 * Re-ingests deliveries that were answered 401 only because the secret did not hold the token Smartcar
 * signed them with. Each quarantined delivery is re-verified with the current token and the previous one
 * (during its grace period): authentic ones go through the normal ingest path, deduplicated by eventId
 * (so running it twice stores nothing twice); the rest stay quarantined until they expire. It streams
 * (reads the quarantine from --since's hour on, hands over as it reads) and keeps its progress beside
 * the quarantine, so an interrupted run goes on where it stopped when run again.
 *
 *   npm run recover-rejected -- [--since ISO] [--until ISO] [--dry-run]                (the local lake)
 *   npm run recover-rejected -- --lake-dir DIR ...                                      (another local lake)
 *   npm run recover-rejected -- --bucket <QuarantineBucketName> --secret-id <secret ARN>
 *        --queue-url <DeliveryQueueUrl> [--dedup-table <table>] ...                    (the deployed stack)
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { secretsManagerTokens } from '../../lambda/adapters/management-token';
import { dynamoStoredIds, queueDelivery, s3QuarantineStore } from '../../lambda/adapters/recovery';
import { DEFAULT_DEDUP_TTL_SECONDS, DEFAULT_RAW_PREFIX } from '../../lambda/contract';
import { ingestBatch } from '../../lambda/core/ingest';
import type { CoreLogger } from '../../lambda/core/logger';
import { type RecoveryOptions, type RecoveryReport, recoverRejected, tokensToTry } from '../../lambda/core/quarantine';
import { runCli } from '../../local/cli';
import { putLakeObject, readLake } from '../../local/file-lake';
import { fileQuarantineStore } from '../../local/quarantine';
import { fileTokens, fixedToken } from '../../local/token-files';

const USAGE = `usage: npm run recover-rejected -- [--since ISO] [--until ISO] [--dry-run]
         [--lake-dir DIR | --bucket QUARANTINE_BUCKET --secret-id SECRET_ARN --queue-url QUEUE_URL [--dedup-table TABLE]]

  Without --bucket it works on the local lake ($LOCAL_LAKE_DIR, default ./local-lake) and its quarantine/.`;

export class UsageError extends Error {}

/** The counts line both commands print. */
export function recoveryCounts(r: Omit<RecoveryReport, 'done'>): string {
  return (
    `examined ${r.examined}, recovered ${r.recovered}, still rejected ${r.stillRejected}, already stored ${r.alreadyStored}` +
    (r.unreadable ? `, unreadable ${r.unreadable}` : '')
  );
}

const quiet: CoreLogger = { info() {}, warn() {}, error() {} };

type Window = Pick<RecoveryOptions, 'since' | 'until' | 'dryRun'>;

/** Recovery on a local lake folder: the quarantine beside it, records written straight into it. */
export async function recoverLocal(
  lakeDir: string,
  window: Window,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RecoveryReport> {
  const envToken = env.SMARTCAR_MANAGEMENT_TOKEN?.trim();
  const tokens = await tokensToTry(envToken ? fixedToken(envToken) : fileTokens(lakeDir));
  let lake: Set<string> | undefined; // the lake's eventIds, read once
  return recoverRejected({
    ...window,
    store: fileQuarantineStore(lakeDir),
    tokens,
    isStored: async (ids) => {
      lake ??= new Set([...(await readLake(lakeDir, DEFAULT_RAW_PREFIX)).values()].flat().map((r) => r.event_id));
      const stored = lake;
      return new Set(ids.filter((id) => stored.has(id)));
    },
    deliver: async (messages) => {
      const result = await ingestBatch(
        messages.map((m, i) => ({ id: `recovered-${m.receivedAt}-${i}`, body: JSON.stringify(m) })),
        { rawPrefix: DEFAULT_RAW_PREFIX, logger: quiet, putObject: (key, body) => putLakeObject(lakeDir, key, body) },
      );
      if (result.failedIds.length > 0)
        throw new Error(`could not write ${result.failedIds.length} records to the lake`);
    },
    logger: quiet,
  });
}

export interface DeployedTarget {
  readonly bucket: string;
  readonly secretId: string;
  readonly queueUrl: string;
  readonly dedupTable?: string;
}

/** Recovery against the deployed stack: its quarantine bucket, secret, delivery queue and dedupe table. */
export async function recoverDeployed(target: DeployedTarget, window: Window): Promise<RecoveryReport> {
  const tokens = await tokensToTry(secretsManagerTokens(new SecretsManagerClient({}), target.secretId));
  return recoverRejected({
    ...window,
    store: s3QuarantineStore(new S3Client({}), target.bucket),
    tokens,
    isStored: target.dedupTable
      ? dynamoStoredIds(new DynamoDBClient({}), target.dedupTable, DEFAULT_DEDUP_TTL_SECONDS)
      : async () => new Set<string>(),
    deliver: queueDelivery(new SQSClient({}), target.queueUrl),
    logger: quiet,
  });
}

function time(name: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new UsageError(`--${name} must be an ISO 8601 time, got "${value}"`);
  return date;
}

export async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let window: Window;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'lake-dir': { type: 'string' },
        bucket: { type: 'string' },
        'secret-id': { type: 'string' },
        'queue-url': { type: 'string' },
        'dedup-table': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) throw new UsageError('');
    window = {
      since: time('since', values.since),
      until: time('until', values.until),
      dryRun: Boolean(values['dry-run']),
    };
    if (values.bucket && values['lake-dir']) throw new UsageError('pass either --bucket or --lake-dir');
    if (values.bucket && (!values['secret-id'] || !values['queue-url'])) {
      throw new UsageError(
        '--bucket needs --secret-id and --queue-url too (stack outputs; see RecoverRejectedCommand)',
      );
    }
  } catch (err) {
    const message = err instanceof UsageError || err instanceof TypeError ? err.message : String(err);
    if (message) console.error(`recover-rejected: ${message}\n`);
    console.error(USAGE);
    return 2;
  }
  const where = values.bucket
    ? `s3://${values.bucket}`
    : path.resolve(String(values['lake-dir'] ?? (process.env.LOCAL_LAKE_DIR || 'local-lake')));
  const report = values.bucket
    ? await recoverDeployed(
        {
          bucket: String(values.bucket),
          secretId: String(values['secret-id']),
          queueUrl: String(values['queue-url']),
          dedupTable: values['dedup-table'] as string | undefined,
        },
        window,
      )
    : await recoverLocal(where, window);
  console.log(
    `${window.dryRun ? 'dry run: ' : ''}${where}: ${recoveryCounts(report)}${report.done ? '' : ' (stopped early: run it again to go on)'}`,
  );
  return report.done ? 0 : 1;
}

if (require.main === module) runCli('recover-rejected', main);
