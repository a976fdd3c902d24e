/**
 * Erasure: removing one user's or one vehicle's records from everywhere the stack keeps them, and
 * remembering that it happened without remembering who.
 *
 * - A {@link Subject} is a user id or a vehicle id. A stored record is the subject's when its extracted
 *   fields name it (`user_id`, `vehicle_ids`) or its body contains the id as a JSON string. Only records
 *   received before the erasure began are removed: a delivery received after it is new data.
 * - Each place that keeps data (raw zone, curated layer, state, dedupe, quarantine, dead letters, reports,
 *   request log) is an {@link ErasurePlace}; {@link runErasure} visits them in order, and the local lake,
 *   the deployed stack (CLI) and the erase state machine each supply their own list of places.
 * - The **ledger** keeps, per erasure, a salted SHA-256 of the subject, the time and the counts, and no
 *   personal data. Everything that could bring a record back (ingest, replay, redrive, recover-rejected,
 *   the state rebuild, compaction) asks {@link erasedFilter} and drops records of an erased subject
 *   received before its erasure.
 * - A **receipt** says what was found and removed where, when and by whom, for a data-protection officer.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { LakeRecord } from '../contract';

export type SubjectKind = 'user' | 'vehicle';

export interface Subject {
  readonly kind: SubjectKind;
  readonly id: string;
}

/** Longest id accepted: Smartcar's ids are UUIDs; anything much longer is a mistake. */
const MAX_ID_LENGTH = 200;
/** Shortest id accepted: matching by content needs an id that cannot occur by accident. */
const MIN_ID_LENGTH = 8;

/**
 * The subject of an erasure request (`{ userId }` or `{ vehicleId }`, exactly one), or an Error saying
 * what is wrong with it. The message never repeats the value.
 */
export function parseSubject(input: { userId?: unknown; vehicleId?: unknown }): Subject {
  const given = (['userId', 'vehicleId'] as const).filter((k) => input[k] !== undefined && input[k] !== null);
  if (given.length !== 1) throw new Error('name exactly one of userId or vehicleId');
  const key = given[0];
  const id = input[key];
  if (typeof id !== 'string') throw new Error(`${key} must be a string`);
  if (id.trim() !== id || id.length < MIN_ID_LENGTH || id.length > MAX_ID_LENGTH)
    throw new Error(`${key} must be ${MIN_ID_LENGTH}–${MAX_ID_LENGTH} characters without surrounding spaces`);
  // Control characters, quotes and backslashes never occur in Smartcar ids; they would defeat content
  // matching (JSON escapes them) and could never be a literal in the curated layer's SQL.
  if ([...id].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f || `"'\\`.includes(c)))
    throw new Error(`${key} contains characters no Smartcar id has`);
  return { kind: key === 'userId' ? 'user' : 'vehicle', id };
}

/**
 * The operator's reference for the receipt (a ticket number), or an Error. Receipts are kept for good, so
 * free text (a name, an e-mail address) must not end up there: letters, digits and `-_.:/#`, 1–100.
 */
export function parseReference(reference: unknown): string | undefined {
  if (reference === undefined || reference === null) return undefined;
  if (typeof reference !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:/#-]{0,99}$/.test(reference))
    throw new Error(
      'reference must be a ticket reference: 1–100 letters, digits and -_.:/# (receipts are kept for good: no names or e-mail addresses)',
    );
  return reference;
}

// ---------------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------------

/** The body of a record as text (base64 bodies decoded), for content matching. */
function bodyText(record: Pick<LakeRecord, 'body' | 'body_base64' | 'body_json'>): string {
  if (record.body !== null && record.body !== undefined) return record.body;
  if (record.body_base64) return Buffer.from(record.body_base64, 'base64').toString('utf8');
  return record.body_json ?? '';
}

/** True when the record names the subject in its columns or carries its id as a JSON string. */
export function namesSubject(
  record: Pick<LakeRecord, 'user_id' | 'vehicle_ids' | 'body' | 'body_base64' | 'body_json'>,
  subject: Subject,
): boolean {
  if (subject.kind === 'user' && record.user_id === subject.id) return true;
  if (subject.kind === 'vehicle' && (record.vehicle_ids ?? []).includes(subject.id)) return true;
  const quoted = `"${subject.id}"`;
  return bodyText(record).includes(quoted) || (record.body_json ?? '').includes(quoted);
}

/**
 * True when `text` holds `id` as a whole token: not inside a longer id (`veh-1` is not in `veh-10`, nor in
 * `xveh-1`). For free text (request logs, reports, messages) where the id may sit in a URL or an escaped
 * JSON string rather than between plain quotes.
 */
export function containsId(text: string, id: string): boolean {
  const escaped = id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`(?<![A-Za-z0-9_-])${escaped}(?![A-Za-z0-9_-])`).test(text);
}

