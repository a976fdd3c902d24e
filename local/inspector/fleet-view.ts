/**
 * The inspector's fleet view: `npm run fleet`'s table (local/fleet.ts) plus the last 48 hours of
 * `deliveries_per_hour`, read from the local lake for each request. DuckDB is loaded here, lazily, so the
 * receiver and its request list start (and keep working) on a machine without it; the page then shows why
 * the fleet is missing instead of a blank tab.
 */
import type { FleetRow, StoredWebhookCheck } from '../fleet';

export const FLEET_HOURS = 48;

export interface FleetVehicle extends FleetRow {
  /** The few signals a person looks at first, when the vehicle reported them. */
  headline: { stateOfCharge: string | null; odometer: string | null; location: string | null };
}

export interface FleetView {
  vehicles: FleetVehicle[];
  /** One slot per hour, oldest first, ending with the current hour (UTC); zero where nothing arrived. */
  hours: { hour: string; deliveries: number }[];
  /**
   * The last webhook health check of each webhook (from the local reconcile's work directory): a fleet that
   * went silent at once points here first.
   */
  webhooks: StoredWebhookCheck[];
}

export type FleetResult = { ok: true; view: FleetView } | { ok: false; status: number; error: string };

/** Reads the fleet from the lake; never throws (the route answers the error as JSON the page shows as text). */
export async function readFleet(lakeDir: string, now = new Date(), workDir?: string): Promise<FleetResult> {
  let modules: [typeof import('../fleet'), typeof import('../query')];
  try {
    modules = await Promise.all([import('../fleet'), import('../query')]);
  } catch (err) {
    if (isMissingModule(err))
      return {
        ok: false,
        status: 503,
        error: 'The fleet view reads the lake with DuckDB, which is not installed here: npm install @duckdb/node-api',
      };
    throw err;
  }
  const [{ fleetTable, storedWebhookChecks }, { openLocalLake }] = modules;
  let lake: Awaited<ReturnType<typeof openLocalLake>> | undefined;
  try {
    lake = await openLocalLake(lakeDir);
    const rows = await fleetTable(lake);
    const locations = new Map<string, string>();
    for (const r of await lake.query(
      "SELECT vehicle_id, mode, body_json FROM latest_signals WHERE lower(signal_code) LIKE '%location%' ORDER BY signal_code DESC",
    ))
      locations.set(`${r.vehicle_id}\u0000${r.mode}`, latLon(r.body_json));
    const perHour = await lake.query(
      'SELECT dt, hour, SUM(deliveries) AS deliveries FROM deliveries_per_hour GROUP BY dt, hour',
    );
    return {
      ok: true,
      view: {
        vehicles: rows.map((r) => ({
          ...r,
          headline: {
            stateOfCharge: pick(r.signals, /stateofcharge/i),
            odometer: pick(r.signals, /odometer|traveleddistance/i),
            location: locations.get(`${r.vehicle_id}\u0000${r.mode}`) || pick(r.signals, /location/i),
          },
        })),
        hours: lastHours(perHour, now),
        webhooks: workDir ? storedWebhookChecks(workDir) : [],
      },
    };
  } catch (err) {
    return { ok: false, status: 500, error: `Could not read the lake in ${lakeDir}: ${(err as Error).message}` };
  } finally {
    lake?.close();
  }
}

function pick(signals: Record<string, string>, pattern: RegExp): string | null {
  const name = Object.keys(signals).find((k) => pattern.test(k));
  return name === undefined ? null : signals[name];
}

function latLon(bodyJson: unknown): string {
  try {
    const body = JSON.parse(String(bodyJson));
    const lat = Number(body?.latitude ?? body?.value?.latitude);
    const lon = Number(body?.longitude ?? body?.value?.longitude);
    return Number.isFinite(lat) && Number.isFinite(lon) ? `${lat.toFixed(5)}, ${lon.toFixed(5)}` : '';
  } catch {
    return '';
  }
}

/** The last FLEET_HOURS hours as `YYYY-MM-DDTHH` slots, from the view's `dt` (YYYY-MM-DD) and `hour` (HH). */
export function lastHours(rows: readonly Record<string, unknown>[], now: Date): FleetView['hours'] {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const slot = `${r.dt}T${String(r.hour).padStart(2, '0')}`;
    counts.set(slot, (counts.get(slot) ?? 0) + Number(r.deliveries));
  }
  const end = Math.floor(now.getTime() / 3_600_000) * 3_600_000;
  return Array.from({ length: FLEET_HOURS }, (_, i) => {
    const hour = new Date(end - (FLEET_HOURS - 1 - i) * 3_600_000).toISOString().slice(0, 13);
    return { hour, deliveries: counts.get(hour) ?? 0 };
  });
}

function isMissingModule(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') && /@duckdb/.test(String(e.message));
}
