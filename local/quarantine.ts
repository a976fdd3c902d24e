/**
 * The local quarantine: the same objects and recovery markers as the deployed bucket, as files beside the
 * local lake (`<lake>/quarantine/`, `<lake>/recovery/`), read through the recovery core's store.
 */
import type { ListKeys, QuarantineStore } from '../lambda/core/quarantine';
import { deleteLakeObject, getLakeObject, listLakeKeys, putLakeObject } from './file-lake';

/** Keys under `prefix` after `startAfter`, in key order, as S3 lists them. */
export function fileKeys(lakeDir: string): ListKeys {
  return async function* (prefix, startAfter) {
    // listLakeKeys takes a folder; S3 prefixes may end inside a name, so list the folder and filter.
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1) || prefix;
    const keys = (await listLakeKeys(lakeDir, folder))
      .filter((k) => k.startsWith(prefix) && (startAfter === undefined || k > startAfter))
      .sort();
    yield* keys;
  };
}

export function fileQuarantineStore(lakeDir: string): QuarantineStore {
  return {
    keys: fileKeys(lakeDir),
    get: (key) => getLakeObject(lakeDir, key),
    put: (key, body) => putLakeObject(lakeDir, key, body),
    delete: (key) => deleteLakeObject(lakeDir, key),
  };
}
