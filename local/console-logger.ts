/**
 * A human-readable CoreLogger for the local tools: one line per event, identifiers only, never bodies.
 * Every message and value has its control characters escaped, so no value (an unsigned `eventType`
 * with a newline in it, say) can start a line of its own and pass for another log entry.
 */
import { escapeControl } from '../lambda/core/log-safe';
import type { CoreLogger } from '../lambda/core/logger';

export function consoleLogger(options: { quiet?: boolean } = {}): CoreLogger {
  const line = (level: string, message: string, extra: Record<string, unknown>[]) => {
    const fields = Object.assign({}, ...extra) as Record<string, unknown>;
    const text = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v instanceof Error ? v.message : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    return escapeControl(`${new Date().toISOString()} ${level.padEnd(5)} ${message}${text ? `  ${text}` : ''}`);
  };
  return {
    // Locally every accepted delivery is worth seeing.
    debug: (m, ...e) => {
      if (!options.quiet) console.log(line('info', m, e));
    },
    info: (m, ...e) => {
      if (!options.quiet) console.log(line('info', m, e));
    },
    warn: (m, ...e) => console.warn(line('warn', m, e)),
    error: (m, ...e) => console.error(line('error', m, e)),
  };
}
