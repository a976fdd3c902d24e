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
 * Every version id of exactly `key` (object versions and delete markers; an unversioned bucket answers
 * one version, `null`), page after page.
 */
export async function listVersionsOf(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const ids: string[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: key,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    for (const v of [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])])
      if (v.Key === key && v.VersionId) ids.push(v.VersionId);
    keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
    versionMarker = out.IsTruncated ? out.NextVersionIdMarker : undefined;
  } while (keyMarker || versionMarker);
  return ids;
}
