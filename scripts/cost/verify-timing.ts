/**
 * The verification handler's time with the real AWS SDK: the built bundle, in a fresh Node process on a
 * CPU share like the function's (scripts/cost/cpu-share.ts), answers a cold request and then `warm` more,
 * each a distinct signed delivery, putting it to a local stand-in of Firehose (the default buffer) or sending
 * it to one of SQS (`deliveryStream: false`, the queue buffer), reading its token from a
 * stand-in of Secrets Manager) through the SDK's own clients: no mocked client. The stand-in answers in
 * microseconds: AWS's own latency is added by the cost model (`--aws-call-ms`), not measured here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { hmacHex } from '../../lambda/core/signature';
import { apiEvent } from '../../test/support/api-event';
import { lambdaNode, standIn, verifyEnvironment } from './aws-stand-in';
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
  /** What the handler called: PutRecords and SendMessages the stand-in answered. */
  readonly calls: { putRecord: number; sendMessage: number };
}

const TOKEN = 'bench-cost-management-token';

export async function timeVerify(
  bodies: readonly string[],
  memoryMb: number,
  { deliveryStream = true, bundle = path.join(__dirname, '..', '..', 'dist', 'handlers', 'verify', 'index.js') } = {},
): Promise<VerifyTiming> {
  const node = lambdaNode();
  const { server, origin, counts } = await standIn(TOKEN);
  const dir = mkdtempSync(path.join(tmpdir(), 'verify-timing-'));
  const eventsFile = path.join(dir, 'events.json');
  writeFileSync(eventsFile, JSON.stringify(bodies.map((b) => apiEvent(b, { 'sc-signature': hmacHex(TOKEN, b) }))));
  const cpu = lambdaCpuShare(memoryMb);
  try {
    const env = await verifyEnvironment(origin, 'bench-cost', { deliveryStream });
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
      calls: { ...counts },
    };
  } finally {
    cpu.release();
    server.close();
  }
}
