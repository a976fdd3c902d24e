/**
 * The functions deploy the handlers prebuilt by scripts/build-handlers.ts: synthesis bundles nothing,
 * and what each function's asset holds is exactly the prebuilt, minified bundle with its source map.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { HANDLER_NAMES } from '../../lambda/contract';
import { SmartcarWebhooksStack } from '../../lib/smartcar-webhooks-stack';
import { SDK_BUNDLED } from '../../scripts/build-handlers';

const DIST = path.join(__dirname, '..', '..', 'dist', 'handlers');

it('each function deploys its prebuilt handler, minified, with a source map; only the verification function carries its own SDK', () => {
  const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-assets-')) });
  // With the state table on, every handler is deployed by some function.
  const stack = new SmartcarWebhooksStack(app, 'Assets', { settings: { vehicleStateTable: true } });
  const assembly = app.synth();
  const template = JSON.parse(readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8'));
  const functions = Object.values<{ Type: string; Properties: { Code: { S3Key: string }; Handler: string } }>(
    template.Resources,
  ).filter((r) => r.Type === 'AWS::Lambda::Function');
  expect(functions).toHaveLength(HANDLER_NAMES.length);
  const prebuilt = new Map(
    HANDLER_NAMES.map((name) => [readFileSync(path.join(DIST, name, 'index.js'), 'utf8'), name]),
  );
  const deployed = new Set<string>();
  for (const fn of functions) {
    expect(fn.Properties.Handler).toBe('index.handler');
    const asset = path.join(assembly.directory, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
    const code = readFileSync(path.join(asset, 'index.js'), 'utf8');
    const name = prebuilt.get(code);
    expect(name).toBeDefined();
    deployed.add(name as string);
    if (SDK_BUNDLED.includes(name as string)) {
      // Its own SDK clients (a faster cold start, bench:coldstart), tree-shaken: nothing left to the runtime.
      // (Only the optional CRT signer for SigV4a stays a guarded require, as in the SDK itself.)
      expect(
        (code.match(/require\("@aws-sdk\/[^"]+"\)/g) ?? []).filter((r) => !r.includes('signature-v4-crt')),
      ).toEqual([]);
      expect(code).toContain('SendMessage');
      expect(code.length).toBeLessThan(600 * 1024);
    } else {
      expect(code.length).toBeLessThan(200 * 1024); // the runtime's SDK
      expect(code).toContain('require("@aws-sdk/');
    }
    expect(code).toMatch(/sourceMappingURL=index\.js\.map/);
    expect(readFileSync(path.join(asset, 'index.js.map'), 'utf8')).not.toContain(path.join(__dirname, '..', '..'));
  }
  expect([...deployed].sort()).toEqual([...HANDLER_NAMES].sort());
});
