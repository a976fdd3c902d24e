/**
 * Makes the lake queryable: a Glue database and table over the raw zone with partition projection (new
 * partitions need no crawler and no MSCK REPAIR), an Athena workgroup with its own encrypted, expiring
 * results bucket, and named queries that create the views of lib/queries.ts.
 */
import { createHash } from 'node:crypto';
import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { privateBucket } from './private-bucket';
import {
  athenaDialect,
  COMPACTED_OBJECT_COLUMNS,
  COMPACTED_OBJECTS,
  COMPACTION_COMMIT_COLUMNS,
  COMPACTION_COMMITS,
  CURATED_DELIVERIES,
  CURATED_DELIVERY_COLUMNS,
  CURATED_PARTITION_COLUMNS,
  CURATED_SIGNAL_COLUMNS,
  CURATED_SIGNALS,
  CURATED_TABLE_FOLDERS,
  createViewSql,
  DELIVERY_COLUMNS,
  PARTITION_COLUMNS,
  RAW_TABLE,
  VIEWS,
} from './queries';
import { ConfigurationError } from './validation';

/** Event types the table's `event_type` projection knows; a type not listed is stored but not queryable until added. */
export const DEFAULT_EVENT_TYPES = [
  'VEHICLE_STATE',
  'VEHICLE_ERROR',
  'schedule',
  'scheduled',
  'eventBased',
  'dynamic',
  'UNKNOWN',
];
export const MODES = ['live', 'test', 'simulated', 'unknown'];

export interface CatalogOptions {
  /**
   * Glue database name (lowercase letters, digits, underscores).
   * @default - the stack name for the first instance of the construct in its stack (the name it always
   * had); for any other, the stack name and the construct's path with a short hash (see {@link defaultDatabaseName})
   */
  readonly databaseName?: string;
  /** Athena workgroup name (letters, digits, `.`, `_`, `-`). @default - the database name with `-` for `_` */
  readonly workGroupName?: string;
  /**
   * Values of the `event_type` partition Athena projects. Deliveries of other types are still stored
   * (under their own partition); add their type here to query them.
   * @default DEFAULT_EVENT_TYPES
   */
  readonly eventTypes?: string[];
  /** First day the `dt` projection covers (YYYY-MM-DD). @default '2024-01-01' */
  readonly queryableSince?: string;
  /** Largest scan one query may make, in bytes (Athena bills $5 per TB scanned). @default 100 GiB */
  readonly bytesScannedCutoffPerQuery?: number;
  /** How long query results are kept. @default Duration.days(30) */
  readonly resultsRetention?: Duration;
  /**
   * What happens to the Athena results bucket when the stack is deleted. `DESTROY` removes it only when
   * it is empty.
   * @default RemovalPolicy.RETAIN
   */
  readonly resultsBucketRemovalPolicy?: RemovalPolicy;
}

export interface CatalogProps extends CatalogOptions {
  /** The lake bucket. */
  readonly bucket: s3.IBucket;
  /** Key prefix of the raw zone in it (no leading or trailing slash). */
  readonly rawPrefix: string;
  /** Key prefix of the curated layer in it (no leading or trailing slash). @default 'curated' */
  readonly curatedPrefix?: string;
}

export class Catalog extends Construct {
  /** Name of the Glue database holding the table and the views. */
  public readonly databaseName: string;
  /** Name of the table over the raw zone. */
  public readonly tableName = RAW_TABLE;
  /** The Glue database. */
  public readonly database: glue.CfnDatabase;
  /** The Glue table over the raw zone, with partition projection. */
  public readonly table: glue.CfnTable;
  /** Key prefix of the curated layer. */
  public readonly curatedPrefix: string;
  /**
   * The curated layer's Glue tables (Parquet), by name: `curated_deliveries` and `curated_signals`
   * (partitions added by the compaction's INSERTs), and the compaction's bookkeeping.
   */
  public readonly curatedTables: Record<string, glue.CfnTable> = {};
  /** The Athena workgroup queries run in (engine v3, enforced settings, scan cap). */
  public readonly workGroup: athena.CfnWorkGroup;
  /** Where Athena writes query results (expiring). */
  public readonly resultsBucket: s3.Bucket;
  /** The lake bucket and the zones the tables read. */
  private readonly lake: { bucket: s3.IBucket; rawPrefix: string; curatedPrefix: string };
  /** The named queries that create the views, by view name. */
  public readonly viewQueries: Record<string, athena.CfnNamedQuery> = {};

