/**
 * The verification handler's time with the real AWS SDK: the built bundle, in a fresh Node process on a
 * CPU share like the function's (scripts/cost/cpu-share.ts), answers a cold request and then `warm` more,
 * each a distinct signed delivery, sending to a local stand-in of SQS (and reading its token from a
 * stand-in of Secrets Manager) through the SDK's own clients: no mocked client. The stand-in answers in
 * microseconds: AWS's own latency is added by the cost model (`--aws-call-ms`), not measured here.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { hmacHex } from '../../lambda/core/signature';
import { apiEvent } from '../../test/support/api-event';
import { deployedEnvironment, standIn } from './aws-stand-in';
import { lambdaCpuShare } from './cpu-share';

export interface VerifyTiming {
  /** Loading the bundle (Lambda's INIT phase, billed since August 2025). */
  readonly initMs: number;
  readonly coldMs: number;
  readonly warmMedianMs: number;
  readonly warmP90Ms: number;
  /** Bytes the handler printed per request (its log lines, metric lines). */
  readonly logBytesPerRequest: number;
  readonly cpu: string;
  readonly node: string;
}

const TOKEN = 'bench-cost-management-token';

export async function timeVerify(
  bodies: readonly string[],
  memoryMb: number,
  bundle = path.join(__dirname, '..', '..', 'dist', 'handlers', 'verify', 'index.js'),
): Promise<VerifyTiming> {
  const node = existsSync('/opt/node22/package/bin/node') ? '/opt/node22/package/bin/node' : process.execPath;
  const { server, origin } = await standIn(TOKEN);
  const dir = mkdtempSync(path.join(tmpdir(), 'verify-timing-'));
  const eventsFile = path.join(dir, 'events.json');
  writeFileSync(eventsFile, JSON.stringify(bodies.map((b) => apiEvent(b, { 'sc-signature': hmacHex(TOKEN, b) }))));
  const cpu = lambdaCpuShare(memoryMb);
  try {
    const env = {
      ...(await deployedEnvironment()),
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_ENDPOINT_URL: origin,
      AWS_LAMBDA_FUNCTION_NAME: 'bench-cost',
      SMARTCAR_MANAGEMENT_TOKEN_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:amt',
      DELIVERY_QUEUE_URL: `${origin}/123456789012/deliveries`,
    };
    const driver = path.join(__dirname, '..', 'coldstart', 'warm-driver.js');
    const { command, args } = cpu.wrap(node, [driver, bundle, eventsFile]);
    const result = await new Promise<{ initMs: number; times: number[]; printed: number }>((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.on('close', (code) => {
        const match = /\nTIMES (\{.*\})\n/.exec(out);
        if (code === 0 && match) {
          const printed = Buffer.byteLength(out.slice(0, match.index)) + Buffer.byteLength(err);
          resolve({ ...(JSON.parse(match[1]) as { initMs: number; times: number[] }), printed });
        } else reject(new Error(`the verification bundle failed (${code}): ${err.slice(-800)}`));
      });
    });
    const { times } = result;
    const warm = times.slice(1).sort((a, b) => a - b);
    return {
      initMs: result.initMs,
      logBytesPerRequest: result.printed / times.length,
      coldMs: times[0],
      warmMedianMs: warm[Math.floor(warm.length / 2)],
      warmP90Ms: warm[Math.floor(warm.length * 0.9)],
      cpu: cpu.description,
      node,
    };
  } finally {
    cpu.release();
    server.close();
  }
}
