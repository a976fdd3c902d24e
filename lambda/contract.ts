/**
 * The one contract shared by the infrastructure (lib/) and the handlers (lambda/): environment variable
 * names, the queue message the receiver hands to the ingest function, and the record written to the lake.
 * Nothing in here may import aws-cdk-lib: it is bundled into the functions.
 */

/**
 * The Lambda handlers, one folder each under `lambda/`; each is prebuilt to `dist/handlers/<name>/` and
 * deployed from there (see scripts/build-handlers.ts and lib/function.ts).
 */
export const HANDLER_NAMES = [
  'verify',
  'ingest',
  'recover',
  'quarantine',
  'reconcile',
  'workflow-plan',
  'workflow-vehicle',
  'workflow-results',
  'state',
  'erase',
] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/**
 * What a callback path may be (the callback and the vehicle error callback, deployed and local): starts
 * with "/", URL path characters only, no "{" (API Gateway would read a path variable).
 */
export const CALLBACK_PATH_PATTERN = /^\/[A-Za-z0-9._~\-/]*$/;

/** Environment variables read by the handlers; lib/ sets exactly these. */
export const ENV = {
  /**
   * The callback path, set when the function is its own front door (a Function URL): it then answers
   * 404 to other paths and 405 to other methods itself, as the HTTP API's route does.
   */
  callbackPath: 'SMARTCAR_CALLBACK_PATH',
  /**
   * The vehicle error callback path, set behind a Function URL when `errorCallbackPath` is: answered like
   * the callback path (same verification, queue and lake), so Smartcar's VEHICLE_ERROR URL can differ.
   */
  errorCallbackPath: 'SMARTCAR_ERROR_CALLBACK_PATH',
  /** ARN or name of the Secrets Manager secret that holds the application management token. */
  managementTokenSecretId: 'SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID',
  /** How long the verification function keeps the token in memory, in seconds. */
  tokenCacheTtlSeconds: 'SMARTCAR_TOKEN_CACHE_TTL_SECONDS',
  /** URL of the SQS queue between the verification and the ingest function. */
  deliveryQueueUrl: 'DELIVERY_QUEUE_URL',
  /**
   * Kinesis Data Firehose stream the verification function hands deliveries to (the default buffer); unset,
   * it sends each to the delivery queue. With it, the queue is the fallback when the stream refuses one.
   */
  deliveryStreamName: 'DELIVERY_STREAM_NAME',
  /** Key prefix of the landing zone Firehose writes to (no leading or trailing slash). */
  landingPrefix: 'LANDING_PREFIX',
  /** Name of the data lake bucket. */
  lakeBucketName: 'LAKE_BUCKET_NAME',
  /** Key prefix of the raw zone inside the lake bucket (no leading or trailing slash). */
  lakeRawPrefix: 'LAKE_RAW_PREFIX',
  /** DynamoDB table remembering stored eventIds; unset turns cross-batch deduplication off. */
  dedupTableName: 'DEDUP_TABLE_NAME',
  /** How long an eventId is remembered, in seconds. */
  dedupTtlSeconds: 'DEDUP_TTL_SECONDS',
  /**
   * 'true': the ingest function publishes its per-batch figures (Deliveries, RecordsWritten, …) with every
   * batch, each a custom metric billed every hour it is published; else only IngestFailures, when a batch fails.
   */
  detailedMetrics: 'DETAILED_METRICS',
  /** EventBridge bus the ingest function publishes normalized events to; unset turns it off. */
  eventBusName: 'EVENT_BUS_NAME',
  /** JSON {"eventTypes": [...], "signalNames": [...]}: which events to publish. */
  eventFilter: 'EVENT_FILTER',
  /** DynamoDB table of current vehicle state; unset turns it off. */
  stateTableName: 'STATE_TABLE_NAME',
  /** Queue of lake object keys for the vehicle-state updater (set on the ingest function). */
  stateQueueUrl: 'STATE_QUEUE_URL',
  /** Base URL of the Smartcar API (the official SDKs read the same variable). */
  smartcarApiOrigin: 'SMARTCAR_API_ORIGIN',
  /** How long after a rotation the previous management token is still accepted, in seconds. */
  tokenGraceSeconds: 'SMARTCAR_TOKEN_GRACE_SECONDS',
  /** Bucket of the quarantine (deliveries rejected only for their signature); unset turns it off. */
  quarantineBucketName: 'QUARANTINE_BUCKET_NAME',
  /** Queue the verification function hands rejected deliveries to; the quarantine function writes them in batches. */
  quarantineQueueUrl: 'QUARANTINE_QUEUE_URL',
  /** Most deliveries the quarantine keeps per clock hour, across the stack. */
  quarantineMaxPerHour: 'QUARANTINE_MAX_PER_HOUR',
  /** Most body bytes the quarantine keeps per clock hour, across the stack. */
  quarantineMaxBytesPerHour: 'QUARANTINE_MAX_BYTES_PER_HOUR',
} as const;

