/**
 * The raw zone's layout and record format: Hive-style partitions for Athena
 * (`raw/event_type=…/mode=…/dt=YYYY-MM-DD/hour=HH/`), gzip NDJSON objects, one per partition per batch,
 * each record holding the exact raw body next to the extracted columns.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DeliveryMessage, LakeRecord } from '../contract';
import { parseBody, readEnvelope, UNKNOWN_EVENT_TYPE, UNKNOWN_MODE, viewSafeJson } from './envelope';

export interface Partition {
  readonly eventType: string;
  readonly mode: string;
  /** YYYY-MM-DD, UTC, of the receive time. */
  readonly dt: string;
  /** 00–23, UTC, of the receive time. */
  readonly hour: string;
}

/** Builds the lake record for one queued delivery. Throws only when the message itself is corrupt. */
export function toLakeRecord(message: DeliveryMessage, ingestedAt: Date): LakeRecord {
  if (typeof message?.bodyBase64 !== 'string' || typeof message.receivedAt !== 'string') {
    throw new Error('queue message lacks bodyBase64 or receivedAt');
  }
  const receivedAt = new Date(message.receivedAt);
  if (Number.isNaN(receivedAt.getTime())) throw new Error('queue message has an invalid receivedAt');
  const raw = Buffer.from(message.bodyBase64, 'base64');
  const text = raw.toString('utf8');
  const exactUtf8 = Buffer.from(text, 'utf8').equals(raw);
  const parsed = parseBody(raw);
  // The receiver only queues JSON objects, so a failed parse means someone queued by hand: keep it anyway.
  const fields = parsed.ok ? readEnvelope(parsed.json, raw).fields : undefined;
  return {
    event_id: fields?.eventId ?? `sha256:${createHash('sha256').update(raw).digest('hex')}`,
    event_type: fields?.eventType ?? UNKNOWN_EVENT_TYPE,
    mode: fields?.mode ?? UNKNOWN_MODE,
    payload_version: fields?.payloadVersion ?? null,
    webhook_id: fields?.webhookId ?? null,
    webhook_name: fields?.webhookName ?? null,
    delivery_id: fields?.deliveryId ?? null,
    vehicle_ids: fields?.vehicleIds ?? [],
    user_id: fields?.userId ?? null,
    delivered_at: fields?.deliveredAt ?? null,
    received_at: receivedAt.toISOString(),
    ingested_at: ingestedAt.toISOString(),
    request_id: message.requestId ?? null,
    body: exactUtf8 ? text : null,
    body_base64: exactUtf8 ? null : message.bodyBase64,
    body_json: parsed.ok ? viewSafeJson(raw) : null,
  };
}

export function partitionOf(record: LakeRecord): Partition {
  const iso = record.received_at; // always toISOString() output: YYYY-MM-DDTHH:…Z
  return {
    eventType: keySafe(record.event_type, UNKNOWN_EVENT_TYPE),
    mode: keySafe(record.mode, UNKNOWN_MODE),
    dt: iso.slice(0, 10),
    hour: iso.slice(11, 13),
  };
}

/** `<rawPrefix>/event_type=…/mode=…/dt=…/hour=…/` */
export function partitionPrefix(rawPrefix: string, p: Partition): string {
  const root = rawPrefix.replace(/^\/+|\/+$/g, '');
  const path = `event_type=${p.eventType}/mode=${p.mode}/dt=${p.dt}/hour=${p.hour}/`;
  return root ? `${root}/${path}` : path;
}

/**
 * The object key for one group of records. The name derives from the ids of the queue messages in it,
 * so a retried invocation that writes the same group overwrites its own object instead of adding a copy.
 */
export function objectKey(prefix: string, records: readonly LakeRecord[], messageIds: readonly string[]) {
  const first = records.map((r) => r.received_at).sort()[0] ?? '';
  const stamp = first.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const digest = createHash('sha256')
    .update([...messageIds].sort().join('\n'))
    .digest('hex');
  return `${prefix}${stamp}-${digest.slice(0, 20)}.ndjson.gz`;
}

/** One JSON record per line, gzip-compressed. */
export function encodeNdjsonGzip(records: readonly LakeRecord[]): Buffer {
  return gzipSync(`${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
}

/** Groups items by their partition prefix, keeping arrival order inside each group. */
export function groupByPartition<T extends { record: LakeRecord }>(
  rawPrefix: string,
  items: readonly T[],
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const prefix = partitionPrefix(rawPrefix, partitionOf(item.record));
    const group = groups.get(prefix);
    if (group) group.push(item);
    else groups.set(prefix, [item]);
  }
  return groups;
}

/** Partition values become key segments: keep them to characters that need no escaping anywhere. */
function keySafe(value: string, fallback: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  return cleaned === '' || /^\.+$/.test(cleaned) ? fallback : cleaned;
}

/**
 * Re-derives records with the current code from what the lake kept (the raw body, receive time and
 * request id), for replays after an ingest fix. Everything else in the record is recomputed.
 */
export function rederive(record: LakeRecord, now: Date): LakeRecord {
  const body =
    record.body_base64 !== null ? Buffer.from(record.body_base64, 'base64') : Buffer.from(record.body ?? '', 'utf8');
  return toLakeRecord(
    {
      v: 1,
      bodyBase64: body.toString('base64'),
      receivedAt: record.received_at,
      requestId: record.request_id ?? undefined,
    },
    now,
  );
}

/** Decodes one gzip NDJSON lake object. */
export function decodeNdjsonGzip(bytes: Uint8Array): LakeRecord[] {
  return gunzipSync(bytes)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LakeRecord);
}

/** The dt and hour partition values of a raw-zone key, or undefined for keys outside the layout. */
export function keyTime(key: string): { dt: string; hour: string } | undefined {
  const m = /\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(key);
  return m ? { dt: m[1], hour: m[2] } : undefined;
}
