/**
 * Re-ingests deliveries that were answered 401 only because the secret did not hold the token Smartcar
 * signed them with. Each quarantined delivery is re-verified with the current token and the previous one
 * (during its grace period): authentic ones go through the normal ingest path, deduplicated by eventId
 * (so running it twice stores nothing twice); the rest stay quarantined until they expire. It streams
 * (reads the quarantine from --since's hour on, hands over as it reads) and keeps its progress beside
 * the quarantine, so an interrupted run goes on where it stopped when run again.
 *
 *   smartcar-webhooks recover-rejected [--since ISO] [--until ISO] [--dry-run] [--lake-dir DIR]  (a local lake)
 *   smartcar-webhooks recover-rejected --stack NAME [--instance PREFIX] ...                       (a deployed stack)
 *   smartcar-webhooks recover-rejected --bucket <quarantine> --secret-id <ARN> --queue-url <URL> [--dedup-table T]
 * (in this repository: npm run recover-rejected -- …, the same flags)
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { flag, lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import { secretsManagerTokens } from '../../lambda/adapters/management-token';
import { dynamoStoredIds, queueDelivery, s3QuarantineStore } from '../../lambda/adapters/recovery';
import { DEFAULT_DEDUP_TTL_SECONDS, DEFAULT_RAW_PREFIX } from '../../lambda/contract';
import { erasedFilter } from '../../lambda/core/erasure';
import { ingestBatch } from '../../lambda/core/ingest';
import type { CoreLogger } from '../../lambda/core/logger';
import { type RecoveryOptions, type RecoveryReport, recoverRejected, tokensToTry } from '../../lambda/core/quarantine';
import { localLedgerStore } from '../../local/erase';
import { putLakeObject, readLake } from '../../local/file-lake';
import { fileQuarantineStore } from '../../local/quarantine';
import { fileTokens, fixedToken } from '../../local/token-files';

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
        {
          rawPrefix: DEFAULT_RAW_PREFIX,
          logger: quiet,
          putObject: (key, body) => putLakeObject(lakeDir, key, body),
          // Deliveries of a subject erased after they were rejected stay erased.
          erased: async () => erasedFilter(await localLedgerStore(lakeDir).read()),
        },
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

/** The command: `npm run recover-rejected -- …` or `smartcar-webhooks recover-rejected …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS['recover-rejected'], argv, async (args) => {
    const window: Window = {
      since: time('since', str(args, 'since')),
      until: time('until', str(args, 'until')),
      dryRun: flag(args, 'dry-run'),
    };
    const explicit = ['bucket', 'secret-id', 'queue-url', 'dedup-table'].filter((f) => str(args, f) !== undefined);
    if (str(args, 'lake-dir') && (str(args, 'stack') || explicit.length > 0))
      throw new UsageError('--lake-dir is for the local lake, not with --stack or --bucket');
    if (!str(args, 'stack') && explicit.length > 0 && !str(args, 'bucket'))
      throw new UsageError(`--${explicit[0]} goes with --bucket or --stack`);
    const resources = await Resources.of(args);
    if (resources.deployed || str(args, 'bucket')) {
      const target: DeployedTarget = {
        bucket: resources.required('bucket', 'QuarantineBucketName', 'the quarantine bucket'),
        secretId: resources.required('secret-id', 'ManagementTokenSecretArn', 'the management token secret'),
        queueUrl: resources.required('queue-url', 'DeliveryQueueUrl', 'the delivery queue'),
        dedupTable: resources.optional('dedup-table', 'DedupTableName'),
      };
      const report = await recoverDeployed(target, window);
      return printed(`s3://${target.bucket}`, window, report);
    }
    const where = lakeDirOf(args);
    return printed(where, window, await recoverLocal(where, window));
  });
}

function printed(where: string, window: Window, report: RecoveryReport): number {
  console.log(
    `${window.dryRun ? 'dry run: ' : ''}${where}: ${recoveryCounts(report)}${report.done ? '' : ' (stopped early: run it again to go on)'}`,
  );
  return report.done ? 0 : 1;
}
