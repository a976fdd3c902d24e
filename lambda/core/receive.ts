/**
 * The receiver's decision for one HTTP request, independent of API Gateway: answer VERIFY, authenticate
 * everything else by `SC-Signature`, and hand authentic deliveries off durably before saying 200.
 *
 * Status codes: 200 accepted or challenge answered; 400 malformed; 401 unsigned or wrongly signed;
 * 413 too large; 415 not JSON; 500/503 when the token or the hand-off is unavailable, so Smartcar retries.
 */
import {
  DELIVERY_MESSAGE_VERSION,
  type DeliveryMessage,
  MAX_BODY_BYTES,
  METRIC,
  QUARANTINE_RECORD_VERSION,
  type QuarantinedDelivery,
} from '../contract';
import { parseBody, readEnvelope } from './envelope';
import { logSafe } from './log-safe';
import type { CoreLogger } from './logger';
import { type CoreMetrics, noMetrics } from './metrics';
import {
  challengeResponse,
  headerValue,
  isAnswerableChallenge,
  isValidSignature,
  MAX_CHALLENGE_LENGTH,
} from './signature';
import { TokenNotConfiguredError } from './token-cache';

export interface IncomingRequest {
  /** The body bytes exactly as received (already base64-decoded if the front end encoded them). */
  readonly body: Uint8Array;
  readonly headers: Record<string, string | undefined>;
  readonly requestId?: string;
  readonly receivedAt: Date;
}

export interface ReceiverResponse {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
}

/** Where the token comes from: {@link RotatingTokens} on Secrets Manager in Lambda, files or a fixed value locally. */
export interface TokenSource {
  get(): Promise<string>;
  /** A possibly newer token after a failed signature, or undefined when there is nothing new to try. */
  refresh(): Promise<string | undefined>;
  /** The token before the last rotation, while its grace period lasts; undefined otherwise or when unknown. */
  previous?(): Promise<string | undefined>;
}

export interface ReceiverDeps {
  readonly token: TokenSource;
  /** Resolves only once the message is durable (e.g. SQS accepted it); rejects otherwise. */
  readonly enqueue: (message: DeliveryMessage) => Promise<void>;
  readonly logger: CoreLogger;
  /** How operators put the token in place; quoted in the log when it is missing. */
  readonly howToSetToken?: string;
  readonly metrics?: CoreMetrics;
  /**
   * Keeps a delivery that failed authentication only because its signature did not match (see
   * {@link isQuarantinable}); never awaited by anything but this request's answer. @default nothing kept
   */
  readonly quarantine?: (delivery: QuarantinedDelivery) => Promise<unknown>;
}

export const SIGNATURE_HEADER = 'sc-signature';

