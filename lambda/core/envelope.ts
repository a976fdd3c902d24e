/**
 * Tolerant parsing of Smartcar webhook bodies of every generation (legacy 2.0 and current 3.0/4.0): tells
 * a VERIFY challenge from a data delivery and extracts the columns the lake keeps. It never throws and
 * never rejects a well-formed JSON object for a missing or oddly shaped field: an authentic payload is
 * always kept, with nulls where it says nothing.
 */
import { createHash } from 'node:crypto';
import { toWellFormed } from './log-safe';

type Json = Record<string, unknown>;

export type ParsedBody = { readonly ok: true; readonly json: Json } | { readonly ok: false; readonly reason: string };

export interface EnvelopeFields {
  readonly eventId: string;
  readonly eventType: string;
  readonly mode: string;
  readonly payloadVersion: string | null;
  readonly webhookId: string | null;
  readonly webhookName: string | null;
  readonly deliveryId: string | null;
  readonly vehicleIds: string[];
  readonly userId: string | null;
  readonly deliveredAt: string | null;
}

export type Envelope =
  | { readonly kind: 'verify'; readonly challenge: string | null; readonly fields: EnvelopeFields }
  | { readonly kind: 'event'; readonly fields: EnvelopeFields };

/** The event type recorded when a signed body names none. */
export const UNKNOWN_EVENT_TYPE = 'UNKNOWN';
/** The mode recorded when a body names none, or one that is not a plain word. */
export const UNKNOWN_MODE = 'unknown';

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Parses raw bytes as a JSON object. Arrays, scalars, empty and invalid bodies are reported, not thrown. */
export function parseBody(raw: Uint8Array): ParsedBody {
  if (raw.length === 0) return { ok: false, reason: 'empty body' };
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(raw));
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
  if (!isObject(value)) return { ok: false, reason: 'body is not a JSON object' };
  return { ok: true, json: value };
}

/** Classifies a parsed body and extracts its columns. `raw` is needed for the legacy body-hash id. */
export function readEnvelope(json: Json, raw: Uint8Array): Envelope {
  const fields = extractFields(json, raw);
  const eventType = fields.eventType.toLowerCase();
  if (eventType === 'verify') {
    const data = obj(json.data);
    const payload = obj(json.payload);
    const challenge = str(data?.challenge) ?? str(payload?.challenge);
    return { kind: 'verify', challenge, fields };
  }
  return { kind: 'event', fields };
}

/**
 * The body as JSON text that any strict reader accepts (DuckDB, Athena), or null when the raw text
 * already is that. Three things in an authentic, parseable body make strict readers fail a whole query:
 * a UTF-8 byte order mark, bytes that are not UTF-8, and `\uD800`-style escapes of lone surrogates.
 * The fix works on the text, not on a parsed tree (no recursion, however deep the JSON): the mark is
 * dropped, bad bytes become U+FFFD, and each lone surrogate escape becomes `\uFFFD`; everything else,
 * formatting included, stays as sent. The raw bytes themselves are kept elsewhere, untouched.
 */
export function viewSafeJson(raw: Uint8Array): string | null {
  const exact = Buffer.from(raw);
  let text = exact.toString('utf8');
  let changed = !Buffer.from(text, 'utf8').equals(exact);
  if (text.charCodeAt(0) === 0xfeff) {
    text = text.slice(1);
    changed = true;
  }
  const fixed = text.replace(ESCAPE, (sequence: string, hex: string | undefined, offset: number, whole: string) => {
    if (hex === undefined) return sequence;
    const unit = Number.parseInt(hex, 16);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(whole.slice(offset + 6, offset + 12));
      return next ? sequence : '\\ufffd';
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      const previous = /\\u([dD][89abAB][0-9a-fA-F]{2})$/.exec(whole.slice(Math.max(0, offset - 6), offset));
      return previous && !isEscapedBackslashAt(whole, offset - 6) ? sequence : '\\ufffd';
    }
    return sequence;
  });
  if (fixed !== text) changed = true;
  return changed ? fixed : null;
}

/** One JSON escape sequence: `\uXXXX` (captured) or any other `\x`. A left-to-right scan keeps `\\` whole. */
const ESCAPE = /\\(?:u([0-9a-fA-F]{4})|[\s\S])/g;

/** Whether the backslash at `index` is itself the second half of a `\\` escape. */
function isEscapedBackslashAt(text: string, index: number): boolean {
  let backslashes = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 1;
}

