/** Builds API Gateway HTTP API (payload 2.0) events the way API Gateway delivers them. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export function apiEvent(
  body: Uint8Array | string | undefined,
  headers: Record<string, string> = {},
  options: { base64?: boolean; timeEpoch?: number } = {},
): APIGatewayProxyEventV2 {
  const bytes = body === undefined ? undefined : Buffer.from(body);
  return {
    version: '2.0',
    routeKey: 'POST /webhooks',
    rawPath: '/webhooks',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', 'user-agent': 'Smartcar/1.0', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: {
        method: 'POST',
        path: '/webhooks',
        protocol: 'HTTP/1.1',
        sourceIp: '192.0.2.1',
        userAgent: 'Smartcar/1.0',
      },
      requestId: 'req-123',
      routeKey: 'POST /webhooks',
      stage: '$default',
      time: '26/Nov/2026:21:04:59 +0000',
      timeEpoch: options.timeEpoch ?? Date.parse('2026-11-26T21:04:59.123Z'),
    },
    body: bytes === undefined ? undefined : bytes.toString(options.base64 ? 'base64' : 'utf8'),
    isBase64Encoded: options.base64 ?? false,
  };
}

/** The same request as a Lambda Function URL delivers it (payload 2.0, no route: `$default`). */
export function functionUrlEvent(
  body: Uint8Array | string | undefined,
  headers: Record<string, string> = {},
  options: { base64?: boolean; timeEpoch?: number; method?: string; path?: string } = {},
): APIGatewayProxyEventV2 {
  const event = apiEvent(body, headers, options);
  const path = options.path ?? '/webhooks';
  return {
    ...event,
    routeKey: '$default',
    rawPath: path,
    requestContext: {
      ...event.requestContext,
      apiId: 'abcdefghijklmnopqrstuvwxyz012345',
      domainName: 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws',
      domainPrefix: 'abcdefghijklmnopqrstuvwxyz012345',
      routeKey: '$default',
      http: { ...event.requestContext.http, method: options.method ?? 'POST', path },
    },
  };
}

/** The two front doors the stack supports, with the event each hands the verification function. */
export const FRONT_DOORS = [
  ['http-api', apiEvent],
  ['function-url', functionUrlEvent],
] as const;