// ---------------------------------------------------------------------------------------------------
// Shared defaults: lib/ puts them in the functions' environment, lambda/ falls back to them, and local/
// uses them as deployed.
// ---------------------------------------------------------------------------------------------------

export const DEFAULT_SMARTCAR_API_ORIGIN = 'https://api.smartcar.com';
/** Smartcar's current platform (reference section 7): application tokens, connections, v3 subscriptions. */
export const DEFAULT_SMARTCAR_IAM_ORIGIN = 'https://iam.smartcar.com';
export const DEFAULT_SMARTCAR_MANAGEMENT_ORIGIN = 'https://management.smartcar.com';
export const DEFAULT_SMARTCAR_SUBSCRIPTIONS_ORIGIN = 'https://management.api.smartcar.com';
/** Smartcar's v3 vehicle API (users are deleted there). */
export const DEFAULT_SMARTCAR_VEHICLE_ORIGIN = 'https://vehicle.api.smartcar.com';
export const DEFAULT_RAW_PREFIX = 'raw';
/**
 * Key prefix of the landing zone: objects of buffered deliveries Firehose writes, each deleted once the
 * ingest function has stored its deliveries in the raw zone.
 */
export const DEFAULT_LANDING_PREFIX = 'landing';
/** How long the verification function keeps the management token in memory. */
export const DEFAULT_TOKEN_CACHE_TTL_SECONDS = 300;
/** How long an access token (read back from an execution's input or a secret) is kept in memory. */
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 300;
/** How long stored eventIds are remembered for deduplication (Smartcar suggests 7 days or more). */
export const DEFAULT_DEDUP_TTL_SECONDS = 7 * 24 * 3600;
/** Smartcar API request timeout: its latency can reach 300 s, so the client waits a little longer. */
export const DEFAULT_API_TIMEOUT_MS = 310_000;
/** How long after a rotation the previous management token is still accepted. */
export const DEFAULT_TOKEN_GRACE_SECONDS = 24 * 3600;
/** How long quarantined deliveries are kept. */
export const DEFAULT_QUARANTINE_RETENTION_DAYS = 14;
/**
 * How long the local receiver's request log keeps an entry (`npm start` prunes it at start; `expire
 * --request-log-days` overrides). Each entry holds a whole body: a week covers a debugging session.
 */
