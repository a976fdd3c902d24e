/**
 * The inspector's request log: every request the local receiver answered, with the exact body and our
 * answer, kept on disk in `<lake>/.inspector/requests.ndjson` so that a restart keeps it. Bounded: the
 * newest {@link DEFAULT_KEEP} entries (and at most {@link DEFAULT_MAX_BYTES} of them), the file rewritten
 * atomically once it holds a fifth more than that, so appends stay cheap.
 *
 * What is never written: the management token (the receiver never sees it in a request; a VERIFY answer is
 * its HMAC of the challenge, which is fine to keep) and the `SC-Signature` value, masked here before the
 * entry exists. The original signature is kept in memory only, so that Replay can re-send the exact request
 * while this process runs (see {@link RequestLog.signatureOf}); after a restart a replay is re-signed.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

export const DEFAULT_KEEP = 10_000;
/** Bodies are at most 128 KiB each; this keeps a flood of large ones from filling the disk or memory. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const MASK = '•••••• (hidden)';
/** Headers whose values are credentials: shown masked, never stored. */
const SECRET_HEADERS = new Set(['sc-signature', 'authorization', 'proxy-authorization', 'cookie', 'x-inspector-key']);

export type Verdict =
  | 'stored'
  | 'rejected'
  | 'quarantined'
  | 'verify-answered'
  | 'verify-refused'
  | 'failed'
  | 'not-found'
  | 'method-not-allowed';

/** One answered request as the API and the file hold it. */
export interface InspectedRequest {
  readonly id: string;
  readonly at: string;
  readonly verdict: Verdict;
  /** The receiver's reason for anything but stored and answered (its `error` answer). */
  readonly reason: string | null;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly eventType: string | null;
  readonly eventId: string | null;
  readonly vehicleId: string | null;
  readonly mode: string | null;
  readonly ms: number;
  /** Request headers, credentials masked. */
  readonly headers: Record<string, string>;
  /** The body exactly as received: UTF-8 text, or base64 when the bytes are not UTF-8. */
  readonly body: string;
  readonly bodyEncoding: 'utf8' | 'base64';
  readonly bodyBytes: number;
  readonly response: { readonly status: number; readonly body: unknown };
  /** The id of the entry this request replayed, when the inspector sent it. */
  readonly replayOf: string | null;
}

/** The list view of an entry: no headers, the body cut to {@link PREVIEW_CHARS}. */
export type RequestSummary = Omit<InspectedRequest, 'headers' | 'body' | 'response'> & { readonly preview: string };
export const PREVIEW_CHARS = 160;

export type NewRequest = Omit<InspectedRequest, 'id' | 'headers' | 'body' | 'bodyEncoding' | 'bodyBytes'> & {
  readonly headers: Record<string, string>;
  readonly bodyRaw: Uint8Array;
};

export function summarize(e: InspectedRequest): RequestSummary {
  const { headers: _h, body, response: _r, ...rest } = e;
  return { ...rest, preview: e.bodyEncoding === 'utf8' ? body.slice(0, PREVIEW_CHARS) : '(binary body)' };
}

/** Headers with every credential's value replaced by {@link MASK}. */
export function maskHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = SECRET_HEADERS.has(k.toLowerCase()) ? MASK : v;
  return out;
}

function bodyOf(raw: Uint8Array): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  const bytes = Buffer.from(raw);
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes)
    ? { body: text, bodyEncoding: 'utf8' }
    : { body: bytes.toString('base64'), bodyEncoding: 'base64' };
}

/** The exact body bytes of an entry. */
export function bodyBytesOf(e: InspectedRequest): Buffer {
  return Buffer.from(e.body, e.bodyEncoding === 'utf8' ? 'utf8' : 'base64');
}

export interface RequestLogOptions {
  readonly lakeDir: string;
  /** @default 10,000 */
  readonly keep?: number;
  /** @default 64 MiB */
  readonly maxBytes?: number;
  /** Told when the file cannot be written; receiving goes on regardless. */
  readonly onError?: (err: unknown) => void;
}

