/**
 * `fleet [--json] [--lake-dir DIR]` (cli/registry.ts): the fleet as an operator asks about it every morning, from the local lake
 * (LOCAL_LAKE_DIR, as written by npm start): per vehicle the last delivery, whether it went silent, its
 * open errors and its latest key signals. The same views the stack registers in Athena answer it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { flag, lakeDirOf, runCommand } from '../cli/args';
import { SPECS } from '../cli/registry';
import {
  formatStoredWebhookConfig,
  type StoredWebhookConfig,
  type WebhookCheckFailures,
} from '../lambda/core/webhook-health';
import { type LocalLake, openLocalLake, type Row } from './query';

/**
 * The webhook health lines the last local `reconcile` kept in $LOCAL_WORKFLOW_DIR (no request): a fleet
 * that went silent all at once is most often a webhook disabled, unverified or pointed elsewhere.
 */
export function storedWebhookHealth(workDir: string): string[] {
  return storedWebhookChecks(workDir).map((c) => c.line);
}

export interface StoredWebhookCheck {
  readonly webhookId: string;
  /** What the last check found (null: its record is unreadable). */
  readonly healthy: boolean | null;
  readonly line: string;
}

/** The same checks, each with its verdict (the inspector's fleet tab colours them). */
export function storedWebhookChecks(workDir: string): StoredWebhookCheck[] {
  const dir = path.join(workDir, 'reconcile', 'webhooks');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json') && !n.endsWith('.failures.json'));
  } catch {
    return [];
  }
  return names.sort().map((n) => {
    const webhookId = n.slice(0, -'.json'.length);
    try {
      const stored = JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as StoredWebhookConfig;
      const failures = readFailures(path.join(dir, `${webhookId}.failures.json`));
      const since =
        failures && failures.transientFailures > 0
          ? `; since then ${failures.transientFailures} check(s) in a row could not read it (last ${failures.lastFailureAt})`
          : '';
      return {
        webhookId,
        healthy: stored.health.healthy && since === '',
        line: `${formatStoredWebhookConfig(webhookId, stored)}${since}`,
      };
    } catch {
      return { webhookId, healthy: null, line: `webhook ${webhookId}: its last check in ${dir} is unreadable` };
    }
  });
}

function readFailures(file: string): WebhookCheckFailures | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as WebhookCheckFailures;
  } catch {
    return undefined;
  }
}

export interface FleetRow {
  vehicle_id: string;
  mode: string;
  make: string | null;
  model: string | null;
  last_seen: string;
  deliveries: number;
  silent: boolean;
  open_errors: string[];
  signals: Record<string, string>;
}

/** One row per vehicle and mode, from the lake's views. */
export async function fleetTable(lake: LocalLake): Promise<FleetRow[]> {
  const activity = await lake.query(
    'SELECT vehicle_id, mode, make, model, last_seen, deliveries FROM vehicle_activity ORDER BY vehicle_id, mode',
  );
  const silent = new Set((await lake.query('SELECT vehicle_id, mode FROM silent_vehicles')).map(key));
  const errors = new Map<string, string[]>();
  for (const e of await lake.query(
    'SELECT vehicle_id, mode, error_type, error_code, resolution FROM open_vehicle_errors ORDER BY opened_at',
  )) {
    const list = errors.get(key(e)) ?? [];
    list.push(`${e.error_type}${e.error_code ? `/${e.error_code}` : ''}${e.resolution ? ` (${e.resolution})` : ''}`);
    errors.set(key(e), list);
  }
  const signals = new Map<string, Record<string, string>>();
  for (const s of await lake.query(
    'SELECT vehicle_id, mode, signal_name, value, unit FROM latest_signals WHERE value IS NOT NULL ORDER BY signal_name',
  )) {
    const map = signals.get(key(s)) ?? {};
    map[String(s.signal_name)] = `${s.value}${s.unit ? ` ${s.unit}` : ''}`;
    signals.set(key(s), map);
  }
  return activity.map((a) => ({
    vehicle_id: String(a.vehicle_id),
    mode: String(a.mode),
    make: (a.make as string | null) ?? null,
    model: (a.model as string | null) ?? null,
    last_seen: String(a.last_seen),
    deliveries: Number(a.deliveries),
    silent: silent.has(key(a)),
    open_errors: errors.get(key(a)) ?? [],
    signals: signals.get(key(a)) ?? {},
  }));
}

function key(r: Row): string {
  return `${r.vehicle_id}\u0000${r.mode}`;
}

function print(rows: FleetRow[]): void {
  if (rows.length === 0) {
    console.log('(no vehicles in the lake yet)');
    return;
  }
  const table = rows.map((r) => [
    r.vehicle_id,
    r.mode,
    [r.make, r.model].filter(Boolean).join(' '),
    r.last_seen.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.silent ? 'SILENT' : 'ok',
    r.open_errors.join(', ') || '-',
    Object.entries(r.signals)
      .slice(0, 3)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  ]);
  const header = ['vehicle', 'mode', 'vehicle model', 'last seen (UTC)', 'silent?', 'open errors', 'key signals'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of table) console.log(line(row));
  const silentCount = rows.filter((r) => r.silent).length;
  const withErrors = rows.filter((r) => r.open_errors.length > 0).length;
  console.log(`(${rows.length} vehicles, ${silentCount} silent, ${withErrors} with open errors)`);
}

/** The command: `npm run fleet -- …` or `smartcar-webhooks fleet …`; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCommand(SPECS.fleet, argv, async (args) => {
    const lake = await openLocalLake(lakeDirOf(args));
    try {
      const rows = await fleetTable(lake);
      if (flag(args, 'json')) for (const r of rows) console.log(JSON.stringify(r));
      else {
        print(rows);
        const checks = storedWebhookHealth(path.resolve(process.env.LOCAL_WORKFLOW_DIR || '.local-workflow'));
        for (const line of checks) console.log(line);
        if (rows.length > 0 && rows.every((r) => r.silent))
          console.log(
            'Every vehicle is silent: check the webhook first (`npm run reconcile -- --dry-run` prints its health).',
          );
      }
      return 0;
    } finally {
      lake.close();
    }
  });
}
