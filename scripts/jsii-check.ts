/**
 * Compiles the public API with jsii, the compiler that lets a release ship Python, Java, .NET and Go
 * bindings. It runs in a staging folder holding only what the package's entry point reaches (lib/ and
 * lambda/contract.ts), so jsii's own tsconfig and strictness apply there and nowhere else.
 *
 *   npm run jsii      (exit 0 and "jsii: OK" when the API is jsii-compatible; jsii's diagnostics otherwise)
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');

export function jsiiCheck(): { ok: boolean; output: string; types: string[] } {
  const { stage, ok: compiled, output: jsiiOutput } = compileInStage();
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const assembly = compiled ? JSON.parse(readFileSync(path.join(stage, '.jsii'), 'utf8')) : undefined;
    const types = assembly ? Object.keys(assembly.types ?? {}).map((t) => t.replace(`${pkg.name}.`, '')) : [];
    const undocumented = assembly ? undocumentedProps(assembly) : [];
    const output = [jsiiOutput, ...undocumented.map((u) => `undocumented: ${u}`)].join('\n');
    return { ok: compiled && undocumented.length === 0, output: output.trim(), types };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Stages the public API (with the package's own name and peers) and compiles it with jsii; on success the
 * stage holds the `.jsii` assembly, which `npm run docs:api` renders. The caller removes `stage`.
 */
export function compileInStage(): { stage: string; ok: boolean; output: string } {
  const stage = mkdtempSync(path.join(tmpdir(), 'jsii-'));
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    cpSync(path.join(ROOT, 'lib'), path.join(stage, 'lib'), { recursive: true });
    mkdirSync(path.join(stage, 'lambda'));
    cpSync(path.join(ROOT, 'lambda', 'contract.ts'), path.join(stage, 'lambda', 'contract.ts'));
    cpSync(path.join(ROOT, 'README.md'), path.join(stage, 'README.md'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
    const optional = pkg.peerDependenciesMeta ?? {};
    const requiredPeers = Object.fromEntries(
      Object.entries<string>(pkg.peerDependencies).filter(([name]) => !optional[name]?.optional),
    );
    writeFileSync(
      path.join(stage, 'package.json'),
      JSON.stringify(
        {
          name: pkg.name,
          version: pkg.version,
          description: pkg.description,
          license: pkg.license,
          author: pkg.author,
          repository: pkg.repository,
          main: 'lib/index.js',
          types: 'lib/index.d.ts',
          // Only the peers the API needs: an optional one (cdk-nag, detected at synth time) would become a
          // hard dependency of every language binding.
          peerDependencies: requiredPeers,
          // jsii wants the lowest version of each peer as a devDependency: the one the API is compiled against.
          devDependencies: Object.fromEntries(
            Object.entries<string>(requiredPeers).map(([name, range]) => [name, range.replace(/^[\^~]/, '')]),
          ),
          stability: 'experimental',
          jsii: { outdir: 'dist', targets: {} },
        },
        null,
        2,
      ),
    );
    const run = spawnSync(
      process.execPath,
      [path.join(ROOT, 'node_modules', 'jsii', 'bin', 'jsii'), stage, '--silence-warnings=reserved-word'],
      {
        cwd: stage,
        encoding: 'utf8',
      },
    );
    return { stage, ok: run.status === 0, output: `${run.stdout}${run.stderr}`.trim() };
  } catch (err) {
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
}

interface JsiiProperty {
  name: string;
  optional?: boolean;
  docs?: { summary?: string; default?: string };
}

/**
 * The house rule, checked on what jsii extracted: every property of every exported type has a summary,
 * and every optional property of a props or options interface says what happens without it (`@default`).
 */
function undocumentedProps(assembly: {
  types: Record<string, { kind: string; name: string; properties?: JsiiProperty[] }>;
}): string[] {
  const problems: string[] = [];
  for (const type of Object.values(assembly.types)) {
    for (const p of type.properties ?? []) {
      if (!p.docs?.summary) problems.push(`${type.name}.${p.name} has no summary`);
      if (type.kind === 'interface' && p.optional && !p.docs?.default)
        problems.push(`${type.name}.${p.name} has no @default`);
    }
  }
  return problems;
}

if (require.main === module) {
  const { ok, output, types } = jsiiCheck();
  if (output) console.log(output);
  console.log(ok ? `jsii: OK, ${types.length} types: ${types.sort().join(', ')}` : 'jsii: FAILED');
  process.exit(ok ? 0 : 1);
}