/**
 * A cheap first look: could this JSON text name the id? True when it holds the id, or any `\u` escape
 * (JSON may spell the id's characters that way). Only a parse can say for sure.
 */
export function mayNameId(text: string, id: string): boolean {
  return text.includes(id) || text.includes('\\u');
}

/** What a removed record leaves behind for the places visited after the raw zone (no body). */
export interface RemovedRecord {
  readonly eventId: string;
  readonly vehicleIds: readonly string[];
  readonly receivedAt: string;
}

export interface NdjsonErasure {
  /** The object's text without the removed lines; every kept line byte for byte as it was. */
  readonly text: string;
  readonly kept: number;
  readonly removed: RemovedRecord[];
}

/**
 * Removes the subject's records received before `before` from one NDJSON text (a raw-zone object,
 * gunzipped), or returns undefined when it has none, which is the common case and costs one substring
 * search. Lines are dropped whole and the others kept as they were, so every other record is unchanged
 * byte for byte. A line that is not JSON is kept (it names nobody this code can see) unless it contains
 * the id, in which case it goes too: better an unreadable line lost than an id left behind.
 */
export function eraseFromNdjson(text: string, subject: Subject, before: Date): NdjsonErasure | undefined {
  let hit = text.indexOf(subject.id);
  if (hit < 0) return undefined;
  const cutoff = before.toISOString();
  const removed: RemovedRecord[] = [];
  // Only the lines holding the id are looked at (found by indexOf, not by splitting a megabyte object
  // into lines); the text between removed lines is copied as it is.
  const parts: string[] = [];
  let from = 0;
  while (hit >= 0) {
    const start = text.lastIndexOf('\n', hit) + 1;
    const newline = text.indexOf('\n', hit);
    const end = newline < 0 ? text.length : newline;
    const line = text.slice(start, end);
    let record: LakeRecord | undefined;
    try {
      record = JSON.parse(line) as LakeRecord;
    } catch {
      record = undefined;
    }
    let gone: RemovedRecord | undefined;
    if (!record || typeof record !== 'object') gone = { eventId: '', vehicleIds: [], receivedAt: '' };
    else {
      const receivedAt = typeof record.received_at === 'string' ? record.received_at : '';
      if (receivedAt < cutoff && namesSubject(record, subject))
        gone = {
          eventId: String(record.event_id ?? ''),
          vehicleIds: Array.isArray(record.vehicle_ids) ? record.vehicle_ids.map(String) : [],
          receivedAt,
        };
    }
    if (gone) {
      removed.push(gone);
      // The line and its newline go; a last line without one takes the newline before it instead.
      parts.push(text.slice(from, newline < 0 && start > from ? start - 1 : start));
      from = newline < 0 ? text.length : newline + 1;
    }
    hit = newline < 0 ? -1 : text.indexOf(subject.id, newline + 1);
  }
  if (removed.length === 0) return undefined;
  parts.push(text.slice(from));
  let lines = 0;
  for (let at = 0; at < text.length; ) {
    const nl = text.indexOf('\n', at);
    const stop = nl < 0 ? text.length : nl;
    if (stop > at) lines++;
    at = stop + 1;
  }
  return { text: parts.join(''), kept: lines - removed.length, removed };
}