  constructor(scope: Construct, id: string, props: CatalogProps) {
    super(scope, id);
    this.curatedPrefix = (props.curatedPrefix ?? 'curated').replace(/^\/+|\/+$/g, '');
    if (!Token.isUnresolved(this.curatedPrefix) && !/^[A-Za-z0-9_.\-/]+$/.test(this.curatedPrefix))
      throw new ConfigurationError(
        `curatedPrefix "${props.curatedPrefix}" must be a non-empty S3 key prefix of letters, digits, _ . - and /.`,
      );
    this.lake = { bucket: props.bucket, rawPrefix: props.rawPrefix, curatedPrefix: this.curatedPrefix };
    const stack = Stack.of(this);
    // Names are per account and region: two instances (in one stack or in two) must never share one.
    const others = stack.node
      .findAll()
      .filter((c): c is Catalog => c instanceof Catalog && c !== this && Stack.of(c) === stack);
    const taken = new Map(others.map((c) => [c.databaseName, c.node.path]));
    this.databaseName = props.databaseName ?? defaultDatabaseName(this, new Set(taken.keys()));
    if (!Token.isUnresolved(this.databaseName) && !/^[a-z0-9_]{1,255}$/.test(this.databaseName)) {
      throw new ConfigurationError(
        `databaseName "${this.databaseName}" must be lowercase letters, digits and underscores, e.g. "smartcar_webhooks".`,
      );
    }
    if (taken.has(this.databaseName))
      throw new ConfigurationError(
        `databaseName "${this.databaseName}" is already used by ${taken.get(this.databaseName)} in this stack; give each instance its own (or leave it to the default).`,
      );
    const workGroupName = props.workGroupName ?? this.databaseName.replace(/_/g, '-');
    if (!Token.isUnresolved(workGroupName) && !/^[A-Za-z0-9._-]{1,128}$/.test(workGroupName))
      throw new ConfigurationError(
        `workGroupName "${workGroupName}" must be 1 to 128 letters, digits, ".", "_" and "-", e.g. "smartcar-webhooks".`,
      );
    const sameWorkGroup = others.find((c) => c.workGroup.name === workGroupName);
    if (sameWorkGroup)
      throw new ConfigurationError(
        `workGroupName "${workGroupName}" is already used by ${sameWorkGroup.node.path} in this stack; give each instance its own (or leave it to the default).`,
      );
    const eventTypes = props.eventTypes ?? DEFAULT_EVENT_TYPES;
    for (const t of eventTypes) {
      if (!Token.isUnresolved(t) && !/^[A-Za-z0-9_.-]{1,64}$/.test(t))
        throw new ConfigurationError(
          `eventTypes entry "${t}" is not a partition value the lake writes (letters, digits, _ . -).`,
        );
    }
    const since = props.queryableSince ?? '2024-01-01';
    if (!Token.isUnresolved(since) && !/^\d{4}-\d{2}-\d{2}$/.test(since))
      throw new ConfigurationError(`queryableSince "${since}" must be a date as YYYY-MM-DD.`);

    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: { name: this.databaseName, description: 'Smartcar webhook deliveries (raw zone) and views' },
    });

    const location = `s3://${props.bucket.bucketName}/${props.rawPrefix}/`;
    this.table = new glue.CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName: this.databaseName,
      tableInput: {
        name: RAW_TABLE,
        description: 'One row per stored delivery; body holds the raw request body (json_extract it).',
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'json',
          compressionType: 'gzip',
          'projection.enabled': 'true',
          'projection.event_type.type': 'enum',
          'projection.event_type.values': eventTypes.join(','),
          'projection.mode.type': 'enum',
          'projection.mode.values': MODES.join(','),
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': `${since},NOW`,
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
          'storage.location.template': `${location}event_type=\${event_type}/mode=\${mode}/dt=\${dt}/hour=\${hour}/`,
        },
        partitionKeys: PARTITION_COLUMNS.map((name) => ({ name, type: 'string' })),
        storageDescriptor: {
          location,
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: { serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
          columns: DELIVERY_COLUMNS.map(([name, type]) => ({ name, type })),
        },
      },
    });
    this.table.addResourceDependency(this.database);

    const parquetTable = (
      id: string,
      name: string,
      description: string,
      columns: readonly (readonly [string, string])[],
      partitions: readonly string[],
    ) => {
      const t = new glue.CfnTable(this, id, {
        catalogId: stack.account,
        databaseName: this.databaseName,
        tableInput: {
          name,
          description,
          tableType: 'EXTERNAL_TABLE',
          parameters: { classification: 'parquet', 'parquet.compression': 'ZSTD' },
          partitionKeys: partitions.map((p) => ({ name: p, type: 'string' })),
          storageDescriptor: {
            location: `s3://${props.bucket.bucketName}/${this.curatedPrefix}/${CURATED_TABLE_FOLDERS[name]}/`,
            inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
            outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
            serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
            columns: columns.map(([n, type]) => ({ name: n, type })),
          },
        },
      });
      t.addResourceDependency(this.database);
      this.curatedTables[name] = t;
      return t;
    };
    parquetTable(
      'CuratedDeliveries',
      CURATED_DELIVERIES,
      'Curated layer: one row per eventId (first received, copies counted), from committed compaction runs.',
      CURATED_DELIVERY_COLUMNS,
      CURATED_PARTITION_COLUMNS,
    );
    parquetTable(
      'CuratedSignals',
      CURATED_SIGNALS,
      'Curated layer: the signals of the curated events (times in epoch milliseconds).',
      CURATED_SIGNAL_COLUMNS,
      CURATED_PARTITION_COLUMNS,
    );
    parquetTable(
      'CompactedObjects',
      COMPACTED_OBJECTS,
      'Raw objects each compaction run claimed; they count as compacted once the run is committed.',
      COMPACTED_OBJECT_COLUMNS,
      [],
    );
    parquetTable(
      'CompactionCommits',
      COMPACTION_COMMITS,
      'One row per committed compaction run.',
      COMPACTION_COMMIT_COLUMNS,
      [],
    );

    this.resultsBucket = privateBucket(this, 'ResultsBucket', {
      removalPolicy: props.resultsBucketRemovalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'expire-results', expiration: props.resultsRetention ?? Duration.days(30) },
        { id: 'abort-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: workGroupName,
      description: 'Queries of the Smartcar webhook data lake',
      state: 'ENABLED',
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 100 * 1024 ** 3,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: `s3://${this.resultsBucket.bucketName}/results/`,
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });

    const dialect = athenaDialect(this.databaseName);
    VIEWS.forEach((view, i) => {
      const q = new athena.CfnNamedQuery(this, `View${i + 1}`, {
        name: `${String(i + 1).padStart(2, '0')} create view ${view.name}`,
        description: `Run once (in order) to create the view: ${view.description}`.slice(0, 1024),
        database: this.databaseName,
        workGroup: this.workGroup.ref,
        queryString: createViewSql(view, dialect),
      });
      q.addResourceDependency(this.workGroup);
      q.addResourceDependency(this.table);
      for (const t of Object.values(this.curatedTables)) q.addResourceDependency(t);
      this.viewQueries[view.name] = q;
    });
    const latest = new athena.CfnNamedQuery(this, 'ExampleLatest', {
      name: 'example latest state of every vehicle',
      description: 'After creating the views: the latest value of every signal per vehicle.',
      database: this.databaseName,
      workGroup: this.workGroup.ref,
      queryString: `SELECT vehicle_id, signal_group, signal_name, value, unit, oem_updated_at\nFROM ${dialect.table('latest_signals')}\nWHERE mode = 'live'\nORDER BY vehicle_id, signal_group, signal_name`,
    });
    latest.addResourceDependency(this.workGroup);
  }

  /**
   * Lets `grantee` run queries of the lake in the workgroup: start and read Athena queries there, read
   * the Glue database and tables, read the raw zone and the curated layer, and read and write the query
   * results.
   */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    const arn = (service: string, resource: string, resourceName?: string) =>
      stack.formatArn({ service, resource, resourceName });
    const athenaGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'athena:StartQueryExecution',
        'athena:GetQueryExecution',
        'athena:GetQueryResults',
        'athena:StopQueryExecution',
        'athena:GetWorkGroup',
        'athena:ListNamedQueries',
        'athena:GetNamedQuery',
        'athena:BatchGetNamedQuery',
      ],
      resourceArns: [arn('athena', 'workgroup', this.workGroup.ref)],
    });
    athenaGrant.combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartition', 'glue:GetPartitions'],
        resourceArns: [
          arn('glue', 'catalog'),
          arn('glue', 'database', this.databaseName),
          arn('glue', 'table', `${this.databaseName}/*`),
        ],
      }),
    );
    athenaGrant.combine(this.lake.bucket.grantRead(grantee, `${this.lake.rawPrefix}/*`));
    athenaGrant.combine(this.lake.bucket.grantRead(grantee, `${this.lake.curatedPrefix}/*`));
    athenaGrant.combine(this.resultsBucket.grantReadWrite(grantee));
    return athenaGrant;
  }
}

