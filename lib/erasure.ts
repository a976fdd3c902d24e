/**
 * The erase state machine: an operator starts it from the Step Functions console with
 * `{"userId": "…"}` or `{"vehicleId": "…"}` (and `"dryRun": true` to count first, `"reference"` for the
 * ticket, `"smartcar": true` to remove the connection at Smartcar too). One function (lambda/erase) runs
 * every step, with the same places as `erase --stack`:
 *
 * check the input → take the compaction lock → write the ledger entry (a real run) → wait out the ingest
 * function's cached ledger → sweep the raw zone a page of ERASE_PAGE_SIZE (1,000) objects at a time →
 * the curated layer, state, dedupe (one task each) → the landing zone a page of ERASE_LANDING_PAGE_SIZE (50) keys at
 * a time → quarantine, dead letters, reports, Athena results (one task each) →
 * Smartcar (when asked) → complete the ledger entry, store the receipt, give the lock back.
 *
 * A failure gives the lock back and fails with its cause in one line; the ledger entry stays `started`
 * (the filters keep dropping the subject's records) and starting the same request again finishes the job.
 * The execution's state holds the request, counts and a cursor; the vehicles and event ids the sweep
 * finds wait in the work bucket (`erasures/pending/`), and logging never includes execution data.
 */
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  DEFAULT_LANDING_PREFIX,
  ENV,
  ERASE_ENV,
  ERASE_FUNCTION_TIMEOUT_SECONDS,
  ERASE_INGEST_WAIT_SECONDS,
  ERASURE_LEDGER_KEY,
  ERASURE_STAGING_PREFIX,
  QUARANTINE_PREFIX,
} from '../lambda/contract';
import type { Catalog } from './catalog';
import { HouseFunction } from './function';
import { CURATED_DELIVERIES, CURATED_SIGNALS, CURATED_TABLE_FOLDERS } from './queries';

export interface ErasureOptions {
  /** Whether the erase state machine is deployed. @default true */
  readonly enabled?: boolean;
}

export interface ErasureProps {
  /** The lake bucket: the raw zone is erased, the ledger kept in it. */
  readonly lakeBucket: s3.IBucket;
  /** The raw zone's key prefix (no slashes). */
  readonly rawPrefix: string;
  /** The work bucket: run reports are erased, receipts kept in it. */
  readonly workBucket: s3.IBucket;
  /** The vehicle state table, when there is one. @default - none */
  readonly stateTable?: dynamodb.ITable;
  /** The dedupe table, when there is one. @default - none */
  readonly dedupTable?: dynamodb.ITable;
  /** The quarantine bucket, when there is one. @default - none */
  readonly quarantineBucket?: s3.IBucket;
  /** The delivery dead-letter queue. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The state function's dead-letter queue, when there is one. @default - none */
  readonly stateDeadLetterQueue?: sqs.IQueue;
  /** Athena's results bucket (cached results are deleted). @default - none */
  readonly athenaResultsBucket?: s3.IBucket;
  /** The compaction's lock table: held while erasing. @default - no lock */
  readonly lockTable?: dynamodb.ITable;
  /** The Athena catalog: the curated layer is rewritten with its workgroup and tables. @default the curated layer is not erased */
  readonly catalog?: Catalog;
  /** The management token (erasing connections at Smartcar when a run asks for `"smartcar": true`). @default an erasure asked for `"smartcar": true` fails, saying so */
  readonly managementTokenSecret?: secretsmanager.ISecret;
  /** The client credentials (v3 subscriptions and the user at Smartcar). @default not removed there; the receipt says so */
  readonly clientCredentialsSecret?: secretsmanager.ISecret;
  /** The webhook whose subscriptions an erasure at Smartcar removes. @default subscriptions are not looked at; the receipt says so */
  readonly webhookId?: string;
  /** How long the function's and the state machine's logs are kept. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to the log groups when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

/** One object grant under a prefix (`raw/*`) of the erase function: what cdk-nag's IAM5 acknowledgements name. */
export interface ErasureObjectGrant {
  /** The bucket granted on. */
  readonly bucket: s3.IBucket;
  /** The key pattern (`raw/*`). */
  readonly pattern: string;
  /** Why, for the acknowledgement. */
  readonly reason: string;
}

/**
 * The places after the raw zone, each one task (the handler's names), with their state names; `landing` is
 * a loop over pages of its keys (a backlog of thousands of objects when ingest was broken), like the raw zone.
 */
const PLACES: readonly [string, string][] = [
  ['raw-versions', 'Erase old raw versions'],
  ['curated', 'Erase curated rows'],
  ['state', 'Erase vehicle state'],
  ['dedupe', 'Erase dedupe items'],
  ['landing', 'Erase a page of landing deliveries'],
  ['quarantine', 'Erase quarantined deliveries'],
  ['dead-letters', 'Erase dead letters'],
  ['reports', 'Erase run reports'],
  ['athena-results', 'Erase Athena results'],
];

export class Erasure extends Construct {
  /** Start it with `{"vehicleId": "…"}` or `{"userId": "…"}` (and `"dryRun": true` to count first). */
  public readonly stateMachine: sfn.StateMachine;
  /** Runs every step (lambda/erase). */
  public readonly eraseFunction: HouseFunction;
  /** The state machine's log group (errors only, no execution data). */
  public readonly logGroup: logs.LogGroup;
  /** Object grants under a prefix (`raw/*`): what cdk-nag's IAM5 acknowledgements name. */
  public readonly objectGrants: ErasureObjectGrant[] = [];

