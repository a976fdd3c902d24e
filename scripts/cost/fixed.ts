/**
 * What a month costs before the first delivery, counted from a synthesized template: secrets, alarms (each
 * metric an alarm watches), dashboards, the custom metrics the functions publish (one per name and
 * dimension set, measured from their output), idle SQS polling by each event source mapping, and the
 * schedules' own runs (Athena's 10 MB minimum per query, Step Functions transitions).
 * EventBridge Scheduler's first 14 million invocations a month are free, and Glue's catalog is free under a
 * million objects: neither is billed here.
 */
import { PRICES } from './prices';

type Resource = { Type: string; Properties?: Record<string, unknown> };
export type TemplateJson = { Resources: Record<string, Resource> };

/**
 * Lambda polls a queue with long polls (20 s) while it is idle; AWS documents five pollers to start
 * with for a standard queue, which keep polling whatever `maxConcurrency` says: 5 × 3 a minute.
 */
export const IDLE_POLLERS = 5;
const LONG_POLL_SECONDS = 20;
export const SECONDS_PER_MONTH = 30.4375 * 86400;

export interface FixedItem {
  readonly item: string;
  readonly count: number;
  readonly dollars: number;
}

/**
 * `publishedMetrics`: the custom metrics (name and dimension values) the functions published while the
 * benchmark ran them, read from their embedded-metric-format output: each is billed for every hour it is
 * published in, so a metric published on every batch costs its whole $0.30 a month.
 */
export function fixedMonthly(template: TemplateJson, publishedMetrics: ReadonlySet<string>): FixedItem[] {
  const all = Object.values(template.Resources);
  const of = (type: string) => all.filter((r) => r.Type === type);
  const p = PRICES.monthly;
  const alarms = of('AWS::CloudWatch::Alarm');
  // An alarm on a metric-math expression is billed per metric it reads.
  const alarmMetrics = alarms.reduce((n, a) => {
    const metrics = (a.Properties?.Metrics as { MetricStat?: unknown }[] | undefined) ?? [];
    return n + Math.max(1, metrics.filter((m) => m.MetricStat).length);
  }, 0);
  const customMetrics = publishedMetrics.size;
  const queues = of('AWS::Lambda::EventSourceMapping').length;
  const idlePolls = queues * IDLE_POLLERS * (SECONDS_PER_MONTH / LONG_POLL_SECONDS);
  const items: FixedItem[] = [
    { item: 'secrets', count: of('AWS::SecretsManager::Secret').length, dollars: 0 },
    { item: 'alarm metrics', count: alarmMetrics, dollars: 0 },
    { item: 'dashboards', count: of('AWS::CloudWatch::Dashboard').length, dollars: 0 },
    { item: 'custom metrics published every hour', count: customMetrics, dollars: 0 },
    { item: 'idle SQS long polls (event source mappings)', count: Math.round(idlePolls), dollars: 0 },
    ...scheduledRuns(template),
  ];
  const price: Record<string, number> = {
    secrets: p.secret,
    'alarm metrics': p.alarmMetric,
    dashboards: p.dashboard,
    'custom metrics published every hour': p.customMetric,
    'idle SQS long polls (event source mappings)': PRICES.sqs.requestsPerMillion / 1e6,
  };
  return items.map((i) => (i.item in price ? { ...i, dollars: i.count * price[i.item] } : i));
}

/**
 * The scheduled compaction's own floor: four Athena statements billed at least 10 MB each, and about 20
 * state transitions, every run, whatever the volume (the bytes above 10 MB are in the variable cost).
 */
function scheduledRuns(template: TemplateJson): FixedItem[] {
  const schedule = Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::Scheduler::Schedule')
    .map((r) => r.Properties as { Description?: string; ScheduleExpression?: string; State?: string })
    .find((s) => s.Description?.startsWith('Compacts closed hours') && s.State === 'ENABLED');
  const every = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule?.ScheduleExpression ?? '');
  if (!every) return [];
  const seconds = Number(every[1]) * { minute: 60, hour: 3600, day: 86400 }[every[2] as 'minute' | 'hour' | 'day'];
  const runs = SECONDS_PER_MONTH / seconds;
  const athena = runs * 4 * PRICES.athena.minimumBytesPerQuery;
  return [
    {
      item: 'compaction runs (Athena minimum, transitions)',
      count: Math.round(runs),
      dollars:
        (athena / 1e12) * PRICES.athena.perTbScanned +
        ((runs * 20) / 1000) * PRICES.stepFunctions.transitionsPerThousand,
    },
  ];
}

export const fixedTotal = (items: FixedItem[]) => items.reduce((s, i) => s + i.dollars, 0);
