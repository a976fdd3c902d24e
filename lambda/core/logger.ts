/**
 * The logging surface the cores need. Powertools' Logger satisfies it in Lambda; the local tools pass a
 * console-backed one. Cores log identifiers and outcomes, never bodies, tokens or signatures.
 */
export interface CoreLogger {
  /** Per-request detail, off by default in AWS (every log byte is billed): POWERTOOLS_LOG_LEVEL=DEBUG shows it. */
  debug?(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}
