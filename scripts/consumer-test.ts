/**
 * The package as a platform team gets it. Builds and packs it, checks what the tarball holds, then makes a
 * fresh app the way `cdk init app --language typescript` does today (the CDK CLI in node_modules writes
 * it: tsx, TypeScript 7, `npx tsc && npx tsx bin/<app>.ts`), installs the tarball with the peers at the
 * lowest version we support, puts the README's usage example in as the app, and checks:
 * - `cdk synth` the way the template runs it (type-checked by TypeScript 7), the way older apps do
 *   (ts-node on TypeScript 5.9) and as plain CommonJS (node, no TypeScript): the same template, prebuilt
 *   handlers, nothing bundled, and the outputs the example turns on (the operations CLI reads them);
 * - the installed CLI: `npx smartcar-webhooks --help`, and `<command> --help` (usage, exit 0) and an
 *   unknown flag (usage, exit 2) for every command, with none of our dev dependencies installed;
 * - cdk-nag 2 (`Aspects`) and 3 (`Validations`): the construct's resources have no finding left, and the
 *   consumer's own bucket keeps its S1 finding (server access logs), unwaived.
 * Deploys nothing; prints its figures. Not part of `npm test` (it installs from the registry).
 *
 *   npm run test:consumer          (CI runs it; needs the npm registry or a warm npm cache)
 *   KEEP_CONSUMER=1 npm run test:consumer   keeps the app folder to look into
 */
import { spawn, spawnSync } from 'node:child_process';
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
import { COMMANDS } from '../cli/registry';
import { RESOURCE_NAMES } from '../cli/stack';
import { HANDLER_NAMES } from '../lambda/contract';

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const installed = (name: string) =>
  JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version as string;

/** The README example's stack, its construct's id and the output prefix it sets (checked below). */
const STACK = 'PlatformStack';
const CONSTRUCT_PATH = `/${STACK}/Smartcar/`;
const CONSUMER_BUCKET_PATH = `/${STACK}/Lake/Resource`;

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

/** The CDK CLI's environment here: no telemetry, no version check, CI mode. */
const ENV = { ...process.env, CI: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_DISABLE_VERSION_CHECK: 'true' };

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], cwd: string): Ran {
  const out = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: ENV, maxBuffer: 64 * 1024 * 1024 });
  if (out.error) fail(`${cmd} ${args.join(' ')} did not start: ${out.error.message}`);
  return { status: out.status, stdout: out.stdout, stderr: out.stderr };
}

/** `exec` without blocking: for the many short CLI runs, a few at a time. */
function execAsync(cmd: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `tasks` with at most `width` at once; the results in order. */
async function pool<T>(width: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return results;
}

function run(cmd: string, args: string[], cwd: string, stdoutOnly = false): string {
  const out = exec(cmd, args, cwd);
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
  const bins: string[] = Object.values(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {}));
  for (const required of [
    'package.json',
    'README.md',
    'CHANGELOG.md',
    'dist/lib/index.js',
    'dist/lib/index.d.ts',
    'dist/lambda/contract.js',
    ...bins.map((b) => path.posix.normalize(b)),
  ]) {
    check(files.includes(required), `the package lacks ${required}`);
  }
  for (const name of HANDLER_NAMES) {
    check(files.includes(`dist/handlers/${name}/index.js`), `the package lacks the prebuilt handler ${name}`);
    check(files.includes(`dist/handlers/${name}/index.js.map`), `the package lacks the source map of ${name}`);
  }
  const unwanted = files.filter(
    (f) =>
      /^(test|local|scripts|bin|lambda|lib|cli|cdk\.out|\.ci)\//.test(f) ||
      /fixtures|\.test\.|(?<!\.d)\.ts$|tsconfig|jest\.config|biome\.json|cdk\.json|package-lock/.test(f),
  );
  check(unwanted.length === 0, `the package ships files it should not: ${unwanted.join(', ')}`);
}