export const DEFAULT_REQUEST_LOG_RETENTION_DAYS = 7;
/** How long the work bucket keeps run pages and reports (`runs/`, `reconcile/runs/`); at least 14 days. */
export const DEFAULT_WORK_RETENTION_DAYS = 30;
/** How long Athena query results (and the fleet check's reports beside them) are kept. */
export const DEFAULT_QUERY_RESULTS_RETENTION_DAYS = 30;
/** How long an overwritten or deleted lake object stays recoverable as a noncurrent version. */
export const DEFAULT_NONCURRENT_VERSION_DAYS = 30;
/** Key prefix of the erasure ledger and receipts: no retention rule or `expire` ever touches it. */
export const ERASURES_PREFIX = 'erasures';
/** Key prefix of quarantined deliveries (in the quarantine bucket, or beside the local lake). */
export const QUARANTINE_PREFIX = 'quarantine';
/** Key prefix of recovery's progress markers, one per quarantine object (same bucket or folder). */
export const RECOVERY_PREFIX = 'recovery';
/** Smartcar's attempts per delivery: the first and three retries (+25 s, +50 s, +100 s), then it drops it. */
export const SMARTCAR_ATTEMPTS = 4;

/**
 * The quarantine's hourly budget (whole stack) for a stated peak: every attempt of a token mistake at
 * `peakPerSecond` for a whole clock hour, with 25% to spare; bytes at 16 KiB a delivery on average
 * (Smartcar's are 1 to 5 KB, at most 50 KB).
 */
export function quarantineCapsFor(peakPerSecond: number): { maxPerHour: number; maxBytesPerHour: number } {
  const maxPerHour = Math.ceil(peakPerSecond * SMARTCAR_ATTEMPTS * 3600 * 1.25);
  return { maxPerHour, maxBytesPerHour: maxPerHour * 16 * 1024 };
}

/**
 * Largest request body the receiver accepts. Smartcar documents 50 KB as its maximum payload; the margin
 * keeps room for growth while the base64-encoded body still fits one SQS message (256 KiB) comfortably.
 */
export const MAX_BODY_BYTES = 128 * 1024;

/**
 * Marker the stack-created secret starts with until an operator puts the real token in it. The handler
 * answers 503 while it sees this, instead of signing challenges with a random value.
 */
export const PLACEHOLDER_SECRET_KEY = 'placeholder';

/** Version of the queue message format; bump when {@link DeliveryMessage} changes incompatibly. */
export const DELIVERY_MESSAGE_VERSION = 1;

/**
 * What the verification function puts on the queue for every authentic delivery. The raw body travels
 * base64-encoded: SQS rejects some Unicode code points, and the lake must keep the bytes exactly.
 */
export interface DeliveryMessage {
  readonly v: typeof DELIVERY_MESSAGE_VERSION;
  /** The request body exactly as received, base64-encoded. */
  readonly bodyBase64: string;
  /** When the receiver accepted the delivery, ISO 8601 UTC. */
  readonly receivedAt: string;
  /** API Gateway request id, for tracing a record back to its access log line. */
  readonly requestId?: string;
}

/** Version of the {@link QuarantinedDelivery} format. */
export const QUARANTINE_RECORD_VERSION = 1;

/**
 * A delivery answered 401 only because its signature did not match, kept (outside the lake) so that it
 * can be re-verified and ingested once the secret holds the token it was signed with.
 */
export interface QuarantinedDelivery {
  readonly v: typeof QUARANTINE_RECORD_VERSION;
  /** The request body exactly as received, base64-encoded. */
  readonly bodyBase64: string;
  /** The SC-Signature it came with (lowercase hex). */
  readonly signature: string;
  /** When the receiver rejected it, ISO 8601 UTC; it becomes the record's receive time if recovered. */
  readonly receivedAt: string;
  readonly requestId?: string;
}

