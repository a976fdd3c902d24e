/**
 * The curated layer in the template: its Glue tables, the compaction state machine (its Athena statements,
 * parsed, in order, with the run id and lookback of each execution), its schedule, grants and alarm; and
 * the synthesized definition run in-process (test/support/jsonata-machine.ts) against fakes of Athena,
 * DynamoDB and CloudWatch: one run at a time, the lease given back whatever happens, its own run id per
 * execution, late raw objects counted and published.
 */

import { RemovalPolicy } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import jsonata from 'jsonata';
import { Parser } from 'node-sql-parser';
import { Compaction } from '../../lib/compaction';
import {
  athenaCompactionStatements,
  athenaLateObjectsSelect,
  CURATED_DELIVERY_COLUMNS,
  CURATED_SIGNAL_COLUMNS,
} from '../../lib/queries';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { runJsonataMachine, StatesError, type TaskCall } from '../support/jsonata-machine';
import { bareStack, synthStack } from '../support/synth';

const { template } = synthStack();

interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Arguments?: { QueryString?: string };
  Assign?: Record<string, string>;
  Choices?: { Condition: string; Next: string }[];
  Branches?: { StartAt: string; States: Record<string, AslState> }[];
}
interface Asl {
  StartAt: string;
  States: Record<string, AslState>;
  QueryLanguage?: string;
}

/** A template value as the deployed definition would read: refs by logical id, the partition as aws. */
function resolve(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v.Ref === 'AWS::Partition') return 'aws';
  if (v.Ref === 'AWS::Region') return 'us-east-1';
  if (v.Ref === 'AWS::AccountId') return '123456789012';
  if (typeof v.Ref === 'string') return v.Ref;
  if (Array.isArray(v['Fn::GetAtt'])) return (v['Fn::GetAtt'] as string[]).join('.');
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}

function definition(): Asl {
  const [machine] = Object.entries(template.findResources('AWS::StepFunctions::StateMachine')).filter(([id]) =>
    id.startsWith('SmartcarWebhooksCompaction'),
  );
  const parts = machine[1].Properties.DefinitionString['Fn::Join'][1] as unknown[];
  return JSON.parse(parts.map(resolve).join(''));
}

/** The SQL a state's `{% … %}` QueryString evaluates to for a run id and lookback. */
async function evaluate(expression: string, run: string, lookback: number): Promise<string> {
  const body = /^\{%([\s\S]*)%\}$/.exec(expression)?.[1];
  if (!body) throw new Error(`not a JSONata expression: ${expression.slice(0, 40)}`);
  return jsonata(body).evaluate({}, { run, lookback });
}

const asl = definition();
// The statements run inside the Parallel state whose Catch gives the lock back.
const branch = (asl.States.Compact?.Branches?.[0] ?? asl) as Asl;
const order: string[] = [];
for (let name: string | undefined = branch.StartAt; name; ) {
  const state: AslState = branch.States[name];
  if (state.Arguments?.QueryString) order.push(name);
  name = state.Type === 'Choice' ? state.Choices?.[0].Next : state.Next;
}

