/** S3 helpers shared by the work store, the quarantine store and the operations scripts' lake store. */
import { GetObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';

/** Every key under `prefix`, page after page. */
export async function listAllKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}

/** An object's bytes. */
export async function getObjectBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/**
 * One version of an object (the current one without `versionId`) with the version S3 served, or undefined
 * when it is gone (NoSuchKey, NoSuchVersion): for readers racing a deleter, such as the landing zone's.
 */
export async function getObjectIfThere(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<{ bytes: Buffer; versionId?: string } | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    const body = out.Body as { transformToByteArray(): Promise<Uint8Array> } | undefined;
    return {
      bytes: Buffer.from(body ? await body.transformToByteArray() : new Uint8Array()),
      versionId: out.VersionId,
    };
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NoSuchVersion') return undefined;
    throw err;
  }
}

/** One version of an object: a stored version (latest or not) or a delete marker. */
export interface ObjectVersion {
  readonly versionId: string;
  readonly isLatest: boolean;
  readonly deleteMarker: boolean;
}

/**
 * Every version under `prefix` (stored versions and delete markers, each with its key), page after page, in
 * S3's order: by key, newest first.
 */
export async function listVersionsUnder(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<(ObjectVersion & { readonly key: string })[]> {
  const versions: (ObjectVersion & { readonly key: string })[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    for (const v of out.Versions ?? [])
      if (v.Key && v.VersionId)
        versions.push({ key: v.Key, versionId: v.VersionId, isLatest: v.IsLatest === true, deleteMarker: false });
    for (const m of out.DeleteMarkers ?? [])
      if (m.Key && m.VersionId)
        versions.push({ key: m.Key, versionId: m.VersionId, isLatest: m.IsLatest === true, deleteMarker: true });
    keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
    versionMarker = out.IsTruncated ? out.NextVersionIdMarker : undefined;
  } while (keyMarker);
  return versions;
}

/**
 * Every version of exactly `key` (an unversioned bucket answers one version, `null`). The listing's prefix
 * also matches longer keys: only this key's count.
 */
export async function listVersionsOf(s3: S3Client, bucket: string, key: string): Promise<ObjectVersion[]> {
  return (await listVersionsUnder(s3, bucket, key)).filter((v) => v.key === key);
}