interface Template {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

function readTemplate(outdir: string): Template {
  return JSON.parse(readFileSync(path.join(outdir, `${STACK}.template.json`), 'utf8')) as Template;
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
  // The management token secret was brought, and reconcile is off (its client credentials' secret comes with
  // reconcile.enabled): no secret is created at all.
  const secrets = ofType('AWS::SecretsManager::Secret');
  check(secrets.length === 0, `${how}: a management token secret was created although one was brought`);
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

/**
 * The outputs the example turns on (`outputs: { prefix }`): keys `<prefix><Name>`, each Description
 * starting with the marker the CLI finds them by, and what the deployed commands need among them.
 */
function checkOutputs(template: Template, example: string, how: string): number {
  const prefix = /outputs:\s*\{\s*prefix:\s*'([A-Za-z0-9]*)'/.exec(example)?.[1];
  check(prefix !== undefined, "the README example does not turn the construct's outputs on (outputs: { prefix })");
  const marker = `[smartcar-webhooks:${prefix || 'default'}] `;
  const ours = Object.entries(template.Outputs ?? {}).filter(([, o]) => o.Description?.startsWith(marker));
  const keys = new Set(ours.map(([k]) => k));
  const stray = [...keys].filter((k) => !k.startsWith(prefix as string));
  check(stray.length === 0, `${how}: outputs marked ${marker.trim()} without the prefix: ${stray.join(', ')}`);
  // Every resource the CLI knows but the opt-in ones the example leaves off: the deduplication table, the
  // error callback, the dashboard and reconcile's client-credentials secret (they come with their features).
  const optIn: readonly string[] = [
    'DedupTableName',
    'ErrorCallbackUrl',
    'DashboardName',
    'ClientCredentialsSecretName',
  ];
  for (const name of RESOURCE_NAMES.filter((n) => !optIn.includes(n))) {
    check(keys.has(`${prefix}${name}`), `${how}: no output ${prefix}${name} with the description marker ${marker}`);
  }
  check(
    template.Outputs?.[`${prefix}RawPrefix`]?.Value === 'smartcar/raw',
    `${how}: the ${prefix}RawPrefix output is not the example's rawPrefix`,
  );
  return keys.size;
}

/**
 * The installed CLI, as `npx` finds it in the app: the overview lists every command and each command's
 * `--help` prints its usage on stdout and exits 0 (through npx, as a reader would type them); an unknown
 * flag exits 2 with the usage on stderr, and `--version` is the package's (the same bin run directly,
 * which is what npx runs, without npx's second of start-up each). A few at a time.
 */
async function checkCli(app: string): Promise<string> {
  const npx = (args: string[]) => () => execAsync('npx', ['--no-install', 'smartcar-webhooks', ...args], app);
  const bin = (args: string[]) => () =>
    execAsync(path.join(app, 'node_modules', '.bin', 'smartcar-webhooks'), args, app);
  const [overview, version, ...perCommand] = await pool(4, [
    npx(['--help']),
    bin(['--version']),
    ...COMMANDS.flatMap((c) => [npx([c, '--help']), bin([c, '--no-such-flag'])]),
  ]);
  check(
    overview.status === 0 && /usage: smartcar-webhooks/.test(overview.stdout),
    `npx smartcar-webhooks --help: exit ${overview.status}, expected 0 with the usage on stdout:\n${overview.stdout}${overview.stderr}`,
  );
  const unlisted = COMMANDS.filter((c) => !new RegExp(`^\\s+${c}\\s`, 'm').test(overview.stdout));
  check(unlisted.length === 0, `npx smartcar-webhooks --help does not list ${unlisted.join(', ')}`);
  check(
    version.stdout.trim() === pkg.version,
    `smartcar-webhooks --version says ${version.stdout.trim()}, not ${pkg.version}`,
  );
  const firstLine = (r: Ran) => (r.stdout + r.stderr).trim().split('\n')[0];
  const problems: string[] = [];
  COMMANDS.forEach((command, i) => {
    const [help, bad] = perCommand.slice(2 * i, 2 * i + 2);
    if (help.status !== 0 || !new RegExp(`usage:.*\\b${command}\\b`).test(help.stdout))
      problems.push(
        `npx smartcar-webhooks ${command} --help: exit ${help.status}, expected 0 with its usage on stdout: ${firstLine(help)}`,
      );
    // The flag need not be named: rotate-token does not echo what might be a token.
    if (bad.status !== 2 || !new RegExp(`usage:.*\\b${command}\\b`).test(bad.stderr))
      problems.push(
        `smartcar-webhooks ${command} --no-such-flag: exit ${bad.status}, expected 2 with its usage on stderr: ${firstLine(bad)}`,
      );
  });
  check(problems.length === 0, `the installed CLI:\n  ${problems.join('\n  ')}`);
  return `npx smartcar-webhooks --help, and --help and an unknown flag for each of its ${COMMANDS.length} commands`;
}

/**
 * The local world from the installed package, end to end: `start` on a free port, then `send-event`
 * (a VERIFY challenge and a delivery) against it, and the delivery in the local lake. Everything the
 * commands need must be in the package (fixtures included), not in this repository.
 */
async function checkLocalRoundTrip(app: string): Promise<string> {
  const bin = path.join(app, 'node_modules', '.bin', 'smartcar-webhooks');
  const lake = path.join(app, 'local-lake');
  const server = spawn(bin, ['start', '--port', '0', '--lake-dir', lake], { cwd: app, env: ENV });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`start printed no callback URL in 20 s:\n${out}`)), 20_000);
      const onData = (d: Buffer) => {
        out += d;
        const m = /callback URL\s+(http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.once('exit', (code) => reject(new Error(`start exited (${code}) before listening:\n${out}`)));
    });
    for (const kind of ['verify', 'vehicle-state']) {
      const sent = await execAsync(bin, ['send-event', kind, '--url', url, '--lake-dir', lake], app);
      check(
        sent.status === 0 && /^ok /.test(sent.stdout),
        `smartcar-webhooks send-event ${kind} against the installed start: exit ${sent.status}\n${sent.stdout}${sent.stderr}`,
      );
    }
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  const stored = readdirSync(lake, { recursive: true }).filter((f) => String(f).endsWith('.ndjson.gz'));
  check(stored.length === 1, `the delivery sent to the installed start is not in its lake (${stored.length} objects)`);
  return 'start, send-event verify and vehicle-state from the installed bin: answered, and stored in the local lake';
}

