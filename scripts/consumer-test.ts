/**
 * The package as a platform team gets it: build and `npm pack`, check what the tarball holds, install it
 * into a fresh CDK app in a temporary folder (with aws-cdk-lib, constructs and the CDK CLI, and no
 * esbuild), and `cdk synth` the README's usage example three ways: ts-node (the `cdk init app` default),
 * tsx, and compiled to plain CommonJS. Each template is checked; the figures are printed.
 *
 *   npm run test:consumer          (CI runs it; needs the npm registry or a warm npm cache)
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HANDLER_NAMES } from '../lambda/contract';

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const installed = (name: string) =>
  JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

function fail(message: string): never {
  throw new Error(message);
}

function check(condition: unknown, message: string): void {
  if (!condition) fail(message);
}

/** The TypeScript app between the README's consumer-app markers. */
export function readmeExample(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- consumer-app:start -->\s*```ts\n([\s\S]*?)```\s*<!-- consumer-app:end -->/.exec(readme);
  if (!m) fail('README.md has no ```ts block between <!-- consumer-app:start --> and <!-- consumer-app:end -->');
  return m[1];
}

function run(cmd: string, args: string[], cwd: string, stdoutOnly = false): string {
  const out = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  if (out.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${out.status}):\n${out.stdout}\n${out.stderr}`);
  return stdoutOnly ? out.stdout : `${out.stdout}${out.stderr}`;
}

function dirSize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirSize(p) : statSync(p).size;
  }
  return total;
}

/** What the tarball must and must not hold. */
function checkContents(files: string[]): void {
  for (const required of [
    'package.json',
    'README.md',
    'CHANGELOG.md',
    'dist/lib/index.js',
    'dist/lib/index.d.ts',
    'dist/lambda/contract.js',
  ]) {
    check(files.includes(required), `the package lacks ${required}`);
  }
  for (const name of HANDLER_NAMES) {
    check(files.includes(`dist/handlers/${name}/index.js`), `the package lacks the prebuilt handler ${name}`);
    check(files.includes(`dist/handlers/${name}/index.js.map`), `the package lacks the source map of ${name}`);
  }
  const unwanted = files.filter(
    (f) =>
      /^(test|local|scripts|bin|lambda|lib|cdk\.out|\.ci)\//.test(f) ||
      /fixtures|\.test\.|(?<!\.d)\.ts$|tsconfig|jest\.config|biome\.json|cdk\.json|package-lock/.test(f),
  );
  check(unwanted.length === 0, `the package ships files it should not: ${unwanted.join(', ')}`);
}

interface Template {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
}

function checkTemplate(template: Template, how: string): void {
  const resources = Object.values(template.Resources);
  const ofType = (type: string) => resources.filter((r) => r.Type === type);
  const functions = ofType('AWS::Lambda::Function');
  check(
    // The README app turns the state table on, so every prebuilt handler is deployed once.
    functions.length === HANDLER_NAMES.length,
    `${how}: ${functions.length} functions, expected ${HANDLER_NAMES.length}`,
  );
  for (const fn of functions) {
    const p = fn.Properties as { Runtime: string; Architectures: string[]; Handler: string };
    check(
      p.Runtime === 'nodejs22.x' && p.Architectures[0] === 'arm64',
      `${how}: a function is not nodejs22.x on arm64`,
    );
    check(p.Handler === 'index.handler', `${how}: a function does not run the prebuilt index.handler`);
  }
  // The management token secret was brought; the only secret created is the reconcile client credentials' placeholder.
  const secrets = ofType('AWS::SecretsManager::Secret');
  check(
    secrets.length === 1 && JSON.stringify(secrets[0].Properties).includes('client credentials'),
    `${how}: a management token secret was created although one was brought`,
  );
  check(
    ofType('AWS::S3::Bucket').length === 4,
    `${how}: expected the app's lake bucket plus the work, Athena results and quarantine buckets`,
  );
  const ingest = functions.find((f) => JSON.stringify(f.Properties).includes('LAKE_RAW_PREFIX'));
  check(
    JSON.stringify(ingest?.Properties).includes('"LAKE_RAW_PREFIX":"smartcar/raw"'),
    `${how}: rawPrefix did not reach the ingest function`,
  );
  const secretArn = JSON.stringify(template).includes('platform/smartcar/management-token');
  check(secretArn, `${how}: the brought secret is not referenced`);
}