/** One line of an NDJSON object in the raw zone. Column names are snake_case for Athena. */
export interface LakeRecord {
  /** `eventId` of current payloads; for legacy payloads, which have none, `sha256:<hex of the body>`. */
  readonly event_id: string;
  /** `eventType` (current) or `eventName` (legacy), exactly as sent. */
  readonly event_type: string;
  /** live, test or simulated (lowercased), or unknown. */
  readonly mode: string;
  /** Payload generation: `meta.version` or top-level `version`, or null. */
  readonly payload_version: string | null;
  readonly webhook_id: string | null;
  readonly webhook_name: string | null;
  readonly delivery_id: string | null;
  /** Every vehicle id the payload names, in order of appearance, without repeats. */
  readonly vehicle_ids: string[];
  readonly user_id: string | null;
  /** When Smartcar says it sent this attempt, ISO 8601 UTC, or null. */
  readonly delivered_at: string | null;
  /** When the receiver accepted it, ISO 8601 UTC; also the partition time. */
  readonly received_at: string;
  /** When the ingest function wrote it, ISO 8601 UTC. */
  readonly ingested_at: string;
  readonly request_id: string | null;
  /** The raw body as UTF-8 text, when the bytes are valid UTF-8 (always, for JSON that Smartcar sends). */
  readonly body: string | null;
  /** The raw body base64-encoded, only when it is not valid UTF-8; otherwise null. */
  readonly body_base64: string | null;
  /**
   * The body as JSON that every query engine reads, only when the raw text is not (a byte order mark,
   * bytes that are not UTF-8, escapes of lone surrogates); otherwise null. Views read
   * `COALESCE(body_json, body)`, so no single record can make a view fail; `body`/`body_base64` stay
   * the exact evidence. Absent (null) in records written before it existed: `npm run replay` adds it.
   */
  readonly body_json?: string | null;
}

// ---------------------------------------------------------------------------------------------------
// Subscription workflow
// ---------------------------------------------------------------------------------------------------

/** Environment variables of the workflow task functions. */
export const WORKFLOW_ENV = {
  /** Bucket holding each run's vehicle pages, per-page results and final report. */
  workBucketName: 'WORKFLOW_BUCKET_NAME',
  /** The webhook id used when an execution names none. */
  defaultWebhookId: 'SMARTCAR_WEBHOOK_ID',
  /** Name prefix of the secrets callers may name in `accessTokenSecretArn`. */
  accessTokenSecretPrefix: 'ACCESS_TOKEN_SECRET_PREFIX',
  /** Comma-separated webhook ids an execution may (un)subscribe vehicles to; empty allows none. */
  allowedWebhookIds: 'SMARTCAR_ALLOWED_WEBHOOK_IDS',
  /** Smartcar API request timeout, in milliseconds. */
  apiTimeoutMs: 'SMARTCAR_API_TIMEOUT_MS',
} as const;

/** What a Smartcar id (webhook, vehicle) looks like; anything else is refused before it reaches a URL. */
export const SMARTCAR_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/**
 * Error names the task functions throw and the state machine matches on (`Retry`/`Catch`), and that
 * executions fail with.
 */
export const WORKFLOW_ERRORS = {
  invalidInput: 'InvalidInput',
  /** A transient Smartcar failure (5xx, 409, network, timeout): retried with backoff by the state machine. */
  retryable: 'Smartcar.Retryable',
  /** The listing itself failed permanently (e.g. 401: the token is bad); nothing else can succeed. */
  listingFailed: 'Smartcar.ListingFailed',
  /** A listing looks incomplete or malformed: reconcile deleted nothing and stopped (the cause says why). */
  listingAnomaly: 'Reconcile.ListingAnomaly',
  /** Reconcile would delete more than `maxPruneFraction` of the webhook's subscriptions: it deleted nothing. */
  pruneStopped: 'Reconcile.PruneStopped',
  /** A loop that must end did not: a cursor that does not advance, too many pages, a 429 that never ends. */
  runaway: 'Reconcile.Runaway',
  /** The incremental watermark exists but cannot be read: nothing was done rather than guessing. */
  watermarkUnreadable: 'Reconcile.WatermarkUnreadable',
  /** A full run found another run holding the rate limit; the state machine retries it, then fails. */
  busy: 'Reconcile.Busy',
  /** At least a tenth of a run's subscription requests failed for good (credentials, permissions?). */
  operationsFailed: 'Reconcile.OperationsFailed',
} as const;

