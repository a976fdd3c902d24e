/** The Athena query engine trace uses: start in the workgroup, poll to the end, read every page; a failure is one line. */
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { mockClient } from 'aws-sdk-client-mock';
import { athenaQueryEngine } from '../../cli/query-engine';

const athena = mockClient(AthenaClient);
beforeEach(() => athena.reset());

const engine = () => athenaQueryEngine({ workGroup: 'wg', database: 'db', athena: new AthenaClient({}), pollMs: 1 });

it('starts the query in the workgroup and database, polls until it succeeds, and reads every page', async () => {
  athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-1' });
  athena
    .on(GetQueryExecutionCommand)
    .resolvesOnce({ QueryExecution: { Status: { State: 'QUEUED' } } })
    .resolvesOnce({ QueryExecution: { Status: { State: 'RUNNING' } } })
    .resolves({ QueryExecution: { Status: { State: 'SUCCEEDED' } } });
  const meta = {
    ColumnInfo: [
      { Name: 'object', Type: 'varchar' },
      { Name: 'n', Type: 'varchar' },
    ],
  };
  athena
    .on(GetQueryResultsCommand, { QueryExecutionId: 'q-1', NextToken: undefined })
    .resolves({
      ResultSet: {
        ResultSetMetadata: meta as never,
        Rows: [
          { Data: [{ VarCharValue: 'object' }, { VarCharValue: 'n' }] },
          { Data: [{ VarCharValue: 's3://b/k1' }, {}] },
        ],
      },
      NextToken: 'page-2',
    })
    .on(GetQueryResultsCommand, { QueryExecutionId: 'q-1', NextToken: 'page-2' })
    .resolves({
      ResultSet: {
        ResultSetMetadata: meta as never,
        Rows: [{ Data: [{ VarCharValue: 's3://b/k2' }, { VarCharValue: '2' }] }],
      },
    });

  expect(await engine().query('SELECT 1')).toEqual([
    { object: 's3://b/k1', n: null },
    { object: 's3://b/k2', n: '2' },
  ]);
  expect(athena.commandCalls(StartQueryExecutionCommand)[0].args[0].input).toEqual({
    QueryString: 'SELECT 1',
    WorkGroup: 'wg',
    QueryExecutionContext: { Database: 'db' },
  });
  expect(athena.commandCalls(GetQueryExecutionCommand)).toHaveLength(3);
});

it('a failed query is one line with Athena’s reason', async () => {
  athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-2' });
  athena.on(GetQueryExecutionCommand).resolves({
    QueryExecution: {
      Status: {
        State: 'FAILED',
        StateChangeReason: "TABLE_NOT_FOUND: line 1:15: Table 'db.deliveries' does not exist\nmore",
      },
    },
  });
  await expect(engine().query('SELECT 1')).rejects.toThrow(
    /^Athena query q-2 failed: TABLE_NOT_FOUND: line 1:15: Table 'db.deliveries' does not exist$/,
  );
  expect(athena.commandCalls(GetQueryResultsCommand)).toHaveLength(0);
});

it('gives up waiting after its timeout', async () => {
  athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-3' });
  athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'RUNNING' } } });
  const slow = athenaQueryEngine({
    workGroup: 'wg',
    database: 'db',
    athena: new AthenaClient({}),
    pollMs: 1,
    timeoutMs: 20,
  });
  await expect(slow.query('SELECT 1')).rejects.toThrow(/^Athena query q-3 still RUNNING after 0.02 s$/);
});
