/**
 * The erasure's S3 stores: the ledger (in the lake bucket, read by ingest, replay, redrive and compaction),
 * the receipts (in the work bucket) and the object operations of a versioned bucket, whose noncurrent
 * versions would otherwise keep what an erasure rewrote away.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ERASURE_LEDGER_KEY } from '../contract';
import type {
  ErasableObjects,
  ErasureReceipt,
  Ledger,
  LedgerStore,
  PendingFindings,
  PendingStore,
  ReceiptStore,
} from '../core/erasure';
import { decodeLedger } from '../core/erasure';
import { getObjectBytes, listAllKeys, listVersionsOf } from './s3-objects';

export const LEDGER_KEY = ERASURE_LEDGER_KEY;
export const RECEIPTS_PREFIX = 'erasures/receipts/';
/** What running erasures found, by ledger hash (the erase state machine and `erase --stack`). */
export const PENDING_PREFIX = 'erasures/pending/';

const isNoSuchKey = (err: unknown) => (err as { name?: string })?.name === 'NoSuchKey';

/**
 * The ledger at `s3://bucket/key`. A missing object is "no erasure yet"; S3 answers NoSuchKey only to a
 * reader allowed to list the bucket (AccessDenied otherwise, which throws: a ledger that cannot be read
 * must stop the reader, not let erased records back in).
 */
export function s3LedgerStore(s3: S3Client, bucket: string, key = LEDGER_KEY): LedgerStore {
  return {
    async read(): Promise<Ledger | undefined> {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return decodeLedger(await (out.Body as { transformToString(): Promise<string> }).transformToString());
      } catch (err) {
        if (isNoSuchKey(err)) return undefined;
        throw err;
      }
    },
    async write(ledger) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: `${JSON.stringify(ledger, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
    },
    describe: () => `s3://${bucket}/${key}`,
  };
}

/** Receipts at `s3://workBucket/erasures/receipts/<erasureId>.json`; returns that address. */
export function s3ReceiptStore(s3: S3Client, workBucket: string): ReceiptStore {
  return {
    async put(erasureId: string, receipt: ErasureReceipt) {
      const key = `${RECEIPTS_PREFIX}${erasureId}.json`;
      await s3.send(
        new PutObjectCommand({
          Bucket: workBucket,
          Key: key,
          Body: `${JSON.stringify(receipt, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
      return `s3://${workBucket}/${key}`;
    },
  };
}

/**
 * What a running erasure found, at `s3://workBucket/erasures/pending/<ledger hash>.json` (the state
 * machine's tasks share it, and a rerun of the same request picks it up); deleted with every version
 * when the erasure completes, and expired by the work bucket's lifecycle if it never does.
 */
export function s3PendingStore(s3: S3Client, workBucket: string): PendingStore {
  const key = (hash: string) => `${PENDING_PREFIX}${hash}.json`;
  return {
    async read(hash) {
      try {
        return JSON.parse((await getObjectBytes(s3, workBucket, key(hash))).toString('utf8')) as PendingFindings;
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    async write(hash, findings) {
      await s3.send(
        new PutObjectCommand({
          Bucket: workBucket,
          Key: key(hash),
          Body: JSON.stringify(findings),
          ContentType: 'application/json',
        }),
      );
    },
    async delete(hash) {
      await s3.send(new DeleteObjectCommand({ Bucket: workBucket, Key: key(hash) }));
      await deleteNoncurrentVersions(s3, workBucket, key(hash));
    },
  };
}

export type ListableObjects = ErasableObjects & { list(prefix: string): Promise<string[]> };

/**
 * Deletes every version of exactly `key` that is not the latest one, and every delete marker of it, and
 * returns how many. In an unversioned bucket the listing holds only the current ("null") version: nothing to do.
 */
export async function deleteNoncurrentVersions(s3: S3Client, bucket: string, key: string): Promise<number> {
  // Delete markers hold nothing; they go too, the latest one included, so a deleted object leaves no trace.
  const doomed = (await listVersionsOf(s3, bucket, key))
    .filter((v) => v.deleteMarker || !v.isLatest)
    .map((v) => ({ Key: key, VersionId: v.versionId }));
  for (let i = 0; i < doomed.length; i += 1000) {
    const out = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: doomed.slice(i, i + 1000), Quiet: true } }),
    );
    if (out.Errors?.length)
      throw new Error(`S3 kept ${out.Errors.length} old versions of an object in ${bucket}: ${out.Errors[0].Code}`);
  }
  return doomed.length;
}

/**
 * A bucket's objects as an erasure sees them. Deleting an object in a versioned bucket adds a delete
 * marker over the old versions; {@link deleteNoncurrentVersions} then removes those versions and the marker.
 */
export function s3ErasableObjects(s3: S3Client, bucket: string): ListableObjects {
  return {
    get: (key) => getObjectBytes(s3, bucket, key),
    async put(key, body) {
      const gz = key.endsWith('.gz');
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: gz ? 'application/gzip' : 'application/json',
        }),
      );
    },
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    deleteNoncurrentVersions: (key) => deleteNoncurrentVersions(s3, bucket, key),
    list: (prefix) => listAllKeys(s3, bucket, prefix),
  };
}
