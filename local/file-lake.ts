/**
 * The local data lake: the deployed bucket's key layout and record format, as files under a directory.
 * Objects are written to a temporary name and renamed, so a reader never sees half an object.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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

/** Keys of the finished objects under `prefix` (in-progress `.tmp` files excluded); none when it is absent. */
export async function listLakeKeys(root: string, prefix: string): Promise<string[]> {
  const entries = await readdir(path.join(root, prefix), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

export const getLakeObject = (root: string, key: string): Promise<Buffer> =>
  readFile(path.join(root, ...key.split('/')));
export const deleteLakeObject = (root: string, key: string): Promise<void> =>
  rm(path.join(root, ...key.split('/')), { force: true });

/** Every `.ndjson.gz` object under the lake's raw zone, as key → records. */
export async function readLake(root: string, rawPrefix = 'raw'): Promise<Map<string, LakeRecord[]>> {
  const objects = new Map<string, LakeRecord[]>();
  for (const key of await listLakeKeys(root, rawPrefix)) {
    if (key.endsWith('.ndjson.gz')) objects.set(key, decodeNdjsonGzip(await getLakeObject(root, key)));
  }
  return objects;
}