// ---------------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------------

/** What one place reports. `found` and `removed` are equal in a real run; `removed` is 0 in a dry run. */
export interface PlaceResult {
  /** A stable name: raw, curated, state, dedupe, quarantine, dead-letters, reports, request-log, smartcar, … */
  readonly place: string;
  /** Where, for a person: a bucket and prefix, a table, a queue, a folder. */
  readonly where: string;
  /** What the count counts: records, rows, items, messages, objects, connections. */
  readonly unit: string;
  readonly found: number;
  readonly removed: number;
  /** Objects or files rewritten (rest of their content kept) and deleted (nothing else in them). */
  readonly rewritten?: number;
  readonly deleted?: number;
  /** Noncurrent object versions deleted (versioned buckets). */
  readonly versionsDeleted?: number;
  /** Anything a reader must know: what could not be reached, what keeps a copy and for how long. */
  readonly note?: string;
}

export interface LedgerEntry {
  readonly erasureId: string;
  readonly kind: SubjectKind;
  /** Hex SHA-256 of `<salt>:<kind>:<id>`: recognisable with the ledger's salt and the id, and nothing else. */
  readonly subject: string;
  /** Records received before this time are erased; later ones are new data. */
  readonly erasedAt: string;
  /** `started` while it runs (the filters already apply), `completed` with its counts. */
  readonly status: 'started' | 'completed';
  readonly completedAt?: string;
  /** Counts per place, no ids. */
  readonly removed?: Record<string, number>;
}

export interface Ledger {
  readonly version: 1;
  /** Random, one per lake: the hashes cannot be joined with another system's hashes of the same ids. */
  readonly salt: string;
  readonly entries: readonly LedgerEntry[];
}

export function emptyLedger(): Ledger {
  return { version: 1, salt: randomBytes(32).toString('hex'), entries: [] };
}

export function subjectHash(salt: string, kind: SubjectKind, id: string): string {
  return createHash('sha256').update(`${salt}:${kind}:${id}`).digest('hex');
}

/** Reads and replaces the ledger. Writers are serialized by the caller's lock (erasures run one at a time). */
export interface LedgerStore {
  /** The ledger, or undefined when no erasure ever ran. */
  read(): Promise<Ledger | undefined>;
  write(ledger: Ledger): Promise<void>;
  describe(): string;
}

/** Decodes a stored ledger, refusing anything that is not one (a corrupt ledger must stop, not erase less). */
export function decodeLedger(text: string): Ledger {
  const json = JSON.parse(text) as Partial<Ledger>;
  if (json?.version !== 1 || typeof json.salt !== 'string' || json.salt.length < 32 || !Array.isArray(json.entries))
    throw new Error('the erasure ledger is not a version 1 ledger');
  for (const e of json.entries) {
    if (typeof e?.subject !== 'string' || typeof e.erasedAt !== 'string' || (e.kind !== 'user' && e.kind !== 'vehicle'))
      throw new Error('the erasure ledger has an entry without kind, subject or erasedAt');
  }
  return json as Ledger;
}

/** Adds or replaces (by erasureId) one entry. */
export function withEntry(ledger: Ledger, entry: LedgerEntry): Ledger {
  return { ...ledger, entries: [...ledger.entries.filter((e) => e.erasureId !== entry.erasureId), entry] };
}

/** The fields of a record or queued delivery the filter reads. */
export type Attributable = Pick<LakeRecord, 'user_id' | 'vehicle_ids' | 'received_at'>;

/**
 * A predicate that is true for records of an erased subject received before its erasure (they must not
 * come back), or undefined when the ledger has no entries (nothing to check, nothing to hash).
 * Costs one hash per id a record names, and a map look-up.
 */