function main(): void {
  const started = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'consumer-'));
  try {
    // 1. Build (what prepack runs), pack, and check the contents.
    run('npm', ['run', '-s', 'build'], ROOT);
    const packed = JSON.parse(
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT, true),
    )[0] as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    };
    checkContents(packed.files.map((f) => f.path));
    const tarball = path.join(work, packed.filename);

    // 2. A fresh CDK app: the tarball, the peers at the lowest version we support, the CLI, and both TS runners.
    const app = path.join(work, 'app');
    mkdirSync(path.join(app, 'bin'), { recursive: true });
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'consumer-app', version: '0.0.0', private: true }),
    );
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        // What `cdk init app --language typescript` writes, in short.
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['es2022'],
          strict: true,
          esModuleInterop: true,
          skipLibCheck: true,
          types: ['node'],
        },
        exclude: ['node_modules', 'cdk.out'],
      }),
    );
    const installStarted = Date.now();
    run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        tarball,
        `aws-cdk-lib@${pkg.peerDependencies['aws-cdk-lib'].replace(/^\^/, '')}`,
        `constructs@${pkg.peerDependencies.constructs.replace(/^\^/, '')}`,
        `aws-cdk@${installed('aws-cdk')}`,
        `typescript@${installed('typescript')}`,
        'ts-node@^10.9.2',
        `@types/node@${installed('@types/node')}`,
      ],
      app,
    );
    const installSeconds = (Date.now() - installStarted) / 1000;
    check(!existsSync(path.join(app, 'node_modules', 'esbuild')), 'esbuild was installed into the consumer app');
    const packageSize = dirSize(path.join(app, 'node_modules', pkg.name));

    // 3. The README's example, run three ways.
    const example = readmeExample();
    writeFileSync(path.join(app, 'bin', 'app.ts'), example);
    const ts = require(path.join(app, 'node_modules', 'typescript')) as typeof import('typescript');
    const cjs = ts.transpileModule(example, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    });
    check(/require\("@smartcar-webhooks\/cdk"\)/.test(cjs.outputText), 'the CommonJS build does not require the package');
    writeFileSync(path.join(app, 'bin', 'app.cjs'), cjs.outputText);
    const ways: [string, string][] = [
      ['ts-node', 'npx ts-node --prefer-ts-exts bin/app.ts'],
      ['CommonJS', 'node bin/app.cjs'],
      ['tsx', 'npx tsx bin/app.ts'],
    ];
    const timings: string[] = [];
    for (const [how, command] of ways) {
      // tsx runs on esbuild: it is added last, after the other two have synthesized without any esbuild.
      if (how === 'tsx') run('npm', ['install', '--no-audit', '--no-fund', `tsx@${installed('tsx')}`], app);
      const out = path.join(app, `cdk.out.${how}`);
      const t0 = Date.now();
      const output = run(
        path.join(app, 'node_modules', '.bin', 'cdk'),
        ['synth', '--quiet', '--no-notices', '--app', command, '--output', out, '--context', 'cli-telemetry=false'],
        app,
      );
      const seconds = (Date.now() - t0) / 1000;
      check(!/Bundling asset|esbuild|docker/i.test(output), `${how}: synth bundled something:\n${output}`);
      checkTemplate(JSON.parse(readFileSync(path.join(out, 'PlatformStack.template.json'), 'utf8')) as Template, how);
      timings.push(`${how} ${seconds.toFixed(1)} s`);
    }

    console.log(`consumer test passed (${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
    console.log(
      `  tarball ${packed.filename}: ${packed.files.length} files, ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
    );
    console.log(`  installed package size: ${(packageSize / 1024).toFixed(0)} KiB (node_modules/${pkg.name})`);
    console.log(
      `  consumer npm install: ${installSeconds.toFixed(1)} s; ts-node and CommonJS synthesized with no esbuild installed`,
    );
    console.log(`  consumer cdk synth: ${timings.join(', ')}`);
  } finally {
    if (!process.env.KEEP_CONSUMER) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(`consumer test FAILED: ${(err as Error).message}`);
    process.exit(1);
  }
}