/** The `task` field of each payload the state machine sends to a task function. */
export const WORKFLOW_TASKS = {
  prepare: 'prepare',
  listPage: 'listPage',
  processVehicle: 'processVehicle',
  loadPage: 'loadPage',
  recordPage: 'recordPage',
  summarize: 'summarize',
} as const;

/** Environment of the reconcile function (besides WORKFLOW_ENV's bucket, webhook and allow-list). */
export const RECONCILE_ENV = {
  /** Secret holding the application's client credentials, JSON {"clientId", "clientSecret"}. */
  clientCredentialsSecretId: 'SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID',
  /** Defaults of the selection rules, JSON {mode, includeUserIds, …}; the execution input overrides them. */
  defaults: 'RECONCILE_DEFAULTS',
  /** The client-side pacer: bucket capacity and refill per minute. */
  rateCapacity: 'SMARTCAR_RATE_CAPACITY',
  ratePerMinute: 'SMARTCAR_RATE_PER_MINUTE',
  /** Seconds between applying and confirming. */
  confirmDelaySeconds: 'RECONCILE_CONFIRM_DELAY_SECONDS',
  iamOrigin: 'SMARTCAR_IAM_ORIGIN',
  managementOrigin: 'SMARTCAR_MANAGEMENT_ORIGIN',
  subscriptionsOrigin: 'SMARTCAR_SUBSCRIPTIONS_ORIGIN',
  /** API v3's vehicle host (v3 connections). */
  vehicleOrigin: 'SMARTCAR_VEHICLE_ORIGIN',
  /** Which generation of Smartcar's API reconcile lists connections with: v3 or v2. */
  smartcarApi: 'SMARTCAR_API',
  /** Largest share of the webhook's subscriptions one run may delete without `allowMassPrune`. */
  maxPruneFraction: 'RECONCILE_MAX_PRUNE_FRACTION',
  /** Steps, and seconds, one execution runs before it hands the run to a new execution. */
  maxExecutionSteps: 'RECONCILE_MAX_EXECUTION_STEPS',
  maxExecutionSeconds: 'RECONCILE_MAX_EXECUTION_SECONDS',
  /** The stack's callback URL: the webhook health check expects Smartcar to deliver there. */
  expectedCallbackUrl: 'SMARTCAR_EXPECTED_CALLBACK_URL',
  /**
   * The stack's error callback URL: Smartcar may send vehicle errors there (or to the callback).
   * {@link ANY_ERROR_CALLBACK_URL} when it cannot be known (behind a custom domain): not compared.
   */
  expectedErrorCallbackUrl: 'SMARTCAR_EXPECTED_ERROR_CALLBACK_URL',
} as const;

/** The expected error callback URL when it cannot be known: the webhook's error callback URI is not compared. */
export const ANY_ERROR_CALLBACK_URL = '*';

/** Default share of the webhook's subscriptions a prune may delete in one run (`maxPruneFraction`). */
export const DEFAULT_MAX_PRUNE_FRACTION = 0.1;
/**
 * Reconcile steps per execution before it continues in a new one: a step loop enters at most 3 states
 * (task, choice, wait) and logs at most 10 history events, so 1,500 steps stay under 15,000 of the 25,000
 * events Step Functions allows an execution.
 */
export const DEFAULT_RECONCILE_EXECUTION_STEPS = 1500;
/** Seconds one reconcile execution runs before it continues in a new one (the state machine times out at 7 days). */
export const DEFAULT_RECONCILE_EXECUTION_SECONDS = 3 * 24 * 3600;

/** Smartcar's default application rate limit: a bucket of 120 requests refilling at 2 a minute. */
export const DEFAULT_RATE_LIMIT = { capacity: 120, perMinute: 2 } as const;

