/**
 * The reconcile drill shared by the reconcile tests: the synthesized reconcile state machine run in-process
 * with the real task code against {@link FakePlatform}, on simulated time that moves with the state
 * machine's Wait states, with one work directory per drill (like the deployed work bucket: runs see the
 * watermarks of earlier runs).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type LocalReconcileOptions, runReconcile } from '../../local/reconcile';
import { definitionFromTemplate, STATE_MACHINES } from '../../local/workflow-runner';
import { connections, FakePlatform, type FakePlatformOptions } from './fake-platform';
import { synthStack } from './synth';

export const WEBHOOK = 'wh-fleet';
export const DRILL_RATE_LIMIT = { capacity: 120, perMinute: 2 };
export const UNLIMITED = { capacity: 1_000_000, perMinute: 1_000_000 };

/** 250 live connections and 20 simulated ones, Smartcar's default rate limit. */
export const fleet = (extra: Partial<FakePlatformOptions> = {}): FakePlatformOptions => ({
  clientId: 'client-1',
  clientSecret: 'client-secret-1',
  managementToken: 'amt-1',
  webhookId: WEBHOOK,
  connections: [...connections(250), ...connections(20, 1000, 'simulated')],
  rateLimit: DRILL_RATE_LIMIT,
  ...extra,
});

export interface Drill {
  readonly fake: FakePlatform;
  /** The fake's base URL (every Smartcar host at once). */
  readonly origin: string;
  readonly lines: string[];
  workDir: string;
  run(
    input: Record<string, unknown>,
    extra?: Partial<LocalReconcileOptions>,
  ): Promise<Awaited<ReturnType<typeof runReconcile>> & { requests: number }>;
  stop(): Promise<void>;
}

let definition: Record<string, unknown> | undefined;

/** `defaults` apply to every run of the drill (e.g. `{ smartcarApi: 'v2' }`); a run's `extra` overrides them. */
export async function startDrill(
  options: FakePlatformOptions = fleet(),
  defaults: Partial<LocalReconcileOptions> = {},
): Promise<Drill> {
  definition ??= definitionFromTemplate(synthStack().template.toJSON() as never, STATE_MACHINES.reconcile);
  const fake = new FakePlatform(options);
  const origin = await fake.start();
  let seq = 0;
  const drill: Drill = {
    fake,
    origin,
    lines: [],
    workDir: mkdtempSync(path.join(tmpdir(), 'reconcile-')),
    async run(input, extra = {}) {
      const before = fake.counts().api;
      const result = await runReconcile({
        definition: definition as Record<string, unknown>,
        input: 'continueRun' in input ? input : { webhookId: WEBHOOK, ...input },
        apiOrigin: origin,
        clientId: 'client-1',
        clientSecret: 'client-secret-1',
        managementToken: 'amt-1',
        webhookId: WEBHOOK,
        workDir: drill.workDir,
        rateLimit: DRILL_RATE_LIMIT,
        now: () => fake.now(),
        onWait: (s) => fake.advance(s),
        waitMs: 0,
        executionName: `run-${++seq}`,
        print: (l) => drill.lines.push(l),
        ...defaults,
        ...extra,
      });
      return { ...result, requests: fake.counts().api - before };
    },
    stop: () => fake.stop(),
  };
  return drill;
}

/** Every vehicle the fake saw created was created once. */
export const createdOnce = (fake: FakePlatform) => [...fake.created.values()].every((n) => n === 1);
