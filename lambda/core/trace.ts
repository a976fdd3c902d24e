/**
 * `trace`: where the deliveries of one eventId (or of one vehicle) are and what happened to them, asked
 * of the same places locally and deployed through small readers: the raw zone (key and line of each
 * copy), the curated layer (which committed compaction run holds the event), the quarantine (rejected
 * for its signature, recovered or not), what is waiting (the local spool, the dead-letter queue), the
 * vehicle state, and the subscription reports. Pure: the readers are the only I/O, so the local lake,
 * S3 and the tests plug in the same way.
 *
 * Cost: every raw object that may hold a match is read once (gunzipped, searched as bytes, only matching
 * lines parsed); which objects those are is the reader's business (a listing pruned by dt/hour locally,
 * an Athena query deployed). Everything else is one query or one listing per source.
 *
 * An eventId the curated layer knows from a committed run is narrowed further when the reader lists the
 * whole window (`LakeReader.lists === 'window'`): its copies are where Smartcar put them, in its first
 * copy's hour or the next (retries come at +25 s, +50 s, +100 s), or in an object no committed run has
 * claimed yet (a copy that came after the compaction). Only those objects are read, and when they hold
 * fewer copies than the run counted (`copies`), the rest of the window is read too: a narrowed trace
 * never reports less than a full one would. `fullScan` skips the narrowing (a copy re-sent by hand days
 * later and compacted since is found by the fallback only when the run counted it).
 */
import { gunzip } from 'node:zlib';
import type { LakeRecord } from '../contract';
import { QUARANTINE_PREFIX } from '../contract';
import { bodyHashId, parseBody, readEnvelope } from './envelope';
import { decodeQuarantineObject, type ListKeys, quarantineHourPrefix, recoveryMarkerKey } from './quarantine';
import type { VehicleState } from './vehicle-state';

/** What trace accepts: a Smartcar id (eventId, vehicleId) or the body-hash id of a legacy delivery. */
export const TRACE_ID_PATTERN = /^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,127}|sha256:[0-9a-f]{64})$/;

/** The raw zone: which objects may hold `id` since `since`, and their bytes. */
export interface LakeReader {
  readonly describe: string;
  /**
   * 'window' when `candidates` lists every object of the window (a listing: the curated layer may narrow
   * it), 'matching' (the default) when it already lists only the objects known to hold the id (Athena).
   */
  readonly lists?: 'window' | 'matching';
  candidates(id: string, since: Date): Promise<string[]>;
  get(key: string): Promise<Buffer>;
}

export interface CuratedRow {
  readonly eventId: string;
  readonly vehicleId: string | null;
  readonly runId: string;
  /** Null when the run never committed: its rows count for nothing. */
  readonly committedAt: string | null;
  readonly copies: number | null;
  /** When its first copy was received. */
  readonly receivedAt: string;
}

/** The curated layer, through a query engine (DuckDB locally, Athena deployed). */
export interface CuratedIndex {
  readonly describe: string;
  /** Curated rows of these eventIds, or of the vehicle, in partitions from `sinceDt` (YYYY-MM-DD) on. */
  rows(query: { eventIds: string[]; vehicleId: string; sinceDt: string }): Promise<CuratedRow[]>;
  /** Raw objects among `keys` claimed by a committed compaction run, with that run. */
  claims(keys: string[], sinceDt: string): Promise<Map<string, string>>;
}

/** The quarantine (bucket or folder): its keys in order and their bytes. */
export interface QuarantineReader {
  readonly describe: string;
  readonly keys: ListKeys;
  get(key: string): Promise<Buffer>;
}

/** Deliveries waiting (the local spool) or stuck (the dead-letter queue), looked at without consuming. */
export interface WaitingReader {
  readonly describe: string;
  /** Message bodies: a DeliveryMessage or QuarantinedDelivery as JSON (both carry bodyBase64, receivedAt). */
  peek(): Promise<{ id: string; body: string }[]>;
}

export interface StateReader {
  readonly describe: string;
  /** The vehicle's current state, one per mode. */
  vehicle(vehicleId: string): Promise<VehicleState[]>;
}

