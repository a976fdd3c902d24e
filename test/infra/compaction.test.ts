/**
 * The curated layer in the template: its Glue tables, the compaction state machine's four Athena
 * statements (parsed, in order, with the run id of each execution), its schedule, grants and alarm.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { Parser } from 'node-sql-parser';
import { athenaCompactionStatements, CURATED_DELIVERY_COLUMNS, CURATED_SIGNAL_COLUMNS } from '../../lib/queries';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { bareStack, synthStack } from '../support/synth';

const { template } = synthStack();

interface AslState {
  Type: string;
  Next?: string;
  Arguments?: { QueryString?: string };
  Assign?: Record<string, string>;
  Choices?: { Condition: string; Next: string }[];
}

function definition(): { StartAt: string; States: Record<string, AslState>; QueryLanguage?: string } {
  const [machine] = Object.entries(template.findResources('AWS::StepFunctions::StateMachine')).filter(([id]) =>
    id.startsWith('SmartcarWebhooksCompaction'),
  );
  const parts = machine[1].Properties.DefinitionString['Fn::Join'][1] as unknown[];
  return JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'REF')).join(''));
}

/** The SQL a JSONata `{% "…" & $run & "…" %}` expression evaluates to for a given run id. */
function evaluate(expression: string, run: string): string {
  const body = /^\{% (.*) %\}$/s.exec(expression)?.[1];
  if (!body) throw new Error(`not a JSONata expression: ${expression.slice(0, 40)}`);
  return body
    .split(' & $run & ')
    .map((literal) => JSON.parse(literal) as string)
    .join(run);
}

describe('compaction state machine', () => {
  const asl = definition();
  const order: string[] = [];
  for (let name: string | undefined = asl.StartAt; name; ) {
    const state: AslState = asl.States[name];
    if (state.Arguments?.QueryString) order.push(name);
    name = state.Type === 'Choice' ? state.Choices?.[0].Next : state.Next;
  }

  it('is JSONata, names the run from the execution with only safe characters, and runs four statements in order', () => {
    expect(asl.QueryLanguage).toBe('JSONata');
    expect(asl.States[asl.StartAt].Assign?.run).toBe(
      "{% $replace($states.context.Execution.Name, /[^A-Za-z0-9_-]/, '_') %}",
    );
    expect(order).toEqual(['Claim closed hours', 'Curate their events', 'Extract their signals', 'Commit the run']);
  });

  it('sends exactly the statements the shared SQL builds, each of which Athena can parse', () => {
    const expected = athenaCompactionStatements('teststack', { lookbackDays: 2, settleMinutes: 60 }, 'run_42');
    const parser = new Parser();
    order.forEach((name, i) => {
      const sql = evaluate(asl.States[name].Arguments?.QueryString as string, 'run_42');
      expect(sql).toBe(expected[i]);
      expect(() => parser.astify(sql, { database: 'athena' })).not.toThrow();
    });
    expect(expected[0]).toContain('"$path"');
    expect(expected[1]).toMatch(/^INSERT INTO "teststack"."curated_deliveries"/);
    expect(expected[1]).toContain('NOT EXISTS'); // events an earlier run curated are left out
    expect(expected[3]).toMatch(/^INSERT INTO "teststack"."compaction_commits" VALUES \('run_42'/);
  });

  it('fails a run when a statement fails, and polls the others until they finish', () => {
    for (const name of order) {
      const choice = asl.States[`${name}: finished?`];
      expect(choice.Type).toBe('Choice');
      expect(choice.Choices?.map((c) => c.Condition)).toEqual([
        "{% $state = 'SUCCEEDED' %}",
        "{% $state in ['FAILED', 'CANCELLED'] %}",
      ]);
      expect(choice.Choices?.[1].Next).toBe('A statement failed');
    }
  });

  it('refuses run ids that could end a SQL string', () => {
    expect(() => athenaCompactionStatements('db', { lookbackDays: 1, settleMinutes: 0 }, "x' OR '1")).toThrow(/run id/);
  });
});

it('runs daily, ENABLED by default, and alarms on a failed run', () => {
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: 'rate(1 day)',
    State: 'ENABLED',
    Target: Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('CompactionStateMachine') } }),
  });
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ExecutionsFailed',
    Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: Match.stringLikeRegexp('CompactionStateMachine') } }],
    AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
  });
});

it('registers the curated tables as Parquet under the curated prefix, partitioned for the views', () => {
  const table = (name: string) =>
    Object.values(template.findResources('AWS::Glue::Table')).find((t) => t.Properties.TableInput.Name === name)
      ?.Properties.TableInput;
  const deliveries = table('curated_deliveries');
  expect(deliveries.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
    'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
  );
  expect(JSON.stringify(deliveries.StorageDescriptor.Location)).toContain('/curated/deliveries/');
  expect(deliveries.PartitionKeys.map((k: { Name: string }) => k.Name)).toEqual(['event_type', 'mode', 'dt']);
  expect(deliveries.StorageDescriptor.Columns).toEqual(
    CURATED_DELIVERY_COLUMNS.map(([Name, Type]) => ({ Name, Type })),
  );
  expect(table('curated_signals').StorageDescriptor.Columns).toEqual(
    CURATED_SIGNAL_COLUMNS.map(([Name, Type]) => ({ Name, Type })),
  );
  expect(table('compacted_objects').PartitionKeys).toEqual([]);
  expect(table('compaction_commits')).toBeDefined();
});

it('writes only under the curated prefix and adds partitions only to the curated tables', () => {
  const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.includes('Compaction'))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
  const writes = statements.filter((s) => ([] as string[]).concat(s.Action).includes('s3:PutObject'));
  expect(writes.length).toBeGreaterThan(0);
  // Athena's query results go to the results bucket; in the lake bucket it writes the curated layer only.
  const lake = writes
    .flatMap((s) => ([] as unknown[]).concat(s.Resource))
    .filter((r) => JSON.stringify(r).includes('DataLakeBucket'));
  expect(lake.length).toBeGreaterThan(0);
  for (const r of lake) expect(JSON.stringify(r)).toContain('/curated/*');
  const partitions = statements.find((s) => ([] as string[]).concat(s.Action).includes('glue:BatchCreatePartition'));
  const tables = JSON.stringify(partitions?.Resource);
  for (const name of ['curated_deliveries', 'curated_signals', 'compacted_objects', 'compaction_commits'])
    expect(tables).toContain(`table/teststack/${name}`);
  expect(tables).not.toContain('table/teststack/deliveries"');
});

it('checks its options', () => {
  expect(() => new SmartcarWebhooks(bareStack(), 'W', { compaction: { lookbackDays: 0 } })).toThrow(
    /compaction.lookbackDays/,
  );
  expect(() => new SmartcarWebhooks(bareStack(), 'W', { curatedPrefix: 'a b' })).toThrow(/curatedPrefix/);
});
