/** Helpers to read lake objects back in tests. */
import type { DeliveryMessage } from '../../lambda/contract';

export { decodeNdjsonGzip } from '../../lambda/core/lake';

export function deliveryMessage(body: Uint8Array | string, receivedAt: string, requestId = 'req-1'): DeliveryMessage {
  return { v: 1, bodyBase64: Buffer.from(body).toString('base64'), receivedAt, requestId };
}