/** The `task` field of each payload the reconcile state machine sends to its function. */
export const RECONCILE_TASKS = {
  prepare: 'reconcilePrepare',
  step: 'reconcileStep',
  summarize: 'reconcileSummarize',
  /** The scheduled webhook health check (GET /webhooks/:webhookId), invoked directly, not by the state machine. */
  webhookHealth: 'webhookHealth',
} as const;

/** Vehicles per page: the listing's page size, and the unit of work of one Distributed Map child. */
export const VEHICLE_PAGE_SIZE = 50;
/** How often one vehicle may be answered 429 before it is reported as failed. */
export const MAX_RATE_LIMIT_WAITS = 30;
/** How many ids the summary lists inline; the full lists are in the report object. */
export const SUMMARY_LIST_LIMIT = 1000;

export type WorkflowAction = 'subscribe' | 'unsubscribe';

/** What an operator passes to StartExecution. */
export interface WorkflowInput {
  readonly accessToken?: string;
  readonly accessTokenSecretArn?: string;
  readonly webhookId?: string;
  readonly vehicleIds?: string[];
  readonly action?: WorkflowAction;
}

/**
 * How a task finds the user's access token without it ever travelling in state: either the execution's
 * own input (read back with DescribeExecution) or a secret.
 */
export type TokenRef =
  | { readonly kind: 'executionInput'; readonly executionArn: string }
  | { readonly kind: 'secret'; readonly secretArn: string };

/** The run's settings after validation; passed along in state (no token in it). */
export interface RunPlan {
  readonly runId: string;
  readonly action: WorkflowAction;
  readonly webhookId: string;
  readonly tokenRef: TokenRef;
  /** True when the caller listed the vehicles; false when the workflow lists them. */
  readonly vehiclesGiven: boolean;
}

/** State after listing (or staging) vehicles. */
export interface ListingState {
  readonly plan: RunPlan;
  /** Offset of the next page to list; absent when done. */
  readonly nextOffset?: number;
  readonly done: boolean;
  readonly vehicleCount: number;
  /** Offsets of the pages written to the work bucket, once done. */
  readonly pageOffsets: number[];
  /** Seconds to wait before listing again, when Smartcar said 429. */
  readonly retryAfterSeconds?: number;
  readonly rateLimitWaits: number;
}

/** One vehicle's work item inside a page. */
export interface VehicleTask {
  readonly vehicleId: string;
  readonly plan: RunPlan;
  readonly rateLimitWaits: number;
}

export interface VehicleFailure {
  readonly vehicleId: string;
  readonly status: number | null;
  readonly type: string | null;
  readonly code: string | null;
  readonly description: string | null;
  readonly requestId: string | null;
}

/** Outcome of one attempt for one vehicle. */
export type VehicleOutcome =
  | { readonly outcome: 'succeeded'; readonly vehicleId: string }
  | { readonly outcome: 'failed'; readonly vehicleId: string; readonly failure: VehicleFailure }
  | {
      readonly outcome: 'rate_limited';
      readonly vehicleId: string;
      readonly retryAfterSeconds: number;
      readonly rateLimitWaits: number;
      readonly plan: RunPlan;
    };

/** What the state machine sends to the plan function. */
export type PlanTaskEvent =
  | { task: typeof WORKFLOW_TASKS.prepare; executionArn: string; executionName: string }
  | { task: typeof WORKFLOW_TASKS.listPage; state: ListingState };
/** What the state machine sends to the vehicle function. */
export type VehicleTaskEvent = { task: typeof WORKFLOW_TASKS.processVehicle; vehicle: VehicleTask };
/** What the state machine sends to the results function. */
export type ResultsTaskEvent =
  | { task: typeof WORKFLOW_TASKS.loadPage; page: { plan: RunPlan; offset: number } }
  | { task: typeof WORKFLOW_TASKS.recordPage; plan: RunPlan; offset: number; results: VehicleOutcome[] }
  | { task: typeof WORKFLOW_TASKS.summarize; plan: RunPlan; vehicleCount: number };

