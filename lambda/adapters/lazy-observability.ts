/**
 * The verification function's logger and metrics, loaded on first use. Its success path logs nothing
 * (accepted deliveries only at DEBUG) and counts nothing, so a cold start that answers a genuine delivery
 * never loads Powertools' Logger or Metrics (about 17 ms of module loading at full speed, seven times that
 * on a 256 MB function's CPU share): the first warning, error or metric loads them, with the context of
 * the invocation they belong to. Same output as the eager ones (adapters/logger.ts, adapters/metrics.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import type { CoreLogger } from '../core/logger';
import type { CoreMetrics } from '../core/metrics';

/**
 * Whether Powertools could write DEBUG records, in its own order of precedence: Lambda's advanced logging
 * level, then POWERTOOLS_LOG_LEVEL, then LOG_LEVEL; a debug sample rate above 0 may turn DEBUG on for an
 * invocation, so it counts too (the Logger then decides, as the eager one would).
 */
function debugEnabled(): boolean {
  const env = process.env;
  const level = (env.AWS_LAMBDA_LOG_LEVEL || env.POWERTOOLS_LOG_LEVEL || env.LOG_LEVEL || '').toUpperCase();
  return level === 'DEBUG' || level === 'TRACE' || Number(env.POWERTOOLS_LOGGER_SAMPLE_RATE) > 0;
}

export interface LazyLogger extends CoreLogger {
  /** The invocation's context (request id, function name), for this and later records. */
  addContext(context: Context): void;
  /** Whether the Logger has been loaded (tests and the cold start benchmark look). */
  readonly loaded: boolean;
}

export function lazyLogger(): LazyLogger {
  let real: Logger | undefined;
  let context: Context | undefined;
  const load = (): Logger => {
    if (!real) {
      const { createLogger } = require('./logger') as typeof import('./logger');
      real = createLogger();
      if (context) real.addContext(context);
    }
    return real;
  };
  const debug = debugEnabled();
  return {
    debug: (message, ...extra) => {
      if (debug) load().debug(message, ...extra);
    },
    info: (message, ...extra) => load().info(message, ...extra),
    warn: (message, ...extra) => load().warn(message, ...extra),
    error: (message, ...extra) => load().error(message, ...extra),
    addContext(c) {
      context = c;
      real?.addContext(c);
    },
    get loaded() {
      return real !== undefined;
    },
  };
}

export interface LazyMetrics extends CoreMetrics {
  /** Writes what was counted in this invocation (embedded metric format on stdout), if anything was. */
  publish(): void;
  readonly loaded: boolean;
}

export function lazyMetrics(): LazyMetrics {
  let real: typeof import('./metrics') | undefined;
  const load = () => {
    real ??= require('./metrics') as typeof import('./metrics');
    return real;
  };
  return {
    count: (name, value, dimensions) => load().coreMetrics.count(name, value, dimensions),
    milliseconds: (name, value) => load().coreMetrics.milliseconds(name, value),
    publish() {
      if (real?.metrics.hasStoredMetrics()) real.metrics.publishStoredMetrics();
    },
    get loaded() {
      return real !== undefined;
    },
  };
}
