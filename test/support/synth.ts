/**
 * Synthesizes the stack the way `cdk synth` does for infrastructure tests. The default stack is
 * synthesized once per test run (test/support/global-setup.ts) and read back by every file that asks
 * for it; stacks with other props are synthesized where they are needed.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Aspects, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecks2 } from 'cdk-nag2';
import { SmartcarWebhooksStack, type SmartcarWebhooksStackProps } from '../../lib/smartcar-webhooks-stack';

/**
 * The functions deploy prebuilt handlers, so synthesis bundles nothing; this context also skips staging
 * (copying) their assets where a test only reads the template.
 */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/** Environment variable naming the folder that holds the default stack's synthesis. */
export const CACHE_ENV = 'SMARTCAR_TEST_SYNTH_CACHE';

export interface Synthesized {
  readonly template: Template;
  readonly templateFile: string;
  /** cdk-nag's report: every violation and every acknowledged one. */
  readonly validationReport: ValidationReport;
}

export interface ValidationReport {
  pluginReports: {
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: { ruleName: string; reason: string; acknowledgedId: string }[];
  }[];
}

export function synthStack(props?: SmartcarWebhooksStackProps): Synthesized {
  const cache = process.env[CACHE_ENV];
  if (props === undefined && cache && existsSync(`${cache}/template.json`)) {
    return {
      template: Template.fromJSON(JSON.parse(readFileSync(`${cache}/template.json`, 'utf8'))),
      templateFile: `${cache}/template.json`,
      validationReport: JSON.parse(readFileSync(`${cache}/validation-report.json`, 'utf8')),
    };
  }
  return synthesize(props ?? {});
}

/** Synthesizes the default stack into a new folder and returns the folder (for the global setup). */
export function synthAndCache(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdk-default-'));
  const synthesized = synthesize({});
  copyFileSync(synthesized.templateFile, path.join(dir, 'template.json'));
  writeFileSync(path.join(dir, 'validation-report.json'), JSON.stringify(synthesized.validationReport));
  return dir;
}

function synthesize(props: SmartcarWebhooksStackProps): Synthesized {
  const stack = defaultStack(props);
  const app = stack.node.root as App;
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth(); // throws on any unacknowledged cdk-nag finding
  const templateFile = path.join(assembly.directory, stack.templateFile);
  return {
    template: Template.fromJSON(JSON.parse(readFileSync(templateFile, 'utf8'))),
    templateFile,
    validationReport: JSON.parse(readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')),
  };
}

/** What cdk-nag 2 (applied the Aspects way) said about a stack: its findings, as `<path>: <message>`. */
export interface Nag2Findings {
  readonly template: Template;
  readonly errors: string[];
  readonly warnings: string[];
}

/**
 * Runs cdk-nag 2's AWS Solutions checks the way its users apply them (`Aspects.of(app).add(...)`) on
 * `stack`'s app and returns its findings; cdk-nag 2 reports through annotations and never fails synth.
 */
export function nag2Findings(stack: Stack): Nag2Findings {
  const app = stack.node.root as App;
  Aspects.of(app).add(new AwsSolutionsChecks2());
  const artifact = app.synth().getStackArtifact(stack.artifactId);
  const of = (level: string) =>
    artifact.messages
      .filter((m) => m.level === level && /AwsSolutions-/.test(String(m.entry.data)))
      .map((m) => `${m.id}: ${String(m.entry.data).split('\n')[0]}`);
  return { template: Template.fromJSON(artifact.template), errors: of('error'), warnings: of('warning') };
}

/** The default stack (or one with `props`) in an app of its own, not yet synthesized. */
export function defaultStack(props: SmartcarWebhooksStackProps = {}): SmartcarWebhooksStack {
  const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-test-')), context: NO_BUNDLING });
  return new SmartcarWebhooksStack(app, 'TestStack', props);
}

/** A bare stack for constructing SmartcarWebhooks directly (bring-your-own paths, prop validation). */
export function bareStack(): Stack {
  return new Stack(new App({ context: NO_BUNDLING }), 'Bare');
}
