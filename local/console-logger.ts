/** A human-readable CoreLogger for the local tools: one line per event, identifiers only, never bodies. */
import type { CoreLogger } from '../lambda/core/logger';

export function consoleLogger(options: { quiet?: boolean } = {}): CoreLogger {
  const line = (level: string, message: string, extra: Record<string, unknown>[]) => {
    const fields = Object.assign({}, ...extra) as Record<string, unknown>;
    const text = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v instanceof Error ? v.message : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    return `${new Date().toISOString()} ${level.padEnd(5)} ${message}${text ? `  ${text}` : ''}`;
  };
  return {
    info: (m, ...e) => {
      if (!options.quiet) console.log(line('info', m, e));
    },
    warn: (m, ...e) => console.warn(line('warn', m, e)),
    error: (m, ...e) => console.error(line('error', m, e)),
  };
}