  constructor(scope: Construct, id: string, props: ErasureProps) {
    super(scope, id);
    const env: Record<string, string> = {
      [ERASE_ENV.lakeBucketName]: props.lakeBucket.bucketName,
      [ERASE_ENV.lakeRawPrefix]: props.rawPrefix,
      [ENV.landingPrefix]: DEFAULT_LANDING_PREFIX,
      [ERASE_ENV.workBucketName]: props.workBucket.bucketName,
      [ERASE_ENV.deadLetterQueueUrl]: props.deadLetterQueue.queueUrl,
    };
    if (props.stateTable) env[ERASE_ENV.stateTableName] = props.stateTable.tableName;
    if (props.dedupTable) env[ERASE_ENV.dedupTableName] = props.dedupTable.tableName;
    if (props.quarantineBucket) env[ERASE_ENV.quarantineBucketName] = props.quarantineBucket.bucketName;
    if (props.stateDeadLetterQueue) env[ERASE_ENV.stateDeadLetterQueueUrl] = props.stateDeadLetterQueue.queueUrl;
    if (props.athenaResultsBucket) env[ERASE_ENV.athenaResultsBucketName] = props.athenaResultsBucket.bucketName;
    if (props.lockTable) env[ERASE_ENV.lockTableName] = props.lockTable.tableName;
    if (props.catalog) {
      env[ERASE_ENV.workGroupName] = props.catalog.workGroup.ref;
      env[ERASE_ENV.databaseName] = props.catalog.databaseName;
      env[ERASE_ENV.curatedPrefix] = props.catalog.curatedPrefix;
    }
    if (props.managementTokenSecret) env[ERASE_ENV.managementTokenSecretId] = props.managementTokenSecret.secretArn;
    if (props.clientCredentialsSecret)
      env[ERASE_ENV.clientCredentialsSecretId] = props.clientCredentialsSecret.secretArn;
    if (props.webhookId) env[ERASE_ENV.webhookId] = props.webhookId;

    this.eraseFunction = new HouseFunction(this, 'EraseFunction', {
      handler: 'erase',
      description: "Erase state machine: removes one user's or vehicle's records, one place or page per call",
      // A page of the raw zone (ERASE_PAGE_SIZE objects) read, searched and rewritten in one call.
      timeout: Duration.seconds(ERASE_FUNCTION_TIMEOUT_SECONDS),
      memorySize: 1024,
      environment: env,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    this.grant(props);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment:
        'Erases one user or vehicle everywhere the stack keeps data; input {"userId"|"vehicleId", "dryRun"?, "reference"?}',
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition()),
      timeout: Duration.hours(24),
      tracingEnabled: true,
      // Execution data would copy the id into CloudWatch Logs: errors only, without data.
      logs: { destination: this.logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
    });
    // A stopped or timed-out execution skips the Catch that gives the compaction lock back: Step Functions'
    // own status event hands it to the function, which gives it back if that execution still holds it.
    new events.Rule(this, 'GiveTheLockBack', {
      description: 'An erase execution stopped or timed out: give back the compaction lock it may hold',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [this.stateMachine.stateMachineArn], status: ['ABORTED', 'TIMED_OUT'] },
      },
      targets: [new eventsTargets.LambdaFunction(this.eraseFunction, { retryAttempts: 8 })],
    });
  }

  /** Least privilege: each bucket's prefixes the places touch, each table's and queue's few actions. */
  private grant(props: ErasureProps): void {
    const fn = this.eraseFunction;
    const objects = (bucket: s3.IBucket, actions: string[], patterns: string[], reason: string) => {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: patterns.map((p) => bucket.arnForObjects(p)) }));
      for (const pattern of patterns) if (pattern.includes('*')) this.objectGrants.push({ bucket, pattern, reason });
      bucket.encryptionKey?.grantEncryptDecrypt(fn);
    };
    const rewrite = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion'];
    // Old raw versions are read (to search them) before they are deleted.
    const rawActions = [...rewrite, 's3:GetObjectVersion'];
    const buckets = [props.lakeBucket, props.workBucket, props.quarantineBucket, props.athenaResultsBucket].filter(
      (b): b is s3.IBucket => b !== undefined,
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: buckets.map((b) => b.bucketArn),
      }),
    );
    objects(
      props.lakeBucket,
      rawActions,
      [`${props.rawPrefix}/*`],
      'The erasure rewrites or deletes the raw-zone objects holding the subject (generated keys) and their old versions.',
    );
    // Always: with the queue buffer too, landing objects an earlier Firehose configuration left may wait there.
    objects(
      props.lakeBucket,
      rawActions,
      [`${DEFAULT_LANDING_PREFIX}/*`],
      "The erasure rewrites or deletes landing objects holding the subject (the delivery stream's generated keys) and their old versions.",
    );
    objects(props.lakeBucket, ['s3:GetObject', 's3:PutObject'], [ERASURE_LEDGER_KEY], '');
    objects(
      props.workBucket,
      rewrite,
      ['runs/*', 'reconcile/*'],
      "The erasure removes the subject's entries from run reports (generated keys) and their old versions.",
    );
    objects(
      props.workBucket,
      rewrite,
      ['erasures/pending/*'],
      'The ids a running erasure found, named by erasure id or ledger hash, deleted with their versions at the end.',
    );
    objects(
      props.workBucket,
      ['s3:PutObject'],
      ['erasures/receipts/*'],
      'The erasure writes its receipt, named by its generated erasure id, and never reads or deletes one.',
    );
    if (props.quarantineBucket)
      objects(
        props.quarantineBucket,
        rewrite,
        [`${QUARANTINE_PREFIX}/*`],
        'The erasure rewrites or deletes quarantine objects holding the subject (generated keys) and their old versions.',
      );
    if (props.athenaResultsBucket)
      objects(
        props.athenaResultsBucket,
        [
          's3:GetObject',
          's3:DeleteObject',
          's3:DeleteObjectVersion',
          // Athena writes the curated layer's statements' results here as this role.
          ...(props.catalog ? ['s3:PutObject', 's3:AbortMultipartUpload'] : []),
        ],
        ['*'],
        'The erasure deletes cached query results and silent-vehicles reports (generated keys) that name the subject.',
      );
    if (props.catalog) {
      // Athena runs the curated layer's statements as this role: the workgroup, the Glue tables, the curated
      // layer it reads and the results it writes. Named actions only (the catalog's grantQuery has wildcards).
      const catalog = props.catalog;
      const stack = Stack.of(this);
      const arn = (service: string, resource: string, resourceName?: string) =>
        stack.formatArn({ service, resource, resourceName });
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: [
            'athena:StartQueryExecution',
            'athena:GetQueryExecution',
            'athena:GetQueryResults',
            'athena:GetWorkGroup',
          ],
          resources: [arn('athena', 'workgroup', catalog.workGroup.ref)],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetPartition', 'glue:GetPartitions'],
          resources: [
            arn('glue', 'catalog'),
            arn('glue', 'database', catalog.databaseName),
            ...[CURATED_DELIVERIES, CURATED_SIGNALS].map((t) => arn('glue', 'table', `${catalog.databaseName}/${t}`)),
          ],
        }),
      );
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetBucketLocation', 's3:ListBucket'],
          resources: [catalog.resultsBucket.bucketArn],
        }),
      );
      // Athena writes the erasure's query results to the results bucket (its grant below adds PutObject).

      const curated = catalog.curatedPrefix;
      objects(
        props.lakeBucket,
        rewrite,
        [
          `${curated}/${CURATED_TABLE_FOLDERS[CURATED_DELIVERIES]}/*`,
          `${curated}/${CURATED_TABLE_FOLDERS[CURATED_SIGNALS]}/*`,
        ],
        'The erasure swaps the curated partitions holding the subject: rewritten files copied in under generated names, the old ones deleted with their versions.',
      );
      objects(
        props.lakeBucket,
        [...rewrite, 's3:AbortMultipartUpload'],
        [`${ERASURE_STAGING_PREFIX}/*`],
        "Athena's UNLOAD writes the rewritten partitions here (generated names) before the swap, which deletes them.",
      );
    }
    props.managementTokenSecret?.grantRead(fn);
    props.clientCredentialsSecret?.grantRead(fn);
    // Get, Put, Delete: a user's erasure rewrites a vehicle's state item conditional on its version.
    props.stateTable?.grant(
      fn,
      'dynamodb:Query',
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:DeleteItem',
    );
    props.dedupTable?.grant(fn, 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem');
    // UpdateItem: a stopped execution's lease is cut short, not deleted (see releaseLockOfExecution).
    props.lockTable?.grant(fn, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem', 'dynamodb:UpdateItem');
    for (const q of [props.deadLetterQueue, props.stateDeadLetterQueue]) {
      if (!q) continue;
      q.grant(fn, 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility');
      q.encryptionMasterKey?.grantDecrypt(fn);
    }
  }

  private definition(): sfn.IChainable {
    const invoke = (id: string, payload: Record<string, unknown>, resultPath: string) =>
      new tasks.LambdaInvoke(this, id, {
        lambdaFunction: this.eraseFunction,
        payloadResponseOnly: true,
        payload: sfn.TaskInput.fromObject(payload),
        resultPath,
      });
    const erasure = sfn.JsonPath.objectAt('$.erasure');
    const execution = sfn.JsonPath.stringAt('$$.Execution.Id');

    const check = invoke('Check the input', { action: 'validate', input: sfn.JsonPath.entirePayload }, '$.check');
    const badInput = new sfn.Fail(this, 'Bad input', { error: 'Erasure.BadInput', causePath: '$.check.reason' });
    // From here on the state is the request, counts and cursors: the input itself is dropped.
    const keep = new sfn.Pass(this, 'Keep the request', {
      parameters: {
        erasure: sfn.JsonPath.objectAt('$.check.erasure'),
        raw: { done: false },
        landing: { done: false },
        results: {},
      },
    });
    const lock = invoke('Take the compaction lock', { action: 'lock', erasure, execution }, sfn.JsonPath.DISCARD);
    const begin = invoke('Write the ledger entry', { action: 'begin', erasure }, '$.erasure.hash');
    const waitForIngest = new sfn.Wait(this, 'Wait for ingest to see the ledger', {
      time: sfn.WaitTime.duration(Duration.seconds(ERASE_INGEST_WAIT_SECONDS)),
    });
    const sweep = invoke(
      'Sweep a page of the raw zone',
      { action: 'sweep', erasure, raw: sfn.JsonPath.objectAt('$.raw') },
      '$.raw',
    );
    const places = PLACES.map(([place, name]) =>
      place === 'landing'
        ? invoke(name, { action: 'landing', erasure, landing: sfn.JsonPath.objectAt('$.landing') }, '$.landing')
        : invoke(name, { action: 'place', place, erasure }, `$.results.${place.replace(/-/g, '_')}`),
    );
    const smartcar = invoke('Erase at Smartcar', { action: 'place', place: 'smartcar', erasure }, '$.results.smartcar');
    const finish = invoke(
      'Finish and write the receipt',
      {
        action: 'finish',
        erasure,
        execution,
        sweep: sfn.JsonPath.objectAt('$.raw.sweep'),
        landing: sfn.JsonPath.objectAt('$.landing.sweep'),
        results: sfn.JsonPath.objectAt('$.results'),
      },
      '$.summary',
    );
    // The execution's output is the summary alone (counts per place, the receipt's key; no id).
    const done = new sfn.Succeed(this, 'Erased', { outputPath: '$.summary' });

    // Any failure after the input was checked gives the lock back (when this run holds it), then fails
    // with the cause in one line.
    const failed = new sfn.Fail(this, 'Erasure failed', { errorPath: '$.failure.error', causePath: '$.failure.cause' });
    const abort = invoke(
      'Give the lock back after a failure',
      { action: 'abort', erasure, error: sfn.JsonPath.objectAt('$.error') },
      '$.failure',
    );
    abort.addCatch(
      new sfn.Fail(this, 'Erasure failed, lock not given back', {
        errorPath: '$.error.Error',
        causePath: '$.error.Cause',
      }),
      {
        resultPath: '$.abortError',
      },
    );
    abort.next(failed);
    for (const state of [lock, begin, sweep, ...places, smartcar, finish])
      state.addCatch(abort, { resultPath: '$.error' });

    const rawDone = new sfn.Choice(this, 'Raw zone done?');
    let afterRaw: sfn.IChainable = finish.next(done);
    const asked = new sfn.Choice(this, 'Remove the connection at Smartcar?')
      .when(sfn.Condition.booleanEquals('$.erasure.smartcar', true), smartcar.next(finish))
      .otherwise(finish);
    afterRaw = asked;
    for (let i = places.length - 1; i >= 0; i--) {
      if (PLACES[i][0] !== 'landing') {
        afterRaw = places[i].next(afterRaw);
        continue;
      }
      // The landing zone loops on its cursor until done, as the raw sweep does.
      const landingDone = new sfn.Choice(this, 'Landing zone done?')
        .when(sfn.Condition.booleanEquals('$.landing.done', true), afterRaw)
        .otherwise(places[i]);
      afterRaw = places[i].next(landingDone);
    }
    sweep.next(rawDone.when(sfn.Condition.booleanEquals('$.raw.done', true), afterRaw).otherwise(sweep));
    const dryRun = new sfn.Choice(this, 'Dry run?')
      .when(sfn.Condition.booleanEquals('$.erasure.dryRun', true), sweep)
      .otherwise(waitForIngest.next(sweep));

    return check.next(
      new sfn.Choice(this, 'Is the input sane?')
        .when(sfn.Condition.booleanEquals('$.check.valid', true), keep.next(lock).next(begin).next(dryRun))
        .otherwise(badInput),
    );
  }
}