/** A finding: the rule (`AwsSolutions-S1`) and the construct path of the resource it is on. */
interface Finding {
  readonly rule: string;
  readonly path: string;
}

/**
 * What cdk-nag said, judged: nothing unacknowledged on the construct's resources, the consumer bucket's
 * S1 reported and not acknowledged, and acknowledgements present (so the check ran on the construct).
 */
function judgeNag(how: string, open: Finding[], acknowledged: Finding[]): string {
  const onConstruct = open.filter((f) => f.path.startsWith(CONSTRUCT_PATH));
  check(
    onConstruct.length === 0,
    `${how}: findings on the construct's resources:\n${onConstruct.map((f) => `  ${f.rule} ${f.path}`).join('\n')}`,
  );
  check(
    open.some((f) => f.rule === 'AwsSolutions-S1' && f.path === CONSUMER_BUCKET_PATH),
    `${how}: the consumer's bucket (${CONSUMER_BUCKET_PATH}) has no open AwsSolutions-S1 finding: was it waived?\n` +
      `open: ${open.map((f) => `${f.rule} ${f.path}`).join(', ') || 'none'}`,
  );
  const waived = acknowledged.filter((f) => !f.path.startsWith(CONSTRUCT_PATH));
  check(
    waived.length === 0,
    `${how}: findings acknowledged on the consumer's resources:\n${waived.map((f) => `  ${f.rule} ${f.path}`).join('\n')}`,
  );
  check(acknowledged.length > 0, `${how}: no acknowledged finding at all: did the checks run on the construct?`);
  return `${how}: ${open.length} open finding(s), all on the consumer's resources; ${acknowledged.length} acknowledged on the construct's`;
}

/** cdk-nag 3: the validation report aws-cdk-lib writes into the assembly (synth fails on the open finding). */
function nag3Findings(outdir: string, output: string): { open: Finding[]; acknowledged: Finding[] } {
  const file = path.join(outdir, 'validation-report.json');
  check(existsSync(file), `cdk-nag 3: no validation report was written:\n${output}`);
  const report = JSON.parse(readFileSync(file, 'utf8')) as {
    pluginReports: {
      violations: { ruleName: string; violatingConstructs: { constructPath?: string }[] }[];
      suppressedViolations?: { ruleName: string; violatingConstructs?: { constructPath?: string }[] }[];
    }[];
  };
  const open: Finding[] = [];
  const acknowledged: Finding[] = [];
  for (const plugin of report.pluginReports) {
    for (const v of plugin.violations)
      for (const c of v.violatingConstructs) open.push({ rule: v.ruleName, path: `/${c.constructPath ?? '?'}` });
    for (const v of plugin.suppressedViolations ?? [])
      for (const c of v.violatingConstructs ?? [])
        acknowledged.push({ rule: v.ruleName, path: `/${c.constructPath ?? '?'}` });
  }
  return { open, acknowledged };
}

/**
 * cdk-nag 2: its error and warning annotations in the assembly (the stack's metadata file, or the manifest
 * in older assemblies) and the suppressions it honoured, from its CSV report.
 */
