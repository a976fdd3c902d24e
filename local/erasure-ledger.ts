/**
 * The local lake's erasure ledger and receipts (`<lake>/erasures/`), apart from the erase command so the
 * local receiver can read the ledger without loading what erasing needs.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  decodeLedger,
  type LedgerStore,
  type PendingFindings,
  type PendingStore,
  type ReceiptStore,
} from '../lambda/core/erasure';

export const LEDGER_FILE = path.join('erasures', 'ledger.json');
export const RECEIPTS_DIR = path.join('erasures', 'receipts');

/** Writes `text` beside `file` and renames it over: a reader sees the old file or the new one, never half. */
export async function replaceFile(file: string, text: string | Buffer, mode?: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, text, { flush: true, ...(mode === undefined ? {} : { mode }) });
  await rename(tmp, file);
}

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The local lake's erasure ledger. A ledger that is there but unreadable stops whoever reads it. */
export function localLedgerStore(lakeDir: string): LedgerStore {
  const file = path.join(lakeDir, LEDGER_FILE);
  return {
    async read() {
      const text = await readIfExists(file);
      return text === undefined ? undefined : decodeLedger(text);
    },
    write: (ledger) => replaceFile(file, `${JSON.stringify(ledger, null, 2)}\n`),
    describe: () => file,
  };
}

/** Receipts as `<lake>/erasures/receipts/<erasureId>.json`; returns the file's path. */
export function localReceiptStore(lakeDir: string): ReceiptStore {
  return {
    async put(erasureId, receipt) {
      const file = path.join(lakeDir, RECEIPTS_DIR, `${erasureId}.json`);
      await replaceFile(file, `${JSON.stringify({ ...receipt, receiptKey: file }, null, 2)}\n`);
      return file;
    },
  };
}

/** What a running erasure found, as `<lake>/erasures/pending/<ledger hash>.json`, until it completes. */
export function localPendingStore(lakeDir: string): PendingStore {
  const file = (hash: string) => path.join(lakeDir, 'erasures', 'pending', `${hash}.json`);
  return {
    async read(hash) {
      const text = await readIfExists(file(hash));
      return text === undefined ? undefined : (JSON.parse(text) as PendingFindings);
    },
    write: (hash, findings) => replaceFile(file(hash), JSON.stringify(findings), 0o600),
    delete: (hash) => rm(file(hash), { force: true }),
  };
}
