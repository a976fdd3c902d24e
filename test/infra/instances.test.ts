/**
 * Two instances of the construct in one stack, and one in another stack of the same account: every
 * physical name the templates give a resource is used once (cfn-lint's E3019, checked here across both
 * stacks at once; cfn-lint itself runs on the default template in stack.test.ts), and synthesis says
 * nothing (no warning, no error, no cdk-nag finding). The first instance of a stack keeps the name it had
 * before names were derived from the construct's path, so an existing deployment replaces nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgeNagFindings } from '../../lib/nag-acknowledgements';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';

type Resource = { Type: string; Properties?: Record<string, unknown> };

/** Properties ending in `Name` that are not the resource's name, and types whose `Name` is only a label. */
const NOT_NAMES = new Set(['MetricName', 'DisplayName']);
const LABELS = new Set(['AWS::Athena::NamedQuery', 'AWS::ApiGatewayV2::Api', 'AWS::ApiGatewayV2::Stage']);

/**
 * Every literal a template gives a resource as its physical name: top-level properties named `Name` or
 * `…Name` (DatabaseName, WorkGroup Name, BucketName, …) and the `Name` inside `…Input` blocks (Glue's
 * DatabaseInput, TableInput), keyed by resource type, since a name has to be unique only among resources
 * of one type (and a Glue table only within its database).
 */
function physicalNames(template: { Resources: Record<string, Resource> }): string[] {
  const names: string[] = [];
  for (const r of Object.values(template.Resources)) {
    const p = r.Properties ?? {};
    if (LABELS.has(r.Type)) continue;
    if (r.Type === 'AWS::Glue::Table') {
      const t = p.TableInput as { Name: string };
      names.push(`${r.Type} ${JSON.stringify(p.DatabaseName)}.${t.Name}`);
      continue;
    }
    for (const [key, value] of Object.entries(p)) {
      if (typeof value === 'string' && /Name$/.test(key) && !NOT_NAMES.has(key)) names.push(`${r.Type} ${value}`);
      const input = value as { Name?: unknown };
      if (/Input$/.test(key) && typeof input?.Name === 'string') names.push(`${r.Type} ${input.Name}`);
    }
  }
  return names;
}

const app = new App({
  outdir: mkdtempSync(path.join(tmpdir(), 'cdk-instances-')),
  context: { 'aws:cdk:bundling-stacks': [] },
});
const platform = new Stack(app, 'Platform');
const production = new SmartcarWebhooks(platform, 'Production', {});
const staging = new SmartcarWebhooks(platform, 'Staging', {});
const other = new Stack(app, 'OtherBrand');
const brand = new SmartcarWebhooks(other, 'Smartcar', {});
for (const w of [production, staging, brand]) acknowledgeNagFindings(w);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
const assembly = app.synth();
const templates = [platform, other].map((s) => Template.fromStack(s));

it('gives each instance its own database and workgroup, the first of a stack keeping the stack-derived name', () => {
  expect(production.catalog.databaseName).toBe('platform');
  expect(brand.catalog.databaseName).toBe('otherbrand');
  expect(staging.catalog.databaseName).toMatch(/^platform_staging_[0-9a-f]{8}$/);
  const databases = templates.flatMap((t) =>
    Object.values(t.findResources('AWS::Glue::Database')).map((r) => r.Properties.DatabaseInput.Name),
  );
  const workGroups = templates.flatMap((t) =>
    Object.values(t.findResources('AWS::Athena::WorkGroup')).map((r) => r.Properties.Name),
  );
  expect(new Set(databases).size).toBe(3);
  expect(new Set(workGroups).size).toBe(3);
  // The statements and grants of each instance use its own database.
  templates[0].hasResourceProperties('AWS::Glue::Table', {
    DatabaseName: staging.catalog.databaseName,
    TableInput: Match.objectLike({ Name: 'deliveries' }),
  });
});

it('uses no physical name twice across both stacks', () => {
  const names = templates.flatMap((t) => physicalNames(t.toJSON() as { Resources: Record<string, Resource> }));
  for (const w of [production, staging, brand]) {
    expect(names).toContain(`AWS::Glue::Database ${w.catalog.databaseName}`);
    expect(names).toContain(`AWS::Athena::WorkGroup ${w.catalog.databaseName.replace(/_/g, '-')}`);
  }
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  expect(twice).toEqual([]);
});

it('synthesizes without a warning, an error or an unacknowledged cdk-nag finding', () => {
  for (const stack of [platform, other]) {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  }
  expect(assembly.stacks.length).toBe(2);
});

it('takes names from props, and refuses a database name another instance of the stack already uses', () => {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Named');
  const a = new SmartcarWebhooks(stack, 'A', {
    catalog: { databaseName: 'fleet_a', workGroupName: 'fleet-a-queries' },
  });
  expect(a.catalog.databaseName).toBe('fleet_a');
  Template.fromStack(stack).hasResourceProperties('AWS::Athena::WorkGroup', { Name: 'fleet-a-queries' });
  expect(() => new SmartcarWebhooks(stack, 'B', { catalog: { databaseName: 'fleet_a' } })).toThrow(
    /databaseName "fleet_a" is already used by Named\/A/,
  );
  expect(() => new SmartcarWebhooks(stack, 'C', { catalog: { workGroupName: 'bad name' } })).toThrow(/workGroupName/);
});