/** The execution's output, shaped for a person reading it in the console. */
export interface WorkflowSummary {
  readonly action: WorkflowAction;
  readonly webhookId: string;
  readonly vehicleCount: number;
  readonly succeededCount: number;
  readonly failedCount: number;
  readonly succeeded: string[];
  readonly failed: VehicleFailure[];
  /** Set when a list was cut at {@link SUMMARY_LIST_LIMIT}: the report has them all. */
  readonly truncated: boolean;
  /** s3:// URI of the full report. */
  readonly report: string;
}

// ---------------------------------------------------------------------------------------------------
// Metrics (CloudWatch embedded metric format); lib/monitoring.ts alarms on these names
// ---------------------------------------------------------------------------------------------------

export const METRICS_NAMESPACE = 'SmartcarWebhooks';

export const METRIC = {
  /** Authentic deliveries handed off; dimensions EventType and Mode. */
  deliveries: 'Deliveries',
  /** Requests rejected because SC-Signature was missing or wrong. */
  signatureFailures: 'SignatureFailures',
  verifyChallengesAnswered: 'VerifyChallengesAnswered',
  /** Every VERIFY request, answered or not (alarm VerifyVolume: one metric, not the sum of two). */
  verifyRequests: 'VerifyRequests',
  /** VERIFY requests refused because the challenge is not of the answerable format (a signing-oracle probe). */
  verifyChallengesRejected: 'VerifyChallengesRejected',
  /** Requests rejected as malformed, too large or of the wrong content type. */
  rejectedRequests: 'RejectedRequests',
  /** Authentic deliveries answered 5xx because the hand-off failed. */
  handOffFailures: 'HandOffFailures',
  /**
   * Deliveries the Firehose stream refused (throttled: its per-second quota is too small for the burst),
   * sent to the delivery queue instead: stored all the same, at the queue's price.
   */
  deliveryStreamFallbacks: 'DeliveryStreamFallbacks',
  /** Requests answered 5xx because the token could not be read (or is not set yet). */
  tokenUnavailable: 'TokenUnavailable',
  /** Smartcar-shaped deliveries whose signature did not match: the token is likely wrong (alarm TokenMismatch). */
  signatureMismatches: 'SignatureMismatches',
  /** Deliveries accepted with the previous token during a rotation's grace period. */
  acceptedWithPreviousToken: 'AcceptedWithPreviousToken',
  /** Rejected deliveries kept in the quarantine. */
  quarantined: 'Quarantined',
  /** Rejected deliveries not kept because a quarantine cap (count or bytes) was reached. */
  quarantineDropped: 'QuarantineDropped',
  /** Normalized events published to the event bus. */
  eventsPublished: 'EventsPublished',
  /** Events that could not be published after retries (the lake has the records). */
  eventPublishFailures: 'EventPublishFailures',
  /** Vehicle-state updates that could not be written (the lake has the records; rebuild-state restores). */
  stateUpdateFailures: 'StateUpdateFailures',
  /** Quarantined deliveries re-verified and handed to ingest by a recovery. */
  recovered: 'Recovered',
  recordsWritten: 'RecordsWritten',
  objectsWritten: 'ObjectsWritten',
  /** Deliveries whose eventId was already stored (same batch or, with deduplication on, an earlier one). */
  duplicatesDropped: 'DuplicatesDropped',
  /** Queue messages the ingest function could not store (will be retried, then dead-lettered). */
  ingestFailures: 'IngestFailures',
  /** Milliseconds from receipt to lake, the largest in a batch. */
  ingestLag: 'IngestLag',
  /** 1 when the scheduled check found the webhook enabled, verified and pointed at this stack, else 0. */
  webhookHealthy: 'WebhookHealthy',
} as const;
export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** What the ingest function hands the vehicle-state updater per lake object it wrote. */
export interface StateUpdateMessage {
  /** The lake object's key; the updater reads it back. */
  readonly key: string;
}