/** The workflow and reconcile reports (the work bucket, or the local workflow folder). */
export interface ReportReader {
  readonly describe: string;
  /** Reports written since `since`: `runs/<run>/report.json` and `reconcile/runs/<run>/report.json`. */
  reports(since: Date): Promise<{ key: string; at: Date; json: unknown }[]>;
}

export interface TraceSources {
  readonly lake: LakeReader;
  readonly curated?: CuratedIndex;
  readonly quarantine?: QuarantineReader;
  readonly waiting?: readonly WaitingReader[];
  readonly state?: StateReader;
  readonly reports?: ReportReader;
}

export interface RawFinding {
  readonly kind: 'raw';
  readonly eventId: string;
  readonly eventType: string;
  readonly mode: string;
  readonly vehicleIds: string[];
  readonly receivedAt: string;
  readonly key: string;
  /** 1-based line of the object's NDJSON. */
  readonly line: number;
  /** The committed compaction run that holds the event in the curated layer, or null. */
  readonly curatedBy: string | null;
  readonly curatedAt: string | null;
  /** The committed run that claimed this object (its rows are read from Parquet since), or null. */
  readonly objectCompactedBy: string | null;
}

export interface CuratedOnlyFinding {
  readonly kind: 'curated';
  readonly eventId: string;
  readonly runId: string;
  readonly committedAt: string;
  readonly note: string;
}

export interface QuarantineFinding {
  readonly kind: 'quarantine';
  readonly eventId: string;
  readonly eventType: string;
  readonly vehicleIds: string[];
  readonly receivedAt: string;
  readonly key: string;
  readonly line: number;
  readonly reason: string;
  /** Recovery handed it to ingest (its marker names the eventId). */
  readonly recovered: boolean;
}

export interface WaitingFinding {
  readonly kind: 'waiting';
  readonly where: string;
  readonly messageId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly vehicleIds: string[];
  readonly receivedAt: string;
}

export interface StateFinding {
  readonly kind: 'state';
  readonly vehicleId: string;
  readonly mode: string;
  readonly lastDeliveryAt: string;
  /** The signals the state holds (all of them for a vehicle; for an event, those it set). */
  readonly signals: { code: string; value: string; eventId: string; receivedAt: string }[];
  readonly note?: string;
}

export type TimelineWhat =
  | 'delivery'
  | 'signal changed'
  | 'error opened'
  | 'error again'
  | 'error resolved'
  | 'subscribed'
  | 'unsubscribed'
  | 'subscription kept'
  | 'subscription failed';

export interface TimelineEntry {
  readonly kind: 'timeline';
  readonly at: string;
  readonly what: TimelineWhat;
  readonly detail: string;
  readonly eventId?: string;
}

export type Finding = RawFinding | CuratedOnlyFinding | QuarantineFinding | WaitingFinding | StateFinding;

export interface TraceResult {
  readonly id: string;
  readonly since: string;
  /** Whether `id` matched as an eventId, as a vehicleId, both or neither. */
  readonly matchedAs: ('eventId' | 'vehicleId')[];
  readonly findings: Finding[];
  readonly timeline: TimelineEntry[];
  /** Where it looked, one line each (shown when nothing is found). */
  readonly looked: string[];
  /** Which raw objects were read, in a sentence: all of the window's, or which narrowed few and why. */
  readonly rawSearch: string;
}

export interface TraceOptions {
  /** Read every raw object of the window even when the curated layer could narrow the search. */
  readonly fullScan?: boolean;
}

/** Why the quarantine holds a delivery: it records no reason, as it keeps only this one kind. */
export const QUARANTINE_REASON =
  'SC-Signature did not match the management token (answered 401; kept for recovery after a token fix)';

const gunzipAsync = (b: Buffer) =>
  new Promise<Buffer>((resolve, reject) => gunzip(b, (err, out) => (err ? reject(err) : resolve(out))));

/** Runs `fn` over `items`, `limit` at a time (gunzip runs on libuv's pool: objects overlap). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Lines of an NDJSON buffer that contain `needle`, with their 1-based numbers (no line is parsed else). */
export function matchingLines(text: Buffer, needle: Buffer): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let line = 1;
  let counted = 0; // newlines before this offset are in `line`
  for (let at = text.indexOf(needle); at >= 0; ) {
    for (let nl = text.indexOf(10, counted); nl >= 0 && nl < at; nl = text.indexOf(10, nl + 1)) line++;
    counted = at;
    const start = text.lastIndexOf(10, at) + 1;
    const newline = text.indexOf(10, at);
    const end = newline < 0 ? text.length : newline;
    out.push({ line, text: text.subarray(start, end).toString('utf8') });
    at = newline < 0 ? -1 : text.indexOf(needle, end);
  }
  return out;
}

