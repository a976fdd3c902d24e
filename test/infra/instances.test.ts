/**
 * Two instances of the construct in one stack, and one in another stack of the same account: every
 * physical name the templates give a resource is used once (cfn-lint's E3019, checked here across both
 * stacks at once; cfn-lint itself runs on the default template in stack.test.ts), and synthesis says
 * nothing (no warning, no error, no cdk-nag finding). The first instance of a stack keeps the name it had
 * before names were derived from the construct's path, so an existing deployment replaces nothing. Each
 * instance publishes its metrics under its own `service` and its alarms and dashboard watch only those;
 * each emits its outputs under its own prefix (the third emits none: its alarms name explicit flags).
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
// The dashboard and the fleet check on: their SEARCH and alarm must name their own instance's service too.
const watched = { monitoring: { dashboard: true }, fleetCheck: { enabled: true } };
const production = new SmartcarWebhooks(platform, 'Production', { outputs: { prefix: 'Prod' }, ...watched });
const staging = new SmartcarWebhooks(platform, 'Staging', { outputs: { prefix: 'Staging' }, ...watched });
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

/** A value with its `Fn::Join`s joined and any other token shown as `<token>`. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  return join ? join[1].map(flatten).join(join[0]) : '<token>';
}

/** Every `service` a resource names: metric dimensions, SEARCH expressions, PutMetricData in a definition. */
function servicesIn(resource: unknown): Set<string> {
  const text = JSON.stringify(resource, (_k, v) => (v && typeof v === 'object' && 'Fn::Join' in v ? flatten(v) : v));
  const found = new Set<string>();
  const patterns = [
    /"Name\\*":\\*"service\\*",\\*"Value\\*":\\*"([^"\\]+)/g,
    /service=\\*"([^"\\]+)/g,
    /\\*"service\\*",\\*"([^"\\]+)\\*"(?!:)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.add(m[1]);
  return found;
}

describe('metrics per instance', () => {
  const t = templates[0];
  /** The instance a resource of the Platform stack belongs to, by its logical id. */
  const owner = (logicalId: string) => [production, staging].find((w) => logicalId.startsWith(w.node.id));

  it('gives each instance its own service name, the first of a stack keeping the stack name', () => {
    expect(production.serviceName).toBe('Platform');
    expect(staging.serviceName).toMatch(/^Platform-Staging-[0-9a-f]{8}$/);
    expect(brand.serviceName).toBe('OtherBrand');
  });

  /** The services the resources of each instance name, by the instance's id. */
  const servicesBy = (found: [string, Iterable<string>][]) => {
    const by = new Map<string, Set<string>>();
    for (const [id, services] of found) {
      const key = owner(id)?.node.id ?? `no instance: ${id}`;
      by.set(key, new Set([...(by.get(key) ?? []), ...services]));
    }
    return by;
  };
  /** Each instance names its own service only: production the stack name, staging a name of its own. */
  const expectOwn = (by: Map<string, Set<string>>) =>
    expect(Object.fromEntries([...by].map(([id, services]) => [id, [...services]]))).toEqual({
      Production: ['Platform'],
      Staging: [expect.stringMatching(/^Platform-Staging-[0-9a-f]{8}$/)],
    });

  it("publishes each function's metrics under its own instance's service", () => {
    const fns = Object.entries(t.findResources('AWS::Lambda::Function'));
    expect(fns.length).toBeGreaterThanOrEqual(16);
    expectOwn(servicesBy(fns.map(([id, fn]) => [id, [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME]])));
  });

  it("alarms, charts and state machines name only their own instance's service", () => {
    const found: [string, Set<string>][] = [];
    for (const type of ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard', 'AWS::StepFunctions::StateMachine']) {
      for (const [id, resource] of Object.entries(t.findResources(type))) {
        const services = servicesIn(resource.Properties);
        if (services.size > 0) found.push([id, services]);
      }
    }
    expectOwn(servicesBy(found));
    // Per instance: 6 alarms on the functions' metrics (DeliveryStreamRefusing among them), the late-objects
    // and the silent-vehicles alarms, the dashboard (its SEARCH included), and the fleet check's and the
    // compaction's state machines.
    expect(found.length).toBe(2 * 11);
  });
});