/**
 * How long the ingest function keeps the erasure ledger's filter in memory, in seconds. An erasure waits
 * this long (and a margin) after writing its ledger entry before it sweeps the raw zone, so nothing an
 * ingest container with an older view of the ledger writes can land after the sweep.
 */
export const INGEST_LEDGER_TTL_SECONDS = 60;
/** The ingest function's timeout: a batch that read an older ledger may still be writing this long after. */
export const INGEST_TIMEOUT_SECONDS = 60;
/**
 * How long an erasure waits after writing its ledger entry before it sweeps the raw zone: every ingest
 * container has then re-read the ledger (its cache), and every batch started with an older copy has
 * ended (its timeout), so nothing of the subject from before the erasure can land behind the sweep.
 */
export const ERASE_INGEST_WAIT_SECONDS = INGEST_LEDGER_TTL_SECONDS + INGEST_TIMEOUT_SECONDS + 10;

/** The erasure ledger's key in the lake bucket (see lambda/core/erasure.ts). */
export const ERASURE_LEDGER_KEY = 'erasures/ledger.json';

/** Environment variables of the erase function (lib/erasure.ts sets them; unset ones turn a place off). */
export const ERASE_ENV = {
  lakeBucketName: 'LAKE_BUCKET_NAME',
  lakeRawPrefix: 'LAKE_RAW_PREFIX',
  workBucketName: 'WORK_BUCKET_NAME',
  stateTableName: 'STATE_TABLE_NAME',
  dedupTableName: 'DEDUP_TABLE_NAME',
  quarantineBucketName: 'QUARANTINE_BUCKET_NAME',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  stateDeadLetterQueueUrl: 'STATE_DEAD_LETTER_QUEUE_URL',
  athenaResultsBucketName: 'ATHENA_RESULTS_BUCKET_NAME',
  lockTableName: 'COMPACTION_LOCK_TABLE_NAME',
  /** The Athena workgroup, Glue database and curated prefix (the curated layer's erasure). */
  workGroupName: 'ATHENA_WORKGROUP',
  databaseName: 'GLUE_DATABASE',
  curatedPrefix: 'CURATED_PREFIX',
  /** Secrets and webhook for `"smartcar": true` (connections, subscriptions, the user at Smartcar). */
  managementTokenSecretId: 'SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID',
  clientCredentialsSecretId: 'SMARTCAR_CLIENT_CREDENTIALS_SECRET_ID',
  webhookId: 'SMARTCAR_WEBHOOK_ID',
  /** Raw-zone keys per sweep step (default {@link ERASE_PAGE_SIZE}); tests set it small to see the loop. */
  pageSize: 'ERASE_PAGE_SIZE',
  /** Landing keys per landing step (default {@link ERASE_LANDING_PAGE_SIZE}); tests set it small to see the loop. */
  landingPageSize: 'ERASE_LANDING_PAGE_SIZE',
  /** Long-poll seconds of each dead-letter receive (default 1: asks every SQS server); tests set 0. */
  deadLetterWaitSeconds: 'ERASE_DLQ_WAIT_SECONDS',
} as const;

/** Where Athena's UNLOAD writes the curated partitions an erasure rewrites, before the swap (lake bucket). */
export const ERASURE_STAGING_PREFIX = 'erasures/staging';

/** The erase function's timeout: one raw-zone page or one place per call; a stopped execution's last call may run this long. */
export const ERASE_FUNCTION_TIMEOUT_SECONDS = 900;

/** Raw-zone objects each step of the erase state machine's sweep reads. */
export const ERASE_PAGE_SIZE = 1000;

/**
 * Landing keys each step of the erase state machine's landing loop reads: up to 16 MiB each (the delivery
 * stream's buffer size; at most 32 MiB when configured so), read, searched and rewritten one at a time. A step
 * also stops early when its call's time runs low.
 */
export const ERASE_LANDING_PAGE_SIZE = 50;