/** What a delivery's body says, for quarantined and waiting ones (the raw zone has it as columns). */
function describeBody(body: Buffer): { eventId: string; eventType: string; mode: string; vehicleIds: string[] } {
  const parsed = parseBody(body);
  if (!parsed.ok) return { eventId: bodyHashId(body), eventType: 'UNKNOWN', mode: 'unknown', vehicleIds: [] };
  const f = readEnvelope(parsed.json, body).fields;
  return { eventId: f.eventId, eventType: f.eventType, mode: f.mode, vehicleIds: f.vehicleIds };
}

const dtOf = (d: Date) => d.toISOString().slice(0, 10);

/** The `dt=…/hour=…/` part of the raw keys holding deliveries received at `at` and in the hour after. */
export function hourFolders(at: string): string[] {
  const t = Date.parse(at);
  if (Number.isNaN(t)) return [];
  return [t, t + 3_600_000].map((x) => {
    const iso = new Date(x).toISOString();
    return `/dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}/`;
  });
}

interface Narrowing {
  readonly keys: string[];
  /** The copies the committed run counted: fewer found in the objects it claimed means one lies elsewhere. */
  readonly copies: number;
  readonly runIds: Set<string>;
  readonly hours: string[];
  readonly tail: number;
  readonly claims: Map<string, string>;
  readonly rows: CuratedRow[];
}

/**
 * The objects that hold every copy of eventId `id` when the curated layer knows it from a committed run:
 * those of its first copy's hour and the next, and those no committed run has claimed. Undefined when it
 * cannot say (unknown or uncommitted event, an id that is also a vehicle's, a first copy outside the window).
 */
async function narrowToEvent(
  id: string,
  since: Date,
  keys: readonly string[],
  curated: CuratedIndex,
  sinceDt: string,
): Promise<Narrowing | undefined> {
  const rows = await curated.rows({ eventIds: [id], vehicleId: id, sinceDt });
  if (rows.some((r) => r.vehicleId === id)) return undefined;
  const committed = rows
    .filter((r) => r.eventId === id && r.committedAt && r.copies !== null)
    .sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
  const first = committed[0];
  if (!first || first.receivedAt < since.toISOString()) return undefined;
  const hours = hourFolders(first.receivedAt);
  if (hours.length === 0) return undefined;
  const claims = await curated.claims([...keys], sinceDt);
  const tail = keys.filter((k) => !claims.has(k));
  const picked = new Set([...keys.filter((k) => hours.some((h) => k.includes(h))), ...tail]);
  const copies = committed.reduce((n, r) => n + (r.copies ?? 0), 0);
  const runIds = new Set(committed.map((r) => r.runId));
  return { keys: keys.filter((k) => picked.has(k)), copies, runIds, hours, tail: tail.length, claims, rows };
}

