/**
 * Source maps without their cost on the hot path. `--enable-source-maps` makes Node read and parse the
 * bundle's map at load, which every cold start of the verification function would pay (about 15 ms);
 * instead, the rare error that is logged has its stack mapped on the spot: the map is read once, on
 * the first error, with Node's own `SourceMap` class (node:module), and frames of the bundle become
 * `lambda/core/receive.ts:176:17`. Frames of other files, and stacks when no map is found, stay as they are.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import type { CoreLogger } from '../core/logger';

const maps = new Map<string, SourceMap | null>();

function mapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null; // no map beside the file (tests run the sources): stacks stay as they are
    }
    maps.set(file, map);
  }
  return map;
}

/** `stack` with every frame in `file` replaced by its original source position. */
export function mapStack(stack: string, file: string): string {
  if (!stack.includes(file)) return stack;
  const map = mapOf(file);
  if (!map) return stack;
  return stack
    .split('\n')
    .map((line) =>
      line.replace(/(\(?)([^\s()]+):(\d+):(\d+)(\)?)$/, (whole, open, path, row, column, close) => {
        if (path !== file) return whole;
        const entry = map.findEntry(Number(row) - 1, Number(column) - 1) as {
          originalSource?: string;
          originalLine?: number;
          originalColumn?: number;
        };
        if (entry.originalSource === undefined || entry.originalLine === undefined) return whole;
        const source = entry.originalSource.replace(/^(\.\.\/)+/, '');
        return `${open}${source}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}${close}`;
      }),
    )
    .join('\n');
}

/** Maps, in place, the stack of an `error` attribute (and its causes) of what is about to be logged. */
export function mapErrorStacks(extra: Record<string, unknown>, file: string): void {
  let error = extra.error;
  for (let depth = 0; error instanceof Error && depth < 5; depth++) {
    if (typeof error.stack === 'string') error.stack = mapStack(error.stack, file);
    error = error.cause;
  }
}

/** A CoreLogger whose warnings and errors carry mapped stacks; `file` is the bundle (its `__filename`). */
export function sourceMappedLogger(logger: CoreLogger, file: string): CoreLogger {
  const mapped =
    (log: (message: string, ...extra: Record<string, unknown>[]) => void) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      for (const e of extra) mapErrorStacks(e, file);
      log(message, ...extra);
    };
  return {
    debug: logger.debug?.bind(logger),
    info: logger.info.bind(logger),
    warn: mapped(logger.warn.bind(logger)),
    error: mapped(logger.error.bind(logger)),
  };
}
