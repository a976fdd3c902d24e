import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Parser } from 'node-sql-parser';
import { DEFAULT_EVENT_TYPES } from '../../lib/catalog';
import { athenaDialect, createViewSql, DELIVERY_COLUMNS, duckdbDialect, VIEWS } from '../../lib/queries';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { bareStack, synthStack } from '../support/synth';

let template: Template;
beforeAll(() => {
  template = synthStack().template;
});

describe('Glue catalog', () => {
  it('has a database named after the stack and a table over the raw zone', () => {
    template.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'teststack' } });
    template.hasResourceProperties('AWS::Glue::Table', {
      DatabaseName: 'teststack',
      TableInput: Match.objectLike({
        Name: 'deliveries',
        TableType: 'EXTERNAL_TABLE',
        PartitionKeys: [
          { Name: 'event_type', Type: 'string' },
          { Name: 'mode', Type: 'string' },
          { Name: 'dt', Type: 'string' },
          { Name: 'hour', Type: 'string' },
        ],
        StorageDescriptor: Match.objectLike({
          Location: { 'Fn::Join': ['', ['s3://', { Ref: Match.stringLikeRegexp('DataLakeBucket') }, '/raw/']] },
          SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
          Columns: DELIVERY_COLUMNS.map(([Name, Type]) => ({ Name, Type })),
        }),
      }),
    });
  });

  it('projects every partition, so new ones need no crawler or MSCK REPAIR', () => {
    template.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        Parameters: Match.objectLike({
          'projection.enabled': 'true',
          'projection.event_type.type': 'enum',
          'projection.event_type.values': DEFAULT_EVENT_TYPES.join(','),
          'projection.mode.values': 'live,test,simulated,unknown',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': '2024-01-01,NOW',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
          'storage.location.template': {
            'Fn::Join': [
              '',
              [
                's3://',
                { Ref: Match.stringLikeRegexp('DataLakeBucket') },
                // biome-ignore lint/suspicious/noTemplateCurlyInString: Athena's own ${...} placeholders.
                '/raw/event_type=${event_type}/mode=${mode}/dt=${dt}/hour=${hour}/',
              ],
            ],
          },
        }),
      }),
    });
  });
});

describe('Athena', () => {
  it('has a workgroup that enforces encrypted results in its own bucket and caps the scan per query', () => {
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      WorkGroupConfiguration: {
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: 100 * 1024 ** 3,
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        ResultConfiguration: {
          OutputLocation: {
            'Fn::Join': ['', ['s3://', { Ref: Match.stringLikeRegexp('CatalogResultsBucket') }, '/results/']],
          },
          EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
        },
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-results', ExpirationInDays: 30 })]),
      },
      BucketEncryption: Match.anyValue(),
    });
  });

  it('registers a named query that creates each view, in order, plus an example', () => {
    VIEWS.forEach((view, i) => {
      template.hasResourceProperties('AWS::Athena::NamedQuery', {
        Name: `${String(i + 1).padStart(2, '0')} create view ${view.name}`,
        Database: 'teststack',
        QueryString: createViewSql(view, athenaDialect('teststack')),
      });
    });
    template.resourceCountIs('AWS::Athena::NamedQuery', VIEWS.length + 1);
  });

  it('outputs the workgroup and database', () => {
    template.hasOutput('AthenaWorkGroup', Match.anyValue());
    template.hasOutput('GlueDatabase', { Value: 'teststack' });
  });

  it('names the first instance of a stack exactly as before, and any other after its path', () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Fleet--Data-2');
    const first = new SmartcarWebhooks(stack, 'Smartcar', {});
    const second = new SmartcarWebhooks(stack, 'Brand.B', {});
    // The name every earlier release gave (runs of underscores kept): upgrading replaces no database.
    expect(first.catalog.databaseName).toBe('fleet__data_2');
    expect(second.catalog.databaseName).toMatch(/^fleet__data_2_brand_b_[0-9a-f]{8}$/);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Athena::WorkGroup', { Name: 'fleet--data-2' });
    t.hasResourceProperties('AWS::Athena::WorkGroup', { Name: second.catalog.databaseName.replace(/_/g, '-') });
    // Long paths stay short and still apart.
    const long = new SmartcarWebhooks(stack, 'x'.repeat(120), {});
    expect(long.catalog.databaseName.length).toBeLessThanOrEqual(64);
  });

  it('takes options and rejects bad ones', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      catalog: {
        databaseName: 'fleet_lake',
        eventTypes: ['VEHICLE_STATE', 'NEW_TYPE'],
        bytesScannedCutoffPerQuery: 10 ** 9,
      },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Glue::Table', {
      DatabaseName: 'fleet_lake',
      TableInput: Match.objectLike({
        Parameters: Match.objectLike({ 'projection.event_type.values': 'VEHICLE_STATE,NEW_TYPE' }),
      }),
    });
    t.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'fleet-lake',
      WorkGroupConfiguration: Match.objectLike({ BytesScannedCutoffPerQuery: 10 ** 9 }),
    });
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { catalog: { databaseName: 'Fleet-Lake' } })).toThrow(
      /lowercase letters/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { catalog: { eventTypes: ['a/b'] } })).toThrow(
      /eventTypes entry "a\/b"/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { catalog: { queryableSince: '2024' } })).toThrow(/YYYY-MM-DD/);
  });
});

describe('view SQL', () => {
  const parser = new Parser();

  it.each(VIEWS.map((v) => [v.name, v]))('%s renders to Athena SQL that parses', (_name, view) => {
    const sql = view.sql(athenaDialect('smartcar'));
    expect(() => parser.astify(sql, { database: 'athena' })).not.toThrow();
    expect(sql).not.toMatch(/json_extract_string|json_type|TIMESTAMPTZ|to_timestamp|JSON\[\]/); // no DuckDB-isms
  });

  it('the dialects differ only where the engines do', () => {
    const a = athenaDialect('db');
    expect(a.table('x')).toBe('"db"."x"');
    expect(a.jsonScalar('b', '$.a')).toBe("json_extract_scalar(b, '$.a')");
    expect(a.jsonArray('b', '$.s')).toBe("CAST(json_extract(b, '$.s') AS ARRAY(JSON))");
    expect(a.epochMs('m')).toBe('from_unixtime(CAST(m AS DOUBLE) / 1000)');
    expect(a.isoTimestamp('t')).toBe('from_iso8601_timestamp(t)');
    expect(duckdbDialect.table('x')).toBe('"x"');
    expect(duckdbDialect.jsonArray('b', '$.s')).toBe("COALESCE(CAST(json_extract(b, '$.s') AS JSON[]), [])");
  });
});