export async function receive(req: IncomingRequest, deps: ReceiverDeps): Promise<ReceiverResponse> {
  const { logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const base = { requestId: req.requestId };
  const rejected = (statusCode: number, error: string) => {
    metrics.count(METRIC.rejectedRequests);
    return reply(statusCode, error);
  };

  if (req.body.length > MAX_BODY_BYTES) {
    logger.warn('rejected: body too large', { ...base, bytes: req.body.length, limit: MAX_BODY_BYTES });
    return rejected(413, `body larger than ${MAX_BODY_BYTES} bytes`);
  }
  const contentType = headerValue(req.headers, 'content-type');
  if (contentType !== undefined && !isJsonMediaType(contentType)) {
    logger.warn('rejected: content type is not JSON', { ...base, contentType: logSafe(contentType) });
    return rejected(415, 'content type must be application/json');
  }
  const parsed = parseBody(req.body);
  if (!parsed.ok) {
    logger.warn('rejected: malformed body', { ...base, reason: parsed.reason, bytes: req.body.length });
    return rejected(400, parsed.reason);
  }
  const envelope = readEnvelope(parsed.json, req.body);
  // Nothing in the body is trusted until its signature is checked: log only bounded, escaped values.
  const ids = {
    ...base,
    eventId: logSafe(envelope.fields.eventId),
    eventType: logSafe(envelope.fields.eventType),
    deliveryId: logSafe(envelope.fields.deliveryId),
    webhookId: logSafe(envelope.fields.webhookId),
  };

  if (envelope.kind === 'verify') {
    metrics.count(METRIC.verifyRequests);
    // VERIFY carries no signature. Its answer is HMAC(token, challenge), the very function that signs
    // deliveries, so only challenges that can never be a delivery body are answered (see signature.ts).
    if (envelope.challenge === null) {
      logger.warn('rejected: VERIFY without a challenge string', ids);
      return rejected(400, 'VERIFY request without a challenge');
    }
    if (!isAnswerableChallenge(envelope.challenge)) {
      logger.warn('rejected: VERIFY challenge outside the answerable format', {
        ...ids,
        challengeLength: envelope.challenge.length,
      });
      metrics.count(METRIC.verifyChallengesRejected);
      return rejected(400, `challenge must be 1 to ${MAX_CHALLENGE_LENGTH} letters, digits or -_.~ characters`);
    }
    let token: string;
    try {
      token = await deps.token.get();
    } catch (err) {
      return tokenUnavailable(err, ids, deps);
    }
    logger.info('answered VERIFY challenge', ids);
    metrics.count(METRIC.verifyChallengesAnswered);
    return { statusCode: 200, body: { challenge: challengeResponse(token, envelope.challenge) } };
  }

  // An unsigned delivery is rejected before the token is even looked up.
  const signature = headerValue(req.headers, SIGNATURE_HEADER);
  if (!signature) {
    logger.warn('rejected: missing SC-Signature', ids);
    metrics.count(METRIC.signatureFailures);
    return reply(401, 'missing SC-Signature header');
  }

  let token: string;
  try {
    token = await deps.token.get();
  } catch (err) {
    return tokenUnavailable(err, ids, deps);
  }

  if (!isValidSignature(token, req.body, signature)) {
    // The token may have been rotated since we cached it: re-read once (rate-limited) and try again.
    let fresh: string | undefined;
    try {
      fresh = await deps.token.refresh();
    } catch (err) {
      return tokenUnavailable(err, ids, deps);
    }
    if (fresh === undefined || !isValidSignature(fresh, req.body, signature)) {
      let previous: string | undefined;
      try {
        previous = await deps.token.previous?.();
      } catch {
        previous = undefined;
      }
      if (previous !== undefined && isValidSignature(previous, req.body, signature)) {
        logger.warn('accepted with the previous management token (rotation grace period)', ids);
        metrics.count(METRIC.acceptedWithPreviousToken);
      } else {
        logger.warn('rejected: SC-Signature does not match', ids);
        metrics.count(METRIC.signatureFailures);
        if (deps.quarantine && isQuarantinable(signature)) {
          // Smartcar-shaped (a JSON object within the size limit, a well-formed signature): most likely a
          // genuine delivery signed with a token the secret does not hold yet. Keep it for recovery.
          metrics.count(METRIC.signatureMismatches);
          try {
            await deps.quarantine({
              v: QUARANTINE_RECORD_VERSION,
              bodyBase64: Buffer.from(req.body).toString('base64'),
              signature: signature.trim().toLowerCase(),
              receivedAt: req.receivedAt.toISOString(),
              requestId: req.requestId,
            });
          } catch (err) {
            logger.error('could not quarantine a rejected delivery', { ...ids, error: asError(err) });
          }
        }
        return reply(401, 'invalid SC-Signature');
      }
    }
  }

  const message: DeliveryMessage = {
    v: DELIVERY_MESSAGE_VERSION,
    bodyBase64: Buffer.from(req.body).toString('base64'),
    receivedAt: req.receivedAt.toISOString(),
    requestId: req.requestId,
  };
  try {
    await deps.enqueue(message);
  } catch (err) {
    logger.error('hand-off failed; answering 503 so that Smartcar retries', { ...ids, error: asError(err) });
    metrics.count(METRIC.handOffFailures);
    return reply(503, 'temporarily unable to store the delivery; retry later');
  }
  // The success path writes nothing billed per request: no log line at the default level and no metric
  // line (Deliveries is counted per batch by the ingest function). The lake keeps every delivery.
  logger.debug?.('accepted delivery', { ...ids, mode: envelope.fields.mode });
  return { statusCode: 200, body: { status: 'received' } };
}

function tokenUnavailable(err: unknown, ids: Record<string, unknown>, deps: ReceiverDeps): ReceiverResponse {
  deps.metrics?.count(METRIC.tokenUnavailable);
  if (err instanceof TokenNotConfiguredError) {
    deps.logger.error(`management token not configured: ${err.message}. ${deps.howToSetToken ?? ''}`.trim(), ids);
    return reply(503, 'receiver not configured yet');
  }
  deps.logger.error('could not read the management token', { ...ids, error: asError(err) });
  return reply(500, 'receiver unable to authenticate requests right now');
}

/**
 * Whether a delivery that failed only on its signature is worth keeping: its body already parsed as a
 * JSON object within the size limit (checked before the signature), and its signature has the shape
 * Smartcar's have (64 hex digits). Unsigned, malformed and oversized requests never get here or fail this.
 */
export function isQuarantinable(signature: string): boolean {
  return /^[0-9a-f]{64}$/i.test(signature.trim());
}

function isJsonMediaType(value: string): boolean {
  const type = value.split(';')[0].trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]*\+json$/.test(type);
}

function reply(statusCode: number, error: string): ReceiverResponse {
  return { statusCode, body: { error } };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The route check a front door without routes (a Lambda Function URL) needs, answered the way the local
 * server and the HTTP API's routes answer: 404 off the callback paths, 405 for any method but POST.
 * `errorCallbackPath` is the optional second path Smartcar sends VEHICLE_ERROR to (its "vehicle error
 * callback URI"); it is verified and stored exactly like the first, so only the route check knows it.
 * Undefined when the request may go on to {@link receive}.
 */
export function routeCheck(
  method: string | undefined,
  path: string | undefined,
  callbackPath: string,
  errorCallbackPath?: string,
) {
  if (path !== callbackPath && (errorCallbackPath === undefined || path !== errorCallbackPath)) {
    const also = errorCallbackPath === undefined ? '' : ` (vehicle errors: POST ${errorCallbackPath})`;
    return { statusCode: 404, body: { error: `not found; the callback is POST ${callbackPath}${also}` } } as const;
  }
  if (method !== 'POST') return { statusCode: 405, body: { error: 'use POST' } } as const;
  return undefined;
}