/** Traces `id` (an eventId or a vehicleId) since `since` through every source given. */
export async function trace(
  id: string,
  since: Date,
  sources: TraceSources,
  options: TraceOptions = {},
): Promise<TraceResult> {
  if (!TRACE_ID_PATTERN.test(id)) throw new Error(`"${id}" is not an eventId or a vehicleId`);
  const needle = Buffer.from(JSON.stringify(id).slice(1, -1), 'utf8');
  const looked: string[] = [];
  const findings: Finding[] = [];
  const matchedAs = new Set<'eventId' | 'vehicleId'>();
  const isEvent = (eventId: string) => eventId === id;
  const isVehicle = (ids: readonly string[]) => ids.includes(id);

  // 1. The raw zone: narrowed to the event's hours and the uncompacted tail when the curated layer can.
  // A day earlier: a later copy's event may be curated from its first copy's partition.
  const sinceDt = dtOf(new Date(since.getTime() - 86_400_000));
  const keys = await sources.lake.candidates(id, since);
  const narrowed =
    !options.fullScan && sources.lake.lists === 'window' && sources.curated
      ? await narrowToEvent(id, since, keys, sources.curated, sinceDt)
      : undefined;
  const hits: { key: string; line: number; record: LakeRecord }[] = [];
  const search = (some: readonly string[]) =>
    eachLimited(some, 8, async (key) => {
      const text = await gunzipAsync(await sources.lake.get(key));
      for (const m of matchingLines(text, needle)) {
        let record: LakeRecord;
        try {
          record = JSON.parse(m.text) as LakeRecord;
        } catch {
          continue;
        }
        if (record.received_at < since.toISOString()) continue;
        if (isEvent(record.event_id)) matchedAs.add('eventId');
        if (isVehicle(record.vehicle_ids ?? [])) matchedAs.add('vehicleId');
        if (isEvent(record.event_id) || isVehicle(record.vehicle_ids ?? [])) hits.push({ key, line: m.line, record });
      }
    });
  let rawSearch = `all ${keys.length} object(s) since ${since.toISOString()}`;
  if (narrowed) {
    await search(narrowed.keys);
    // Only the copies in the objects its run(s) claimed count: the run counted those, not later ones.
    const found = hits.filter(
      (h) => isEvent(h.record.event_id) && narrowed.runIds.has(narrowed.claims.get(h.key) ?? ''),
    ).length;
    const what = `the hours of its first copy (${narrowed.hours.map((h) => h.slice(1, -1)).join(', ')}) and ${narrowed.tail} object(s) not compacted yet`;
    if (found >= narrowed.copies) rawSearch = `${narrowed.keys.length} of ${keys.length} object(s): ${what}`;
    else {
      const searched = new Set(narrowed.keys);
      await search(keys.filter((k) => !searched.has(k)));
      rawSearch = `all ${keys.length} object(s) since ${since.toISOString()}: ${what} held ${found} of the ${narrowed.copies} cop${narrowed.copies === 1 ? 'y' : 'ies'} compaction counted`;
    }
  } else await search(keys);
  hits.sort((a, b) => a.record.received_at.localeCompare(b.record.received_at) || a.key.localeCompare(b.key));
  looked.push(`raw zone: ${sources.lake.describe} (${rawSearch})`);

  // 2. The curated layer: which committed run holds each event, which run claimed each object.
  const curatedBy = new Map<string, CuratedRow>();
  const uncommitted = new Map<string, string>();
  let claims = new Map<string, string>();
  if (sources.curated) {
    const eventIds = [...new Set([id, ...hits.map((h) => h.record.event_id)])];
    // The narrowing asked already for this id alone, and for every object's claim.
    const rows =
      narrowed && eventIds.length === 1
        ? narrowed.rows
        : await sources.curated.rows({ eventIds, vehicleId: id, sinceDt });
    for (const row of rows) {
      if (row.committedAt) curatedBy.set(row.eventId, row);
      else uncommitted.set(row.eventId, row.runId);
    }
    claims = narrowed?.claims ?? (await sources.curated.claims([...new Set(hits.map((h) => h.key))], sinceDt));
    looked.push(`curated layer: ${sources.curated.describe}`);
  }
  for (const h of hits) {
    const c = curatedBy.get(h.record.event_id);
    findings.push({
      kind: 'raw',
      eventId: h.record.event_id,
      eventType: h.record.event_type,
      mode: h.record.mode,
      vehicleIds: h.record.vehicle_ids ?? [],
      receivedAt: h.record.received_at,
      key: h.key,
      line: h.line,
      curatedBy: c?.runId ?? null,
      curatedAt: c?.committedAt ?? null,
      objectCompactedBy: claims.get(h.key) ?? null,
    });
  }
  const rawIds = new Set(hits.map((h) => h.record.event_id));
  for (const row of curatedBy.values()) {
    if (rawIds.has(row.eventId) || row.receivedAt < since.toISOString()) continue;
    if (row.eventId === id) matchedAs.add('eventId');
    if (row.vehicleId === id) matchedAs.add('vehicleId');
    findings.push({
      kind: 'curated',
      eventId: row.eventId,
      runId: row.runId,
      committedAt: row.committedAt as string,
      note: 'in the curated layer; no raw copy received since --since',
    });
  }

  // 3. The quarantine, from since's hour on; recovery's markers say what was handed to ingest.
  const quarantined: { finding: QuarantineFinding; body: Buffer }[] = [];
  if (sources.quarantine) {
    const q = sources.quarantine;
    let objects = 0;
    for await (const key of q.keys(`${QUARANTINE_PREFIX}/`, quarantineHourPrefix(since))) {
      objects++;
      const bytes = await q.get(key);
      let records: ReturnType<typeof decodeQuarantineObject>;
      try {
        records = decodeQuarantineObject(key, bytes);
      } catch {
        continue;
      }
      let recovered: Set<string> | undefined;
      for (const [i, r] of records.entries()) {
        if (!r || r.receivedAt < since.toISOString()) continue;
        const body = Buffer.from(r.bodyBase64, 'base64');
        if (!body.includes(needle)) continue;
        const d = describeBody(body);
        if (!isEvent(d.eventId) && !isVehicle(d.vehicleIds)) continue;
        matchedAs.add(isEvent(d.eventId) ? 'eventId' : 'vehicleId');
        recovered ??= await markerIds(q, key);
        quarantined.push({
          body,
          finding: {
            kind: 'quarantine',
            eventId: d.eventId,
            eventType: d.eventType,
            vehicleIds: d.vehicleIds,
            receivedAt: r.receivedAt,
            key,
            line: i + 1,
            reason: QUARANTINE_REASON,
            recovered: recovered.has(d.eventId),
          },
        });
      }
    }
    findings.push(...quarantined.map((q) => q.finding));
    looked.push(`quarantine: ${q.describe} (${objects} object(s))`);
  }

  // 4. Waiting or stuck deliveries.
  const waiting: { finding: WaitingFinding; body: Buffer }[] = [];
  for (const w of sources.waiting ?? []) {
    const messages = await w.peek();
    for (const m of messages) {
      let message: { bodyBase64?: unknown; receivedAt?: unknown };
      try {
        message = JSON.parse(m.body);
      } catch {
        continue;
      }
      if (typeof message?.bodyBase64 !== 'string') continue;
      const body = Buffer.from(message.bodyBase64, 'base64');
      if (!body.includes(needle)) continue;
      const d = describeBody(body);
      if (!isEvent(d.eventId) && !isVehicle(d.vehicleIds)) continue;
      matchedAs.add(isEvent(d.eventId) ? 'eventId' : 'vehicleId');
      waiting.push({
        body,
        finding: {
          kind: 'waiting',
          where: w.describe,
          messageId: m.id,
          eventId: d.eventId,
          eventType: d.eventType,
          vehicleIds: d.vehicleIds,
          receivedAt: typeof message.receivedAt === 'string' ? message.receivedAt : '',
        },
      });
    }
    findings.push(...waiting.filter((x) => x.finding.where === w.describe).map((x) => x.finding));
    looked.push(`${w.describe} (${messages.length} message(s))`);
  }

  // 5. Vehicle state: the vehicle's, or for an event, that of the vehicles it names.
  if (sources.state) {
    const vehicles = new Set<string>();
    vehicles.add(id); // a vehicle with state but no delivery since --since is still worth showing
    for (const h of hits) if (isEvent(h.record.event_id)) for (const v of h.record.vehicle_ids ?? []) vehicles.add(v);
    for (const v of vehicles) {
      for (const s of await sources.state.vehicle(v)) {
        const all = Object.values(s.signals).map((sig) => ({
          code: sig.code,
          value: signalValue(sig.body),
          eventId: sig.eventId,
          receivedAt: sig.receivedAt,
        }));
        if (v === id) {
          matchedAs.add('vehicleId');
          findings.push({ kind: 'state', vehicleId: v, mode: s.mode, lastDeliveryAt: s.lastDeliveryAt, signals: all });
        } else {
          const mine = all.filter((sig) => sig.eventId === id);
          findings.push({
            kind: 'state',
            vehicleId: v,
            mode: s.mode,
            lastDeliveryAt: s.lastDeliveryAt,
            signals: mine,
            note:
              mine.length > 0
                ? `${mine.length} of the vehicle's current signal(s) come from this event`
                : 'none of the vehicle’s current signals come from this event (newer readings replaced them, or it carried none)',
          });
        }
      }
    }
    looked.push(`vehicle state: ${sources.state.describe}`);
  }

  // 6. A vehicle's timeline.
  const timeline: TimelineEntry[] = [];
  if (matchedAs.has('vehicleId')) {
    timeline.push(...deliveryTimeline(id, hits, quarantined, waiting));
    if (sources.reports) {
      const reports = await sources.reports.reports(since);
      timeline.push(...subscriptionTimeline(id, reports));
      looked.push(`subscription reports: ${sources.reports.describe} (${reports.length} report(s))`);
    }
    timeline.sort((a, b) => a.at.localeCompare(b.at));
  } else if (sources.reports) {
    looked.push(`subscription reports: ${sources.reports.describe} (read for a vehicle only)`);
  }

  return { id, since: since.toISOString(), matchedAs: [...matchedAs], findings, timeline, looked, rawSearch };
}