export function erasedFilter(ledger: Ledger | undefined): ((record: Attributable) => boolean) | undefined {
  if (!ledger || ledger.entries.length === 0) return undefined;
  const latest = new Map<string, string>();
  for (const e of ledger.entries) {
    const key = `${e.kind}:${e.subject}`;
    if ((latest.get(key) ?? '') < e.erasedAt) latest.set(key, e.erasedAt);
  }
  const erasedBefore = (kind: SubjectKind, id: string, receivedAt: string) => {
    const at = latest.get(`${kind}:${subjectHash(ledger.salt, kind, id)}`);
    return at !== undefined && receivedAt < at;
  };
  return (record) => {
    const receivedAt = record.received_at ?? '';
    if (record.user_id && erasedBefore('user', record.user_id, receivedAt)) return true;
    return (record.vehicle_ids ?? []).some((v) => erasedBefore('vehicle', v, receivedAt));
  };
}

/** The ledger's erased-subject filter, re-read at most every `ttlMs` (the ingest function's view of it). */
export function cachedErasedFilter(store: Pick<LedgerStore, 'read'>, ttlMs: number, now: () => number = Date.now) {
  let cached: { at: number; filter: ReturnType<typeof erasedFilter> } | undefined;
  return async () => {
    if (!cached || now() - cached.at >= ttlMs) cached = { at: now(), filter: erasedFilter(await store.read()) };
    return cached.filter;
  };
}

// ---------------------------------------------------------------------------------------------------
// Running an erasure
// ---------------------------------------------------------------------------------------------------

/** What the places share while one erasure runs. */
export interface ErasureContext {
  readonly subject: Subject;
  /** Records received before this are removed. */
  readonly erasedAt: Date;
  readonly dryRun: boolean;
  /**
   * Vehicles the subject's records named (filled by the raw zone, read by places keyed by vehicle such as
   * the state table: a user's erasure removes the state of the vehicles their deliveries named).
   */
  readonly vehicleIds: Set<string>;
  /** Event ids of the records removed (filled by the raw zone, read by the dedupe table). */
  readonly eventIds: Set<string>;
  /**
   * Keeps `vehicleIds` and `eventIds` where a rerun finds them (see {@link PendingStore}); the raw zone
   * calls it before it rewrites anything, so an erasure that stops half-way loses none of them.
   */
  readonly persist?: () => Promise<void>;
}

/** What an erasure found so far, kept until it completes (a rerun of the same request picks it up). */
export interface PendingFindings {
  readonly vehicleIds: readonly string[];
  readonly eventIds: readonly string[];
}

/**
 * Where a running erasure keeps what the raw zone found (vehicle and event ids, which later places need
 * and which a rerun cannot find again once the raw zone is erased), by ledger hash; deleted when the
 * erasure completes.
 */
export interface PendingStore {
  read(hash: string): Promise<PendingFindings | undefined>;
  write(hash: string, findings: PendingFindings): Promise<void>;
  delete(hash: string): Promise<void>;
}

export interface ErasurePlace {
  readonly place: string;
  erase(context: ErasureContext): Promise<PlaceResult | PlaceResult[]>;
}

/** What a data-protection officer files: counts and places, the subject only as its ledger hash. */
export interface ErasureReceipt {
  readonly kind: 'smartcar-webhooks/erasure-receipt';
  readonly version: 1;
  readonly erasureId: string;
  readonly dryRun: boolean;
  readonly subject: { readonly kind: SubjectKind; readonly hash: string; readonly ledger: string };
  /** The operator's reference (a ticket number): how the officer links this receipt to the request. */
  readonly reference: string | null;
  readonly requestedBy: string;
  /** Records received before this time were erased. */
  readonly erasedAt: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly places: readonly PlaceResult[];
  /** Totals over the places. */
  readonly found: number;
  readonly removed: number;
  /** Copies this stack cannot remove, and where they are. */
  readonly outside: readonly string[];
  readonly receiptKey?: string;
}

export interface ReceiptStore {
  /** Stores the receipt; returns where (a key or a path). */
  put(erasureId: string, receipt: ErasureReceipt): Promise<string>;
}