/** One item of a delivery's `triggers`, whatever shape Smartcar sent it in. */
export interface Trigger {
  /** `SIGNAL_UPDATED`, `FIRST_DELIVERY`, or whatever other type a payload names. */
  readonly type: string;
  /** The signal's code (e.g. `tractionbattery-stateofcharge`); null for a first delivery. */
  readonly code: string | null;
}

/**
 * What prompted a delivery: its `triggers` (top level, or under `data`, as Smartcar's pages disagree),
 * each item normalized from the documented shapes `{type, signal: {code, name, group}}`,
 * `{code, name, group}` (a signal change), `{code: "FIRST_DELIVERY"}` and `{type, signal: "Group.Name"}`
 * (code `group-name`, which is how Smartcar forms codes). Null when the payload has no triggers array.
 * lib/queries.ts `triggersJson` computes the same in SQL for the lake's `triggers` column.
 */
export function normalizeTriggers(json: Json): Trigger[] | null {
  const list = Array.isArray(json.triggers)
    ? json.triggers
    : Array.isArray(obj(json.data)?.triggers)
      ? (obj(json.data)?.triggers as unknown[])
      : null;
  if (!list) return null;
  return list.map((raw) => {
    const item = obj(raw);
    const code = scalarText(item?.code);
    const type = scalarText(item?.type) ?? (code === 'FIRST_DELIVERY' ? 'FIRST_DELIVERY' : 'SIGNAL_UPDATED');
    if (type === 'FIRST_DELIVERY') return { type, code: null };
    const signal = item?.signal;
    const named = scalarText(signal);
    return {
      type,
      code: scalarText(obj(signal)?.code) ?? (named === null ? null : named.replaceAll('.', '-').toLowerCase()) ?? code,
    };
  });
}

/** A JSON scalar as text, as the lake's SQL reads it (json_extract_scalar): null for objects, arrays, null. */
function scalarText(v: unknown): string | null {
  if (typeof v === 'string') return toWellFormed(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** `sha256:<hex>` of the body: the identity of a legacy payload, stable across Smartcar's retries. */
export function bodyHashId(raw: Uint8Array): string {
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

function extractFields(json: Json, raw: Uint8Array): EnvelopeFields {
  const meta = obj(json.meta);
  const data = obj(json.data);
  const payload = obj(json.payload);
  return {
    eventId: str(json.eventId) ?? bodyHashId(raw),
    eventType: str(json.eventType) ?? str(json.eventName) ?? UNKNOWN_EVENT_TYPE,
    mode: normaliseMode(meta?.mode ?? json.mode),
    payloadVersion: scalar(meta?.version) ?? scalar(json.version),
    webhookId: str(meta?.webhookId) ?? str(json.webhookId),
    webhookName: str(meta?.webhookName) ?? str(json.webhookName),
    deliveryId: str(meta?.deliveryId),
    vehicleIds: vehicleIdsOf(json, data, payload),
    userId: str(obj(data?.user)?.id),
    deliveredAt: toIsoTime(meta?.deliveredAt),
  };
}

function vehicleIdsOf(json: Json, data: Json | null, payload: Json | null): string[] {
  const ids = new Set<string>();
  const add = (v: unknown) => {
    const s = str(v);
    if (s) ids.add(s);
  };
  add(json.vehicleId);
  add(obj(data?.vehicle)?.id);
  add(data?.vehicleId);
  add(payload?.vehicleId);
  if (Array.isArray(payload?.vehicles)) {
    for (const v of payload.vehicles) add(obj(v)?.vehicleId);
  }
  return [...ids];
}

function normaliseMode(value: unknown): string {
  const s = str(value)?.toLowerCase();
  return s && /^[a-z0-9_-]{1,32}$/.test(s) ? s : UNKNOWN_MODE;
}

/**
 * `meta.deliveredAt` arrives as epoch milliseconds or an ISO string. Numbers below 1e11 can only be
 * seconds (1e11 ms is 1973), so they are read as seconds.
 */
export function toIsoTime(value: unknown): string | null {
  let ms: number;
  if (typeof value === 'number') {
    ms = toMs(value);
  } else if (typeof value === 'string' && value.trim() !== '') {
    ms = /^\d+$/.test(value.trim()) ? toMs(Number(value)) : Date.parse(value);
  } else {
    return null;
  }
  if (!Number.isFinite(ms)) return null;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function toMs(n: number): number {
  return Math.abs(n) < 1e11 ? n * 1000 : n;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown): Json | null {
  return isObject(v) ? v : null;
}

/** A non-empty string, with lone surrogates replaced: the columns must be writable as valid UTF-8. */
function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? toWellFormed(v) : null;
}

function scalar(v: unknown): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return str(v);
}
