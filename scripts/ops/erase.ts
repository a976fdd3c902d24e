/**
 * Erase: removes one user's or one vehicle's records from everywhere the lake keeps them, writes the
 * erasure ledger (a salted hash, the time, the counts: no id) and a receipt for the data-protection
 * officer. Records received before the erasure began go; deliveries received after it are new data.
 *
 *   smartcar-webhooks erase (--user ID | --vehicle ID) [--dry-run] [--smartcar] [--reference TEXT] [--json] [--lake-dir DIR]
 *   smartcar-webhooks erase (--user ID | --vehicle ID) [--dry-run] … --stack NAME [--instance PREFIX]
 * (in this repository: npm run erase -- …, the same flags)
 *
 * Locally it holds the lake's compaction lock while it runs (erasures run one at a time, and compaction
 * cannot write the curated layer under it); a busy lock exits 1 saying who holds it. A dry run finds and
 * counts, and writes nothing. The id is never printed or written anywhere but where it already was.
 */
import { hostname, userInfo } from 'node:os';
import { flag, lakeDirOf, runCommand, str, UsageError } from '../../cli/args';
import { SPECS } from '../../cli/registry';
import { Resources } from '../../cli/stack';
import {
  describePlace,
  type ErasurePlace,
  type ErasureReceipt,
  newErasureId,
  parseReference,
  parseSubject,
  runErasure,
  type Subject,
} from '../../lambda/core/erasure';
import { CompactionBusyError, releaseLock, takeLock } from '../../local/compact';
import { localErasurePlaces, localLedgerStore, localReceiptStore } from '../../local/erase';
import { localPendingStore } from '../../local/erasure-ledger';
import { eraseDeployed } from './erase-deployed';

/** Who asked, for the receipt: the local account and host. */
export function localRequester(): string {
  let name = process.env.USER ?? 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry (some containers): $USER stands in
  }
  return `${name}@${hostname()}`;
}

/** What a local erasure needs beyond the subject. */
export interface LocalEraseOptions {
  readonly subject: Subject;
  readonly dryRun: boolean;
  readonly reference?: string;
  readonly smartcar?: boolean;
  readonly workDir?: string;
  readonly requestedBy?: string;
  readonly now?: () => Date;
  readonly onPlace?: Parameters<typeof runErasure>[0]['onPlace'];
  /** Places run right after the raw zone (tests: a run that stops half-way). */
  readonly afterRaw?: readonly ErasurePlace[];
}

/** The copies a local lake's erasure cannot reach, stated on the receipt. */
const LOCAL_OUTSIDE = [
  'copies of the lake made outside it (backups, exports, query results saved elsewhere) are not searched',
];

/**
 * Runs one erasure on the local lake, holding its compaction lock. Throws {@link CompactionBusyError}
 * when a compaction run (or another erasure) holds it.
 */
export async function eraseLocal(lakeDir: string, options: LocalEraseOptions): Promise<ErasureReceipt> {
  const at = (options.now ?? (() => new Date()))();
  const erasureId = newErasureId(at);
  const lock = await takeLock(lakeDir, `erase-${erasureId}`, 2 * 3_600_000);
  try {
    const places: ErasurePlace[] = localErasurePlaces(lakeDir, { workDir: options.workDir });
    places.splice(1, 0, ...(options.afterRaw ?? []));
    if (options.smartcar) {
      // The lead's module: removes the connection and the webhook subscription at Smartcar.
      places.push(await import('../../local/erase-smartcar').then((m) => m.localSmartcarPlace(lakeDir)));
    }
    return await runErasure({
      subject: options.subject,
      dryRun: options.dryRun,
      places,
      ledger: localLedgerStore(lakeDir),
      receipts: localReceiptStore(lakeDir),
      pending: localPendingStore(lakeDir),
      requestedBy: options.requestedBy ?? localRequester(),
      reference: options.reference,
      outside: LOCAL_OUTSIDE,
      now: options.now,
      erasureId,
      onPlace: options.onPlace,
    });
  } finally {
    await releaseLock(lakeDir, lock);
  }
}

/** The subject from `--user`/`--vehicle`, or a usage error that never repeats the id. */
export function subjectOf(user: string | undefined, vehicle: string | undefined): Subject {
  if ((user === undefined) === (vehicle === undefined))
    throw new UsageError('pass exactly one of --user ID or --vehicle ID');
  try {
    return parseSubject({ userId: user, vehicleId: vehicle });
  } catch (err) {
    throw new UsageError((err as Error).message.replace('userId', '--user').replace('vehicleId', '--vehicle'));
  }
}

/** The command: `npm run erase -- …` or `smartcar-webhooks erase …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.erase, argv, async (args) => {
    const subject = subjectOf(str(args, 'user'), str(args, 'vehicle'));
    const dryRun = flag(args, 'dry-run');
    const json = flag(args, 'json');
    const reference = (() => {
      try {
        return parseReference(str(args, 'reference'));
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    })();
    const smartcar = flag(args, 'smartcar');
    if (str(args, 'lake-dir') && str(args, 'stack')) throw new UsageError('pass either --lake-dir or --stack');
    if (str(args, 'webhook-id') !== undefined && !(smartcar && str(args, 'stack')))
      throw new UsageError('--webhook-id goes with --smartcar --stack (locally: $SMARTCAR_WEBHOOK_ID)');
    const log = (line: string) => (json ? console.error(line) : console.log(line));
    let receipt: ErasureReceipt;
    const resources = await Resources.of(args);
    if (resources.deployed) {
      const webhookId = str(args, 'webhook-id') ?? process.env.SMARTCAR_WEBHOOK_ID;
      receipt = await eraseDeployed(resources, { subject, dryRun, reference, smartcar, webhookId, log });
    } else {
      const lakeDir = lakeDirOf(args);
      try {
        receipt = await eraseLocal(lakeDir, {
          subject,
          dryRun,
          reference,
          smartcar,
          onPlace: (r) => log(describePlace(r, dryRun)),
        });
      } catch (err) {
        if (!(err instanceof CompactionBusyError)) throw err;
        const h = err.holder;
        console.error(
          `erase: the lake is locked by ${h.runId ?? 'a run starting'} (pid ${h.pid ?? '?'} on ${h.host ?? '?'}, since ${h.startedAt ?? '?'}); nothing was erased: try again once it has ended`,
        );
        return 1;
      }
    }
    if (json) console.log(JSON.stringify(receipt, null, 2));
    else if (dryRun)
      log(`dry run: nothing was changed; a real run removes ${receipt.found} item(s) (erasure ${receipt.erasureId})`);
    else log(`erased ${receipt.removed} item(s); receipt: ${receipt.receiptKey ?? '(not stored)'}`);
    return 0;
  });
}