export interface RunErasureOptions {
  readonly subject: Subject;
  readonly dryRun: boolean;
  readonly places: readonly ErasurePlace[];
  readonly ledger: LedgerStore;
  readonly receipts: ReceiptStore;
  readonly requestedBy: string;
  readonly reference?: string;
  /** Copies outside the stack's reach, stated on the receipt. */
  readonly outside?: readonly string[];
  readonly now?: () => Date;
  readonly erasureId?: string;
  /** Where what the raw zone found is kept until the erasure completes. @default kept in memory only */
  readonly pending?: PendingStore;
  /** Called after each place, for progress lines. */
  readonly onPlace?: (result: PlaceResult) => void;
}

export function newErasureId(at: Date): string {
  return `${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomUUID().slice(0, 8)}`;
}

/** Writes the ledger's `started` entry (so every filter drops the subject's old records from now on). */
export async function beginErasure(
  store: LedgerStore,
  subject: Subject,
  erasureId: string,
  erasedAt: Date,
): Promise<{ ledger: Ledger; entry: LedgerEntry }> {
  const ledger = (await store.read()) ?? emptyLedger();
  const entry: LedgerEntry = {
    erasureId,
    kind: subject.kind,
    subject: subjectHash(ledger.salt, subject.kind, subject.id),
    erasedAt: erasedAt.toISOString(),
    status: 'started',
  };
  const next = withEntry(ledger, entry);
  await store.write(next);
  return { ledger: next, entry };
}

/** Marks the entry completed with its counts (no ids). */
export async function completeErasure(
  store: LedgerStore,
  entry: LedgerEntry,
  places: readonly PlaceResult[],
  completedAt: Date,
): Promise<LedgerEntry> {
  const ledger = await store.read();
  if (!ledger) throw new Error(`the erasure ledger at ${store.describe()} disappeared while erasing`);
  const removed: Record<string, number> = {};
  for (const p of places) removed[p.place] = (removed[p.place] ?? 0) + p.removed;
  const done: LedgerEntry = { ...entry, status: 'completed', completedAt: completedAt.toISOString(), removed };
  await store.write(withEntry(ledger, done));
  return done;
}

/** Builds the receipt from the places' results. */
export function receiptOf(fields: {
  erasureId: string;
  dryRun: boolean;
  subject: Subject;
  subjectHash: string;
  ledger: string;
  reference?: string;
  requestedBy: string;
  erasedAt: Date;
  startedAt: Date;
  finishedAt: Date;
  places: readonly PlaceResult[];
  outside?: readonly string[];
}): ErasureReceipt {
  return {
    kind: 'smartcar-webhooks/erasure-receipt',
    version: 1,
    erasureId: fields.erasureId,
    dryRun: fields.dryRun,
    subject: { kind: fields.subject.kind, hash: fields.subjectHash, ledger: fields.ledger },
    reference: fields.reference ?? null,
    requestedBy: fields.requestedBy,
    erasedAt: fields.erasedAt.toISOString(),
    startedAt: fields.startedAt.toISOString(),
    finishedAt: fields.finishedAt.toISOString(),
    places: fields.places,
    found: fields.places.reduce((n, p) => n + p.found, 0),
    removed: fields.places.reduce((n, p) => n + p.removed, 0),
    outside: fields.outside ?? [],
  };
}

/**
 * Runs one erasure over `places`, in order. A real run writes the ledger entry first (from then on every
 * path that could bring a record back drops the subject's older records), visits every place, marks the
 * entry completed and stores the receipt. A dry run writes nothing anywhere and returns the receipt it
 * would have stored, with `removed` 0 and `found` the counts the real run removes.
 * A place that throws stops the run: the entry stays `started` (the filters keep applying) and running
 * the same request again finishes the job (every place is idempotent).
 */
