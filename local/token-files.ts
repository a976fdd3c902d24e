/**
 * The local receiver's management token across rotations, kept beside the local lake the way Secrets
 * Manager keeps it in AWS: `.dev-management-token` is the current token (what `send-event` signs with),
 * `.dev-management-token.previous` the one it replaced and when. `npm run rotate-token -- --lake-dir`
 * writes both; the receiver reads them through the same RotatingTokens core as the Lambda function.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_TOKEN_GRACE_SECONDS } from '../lambda/contract';
import type { TokenSource } from '../lambda/core/receive';
import { RotatingTokens } from '../lambda/core/rotating-tokens';
import { TokenNotConfiguredError } from '../lambda/core/token-cache';

export const DEV_TOKEN_FILE = '.dev-management-token';
export const PREVIOUS_TOKEN_FILE = '.dev-management-token.previous';

interface PreviousToken {
  token: string;
  replacedAt: string;
}

async function readText(file: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}

async function readPrevious(lakeDir: string): Promise<PreviousToken | undefined> {
  const text = await readText(path.join(lakeDir, PREVIOUS_TOKEN_FILE));
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as PreviousToken;
    return typeof value.token === 'string' && typeof value.replacedAt === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A token that never changes (SMARTCAR_MANAGEMENT_TOKEN): nothing to refresh, no previous one. */
export function fixedToken(token: string): TokenSource {
  return { get: async () => token, refresh: async () => undefined, previous: async () => undefined };
}

/** The lake folder's current and previous tokens; re-read every few seconds (files cost nothing). */
export function fileTokens(
  lakeDir: string,
  graceMs = DEFAULT_TOKEN_GRACE_SECONDS * 1000,
  now?: () => number,
): RotatingTokens {
  return new RotatingTokens(
    async () => {
      const token = await readText(path.join(lakeDir, DEV_TOKEN_FILE));
      if (!token) throw new TokenNotConfiguredError(`no token in ${path.join(lakeDir, DEV_TOKEN_FILE)}`);
      const previous = await readPrevious(lakeDir);
      return { token, since: previous ? Date.parse(previous.replacedAt) : undefined };
    },
    async () => (await readPrevious(lakeDir))?.token,
    // Reading a file costs nothing: re-read on every failed signature (no flood protection needed here).
    { ttlMs: 2000, minRefreshIntervalMs: 0, failureBackoffMs: 0, graceMs, now },
  );
}

/** Makes `token` the lake folder's current token and keeps the one it replaces as the previous one. */
export async function rotateFileToken(lakeDir: string, token: string, at = new Date()): Promise<{ replaced: boolean }> {
  await mkdir(lakeDir, { recursive: true });
  const current = await readText(path.join(lakeDir, DEV_TOKEN_FILE));
  if (current === token) return { replaced: false };
  if (current) {
    const previous: PreviousToken = { token: current, replacedAt: at.toISOString() };
    await writeAtomically(path.join(lakeDir, PREVIOUS_TOKEN_FILE), JSON.stringify(previous));
  }
  await writeAtomically(path.join(lakeDir, DEV_TOKEN_FILE), `${token}\n`);
  return { replaced: current !== undefined };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600, flush: true });
  await rename(tmp, file);
}
