/**
 * The bytes of a delivery as the receiver got them, for `send-event --from-lake` and `--from-file`: found
 * in the local lake's raw zone by eventId, or read from a file. The lake keeps the body exactly (`body`
 * when it is UTF-8, else `body_base64`) but none of the request's headers, so a replay is the body and
 * nothing else.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DEFAULT_RAW_PREFIX, type LakeRecord, MAX_BODY_BYTES } from '../lambda/contract';
import { bodyHashId, parseBody, readEnvelope } from '../lambda/core/envelope';
import { keyTime } from '../lambda/core/lake';
import { getLakeObject, listLakeKeys } from './file-lake';

/** A body to send again, and where it came from (one line for a person). */
export interface StoredPayload {
  readonly body: Buffer;
  readonly eventId?: string;
  readonly from: string;
}

/** The named payload is not there (or cannot be read): one line, exit 1. */
export class PayloadNotFound extends Error {}

/**
 * Files larger than this are refused before they are read: well past what any receiver accepts
 * ({@link MAX_BODY_BYTES}, so a 413 can still be tested), far below what would hurt to hold in memory.
 */
export const MAX_FILE_BYTES = 8 * MAX_BODY_BYTES;

/** The exact body bytes a lake record keeps. */
export function rawBodyOf(record: LakeRecord): Buffer {
  return record.body_base64 !== null
    ? Buffer.from(record.body_base64, 'base64')
    : Buffer.from(record.body ?? '', 'utf8');
}

/**
 * The first received copy of `eventId` in the raw zone (Smartcar retries a delivery it saw no 2xx for,
 * and a receiver restarted within the dedup window may store a copy twice). A bare 64-digit hex is also
 * looked for as the `sha256:` id of a legacy body. Objects are read in order of their partition hour, and
 * the scan stops after the hour of the first copy: a record's partition is its receive time, so no later
 * hour can hold an earlier copy.
 */
export async function findInLake(
  lakeDir: string,
  eventId: string,
  rawPrefix = DEFAULT_RAW_PREFIX,
): Promise<StoredPayload> {
  const ids = /^[0-9a-f]{64}$/i.test(eventId) ? [eventId, `sha256:${eventId.toLowerCase()}`] : [eventId];
  // Records are JSON.stringify output, in which this text can only be the event_id column itself (inside a
  // string value its quotes would be escaped): a byte search skips the objects and lines without it.
  const needles = ids.map((id) => `"event_id":${JSON.stringify(id)}`);
  const hourOf = (key: string) => {
    const t = keyTime(key);
    return t ? `${t.dt}T${t.hour}` : ''; // keys outside the layout first: they cannot be skipped
  };
  const keys = (await listLakeKeys(lakeDir, rawPrefix))
    .filter((k) => k.endsWith('.ndjson.gz'))
    .map((key) => ({ key, hour: hourOf(key) }))
    .sort((a, b) => (a.hour === b.hour ? (a.key < b.key ? -1 : 1) : a.hour < b.hour ? -1 : 1));

  let first: { record: LakeRecord; key: string; line: number } | undefined;
  let copies = 0;
  const unreadable: string[] = [];
  for (const { key, hour } of keys) {
    // received_at is ISO UTC, so its first 13 characters are the partition hour written like `hour`.
    if (first && hour !== '' && hour > first.record.received_at.slice(0, 13)) break;
    let text: Buffer;
    try {
      text = gunzipSync(await getLakeObject(lakeDir, key));
    } catch {
      unreadable.push(key);
      continue;
    }
    if (!needles.some((n) => text.includes(n, 0, 'utf8'))) continue;
    const lines = text.toString('utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!needles.some((n) => lines[i].includes(n))) continue;
      let record: LakeRecord;
      try {
        record = JSON.parse(lines[i]) as LakeRecord;
      } catch {
        unreadable.push(`${key} line ${i + 1}`);
        continue;
      }
      if (!ids.includes(record.event_id)) continue;
      copies++;
      if (!first || record.received_at < first.record.received_at) first = { record, key, line: i + 1 };
    }
  }
  const where = path.join(lakeDir, rawPrefix);
  const skipped = unreadable.length ? `; ${unreadable.length} unreadable, e.g. ${unreadable[0]}` : '';
  if (!first) {
    throw new PayloadNotFound(
      keys.length === 0
        ? `no eventId ${eventId} in ${where}: it holds no lake objects (is --lake-dir or LOCAL_LAKE_DIR the receiver's lake?)`
        : `no eventId ${eventId} in ${where} (${keys.length} objects searched${skipped}); the running receiver writes what it accepted when its batch closes`,
    );
  }
  const { record, key, line } = first;
  const body = rawBodyOf(record);
  // A legacy id is the hash of the body: a record whose bytes do not hash to it is damaged, not a replay.
  if (record.event_id.startsWith('sha256:') && bodyHashId(body) !== record.event_id)
    throw new PayloadNotFound(
      `${key} line ${line}: the stored body does not hash to ${record.event_id}; not sending it`,
    );
  const more = copies > 1 ? `; the first received of ${copies} copies in its hour` : '';
  return {
    body,
    eventId: record.event_id,
    from: `${path.join(lakeDir, ...key.split('/'))} line ${line} (${record.event_type}, received ${record.received_at}, ${body.length} bytes${more}${skipped})`,
  };
}

/** A file's bytes, exactly; refused when it is missing or larger than {@link MAX_FILE_BYTES}. */
export async function readPayloadFile(file: string): Promise<StoredPayload> {
  const size = await stat(file).then(
    (s) => (s.isFile() ? s.size : -1),
    (err: NodeJS.ErrnoException) => {
      throw new PayloadNotFound(`cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    },
  );
  if (size < 0) throw new PayloadNotFound(`${file} is not a file`);
  if (size > MAX_FILE_BYTES)
    throw new PayloadNotFound(`${file} is ${size} bytes; receivers accept at most ${MAX_BODY_BYTES}: not sending it`);
  const body = await readFile(file);
  const parsed = parseBody(body);
  const eventId = parsed.ok ? readEnvelope(parsed.json, body).fields.eventId : undefined;
  return { body, eventId, from: `${file} (${body.length} bytes${parsed.ok ? '' : `, ${parsed.reason}`})` };
}