export async function runErasure(options: RunErasureOptions): Promise<ErasureReceipt> {
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const erasureId = options.erasureId ?? newErasureId(startedAt);
  const erasedAt = startedAt;
  let hash: string;
  let entry: LedgerEntry | undefined;
  if (options.dryRun) {
    const ledger = await options.ledger.read();
    hash = ledger ? subjectHash(ledger.salt, options.subject.kind, options.subject.id) : '(no ledger yet)';
  } else {
    ({ entry } = await beginErasure(options.ledger, options.subject, erasureId, erasedAt));
    hash = entry.subject;
  }
  // A real run continues what an interrupted run of the same request found (same subject, same hash).
  const earlier = !options.dryRun && options.pending ? await options.pending.read(hash) : undefined;
  const vehicleIds = new Set([
    ...(options.subject.kind === 'vehicle' ? [options.subject.id] : []),
    ...(earlier?.vehicleIds ?? []),
  ]);
  const eventIds = new Set(earlier?.eventIds ?? []);
  const pending = options.dryRun ? undefined : options.pending;
  const context: ErasureContext = {
    subject: options.subject,
    erasedAt,
    dryRun: options.dryRun,
    vehicleIds,
    eventIds,
    persist: pending
      ? () => pending.write(hash, { vehicleIds: [...vehicleIds].sort(), eventIds: [...eventIds].sort() })
      : undefined,
  };
  const results: PlaceResult[] = [];
  for (const place of options.places) {
    const out = await place.erase(context);
    for (const r of Array.isArray(out) ? out : [out]) {
      results.push(r);
      options.onPlace?.(r);
    }
  }
  const finishedAt = now();
  const receipt = receiptOf({
    erasureId,
    dryRun: options.dryRun,
    subject: options.subject,
    subjectHash: hash,
    ledger: options.ledger.describe(),
    reference: options.reference,
    requestedBy: options.requestedBy,
    erasedAt,
    startedAt,
    finishedAt,
    places: results,
    outside: options.outside,
  });
  if (options.dryRun || !entry) return receipt;
  await completeErasure(options.ledger, entry, results, finishedAt);
  await pending?.delete(hash);
  const receiptKey = await options.receipts.put(erasureId, receipt);
  return { ...receipt, receiptKey };
}

/** One line per place, for the command's output. */
export function describePlace(r: PlaceResult, dryRun: boolean): string {
  const verb = dryRun ? 'would remove' : 'removed';
  const files: string[] = [];
  if (r.rewritten) files.push(`${r.rewritten} rewritten`);
  if (r.deleted) files.push(`${r.deleted} deleted`);
  if (r.versionsDeleted) files.push(`${r.versionsDeleted} old versions deleted`);
  return `${r.place.padEnd(13)} ${verb} ${dryRun ? r.found : r.removed} ${r.unit}${files.length ? ` (${files.join(', ')})` : ''} in ${r.where}${r.note ? ` — ${r.note}` : ''}`;
}

// ---------------------------------------------------------------------------------------------------
// The raw zone (shared by the local lake and S3)
// ---------------------------------------------------------------------------------------------------

