/**
 * Prints the size of each Lambda bundle in the last `cdk synth` output (cdk.out), minified and gzipped.
 *
 *   npx cdk synth --quiet && npm run -s bench:bundles
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';

const out = path.join(__dirname, '..', 'cdk.out');
const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
for (const [name, artifact] of Object.entries<{ type: string; properties?: { templateFile?: string } }>(manifest.artifacts)) {
  if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
  const template = JSON.parse(readFileSync(path.join(out, artifact.properties.templateFile), 'utf8'));
  console.log(`stack ${name}`);
  for (const [id, resource] of Object.entries<{ Type: string; Properties: { Code: { S3Key: string } } }>(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const hash = resource.Properties.Code.S3Key.replace(/\.zip$/, '');
    const code = readFileSync(path.join(out, `asset.${hash}`, 'index.js'));
    console.log(
      `  ${id.padEnd(62)} ${(code.length / 1024).toFixed(1).padStart(6)} KiB minified  ${(gzipSync(code).length / 1024).toFixed(1).padStart(5)} KiB gzip`,
    );
  }
}