describe('outputs', () => {
  it('emits both instances side by side, each key with its prefix and each description with its marker', () => {
    const outputs = templates[0].findOutputs('*');
    for (const [prefix, w] of [
      ['Prod', production],
      ['Staging', staging],
    ] as const) {
      expect(outputs[`${prefix}CallbackUrl`].Description).toMatch(new RegExp(`^\\[smartcar-webhooks:${prefix}\\] `));
      expect(outputs[`${prefix}GlueDatabase`].Value).toBe(w.catalog.databaseName);
      expect(outputs[`${prefix}RotateTokenCommand`].Value).toEqual({
        'Fn::Join': [
          '',
          ['npx smartcar-webhooks rotate-token --stack ', { Ref: 'AWS::StackName' }, ` --instance ${prefix}`],
        ],
      });
    }
    expect(Object.keys(outputs).filter((k) => !/^(Prod|Staging)/.test(k))).toEqual([]);
    expect(Object.keys(outputs).filter((k) => k.startsWith('Prod')).length).toBe(
      Object.keys(outputs).filter((k) => k.startsWith('Staging')).length,
    );
  });

  it("names the instance in its alarms' commands: by stack and prefix, or by explicit flags without outputs", () => {
    const mismatch = (tpl: Template) =>
      Object.values(tpl.findResources('AWS::CloudWatch::Alarm'))
        .filter((a) => a.Properties.MetricName === 'SignatureMismatches')
        .map((a) => flatten(a.Properties.AlarmDescription));
    expect(mismatch(templates[0]).sort()).toEqual([
      expect.stringContaining('`npx smartcar-webhooks rotate-token --stack Platform --instance Prod`'),
      expect.stringContaining('`npx smartcar-webhooks rotate-token --stack Platform --instance Staging`'),
    ]);
    expect(templates[1].findOutputs('*')).toEqual({});
    expect(mismatch(templates[1])).toEqual([
      expect.stringContaining('`npx smartcar-webhooks rotate-token --secret-id <token> --recover-function <token>`'),
    ]);
  });

  it("keeps every alarm description within CloudWatch's 1024 characters, with names as long as AWS makes them", () => {
    // A deploy-time value (an ARN, a queue URL, a generated name) at its longest realistic length.
    const longest = 140;
    for (const tpl of templates) {
      for (const alarm of Object.values(tpl.findResources('AWS::CloudWatch::Alarm'))) {
        const text = flatten(alarm.Properties.AlarmDescription);
        const length = text.replace(/<token>/g, '').length + (text.match(/<token>/g) ?? []).length * longest;
        expect(length).toBeLessThanOrEqual(1024);
        expect(text).not.toMatch(/npm run|README|stack outputs/);
      }
    }
  });
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

it('refuses, in one line, an outputs prefix another instance of the stack already uses', () => {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Twice');
  new SmartcarWebhooks(stack, 'A', { outputs: { prefix: 'Eu' } });
  expect(() => new SmartcarWebhooks(stack, 'B', { outputs: { prefix: 'Eu' } })).toThrow(
    /^outputs.prefix "Eu" is already used by Twice\/A in stack Twice; give each instance its own\.$/,
  );
});

it('refuses, in one line, a prefix whose output keys meet another instance’s ("State" + DeadLetterQueueUrl)', () => {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Meet');
  new SmartcarWebhooks(stack, 'A', { outputs: { prefix: '' }, vehicleStateTable: true });
  expect(() => new SmartcarWebhooks(stack, 'B', { outputs: { prefix: 'State' } })).toThrow(
    /^outputs.prefix "State" of Meet\/B makes the output StateDeadLetterQueueUrl, which stack Meet already has \(another output of that id\); choose another prefix\.$/,
  );
});