/** Lowercase letters, digits and single underscores, no leading or trailing underscore. */
const snake = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');

/**
 * The default Glue database name of a catalog. The first catalog of a stack keeps the name every
 * deployment had before (the stack name, as snake case), so upgrading replaces no database. Any other
 * (a second instance of the construct: production and staging side by side, two brands) is named after
 * the stack and its own path in it, e.g. `platform_staging_1a2b3c4d`: readable, at most 64 characters,
 * and unique through a hash of the stack name and the full path, whatever the sanitizing and truncating
 * folded together. Its workgroup takes the same name (with `-`).
 *
 * Adding a second instance never renames the first; removing the first of two would rename the other,
 * so pin `catalog.databaseName` before removing one.
 */
export function defaultDatabaseName(catalog: Construct, taken: ReadonlySet<string>): string {
  const stack = Stack.of(catalog);
  // A nested stack's name is known only at deploy time: its path in the app stands in for it.
  const stackName = Token.isUnresolved(stack.stackName) ? stack.node.path : stack.stackName;
  // Exactly as it always was (runs of underscores included): a changed name would replace the database.
  const legacy =
    stackName
      .toLowerCase()
      .replace(/[^a-z0-9_]/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 200) || 'smartcar_webhooks';
  if (!taken.has(legacy)) return legacy;
  const relative = catalog.node.path.slice(stack.node.path.length + 1);
  const hash = createHash('sha256').update(`${stackName}\0${relative}`).digest('hex').slice(0, 8);
  // The construct's own id ("Catalog") says nothing: name it after the instance that holds it.
  const readable = snake(relative.replace(/\/Catalog$/, ''));
  return [legacy.slice(0, 24), readable.slice(0, 30), hash]
    .map((part) => part.replace(/_+$/, ''))
    .filter(Boolean)
    .join('_');
}