describe('compaction state machine', () => {
  it('is JSONata, names the run from the execution, takes the lock, and runs the statements in order', () => {
    expect(asl.QueryLanguage).toBe('JSONata');
    expect(asl.States[asl.StartAt].Assign?.run).toContain('$hash($states.context.Execution.Id');
    expect(asl.States['Take the lock'].Next).toBe('Compact');
    expect(order).toEqual([
      'Claim closed hours',
      'Curate their events',
      'Extract their signals',
      'Commit the run',
      'Count late raw objects',
    ]);
  });

  it('sends exactly the statements the shared SQL builds, each of which Athena can parse', async () => {
    const window = { lookbackDays: 2, settleMinutes: 60 };
    const expected = [
      ...athenaCompactionStatements('teststack', window, 'run_42'),
      athenaLateObjectsSelect('teststack', window),
    ];
    const parser = new Parser();
    for (const [i, name] of order.entries()) {
      const sql = await evaluate(branch.States[name].Arguments?.QueryString as string, 'run_42', 2);
      expect(sql).toBe(expected[i]);
      expect(() => parser.astify(sql, { database: 'athena' })).not.toThrow();
    }
    expect(expected[0]).toContain('"$path"');
    expect(expected[0]).toContain("date_add('day', -(2), current_date)");
    expect(expected[1]).toMatch(/^INSERT INTO "teststack"."curated_deliveries"/);
    expect(expected[1]).toContain('NOT EXISTS'); // events an earlier run curated are left out
    expect(expected[3]).toMatch(/^INSERT INTO "teststack"."compaction_commits" VALUES \('run_42'/);
    // Late objects: the 14 days before the lookback window, not every day of the raw zone.
    expect(expected[4]).toContain("r.dt >= date_format(date_add('day', -(2 + 14), current_date)");
    expect(expected[4]).toContain("r.dt < date_format(date_add('day', -(2), current_date)");
  });

  it('fails a run when a statement fails, and polls the others until they finish', () => {
    for (const name of order) {
      const choice = branch.States[`${name}: finished?`];
      expect(choice.Type).toBe('Choice');
      expect(choice.Choices?.map((c) => c.Condition)).toEqual([
        "{% $state = 'SUCCEEDED' %}",
        "{% $state in ['FAILED', 'CANCELLED'] %}",
      ]);
      expect(choice.Choices?.[1].Next).toBe('A statement failed');
    }
  });

  it('refuses run ids that could end a SQL string, and lookbacks that are not whole days', () => {
    expect(() => athenaCompactionStatements('db', { lookbackDays: 1, settleMinutes: 0 }, "x' OR '1")).toThrow(/run id/);
    expect(() => athenaCompactionStatements('db', { lookbackDays: '1; DROP', settleMinutes: 0 }, 'r')).toThrow(
      /lookbackDays/,
    );
    expect(() => athenaCompactionStatements('db', { lookbackDays: 1.5, settleMinutes: 0 }, 'r')).toThrow(
      /lookbackDays/,
    );
  });
});

/**
 * Fakes of what the state machine calls: Athena (each query succeeds unless held or failed; the late
 * count answers `late`), the lock table (conditional writes as DynamoDB evaluates the two conditions the
 * machine uses) and CloudWatch.
 */
function fakeAws() {
  const queries: { execution: string; sql: string; id: string }[] = [];
  const metrics: unknown[] = [];
  const lock = new Map<string, Record<string, { S?: string; N?: string }>>();
  let held: Promise<void> | undefined;
  let release = () => {};
  const fail = new Set<string>();
  const state = new Map<string, string>();
  const aws = {
    queries,
    metrics,
    lock,
    late: { objects: '0', oldest: undefined as string | undefined },
    /** Queries started from now on stay RUNNING until `go()`. */
    hold() {
      held = new Promise((r) => {
        release = r;
      });
    },
    go: () => release(),
    /** Statements whose SQL starts with this fail. */
    failing: (prefix: string) => fail.add(prefix),
    async handler(call: TaskCall): Promise<unknown> {
      const action = call.resource.split(':').pop();
      const checkFailed = () =>
        new StatesError('DynamoDB.ConditionalCheckFailedException', 'The conditional request failed');
      switch (action) {
        case 'startQueryExecution': {
          const id = `q${queries.length + 1}`;
          const sql = call.args.QueryString as string;
          queries.push({ execution: call.executionName, sql, id });
          state.set(id, [...fail].some((p) => sql.startsWith(p)) ? 'FAILED' : 'SUCCEEDED');
          if (held) {
            const h = held;
            state.set(`${id}:held`, 'yes');
            h.then(() => state.delete(`${id}:held`));
          }
          return { QueryExecutionId: id };
        }
        case 'getQueryExecution': {
          const id = call.args.QueryExecutionId as string;
          return { QueryExecution: { Status: { State: state.has(`${id}:held`) ? 'RUNNING' : state.get(id) } } };
        }
        case 'getQueryResults':
          return {
            ResultSet: {
              Rows: [
                { Data: [{ VarCharValue: 'objects' }, { VarCharValue: 'oldest' }] },
                {
                  Data: [{ VarCharValue: aws.late.objects }, aws.late.oldest ? { VarCharValue: aws.late.oldest } : {}],
                },
              ],
            },
          };
        case 'putMetricData':
          metrics.push(call.args);
          return {};
        case 'putItem': {
          const item = lock.get(call.args.Item.pk.S);
          if (call.args.ConditionExpression !== 'attribute_not_exists(pk) OR expiresAt < :now')
            throw new Error(`unexpected condition ${call.args.ConditionExpression}`);
          const now = Number(call.args.ExpressionAttributeValues[':now'].N);
          if (item && !(Number(item.expiresAt.N) < now)) throw checkFailed();
          lock.set(call.args.Item.pk.S, call.args.Item);
          return {};
        }
        case 'getItem': {
          const item = lock.get(call.args.Key.pk.S);
          return item ? { Item: item } : {};
        }
        case 'deleteItem': {
          const item = lock.get(call.args.Key.pk.S);
          if (call.args.ConditionExpression !== '#owner = :run') throw new Error('unexpected condition');
          if (!item || item.owner.S !== call.args.ExpressionAttributeValues[':run'].S) throw checkFailed();
          lock.delete(call.args.Key.pk.S);
          return {};
        }
        default:
          throw new Error(`no fake for ${call.resource}`);
      }
    },
  };
  return aws;
}

/** Waits, without a fixed sleep, until `ready` holds. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !ready(); i++) await new Promise((r) => setImmediate(r));
  if (!ready()) throw new Error('condition never held');
}

const run = (aws: ReturnType<typeof fakeAws>, executionName: string, input: unknown = {}) =>
  runJsonataMachine({ definition: asl, input, executionName, handler: (call) => aws.handler(call) });

const runIdOf = (sql: string) => /'([A-Za-z0-9_-]+)' AS run_id/.exec(sql)?.[1];

describe('the deployed definition, run in-process', () => {
  it('runs one compaction at a time: a second run fails at once, saying which run holds the lock, and touches nothing', async () => {
    const aws = fakeAws();
    aws.hold();
    const first = run(aws, 'scheduled-1');
    await until(() => aws.queries.length === 1);
    const second = run(aws, 'manual-1');
    await expect(second).rejects.toMatchObject({
      error: 'Compaction.AlreadyRunning',
      cause: expect.stringMatching(
        /^Another compaction run holds the lock \(arn:.*:scheduled-1\) until it ends, at the latest \d{4}-.*; this run did nothing\.$/,
      ),
    });
    expect(aws.queries.filter((q) => q.execution === 'manual-1')).toEqual([]);
    aws.go();
    const output = await first;
    expect(output).toMatchObject({ lookbackDays: 2, lateRawObjects: 0 });
    expect(aws.queries.filter((q) => q.execution === 'scheduled-1')).toHaveLength(5);
    // Given back: the next run goes ahead.
    expect(aws.lock.size).toBe(0);
    await expect(run(aws, 'scheduled-2')).resolves.toMatchObject({ lateRawObjects: 0 });
  });

  it('gives the lock back when a statement fails, and fails with that statement', async () => {
    const aws = fakeAws();
    aws.failing('INSERT INTO "teststack"."curated_deliveries"');
    await expect(run(aws, 'failing')).rejects.toMatchObject({
      error: 'Athena.QueryFailed',
      cause: 'Statement Curate their events ended FAILED: see its query in the Athena console',
    });
    expect(aws.lock.size).toBe(0);
    expect(aws.queries.map((q) => q.sql.slice(0, 40))).not.toContainEqual(
      expect.stringContaining('compaction_commits" VALUES'),
    );
  });

  it('takes over a lease that expired (a run that was stopped or timed out)', async () => {
    const aws = fakeAws();
    aws.lock.set('compaction', {
      pk: { S: 'compaction' },
      owner: { S: 'crashed' },
      execution: { S: 'arn:crashed' },
      expiresAt: { N: String(Date.now() - 1) },
    });
    await expect(run(aws, 'after-a-crash')).resolves.toMatchObject({ lateRawObjects: 0 });
    expect(aws.lock.size).toBe(0);
  });

  it('gives every execution its own run id, also for names that sanitize alike', async () => {
    const aws = fakeAws();
    for (const name of ['run.1', 'run_1', 'run:1']) await run(aws, name);
    const ids = new Set(
      aws.queries
        .filter((q) => q.sql.startsWith('INSERT INTO "teststack"."compacted_objects"'))
        .map((q) => runIdOf(q.sql)),
    );
    expect(ids.size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^run_1-[0-9a-f]{16}$/);
  });

  it('counts late raw objects and publishes the count; a run with a wider lookback compacts them', async () => {
    const aws = fakeAws();
    aws.late = { objects: '3', oldest: '2026-11-01' };
    await expect(run(aws, 'daily')).resolves.toMatchObject({ lateRawObjects: 3, oldestLateDay: '2026-11-01' });
    expect(aws.metrics).toEqual([
      {
        Namespace: 'SmartcarWebhooks',
        MetricData: [
          {
            MetricName: 'LateRawObjects',
            Dimensions: [{ Name: 'service', Value: 'TestStack' }],
            Value: 3,
            Unit: 'Count',
          },
        ],
      },
    ]);
    await run(aws, 'catch-up', { lookbackDays: 30 });
    const claim = aws.queries.filter((q) => q.execution === 'catch-up')[0].sql;
    expect(claim).toContain("date_add('day', -(30), current_date)");
  });

  it('refuses a lookback that is not a whole number of days, before taking the lock', async () => {
    for (const lookbackDays of ['30', 0, 2.5, 100000]) {
      const aws = fakeAws();
      await expect(run(aws, 'bad', { lookbackDays })).rejects.toMatchObject({ error: 'Compaction.BadInput' });
      expect(aws.queries).toEqual([]);
      expect(aws.lock.size).toBe(0);
    }
  });
});

it('has a lock table that keeps nothing but a lease', () => {
  template.hasResourceProperties('AWS::DynamoDB::Table', {
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
  const [lock] = Object.entries(template.findResources('AWS::DynamoDB::Table')).filter(([id]) =>
    id.includes('CompactionLock'),
  );
  expect(lock[1].DeletionPolicy).toBe('Delete');
});

it('runs daily, ENABLED by default, and alarms on a failed, timed-out or aborted run and on late raw objects', () => {
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: 'rate(1 day)',
    State: 'ENABLED',
    Target: Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('CompactionStateMachine') } }),
  });
  // Inside SmartcarWebhooks, a failed, timed-out or aborted run is a notification on the alarm topic (free).
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: Match.objectLike({
      detail: {
        status: ['FAILED', 'TIMED_OUT', 'ABORTED'],
        stateMachineArn: [{ Ref: Match.stringLikeRegexp('CompactionStateMachine') }],
      },
    }),
    Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') } })],
  });
  // On its own, the construct keeps its alarm (three metrics), unless told not to.
  const alone = (failedRunsAlarm?: boolean) => {
    const stack = bareStack();
    const w = new SmartcarWebhooks(stack, 'W', {});
    const c = new Compaction(stack, 'Alone', {
      catalog: w.catalog,
      bucket: w.dataLake.bucket,
      logRetention: 30,
      logRemovalPolicy: RemovalPolicy.DESTROY,
      failedRunsAlarm,
    });
    return c.failedAlarm;
  };
  expect(alone()).toBeDefined();
  expect(alone(false)).toBeUndefined();
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'LateRawObjects',
    Statistic: 'Maximum',
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
