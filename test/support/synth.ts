/** Synthesizes the stack the way `cdk synth` does (bundling included) for infrastructure tests. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SmartcarWebhooksStack, type SmartcarWebhooksStackProps } from '../../lib/smartcar-webhooks-stack';

/**
 * Templates are asserted on without building the function bundles (`cdk synth` in CI builds them, and
 * test/infra/bundling.test.ts checks one build), which keeps the infrastructure tests fast.
 */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

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

export function synthStack(props: SmartcarWebhooksStackProps = {}): Synthesized {
  const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-test-')), context: NO_BUNDLING });
  const stack = new SmartcarWebhooksStack(app, 'TestStack', props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth(); // throws on any unacknowledged cdk-nag finding
  const templateFile = path.join(assembly.directory, stack.templateFile);
  return {
    template: Template.fromJSON(JSON.parse(readFileSync(templateFile, 'utf8'))),
    templateFile,
    validationReport: JSON.parse(readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')),
  };
}

/** A bare stack for constructing SmartcarWebhooks directly (bring-your-own paths, prop validation). */
export function bareStack(): Stack {
  return new Stack(new App({ context: NO_BUNDLING }), 'Bare');
}
