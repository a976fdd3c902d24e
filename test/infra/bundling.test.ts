import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { SmartcarWebhooksStack } from '../../lib/smartcar-webhooks-stack';

it('bundles every function locally with esbuild (no Docker), minified, with the AWS SDK left to the runtime', () => {
  const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-bundle-')) });
  const stack = new SmartcarWebhooksStack(app, 'Bundled');
  const assembly = app.synth();
  const template = JSON.parse(readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8'));
  const functions = Object.values<{ Type: string; Properties: { Code: { S3Key: string } } }>(template.Resources).filter(
    (r) => r.Type === 'AWS::Lambda::Function',
  );
  expect(functions).toHaveLength(5);
  for (const fn of functions) {
    const code = readFileSync(
      path.join(assembly.directory, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`, 'index.js'),
      'utf8',
    );
    expect(code.length).toBeGreaterThan(1000);
    expect(code.length).toBeLessThan(200 * 1024); // the SDK is not bundled
    expect(code).toContain('require("@aws-sdk/');
    expect(code).toMatch(/sourceMappingURL=index\.js\.map/);
  }
});