function stampOf(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export class RequestLog {
  readonly file: string;
  private readonly keep: number;
  private readonly maxBytes: number;
  private entries: { entry: InspectedRequest; line: string }[] = [];
  private bytes = 0;
  private readonly signatures = new Map<string, string>();
  private readonly events = new EventEmitter();
  private writing: Promise<void> = Promise.resolve();
  private seq = 0;
  private readonly prefix = Date.now().toString(36);
  /**
   * The file as this process last wrote or read it (inode, size, modification time): anything else means
   * someone rewrote it. The inode alone is not enough: a rewrite's new file may reuse the old inode.
   */
  private stamp: string | undefined;
  /** Entries added to memory whose line is not on disk yet (their append is queued). */
  private readonly unwritten = new Set<string>();

  private constructor(private readonly options: RequestLogOptions) {
    this.file = path.join(options.lakeDir, '.inspector', 'requests.ndjson');
    this.keep = options.keep ?? DEFAULT_KEEP;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.events.setMaxListeners(0);
  }

  /** Opens the log, reading back what an earlier run kept (lines that do not parse are dropped). */
  static async open(options: RequestLogOptions): Promise<RequestLog> {
    const log = new RequestLog(options);
    const text = await readFile(log.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    log.stamp = stampOf(log.file);
    log.load(text);
    if (log.entries.length > log.keep || log.bytes > log.maxBytes) log.trim();
    return log;
  }

  private load(text: string) {
    this.entries = [];
    this.bytes = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const entry = JSON.parse(line) as InspectedRequest;
        if (typeof entry.id === 'string' && typeof entry.verdict === 'string') this.push(entry, line);
      } catch {
        // a line cut by a crash: nothing to show
      }
    }
  }

  /**
   * `erase` and `expire` rewrite the file (a new inode) while the receiver runs: the file is then the truth,
   * and what this process holds in memory is reloaded from it, so an erased or expired entry is neither
   * shown again nor written back by the next trim. Lines this process appended since went to the new file.
   */
  private syncFromDisk() {
    const stamp = stampOf(this.file);
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      // gone: nothing is kept
    }
    // What this process added but has not written yet is not in the file: keep it, in order, after the rest.
    const waiting = this.entries.filter((e) => this.unwritten.has(e.entry.id));
    this.load(text);
    const onDisk = new Set(this.entries.map((e) => e.entry.id));
    for (const e of waiting) if (!onDisk.has(e.entry.id)) this.push(e.entry, e.line);
    const ids = new Set(this.entries.map((e) => e.entry.id));
    for (const id of [...this.signatures.keys()]) if (!ids.has(id)) this.signatures.delete(id);
  }

  /** Records an answered request; `signature` (the raw SC-Signature) stays in memory for Replay only. */
  add(request: NewRequest, signature?: string): InspectedRequest {
    const { bodyRaw, headers, ...rest } = request;
    const entry: InspectedRequest = {
      ...rest,
      id: `${this.prefix}-${(++this.seq).toString(36)}`,
      headers: maskHeaders(headers),
      ...bodyOf(bodyRaw),
      bodyBytes: bodyRaw.length,
    };
    const line = JSON.stringify(entry);
    this.syncFromDisk();
    this.push(entry, line);
    if (signature !== undefined) this.signatures.set(entry.id, signature);
    if (this.entries.length > this.keep * 1.2 || this.bytes > this.maxBytes) this.trim();
    else {
      this.unwritten.add(entry.id);
      this.write(async () => {
        // Read back with the read that came before: our own append is not someone else's rewrite.
        const before = stampOf(this.file);
        try {
          await appendFile(this.file, `${line}\n`, { mode: 0o600 });
        } finally {
          this.unwritten.delete(entry.id);
        }
        if (before === this.stamp) this.stamp = stampOf(this.file);
      });
    }
    this.events.emit('entry', entry);
    return entry;
  }

  /** Newest first. */
  list(): InspectedRequest[] {
    this.syncFromDisk();
    return this.entries.map((e) => e.entry).reverse();
  }

  get(id: string): InspectedRequest | undefined {
    this.syncFromDisk();
    return this.entries.find((e) => e.entry.id === id)?.entry;
  }

  /** The original SC-Signature of an entry recorded by this process, for Replay; never shown. */
  signatureOf(id: string): string | undefined {
    return this.signatures.get(id);
  }

  /** Calls `listener` for each entry added from now on; returns the unsubscribe function. */
  subscribe(listener: (entry: InspectedRequest) => void): () => void {
    this.events.on('entry', listener);
    return () => this.events.off('entry', listener);
  }

  /** Resolves once everything added so far is on disk. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private push(entry: InspectedRequest, line: string) {
    this.entries.push({ entry, line });
    this.bytes += line.length + 1;
  }

  /** Keeps the newest `keep` entries (fewer if they exceed the byte bound) and rewrites the file atomically. */
  private trim() {
    this.syncFromDisk();
    let drop = Math.max(0, this.entries.length - this.keep);
    let bytes = this.bytes;
    for (let i = 0; i < drop; i++) bytes -= this.entries[i].line.length + 1;
    while (drop < this.entries.length && bytes > this.maxBytes * 0.8) bytes -= this.entries[drop++].line.length + 1;
    for (const { entry } of this.entries.slice(0, drop)) this.signatures.delete(entry.id);
    this.entries = this.entries.slice(drop);
    this.bytes = bytes;
    const text = this.entries.map((e) => `${e.line}\n`).join('');
    const tmp = `${this.file}.${process.pid}.tmp`;
    this.write(async () => {
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.file);
      this.stamp = stampOf(this.file);
    });
  }

  private write(step: () => Promise<void>) {
    this.writing = this.writing
      .then(async () => {
        await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
        await step();
      })
      .catch((err) => this.options.onError?.(err));
  }
}
