/**
 * The local data lake: the deployed bucket's key layout and record format, as files under a directory.
 * Objects are written to a temporary name and renamed, so a reader never sees half an object.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { LakeRecord } from '../lambda/contract';
import { decodeNdjsonGzip } from '../lambda/core/lake';

export async function putLakeObject(root: string, key: string, body: Buffer): Promise<void> {
  const file = path.join(root, ...key.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeFile(tmp, body, { flush: true });
  await rename(tmp, file);
}

/** Every `.ndjson.gz` object under the lake's raw zone, as key → records. */
export async function readLake(root: string, rawPrefix = 'raw'): Promise<Map<string, LakeRecord[]>> {
  const objects = new Map<string, LakeRecord[]>();
  const base = path.join(root, rawPrefix);
  const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.ndjson.gz')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const key = path.relative(root, file).split(path.sep).join('/');
    objects.set(key, decodeNdjsonGzip(await readFile(file)));
  }
  return objects;
}
