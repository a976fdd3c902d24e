/** The lake as the operations scripts see it: an S3 bucket or a local lake directory. */

import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, NotFound, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getObjectBytes, listAllKeys } from '../../lambda/adapters/s3-objects';
import { deleteLakeObject, getLakeObject, listLakeKeys, putLakeObject } from '../../local/file-lake';

export interface LakeStore {
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  put(key: string, body: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  describe(): string;
}

export function s3Lake(bucket: string, s3 = new S3Client({})): LakeStore {
  return {
    list: (prefix) => listAllKeys(s3, bucket, prefix),
    get: (key) => getObjectBytes(s3, bucket, key),
    async exists(key) {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if (err instanceof NotFound || (err as { name?: string }).name === 'NotFound') return false;
        throw err;
      }
    },
    async put(key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/gzip' }));
    },
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    describe: () => `s3://${bucket}`,
  };
}

export function directoryLake(root: string): LakeStore {
  return {
    list: (prefix) => listLakeKeys(root, prefix),
    get: (key) => getLakeObject(root, key),
    exists: (key) =>
      access(path.join(root, ...key.split('/'))).then(
        () => true,
        () => false,
      ),
    put: (key, body) => putLakeObject(root, key, body),
    delete: (key) => deleteLakeObject(root, key),
    describe: () => root,
  };
}
