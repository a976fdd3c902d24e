/**
 * The curated layer's erasure against AWS: Athena through the same query engine the CLI's trace uses,
 * and the lake bucket's objects for the swap. A delete removes every version of the key (the bucket may
 * be versioned, and an old version of a rewritten Parquet file would still hold the erased rows).
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import { CopyObjectCommand, DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { athenaQueryEngine } from '../../cli/query-engine';
import type { AthenaRunner, SwapObjects } from '../core/erasure-curated';
import { getObjectBytes, listAllKeys, listVersionsOf } from './s3-objects';

export function athenaRunner(options: { workGroup: string; database: string; athena?: AthenaClient }): AthenaRunner {
  const engine = athenaQueryEngine({ ...options, timeoutMs: 10 * 60_000 });
  return {
    query: async (sql) => (await engine.query(sql)).map((row) => Object.values(row).map((v) => v ?? '')),
    run: async (sql) => {
      await engine.query(sql);
    },
  };
}

export function s3SwapObjects(s3: S3Client, bucket: string): SwapObjects {
  return {
    list: (prefix) => listAllKeys(s3, bucket, prefix),
    get: (key) => getObjectBytes(s3, bucket, key),
    async put(key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
    },
    async copy(from, to) {
      const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source }));
    },
    async delete(key) {
      const versions = await listVersionsOf(s3, bucket, key);
      if (versions.length === 0) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      for (const { versionId } of versions)
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    },
  };
}