/** The object operations the raw zone's erasure needs; S3 and a local folder both provide them. */
export interface ErasableObjects {
  get(key: string): Promise<Buffer>;
  put(key: string, body: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Deletes every noncurrent version of `key` (a versioned bucket keeps the erased content in them);
   * returns how many. Absent for stores without versions.
   */
  deleteNoncurrentVersions?(key: string): Promise<number>;
}

export interface RawSweep {
  objectsRead: number;
  recordsFound: number;
  recordsRemoved: number;
  rewritten: number;
  deleted: number;
  versionsDeleted: number;
  /** Removed records that also named other vehicles (legacy multi-vehicle payloads): removed whole. */
  shared?: number;
}

export function emptySweep(): RawSweep {
  return {
    objectsRead: 0,
    recordsFound: 0,
    recordsRemoved: 0,
    rewritten: 0,
    deleted: 0,
    versionsDeleted: 0,
    shared: 0,
  };
}

/**
 * Erases the subject from the given raw-zone objects (gzip NDJSON), `concurrency` at a time, adding to
 * `sweep` and to the context's vehicle and event ids. An object that held only the subject's records is
 * deleted; one that held others too is rewritten without them (the others byte for byte). In a dry run
 * nothing is written. Decompression runs on libuv's thread pool, so several objects inflate at once.
 */
export async function eraseRawObjects(
  store: ErasableObjects,
  keys: readonly string[],
  context: ErasureContext,
  sweep: RawSweep,
  concurrency = 8,
): Promise<RawSweep> {
  const { gunzip, gzip } = await import('node:zlib');
  const { promisify } = await import('node:util');
  const inflate = promisify(gunzip);
  const deflate = promisify(gzip);
  let next = 0;
  // What was found is persisted before anything is rewritten: a sweep that stops half-way leaves the ids
  // of what it already removed where the rerun finds them. Concurrent workers share one write at a time.
  let found = 0;
  let persisted = 0;
  let persisting: Promise<void> | undefined;
  const persistUpTo = async (version: number) => {
    while (context.persist && persisted < version) {
      if (!persisting) {
        const target = found;
        const persist = context.persist;
        persisting = persist().then(
          () => {
            persisted = Math.max(persisted, target);
            persisting = undefined;
          },
          (err) => {
            persisting = undefined;
            throw err;
          },
        );
      }
      await persisting;
    }
  };
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const bytes = await store.get(key);
      sweep.objectsRead++;
      // Cheap rejection before inflating: gzip hides the id, so only inflated text can be searched.
      const text = (await inflate(bytes)).toString('utf8');
      const erased = eraseFromNdjson(text, context.subject, context.erasedAt);
      if (!erased) continue;
      sweep.recordsFound += erased.removed.length;
      // The signed original is not edited: a record naming other vehicles too goes whole, and is counted.
      sweep.shared = (sweep.shared ?? 0) + erased.removed.filter((r) => new Set(r.vehicleIds).size > 1).length;
      for (const r of erased.removed) {
        if (r.eventId) context.eventIds.add(r.eventId);
        // A user's records name the user's vehicles; a vehicle's record may name others, which are not erased.
        if (context.subject.kind === 'user') for (const v of r.vehicleIds) context.vehicleIds.add(v);
      }
      if (context.dryRun) continue;
      await persistUpTo(++found);
      if (erased.kept === 0) {
        await store.delete(key);
        sweep.deleted++;
      } else {
        await store.put(key, await deflate(Buffer.from(erased.text, 'utf8')));
        sweep.rewritten++;
      }
      sweep.recordsRemoved += erased.removed.length;
      if (store.deleteNoncurrentVersions) {
        // Read after the await: `sweep.x += await …` would add to a value another worker has since changed.
        const versions = await store.deleteNoncurrentVersions(key);
        sweep.versionsDeleted += versions;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, keys.length)) }, worker));
  return sweep;
}

/** The raw zone's place result from a sweep. */
export function rawPlaceResult(sweep: RawSweep, where: string): PlaceResult {
  return {
    place: 'raw',
    where,
    unit: 'records',
    found: sweep.recordsFound,
    removed: sweep.recordsRemoved,
    rewritten: sweep.rewritten,
    deleted: sweep.deleted,
    versionsDeleted: sweep.versionsDeleted,
    note:
      `${sweep.objectsRead} objects searched` +
      (sweep.shared
        ? `; ${sweep.shared} of these records also named other vehicles (legacy multi-vehicle payloads) and went whole`
        : ''),
  };
}

/** The raw zone as one place: every `.ndjson.gz` object under `rawPrefix/`. */
export function rawZonePlace(
  store: ErasableObjects & { list(prefix: string): Promise<string[]> },
  rawPrefix: string,
  where: string,
): ErasurePlace {
  return {
    place: 'raw',
    async erase(context) {
      const root = rawPrefix.replace(/^\/+|\/+$/g, '');
      const keys = (await store.list(root ? `${root}/` : '')).filter((k) => k.endsWith('.ndjson.gz')).sort();
      return rawPlaceResult(await eraseRawObjects(store, keys, context, emptySweep()), where);
    },
  };
}
