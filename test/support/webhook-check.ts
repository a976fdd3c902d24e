/** Webhook health checks as the local reconcile keeps them, for the fleet views' tests. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A workflow directory of its own holding one check of webhook wh-1 (and its transient-failure count). */
export function storedCheck(healthy: boolean): string {
  const workflowDir = mkdtempSync(path.join(tmpdir(), 'inspector-workflow-'));
  const dir = path.join(workflowDir, 'reconcile', 'webhooks');
  mkdirSync(dir, { recursive: true });
  const webhook = {
    id: 'wh-1',
    status: healthy ? 'enabled' : 'disabled',
    verified: null,
    callbackUrl: 'https://example.com/webhook',
    errorCallbackUrl: null,
    autoEnroll: false,
  };
  const problems = healthy ? [] : ['the webhook is disabled, not enabled'];
  writeFileSync(
    path.join(dir, 'wh-1.json'),
    JSON.stringify({ checkedAt: '2026-12-04T00:00:00.000Z', webhook, health: { healthy, problems } }),
  );
  writeFileSync(path.join(dir, 'wh-1.failures.json'), JSON.stringify({ transientFailures: 0, lastFailureAt: null }));
  return workflowDir;
}
