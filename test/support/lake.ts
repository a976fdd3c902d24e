/** Helpers to read lake objects back in tests. */
import { gunzipSync } from 'node:zlib';
import type { DeliveryMessage, LakeRecord } from '../../lambda/contract';

export function decodeNdjsonGzip(bytes: Uint8Array): LakeRecord[] {
  return gunzipSync(bytes)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LakeRecord);
}

export function deliveryMessage(body: Uint8Array | string, receivedAt: string, requestId = 'req-1'): DeliveryMessage {
  return { v: 1, bodyBase64: Buffer.from(body).toString('base64'), receivedAt, requestId };
}