function nag2Findings(outdir: string, output: string): { open: Finding[]; acknowledged: Finding[] } {
  type Metadata = Record<string, { type: string; data: unknown }[]>;
  const manifest = JSON.parse(readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { metadata?: Metadata }>;
  };
  const metadataFile = path.join(outdir, `${STACK}.metadata.json`);
  const metadata: Metadata = existsSync(metadataFile)
    ? JSON.parse(readFileSync(metadataFile, 'utf8'))
    : (manifest.artifacts[STACK]?.metadata ?? {});
  const open: Finding[] = [];
  for (const [at, entries] of Object.entries(metadata))
    for (const e of entries) {
      const rule = /^(AwsSolutions-[A-Za-z0-9]+)/.exec(String(e.data))?.[1];
      if (rule && (e.type === 'aws:cdk:error' || e.type === 'aws:cdk:warning')) open.push({ rule, path: at });
    }
  // Named AwsSolutions-<stage>-<stack>-NagReport.csv (the stage is empty for a stack directly in the app).
  const report = readdirSync(outdir).find((f) => f.startsWith('AwsSolutions-') && f.endsWith(`${STACK}-NagReport.csv`));
  check(report, `cdk-nag 2: no AwsSolutions-…-${STACK}-NagReport.csv was written:\n${output}`);
  const csv = path.join(outdir, report as string);
  // Rule ID, Resource ID, Compliance, Exception Reason, Rule Level, Rule Info (quoted fields).
  const acknowledged = readFileSync(csv, 'utf8')
    .split('\n')
    .map((line) => [...line.matchAll(/"((?:[^"]|"")*)"/g)].map((m) => m[1]))
    .filter((f) => f[2] === 'Suppressed')
    .map((f) => ({ rule: f[0].replace(/\[.*$/, ''), path: `/${f[1]}` }));
  return { open, acknowledged };
}

const started = Date.now();
/** Each step's wall time, printed whether the test passes or fails. */
const figures: string[] = [];

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'consumer-'));
  const time = <T>(label: string, f: () => T): T => {
    const t0 = Date.now();
    const result = f();
    figures.push(`${label} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return result;
  };
  try {
    // 1. Build (what prepack runs), pack, and check the contents.
    time('build', () => run('npm', ['run', '-s', 'build'], ROOT));
    const packed = JSON.parse(
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT, true),
    )[0] as { filename: string; size: number; unpackedSize: number; files: { path: string }[] };
    checkContents(packed.files.map((f) => f.path));
    const tarball = path.join(work, packed.filename);

    // 2. A fresh app, as `cdk init app --language typescript` writes it today, without its test runner
    // (nothing here runs jest), with our package, the peers at the lowest version we support, both
    // cdk-nag lines, and ts-node on TypeScript 5.9 for the way older apps run.
    const app = path.join(work, 'app');
    mkdirSync(app);
    const cdk = path.join(ROOT, 'node_modules', '.bin', 'cdk');
    run(cdk, ['init', 'app', '--language', 'typescript', '--generate-only'], app);
    const cdkJson = JSON.parse(readFileSync(path.join(app, 'cdk.json'), 'utf8')) as { app: string };
    // Today `npx tsc && npx tsx bin/app.ts`; whatever it becomes, `cdk synth` below runs it as it is.
    check(cdkJson.app.includes('bin/app.ts'), `cdk init's app command does not run bin/app.ts: ${cdkJson.app}`);
    const appPkg = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8'));
    const typescript = appPkg.devDependencies.typescript as string;
    for (const dep of ['jest', '@swc/core', '@swc/jest']) delete appPkg.devDependencies[dep];
    rmSync(path.join(app, 'test'), { recursive: true, force: true });
    rmSync(path.join(app, 'jest.config.js'), { force: true });
    Object.assign(appPkg.dependencies, {
      [pkg.name]: `file:${tarball}`,
      'aws-cdk-lib': pkg.peerDependencies['aws-cdk-lib'].replace(/^\^/, ''),
      constructs: pkg.peerDependencies.constructs.replace(/^\^/, ''),
    });
    Object.assign(appPkg.devDependencies, {
      'cdk-nag': installed('cdk-nag'),
      'cdk-nag2': `npm:cdk-nag@${installed('cdk-nag2')}`,
      'ts-node': '^10.9.2',
      'typescript-5.9': `npm:typescript@${installed('typescript')}`,
    });
    writeFileSync(path.join(app, 'package.json'), `${JSON.stringify(appPkg, null, 2)}\n`);
    time('consumer npm install', () => run('npm', ['install', '--no-audit', '--no-fund'], app));
    const packageSize = dirSize(path.join(app, 'node_modules', pkg.name));
    // The CLI must work without our dev dependencies (it bundles the AWS SDK; DuckDB is the consumer's choice).
    for (const dev of ['@aws-sdk/client-s3', '@aws-sdk/client-cloudformation', '@duckdb/node-api'])
      check(!existsSync(path.join(app, 'node_modules', dev)), `${dev} was installed into the consumer app`);

    // 3. The README's example as the app, synthesized three ways.
    const example = readmeExample();
    writeFileSync(path.join(app, 'bin', 'app.ts'), example);
    const ts = require('typescript') as typeof import('typescript'); // this repository's, 5.9
    const cjs = ts.transpileModule(example, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    });
    check(
      /require\("@smartcar-webhooks\/cdk"\)/.test(cjs.outputText),
      'the CommonJS build does not require the package',
    );
    writeFileSync(path.join(app, 'bin', 'app.cjs'), cjs.outputText);
    // The nag apps: the example with a rule pack applied to its `app`, as each cdk-nag line documents.
    check(/^const app = new App\(/m.test(example), 'the README example does not name its App `app`');
    writeFileSync(
      path.join(app, 'bin', 'nag2.ts'),
      `${example}\nimport * as nagCore from 'aws-cdk-lib';\nimport * as nag2 from 'cdk-nag2';\n` +
        'nagCore.Aspects.of(app).add(new nag2.AwsSolutionsChecks());\n',
    );
    writeFileSync(
      path.join(app, 'bin', 'nag3.ts'),
      `${example}\nimport * as nagCore from 'aws-cdk-lib';\nimport * as nag3 from 'cdk-nag';\n` +
        'nagCore.Validations.of(app).addPlugins(new nag3.AwsSolutionsChecks(app));\n',
    );
    const synth = (how: string, command: string | undefined): Ran & { outdir: string } => {
      const outdir = path.join(app, `cdk.out.${how}`);
      const args = ['synth', '--quiet', '--no-notices', '--output', outdir, '--context', 'cli-telemetry=false'];
      const ran = time(`synth ${how}`, () =>
        exec('npx', ['cdk', ...args, ...(command ? ['--app', command] : [])], app),
      );
      return { ...ran, outdir };
    };
    let outputs = 0;
    for (const [label, how, command] of [
      ['init', `cdk init's app command (tsc ${typescript}, tsx)`, undefined],
      [
        'ts-node',
        `ts-node (TypeScript ${installed('typescript')})`,
        'npx ts-node --compiler typescript-5.9 --prefer-ts-exts bin/app.ts',
      ],
      ['cjs', 'plain CommonJS (node)', 'node bin/app.cjs'],
    ] as const) {
      const out = synth(label, command);
      const output = `${out.stdout}${out.stderr}`;
      check(out.status === 0, `${how}: cdk synth failed (${out.status}):\n${output}`);
      check(!/Bundling asset|esbuild|docker/i.test(output), `${how}: synth bundled something:\n${output}`);
      const template = readTemplate(out.outdir);
      checkTemplate(template, how);
      outputs = checkOutputs(template, example, how);
    }

    // 4. cdk-nag, both lines. Each synth fails, on the consumer bucket's open finding alone.
    const nag: string[] = [];
    for (const [label, how, findings] of [
      ['nag2', 'cdk-nag 2 (Aspects)', nag2Findings],
      ['nag3', 'cdk-nag 3 (Validations)', nag3Findings],
    ] as const) {
      const out = synth(label, `npx tsx bin/${label}.ts`);
      const output = `${out.stdout}${out.stderr}`;
      check(out.status !== 0, `${how}: synth passed although the consumer's bucket has an S1 finding:\n${output}`);
      const { open, acknowledged } = findings(out.outdir, output);
      nag.push(judgeNag(how, open, acknowledged));
    }

    // 5. The installed operations CLI.
    const cliStarted = Date.now();
    const cli = await checkCli(app);
    const roundTrip = await checkLocalRoundTrip(app);
    figures.push(`CLI ${((Date.now() - cliStarted) / 1000).toFixed(1)} s`);

    console.log(`consumer test passed (${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
    console.log(
      `  tarball ${packed.filename}: ${packed.files.length} files, ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
    );
    console.log(`  installed package size: ${(packageSize / 1024).toFixed(0)} KiB (node_modules/${pkg.name})`);
    console.log(
      `  the app: cdk init app --language typescript (aws-cdk ${installed('aws-cdk')}): "${cdkJson.app}", TypeScript ${typescript}`,
    );
    console.log(`  ${outputs} outputs with the marker in each template; ${cli}: as documented`);
    console.log(`  ${roundTrip}`);
    for (const line of nag) console.log(`  ${line}`);
    console.log(`  times: ${figures.join(', ')}`);
  } finally {
    if (!process.env.KEEP_CONSUMER) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`consumer test FAILED: ${(err as Error).message}`);
    console.error(`  after ${((Date.now() - started) / 1000).toFixed(0)} s; times: ${figures.join(', ')}`);
    process.exit(1);
  });
}