async function markerIds(q: QuarantineReader, key: string): Promise<Set<string>> {
  const marker = recoveryMarkerKey(key);
  for await (const k of q.keys(marker.slice(0, marker.lastIndexOf('/') + 1), undefined)) {
    if (k !== marker) continue;
    try {
      const m = JSON.parse((await q.get(k)).toString('utf8')) as { eventIds?: unknown };
      return new Set(Array.isArray(m.eventIds) ? m.eventIds.map(String) : []);
    } catch {
      return new Set();
    }
  }
  return new Set();
}

/** A signal body as one short value: `78 percent`, else its JSON. */
export function signalValue(bodyJson: string): string {
  try {
    const body = JSON.parse(bodyJson) as Record<string, unknown> | null;
    if (body && typeof body === 'object' && 'value' in body && (typeof body.value !== 'object' || body.value === null))
      return `${String(body.value)}${typeof body.unit === 'string' ? ` ${body.unit}` : ''}`;
    return JSON.stringify(body);
  } catch {
    return bodyJson;
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

function payloadOf(record: LakeRecord): Json | undefined {
  try {
    return obj(JSON.parse(record.body_json ?? record.body ?? 'null'));
  } catch {
    return undefined;
  }
}

/** Deliveries (once per eventId), signal changes between consecutive VEHICLE_STATE deliveries, errors. */
function deliveryTimeline(
  vehicleId: string,
  hits: readonly { key: string; line: number; record: LakeRecord }[],
  quarantined: readonly { finding: QuarantineFinding; body: Buffer }[],
  waiting: readonly { finding: WaitingFinding; body: Buffer }[],
): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const first = new Map<string, { record: LakeRecord; copies: number }>();
  for (const h of hits) {
    if (!(h.record.vehicle_ids ?? []).includes(vehicleId)) continue;
    const seen = first.get(h.record.event_id);
    if (seen) seen.copies++;
    else first.set(h.record.event_id, { record: h.record, copies: 1 });
  }
  for (const { record, copies } of first.values()) {
    out.push({
      kind: 'timeline',
      at: record.received_at,
      what: 'delivery',
      detail: `${record.event_type} (${record.mode})${copies > 1 ? `, ${copies} copies` : ''}`,
      eventId: record.event_id,
    });
  }
  for (const { finding: f } of [...quarantined, ...waiting]) {
    if (!f.vehicleIds.includes(vehicleId) || first.has(f.eventId)) continue;
    out.push({
      kind: 'timeline',
      at: f.receivedAt,
      what: 'delivery',
      detail: `${f.eventType}, ${f.kind === 'quarantine' ? (f.recovered ? 'quarantined, recovered' : 'quarantined: not in the lake') : `waiting in ${f.where}`}`,
      eventId: f.eventId,
    });
  }
  const ordered = [...first.values()].map((x) => x.record).sort((a, b) => a.received_at.localeCompare(b.received_at));
  // Signals that changed value between one VEHICLE_STATE delivery and the next.
  let previous: Map<string, string> | undefined;
  for (const r of ordered.filter((x) => x.event_type === 'VEHICLE_STATE')) {
    const signals = new Map<string, string>();
    const names = new Map<string, string>();
    const list = obj(payloadOf(r)?.data)?.signals;
    for (const s of Array.isArray(list) ? list.map(obj) : []) {
      if (typeof s?.code !== 'string') continue;
      signals.set(s.code, signalValue(JSON.stringify(s.body ?? null)));
      names.set(s.code, typeof s.name === 'string' ? s.name : s.code);
    }
    if (previous) {
      for (const [code, value] of signals) {
        const was = previous.get(code);
        if (was !== undefined && was !== value)
          out.push({
            kind: 'timeline',
            at: r.received_at,
            what: 'signal changed',
            detail: `${names.get(code)}: ${was} → ${value}`,
            eventId: r.event_id,
          });
      }
      for (const [code, value] of previous) if (!signals.has(code)) signals.set(code, value);
    }
    previous = signals;
  }
  // Errors: opened by ERROR, resolved by RESOLVED, per type and code.
  const open = new Map<string, string>();
  for (const r of ordered.filter((x) => x.event_type === 'VEHICLE_ERROR')) {
    const errors = obj(payloadOf(r)?.data)?.errors;
    for (const e of Array.isArray(errors) ? errors.map(obj) : []) {
      if (!e) continue;
      const which = `${String(e.type ?? '?')}/${String(e.code ?? '?')}`;
      const resolution = obj(e.resolution)?.type;
      if (e.state === 'ERROR') {
        const since = open.get(which);
        if (since === undefined) open.set(which, r.received_at);
        out.push({
          kind: 'timeline',
          at: r.received_at,
          what: since === undefined ? 'error opened' : 'error again',
          detail: `${which}${typeof e.description === 'string' ? `: ${e.description}` : ''}${typeof resolution === 'string' ? ` (resolution: ${resolution})` : ''}${since ? ` (open since ${since})` : ''}`,
          eventId: r.event_id,
        });
      } else if (e.state === 'RESOLVED') {
        const since = open.get(which);
        open.delete(which);
        out.push({
          kind: 'timeline',
          at: r.received_at,
          what: 'error resolved',
          detail: `${which}${since ? ` (open since ${since})` : ''}`,
          eventId: r.event_id,
        });
      }
    }
  }
  return out;
}

/**
 * Subscription changes of the vehicle in the reports: the subscription workflow's (`runs/<run>/report.json`:
 * action, succeeded ids, failures) and reconcile's (`reconcile/runs/<run>/report.json`: every operation's
 * outcome). A report carries no time of its own: its write time stands for the run's end.
 */
export function subscriptionTimeline(
  vehicleId: string,
  reports: readonly { key: string; at: Date; json: unknown }[],
): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const { key, at, json } of reports) {
    const r = obj(json);
    if (!r) continue;
    const run = key.split('/').at(-2) ?? key;
    const entry = (what: TimelineWhat, detail: string) =>
      out.push({ kind: 'timeline', at: at.toISOString(), what, detail });
    if (key.startsWith('reconcile/')) {
      if (r.dryRun === true) continue;
      for (const o of Array.isArray(r.outcomes) ? r.outcomes.map(obj) : []) {
        const op = obj(o?.op);
        if (op?.vehicleId !== vehicleId) continue;
        const what: TimelineWhat | undefined =
          o?.result === 'failed'
            ? 'subscription failed'
            : o?.result === 'kept'
              ? 'subscription kept'
              : op.op === 'delete'
                ? 'unsubscribed'
                : 'subscribed';
        const status = o?.result === 'failed' ? ` ${String(o.status ?? '')} ${String(o.type ?? '')}`.trimEnd() : '';
        entry(what, `reconcile run ${run}: ${op.op} ${String(o?.result)}${status}`);
      }
    } else {
      const action = r.action === 'unsubscribe' ? 'unsubscribe' : 'subscribe';
      if (Array.isArray(r.succeeded) && r.succeeded.includes(vehicleId))
        entry(action === 'unsubscribe' ? 'unsubscribed' : 'subscribed', `workflow run ${run}: ${action} succeeded`);
      for (const f of Array.isArray(r.failed) ? r.failed.map(obj) : []) {
        if (f?.vehicleId !== vehicleId) continue;
        entry(
          'subscription failed',
          `workflow run ${run}: ${action} failed ${String(f.status ?? '')} ${String(f.type ?? '')}`.trimEnd(),
        );
      }
    }
  }
  return out;
}
