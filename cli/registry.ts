/**
 * The operations commands: what each is called, what it takes, where it works. Pure data (no command's
 * code is loaded from here), so `smartcar-webhooks --help`, the docs test and every command's own parser
 * read one definition. Local commands work on the lake `npm start` writes ($LOCAL_LAKE_DIR, default
 * ./local-lake); deployed ones find their resources from `--stack` (cli/stack.ts).
 */
import { CURATED_DELIVERIES, CURATED_SIGNALS, RAW_TABLE, VIEWS } from '../lib/queries';
import { EVENT_KINDS } from '../local/events';
import { type CommandSpec, parseCommandArgs, UsageError, wantsHelp } from './args';
import { DEPLOYED_DETAILS, DEPLOYED_OPTIONS } from './stack';

const LAKE_DIR = { 'lake-dir': { type: 'string' } } as const;
const LAKE_DIR_DETAILS = '  --lake-dir DIR        the local lake (default $LOCAL_LAKE_DIR, else ./local-lake)';

export const SPECS = {
  start: {
    name: 'start',
    summary: 'Runs the receiver locally: verifies deliveries and writes them to a local lake.',
    synopsis: ['[--port N] [--host ADDRESS] [--lake-dir DIR] [--delivery-buffer firehose|queue]'],
    details: `  --port N              port to listen on (default $PORT, else 3000; 0 picks a free one)
  --host ADDRESS        address to bind (default $HOST, else 127.0.0.1)
${LAKE_DIR_DETAILS}
  --delivery-buffer B   firehose (default, as deployed): each batch passes through a landing object in
                        <lake>/landing/ first; queue: batches go straight to the raw zone (DeliveryBuffer.QUEUE)
  The management token is $SMARTCAR_MANAGEMENT_TOKEN, else a development token kept in the lake.
  $LOCAL_ERROR_CALLBACK_PATH (e.g. /webhooks/errors) also answers that path, as errorCallbackPath does deployed.`,
    options: { port: { type: 'string' }, host: { type: 'string' }, 'delivery-buffer': { type: 'string' }, ...LAKE_DIR },
    where: 'local',
  },
  'send-event': {
    name: 'send-event',
    summary: 'Sends a signed example delivery (or VERIFY challenge), or re-sends a stored one, and prints the answer.',
    synopsis: [
      `<${EVENT_KINDS.join('|')}> [--count N] [--bad-signature] [--url URL] [--token TOKEN] [--lake-dir DIR]`,
      `<kind> --stack NAME [--instance PREFIX] [--count N] [--bad-signature]`,
      '(--from-lake EVENT_ID | --from-file PATH) [--url URL [--token TOKEN] | --stack NAME] [--count N] [--lake-dir DIR]',
    ],
    details: `  --url URL             callback URL (default: the stack's CallbackUrl with --stack, else the local
                        receiver at http://127.0.0.1:$PORT/webhooks)
  --token TOKEN         token to sign with (default: the stack's secret with --stack, else
                        $SMARTCAR_MANAGEMENT_TOKEN, else the local receiver's development token)
  --count N             send N events (default 1, at most 10000)
  --bad-signature       sign wrongly and expect 401
  --from-lake EVENT_ID  re-send the payload the local lake stored for that eventId (or sha256:… of a
                        legacy body), byte for byte, re-signed with the target's token; the first
                        received copy when Smartcar retried it
  --from-file PATH      re-send the body in that file, byte for byte, re-signed with the target's token
  --error-callback      send to the vehicle error callback instead: the stack's ErrorCallbackUrl with
                        --stack, else http://127.0.0.1:$PORT$LOCAL_ERROR_CALLBACK_PATH
${LAKE_DIR_DETAILS}
                        (with --from-lake: the lake it reads, also with --stack)
${DEPLOYED_DETAILS}

  The lake keeps the body, not the request's headers: a replay carries only Content-Type:
  application/json and the new SC-Signature. The receiver stores an eventId once: --count N re-sends
  the same bytes N times and at most one of them is stored.`,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      count: { type: 'string' },
      'bad-signature': { type: 'boolean' },
      'from-lake': { type: 'string' },
      'from-file': { type: 'string' },
      'error-callback': { type: 'boolean' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    positionals: [0, 1],
    missing: `which event? name one kind: ${EVENT_KINDS.join(', ')}`,
    where: 'both',
  },
  subscribe: {
    name: 'subscribe',
    summary: "Subscribes a user's vehicles to the webhook by running the subscription workflow locally.",
    synopsis: [
      '--access-token TOKEN [--webhook-id ID] [--vehicle-ids ID,ID,...] [--action subscribe|unsubscribe]',
      '    [--api-origin URL] [--management-token TOKEN]',
    ],
    details: `  --access-token TOKEN      the user's access token from Smartcar Connect
  --webhook-id ID           the webhook to subscribe to (default $SMARTCAR_WEBHOOK_ID)
  --vehicle-ids IDS         only these vehicles (comma-separated); default all of the user's
  --action ACTION           subscribe (default) or unsubscribe
  --api-origin URL          Smartcar API base (default $SMARTCAR_API_ORIGIN, else Smartcar's)
  --management-token TOKEN  for unsubscribe (default $SMARTCAR_MANAGEMENT_TOKEN)
  Deployed, start the subscription state machine from the Step Functions console (output
  SubscriptionConsoleUrl): a user's access token belongs in the console's input, not in a shell.`,
    options: {
      'access-token': { type: 'string' },
      'webhook-id': { type: 'string' },
      'vehicle-ids': { type: 'string' },
      action: { type: 'string' },
      'api-origin': { type: 'string' },
      'management-token': { type: 'string' },
    },
    where: 'local',
  },
  reconcile: {
    name: 'reconcile',
    summary: 'Makes the webhook subscriptions match the connected vehicles (full or incremental run).',
    synopsis: [
      '[--incremental] [--dry-run] [--prune [--allow-mass-prune]] [--mode live|simulated|all] [--webhook-id ID]',
      '    (--stack NAME [--instance PREFIX] [--no-wait] | [--api-origin URL])',
    ],
    details: `  --incremental         only connections changed since the last run's watermark (default: full)
  --dry-run             plan only: print what would be subscribed and deleted, change nothing
  --prune               delete subscriptions of vehicles no longer connected (with every guard on)
  --allow-mass-prune    lift the cap on the share of subscriptions one run may delete
  --mode MODE           live, simulated or all vehicles (default: the stack's setting)
  --webhook-id ID       the webhook (default: the stack's, else $SMARTCAR_WEBHOOK_ID)
  --no-wait             deployed: start the execution and print its console link without waiting
  --api-origin URL      local: Smartcar API base (default $SMARTCAR_API_ORIGIN, else Smartcar's)
  --smartcar-api GEN    local: v3 (default; connections from API v3 with the application token) or v2
                        (the v2.0 management connections, with the management token); $SMARTCAR_API too
  Local runs read SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET (and, for v2, SMARTCAR_MANAGEMENT_TOKEN)
  from the environment and keep their reports and watermark in $LOCAL_WORKFLOW_DIR (default ./.local-workflow).
  Local runs print the webhook's health first (SMARTCAR_CALLBACK_URL, if set, is the callback URI it should
  have, SMARTCAR_ERROR_CALLBACK_URL its error callback URI); a webhook that auto-subscribes every vehicle makes the run stand aside, saying so.
${DEPLOYED_DETAILS}`,
    options: {
      incremental: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      prune: { type: 'boolean' },
      'allow-mass-prune': { type: 'boolean' },
      mode: { type: 'string' },
      'webhook-id': { type: 'string' },
      'no-wait': { type: 'boolean' },
      'api-origin': { type: 'string' },
      'smartcar-api': { type: 'string' },
      ...DEPLOYED_OPTIONS,
    },
    where: 'both',
  },
  query: {
    name: 'query',
    summary: 'Runs SQL or a named view over the local lake with DuckDB (the same SQL Athena runs).',
    synopsis: ['"<sql>" | <view> | --list  [--json] [--lake-dir DIR]'],
    details: `  --list                the views, with what each answers
  --json                one JSON object per row instead of a table
${LAKE_DIR_DETAILS}
  views: ${VIEWS.map((v) => v.name).join(', ')}.
  Tables: "${RAW_TABLE}" (the raw zone), "${CURATED_DELIVERIES}" and "${CURATED_SIGNALS}" (the curated layer, after
  compact); the views read the curated rows plus the raw objects not compacted yet.
  example: query "SELECT vehicle_id, signal_name, value, unit FROM latest_signals"
  Needs @duckdb/node-api installed beside the package (it is in this repository).`,
    options: { list: { type: 'boolean' }, json: { type: 'boolean' }, ...LAKE_DIR },
    positionals: [0, 1],
    where: 'local',
  },
  fleet: {
    name: 'fleet',
    summary: 'One line per vehicle of the local lake: last delivery, open errors, silence.',
    synopsis: ['[--json] [--lake-dir DIR]'],
    details: `  --json                one JSON object per vehicle
${LAKE_DIR_DETAILS}
  Needs @duckdb/node-api installed beside the package (it is in this repository).`,
    options: { json: { type: 'boolean' }, ...LAKE_DIR },
    where: 'local',
  },
  compact: {
    name: 'compact',
    summary: "Compacts the local lake's closed hours into its curated layer (Parquet, one row per event).",
    synopsis: ['[--settle-minutes N] [--now ISO-8601] [--lake-dir DIR]'],
    details: `  --settle-minutes N    an hour is closed N minutes after it ends (default 60)
  --now TIME            the time to compact as of (default: now)
${LAKE_DIR_DETAILS}
  Idempotent: a rerun with nothing new changes nothing. One run at a time: while another run holds the
  lake's lock it exits 1 saying which, having done nothing.
  Needs @duckdb/node-api installed beside the package (it is in this repository).`,
    options: { 'settle-minutes': { type: 'string' }, now: { type: 'string' }, ...LAKE_DIR },
    where: 'local',
  },
  trace: {
    name: 'trace',
    summary: "Where a delivery is and what happened to it, or a vehicle's timeline, in the local or deployed lake.",
    synopsis: [
      '<eventId|vehicleId> [--since ISO] [--json] [--full-scan] [--lake-dir DIR]',
      '<eventId|vehicleId> [--since ISO] [--json] --stack NAME [--instance PREFIX]',
    ],
    details: `  --since ISO           only deliveries received since then (default: the last 7 days)
  --json                one JSON object per finding instead of the report
  --full-scan           read every raw object since --since; without it, an eventId a committed compaction
                        run curated is looked for in its first copy's hour and the next and in the objects
                        not compacted yet (and everywhere when copies are missing)
  --bucket, --quarantine-bucket, --work-bucket, --dlq-url, --state-table, --workgroup, --database
                        the deployed resources, without a stack
${LAKE_DIR_DETAILS}
${DEPLOYED_DETAILS}`,
    options: {
      since: { type: 'string' },
      json: { type: 'boolean' },
      'full-scan': { type: 'boolean' },
      bucket: { type: 'string' },
      'quarantine-bucket': { type: 'string' },
      'work-bucket': { type: 'string' },
      'dlq-url': { type: 'string' },
      'state-table': { type: 'string' },
      workgroup: { type: 'string' },
      database: { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    positionals: [1, 1],
    missing: 'trace what? give an eventId or a vehicleId',
    where: 'both',
  },
  'rotate-token': {
    name: 'rotate-token',
    summary: 'Puts a new management token in place (read from standard input or a hidden prompt).',
    synopsis: [
      '--stack NAME [--instance PREFIX] [--no-recover] [--since ISO]',
      '--secret-id ARN [--recover-function NAME [--since ISO]]',
      '[--lake-dir DIR]',
    ],
    details: `  The token is read from standard input (e.g. piped from your password manager's CLI) or typed at a
  hidden prompt; it is never accepted as an argument.
  With --stack, the secret and the recovery function come from the stack's outputs, and after the
  rotation the deliveries rejected since --since are recovered (unless --no-recover).
  --since ISO           recover deliveries rejected since then (default: 24 hours ago)
  --no-recover          only put the token in place
  --secret-id ARN       the secret, without a stack
  --recover-function N  the recovery function, without a stack
${LAKE_DIR_DETAILS}; without --stack or --secret-id, the local receiver's token is rotated
${DEPLOYED_DETAILS}`,
    options: {
      'secret-id': { type: 'string' },
      'recover-function': { type: 'string' },
      'no-recover': { type: 'boolean' },
      since: { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    quiet: true,
    where: 'both',
  },
  'recover-rejected': {
    name: 'recover-rejected',
    summary: 'Re-verifies quarantined deliveries with the current token and re-ingests those that pass.',
    synopsis: [
      '[--since ISO] [--until ISO] [--dry-run] [--lake-dir DIR]',
      '[--since ISO] [--until ISO] [--dry-run] --stack NAME [--instance PREFIX]',
      '[--since ISO] [--until ISO] [--dry-run] --bucket QUARANTINE_BUCKET --secret-id ARN --queue-url URL [--dedup-table T]',
    ],
    details: `  --since, --until ISO  the window of rejections to look at (default: everything kept)
  --dry-run             count only
${LAKE_DIR_DETAILS}
${DEPLOYED_DETAILS}`,
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      'dry-run': { type: 'boolean' },
      bucket: { type: 'string' },
      'secret-id': { type: 'string' },
      'queue-url': { type: 'string' },
      'dedup-table': { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    where: 'both',
  },
  redrive: {
    name: 'redrive',
    summary: 'Moves dead-lettered deliveries back to the delivery queue (sent first, then deleted).',
    synopsis: [
      '--stack NAME [--instance PREFIX] [--queue delivery|state] [--max N]',
      '--dlq-url URL --queue-url URL [--max N]',
      '[--lake-dir DIR]',
    ],
    details: `  --queue WHICH         the delivery queue's dead letters (default) or the state table's
  --max N               move at most N messages
  --dlq-url, --queue-url  the queues, without a stack
${LAKE_DIR_DETAILS}  (locally: deliveries the receiver spooled because the lake could not be written)
${DEPLOYED_DETAILS}`,
    options: {
      'dlq-url': { type: 'string' },
      'queue-url': { type: 'string' },
      queue: { type: 'string' },
      max: { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    where: 'both',
  },
  replay: {
    name: 'replay',
    summary: 'Re-ingests the raw zone for a time range with the current ingest code, losing nothing.',
    synopsis: [
      '--from YYYY-MM-DDTHH --to YYYY-MM-DDTHH [--dry-run] [--lake-dir DIR]',
      '--from YYYY-MM-DDTHH --to YYYY-MM-DDTHH [--dry-run] (--stack NAME [--instance PREFIX] | --bucket NAME [--prefix raw])',
    ],
    details: `  --from, --to HOUR     inclusive start and exclusive end, UTC hours (the partition grain)
  --dry-run             count what would change
  --bucket NAME         the lake bucket, without a stack
  --prefix P            the raw zone's key prefix (default: the stack's, else raw)
${LAKE_DIR_DETAILS}
${DEPLOYED_DETAILS}`,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      bucket: { type: 'string' },
      prefix: { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    where: 'both',
  },
  'rebuild-state': {
    name: 'rebuild-state',
    summary: "Rebuilds the vehicle state table (or the local state file) from the lake's raw zone.",
    synopsis: ['[--lake-dir DIR]', '--stack NAME [--instance PREFIX]', '--bucket NAME --table NAME [--prefix raw]'],
    details: `  --bucket, --table     the lake bucket and the state table, without a stack
  --prefix P            the raw zone's key prefix (default: the stack's, else raw)
${LAKE_DIR_DETAILS}
${DEPLOYED_DETAILS}`,
    options: {
      bucket: { type: 'string' },
      table: { type: 'string' },
      prefix: { type: 'string' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    where: 'both',
  },
  erase: {
    name: 'erase',
    summary: "Erases one user's or one vehicle's records everywhere the lake keeps them, and writes a receipt.",
    synopsis: [
      '(--user ID | --vehicle ID) [--dry-run] [--smartcar] [--reference TEXT] [--json] [--lake-dir DIR]',
      '(--user ID | --vehicle ID) [--dry-run] [--smartcar [--webhook-id ID]] [--reference TEXT] [--json] --stack NAME [--instance PREFIX]',
    ],
    details: `  --user ID             erase everything a user's deliveries hold (and the state of the vehicles they named)
  --vehicle ID          erase everything about one vehicle
  --dry-run             find and count only: nothing is changed or written
  --smartcar            also remove, at Smartcar, the webhook subscriptions, the connections and (a user)
                        the user; locally with $SMARTCAR_MANAGEMENT_TOKEN, $SMARTCAR_CLIENT_ID/SECRET and
                        $SMARTCAR_WEBHOOK_ID, with --stack with the stack's secrets
  --webhook-id ID       with --smartcar --stack: the webhook whose subscriptions go (default $SMARTCAR_WEBHOOK_ID)
  --reference TEXT      your ticket or request number, written on the receipt
  --json                print the receipt as JSON
  Records received before the erasure began are removed; later deliveries are new data. The ledger
  (erasures/ledger.json) keeps a salted hash of the id, the time and the counts, no id; replay, recovery,
  the state rebuild and compaction skip what it names. The receipt is in erasures/receipts/.
${LAKE_DIR_DETAILS}
${DEPLOYED_DETAILS}`,
    options: {
      user: { type: 'string' },
      vehicle: { type: 'string' },
      'dry-run': { type: 'boolean' },
      smartcar: { type: 'boolean' },
      'webhook-id': { type: 'string' },
      reference: { type: 'string' },
      json: { type: 'boolean' },
      ...LAKE_DIR,
      ...DEPLOYED_OPTIONS,
    },
    quiet: true,
    where: 'both',
  },
  expire: {
    name: 'expire',
    summary: 'Applies the retention to the local lake: removes what is older than it, never the erasure ledger.',
    synopsis: [
      '[--dry-run] [--raw-days N] [--curated-days N] [--quarantine-days N] [--request-log-days N] [--all] [--lake-dir DIR]',
    ],
    details: `  --raw-days N          remove raw objects whose partition hour is older than N days (default: keep)
  --curated-days N      remove curated Parquet files whose dt day is older than N days (default: keep)
  --quarantine-days N   remove quarantined deliveries older than N days (default 14)
  --request-log-days N  drop request-log entries older than N days (default 7; npm start does this too)
  --dry-run             count what would go; nothing is removed
  --all                 allow removing every raw object or curated file (refused otherwise: an idle lake
                        or a clock far ahead looks the same)
${LAKE_DIR_DETAILS}
  Days are whole numbers from 1. It stops, removing nothing, when the clock is behind the newest data.
  erasures/ (the ledger and the receipts) and curated/compaction/ are never touched. Deployed, the
  construct's retention prop sets the same as S3 lifecycle rules.`,
    options: {
      'dry-run': { type: 'boolean' },
      'raw-days': { type: 'string' },
      'curated-days': { type: 'string' },
      'quarantine-days': { type: 'string' },
      'request-log-days': { type: 'string' },
      all: { type: 'boolean' },
      ...LAKE_DIR,
    },
    where: 'local',
  },
  resources: {
    name: 'resources',
    summary: "Lists what a deployed stack's outputs say about each instance (what the other commands use).",
    synopsis: ['--stack NAME [--instance PREFIX] [--json]'],
    details: `  --json                one JSON object per instance
${DEPLOYED_DETAILS}`,
    options: { json: { type: 'boolean' }, ...DEPLOYED_OPTIONS },
    where: 'deployed',
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof SPECS;

export const COMMANDS = Object.keys(SPECS) as CommandName[];

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(SPECS, name);
}

/**
 * Whether `argv` would be accepted by the command's parser: undefined when it parses (or asks for help),
 * else the one-line reason. Combinations a command checks when it runs are not covered.
 */
export function checkArgs(command: string, argv: readonly string[]): string | undefined {
  if (!isCommand(command)) return `unknown command "${command}"`;
  if (wantsHelp(argv)) return undefined;
  try {
    parseCommandArgs(SPECS[command], argv);
    return undefined;
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
}
