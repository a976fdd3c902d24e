/**
 * A CPU share like a Lambda function's, for benchmarks that time handlers. Lambda allocates CPU in
 * proportion to memory: 1,769 MB is one vCPU (AWS Lambda developer guide, "Memory and computing power"),
 * so a 256 MB function gets about 0.145 of one. We approximate that with a Linux CFS quota: a cgroup
 * (v1 `cpu` controller, or v2 `cpu.max`) whose processes may run 14.5 ms of every 100 ms. Child
 * processes are started inside it; without permission to make one, they run on a whole core and the
 * benchmark says so. It is an approximation: Lambda's Graviton cores, its burst behaviour at start-up and
 * its I/O are not this machine's.
 */
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const LAMBDA_MB_PER_VCPU = 1769;
const PERIOD_US = 100_000;

export interface CpuShare {
  /** The share of one core the children get (1 when no cgroup could be made). */
  readonly share: number;
  /** How it was made, for the benchmark's output. */
  readonly description: string;
  /** The command prefix that runs a child inside the share: `['sh', '-c', 'echo $$ > …; exec "$0" "$@"']`. */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  release(): void;
}

/** A share of one core like a function of `memoryMb`'s. */
export function lambdaCpuShare(memoryMb: number): CpuShare {
  const share = Math.min(1, memoryMb / LAMBDA_MB_PER_VCPU);
  const quota = Math.round(share * PERIOD_US);
  const name = `smartcar-bench-${process.pid}`;
  const v1 = '/sys/fs/cgroup/cpu';
  const v2 = '/sys/fs/cgroup';
  let tasks: string | undefined;
  let dir: string | undefined;
  try {
    if (existsSync(path.join(v1, 'cpu.cfs_quota_us'))) {
      dir = path.join(v1, name);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
      tasks = path.join(dir, 'tasks');
    } else if (existsSync(path.join(v2, 'cgroup.controllers'))) {
      dir = path.join(v2, name);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      tasks = path.join(dir, 'cgroup.procs');
    }
  } catch {
    if (dir) {
      try {
        rmdirSync(dir);
      } catch {}
    }
    tasks = undefined;
  }
  if (!tasks)
    return {
      share: 1,
      description: 'a whole core (no cgroup could be made here: run as root on Linux for a Lambda-like share)',
      wrap: (command, args) => ({ command, args }),
      release() {},
    };
  const file = tasks;
  return {
    share,
    description: `${(share * 100).toFixed(1)}% of one core, as a ${memoryMb} MB function gets (${memoryMb} / ${LAMBDA_MB_PER_VCPU} MB per vCPU; CFS quota ${quota} µs per ${PERIOD_US} µs)`,
    wrap: (command, args) => ({
      command: '/bin/sh',
      args: ['-c', `echo $$ > ${file} && exec "$0" "$@"`, command, ...args],
    }),
    release() {
      try {
        if (dir) rmdirSync(dir);
      } catch {}
    },
  };
}
