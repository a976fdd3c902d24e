/**
 * Every cdk-nag (AwsSolutions) finding this project accepts, in one place, each with its reason.
 * Anything not listed here fails `cdk synth` and the test suite.
 *
 * Only resources the construct creates are acknowledged, never one the consumer brought (`existingBucket`,
 * `existingManagementTokenSecret`, …): a finding on those is the consumer's to judge. Both cdk-nag lines
 * are served without importing either (cdk-nag stays an optional peer of the package):
 * - cdk-nag 3 (`Validations.of(app).addPlugins(new AwsSolutionsChecks(app))`) reads aws-cdk-lib's
 *   acknowledgements (`Validations.of(scope).acknowledge`), recorded here on each construct.
 * - cdk-nag 2 (`Aspects.of(app).add(new AwsSolutionsChecks())`) reads its `cdk_nag` resource metadata
 *   (the format its `NagSuppressions` writes and its README documents). An aspect of ours, run before
 *   any of the default priority, writes that metadata on the construct's resources when it finds a
 *   cdk-nag 2 pack applied above the construct, and only then, so cdk-nag 3 templates stay as they were.
 * Any other cdk-nag major applied as an aspect stops synth with one line naming the supported ones.
 */
import {
  AspectPriority,
  Aspects,
  type CfnElement,
  CfnResource,
  type IAspect,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { SmartcarWebhooks } from './smartcar-webhooks';
import { ConfigurationError } from './validation';

type Scope = Parameters<typeof Validations.of>[0];

/** The cdk-nag majors the acknowledgements serve (the package's optional peer range says the same). */
export const SUPPORTED_CDK_NAG = '2.x (Aspects) and 3.x (Validations)';

/** One acknowledgement: where, which finding (`S1`, `IAM5[Resource::…]`), why. */
interface Acknowledgement {
  readonly scope: IConstruct;
  readonly id: string;
  readonly reason: string;
}

/** The id aws-cdk-lib gives its per-stack function that applies bucket notifications. */
const NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

/** Instances already acknowledged: a second call adds nothing. */
const acknowledged = new WeakSet<IConstruct>();

/** The jsii type information every cdk-nag class carries: `{ fqn: 'cdk-nag.AwsSolutionsChecks', version }`. */
function jsiiType(o: object): { fqn?: string; version?: string } | undefined {
  return (o.constructor as unknown as Record<symbol, { fqn?: string; version?: string } | undefined>)[
    Symbol.for('jsii.rtti')
  ];
}

/** The major version of the cdk-nag rule packs applied as aspects on `scope` or above it. */
function nagPackMajorsAbove(scope: IConstruct): Set<string> {
  const majors = new Set<string>();
  for (let s: IConstruct | undefined = scope; s; s = s.node.scope) {
    for (const aspect of Aspects.of(s).all) {
      const type = jsiiType(aspect);
      // A rule pack (NagPack and its subclasses), not e.g. cdk-nag 3's WriteNagSuppressionsToCloudFormationAspect.
      if (!type?.fqn?.startsWith('cdk-nag.') || !('readPackName' in aspect)) continue;
      majors.add(String(type.version ?? '?').split('.')[0]);
    }
  }
  return majors;
}

/** cdk-nag 2's CloudFormation form of a suppression (its NagSuppressionHelper.toCfnFormat). */
function nag2Rule(a: Acknowledgement): Record<string, unknown> {
  const m = /^([A-Za-z0-9]+)(?:\[(.*)\])?$/s.exec(a.id) as RegExpExecArray;
  const rule: Record<string, unknown> = { id: `AwsSolutions-${m[1]}` };
  if (m[2] !== undefined) rule.applies_to = [m[2]];
  // Reasons outside Latin-1 are stored base64-encoded, as cdk-nag 2 itself stores them.
  if ([...a.reason].some((c) => (c.codePointAt(0) ?? 0) > 255)) {
    rule.reason = Buffer.from(a.reason).toString('base64');
    rule.is_reason_encoded = true;
  } else rule.reason = a.reason;
  return rule;
}

/**
 * Writes the acknowledgements as cdk-nag 2 metadata on every resource under their scope (cdk-nag 3's
 * acknowledgements apply to a construct and everything under it; this gives cdk-nag 2 the same reach).
 */
class Nag2Suppressions implements IAspect {
  private done = false;
  constructor(
    private readonly webhooks: IConstruct,
    private readonly acks: readonly Acknowledgement[],
  ) {}

  public visit(node: IConstruct): void {
    if (this.done || node !== this.webhooks) return;
    this.done = true;
    const majors = nagPackMajorsAbove(this.webhooks);
    const unsupported = [...majors].filter((m) => m !== '2');
    if (unsupported.length > 0)
      throw new ConfigurationError(
        `cdk-nag ${unsupported.join(', ')}.x is applied as an aspect; the SmartcarWebhooks acknowledgements support cdk-nag ${SUPPORTED_CDK_NAG}.`,
      );
    if (!majors.has('2')) return;
    for (const a of this.acks) {
      for (const c of a.scope.node.findAll()) {
        if (!CfnResource.isCfnResource(c)) continue;
        const existing = (c.getMetadata('cdk_nag') as { rules_to_suppress?: unknown[] } | undefined)?.rules_to_suppress;
        const rules = [...(existing ?? []), nag2Rule(a)];
        const unique = [...new Map(rules.map((r) => [JSON.stringify(r), r])).values()];
        c.addMetadata('cdk_nag', { rules_to_suppress: unique });
      }
    }
  }
}

/** How cdk-nag writes a resource's ARN attribute in a finding id: `<LogicalId.Arn>`. */
function attr(construct: IConstruct, attribute: string): string {
  const cfn = construct.node.defaultChild as CfnElement;
  return `<${Stack.of(construct).getLogicalId(cfn)}.${attribute}>`;
}

/** cdk-nag (AwsSolutions) acknowledgements for a {@link SmartcarWebhooks}, each with its reason. */
// biome-ignore lint/complexity/noStaticOnlyClass: jsii (the multi-language bindings) exports classes, not free functions
export class NagAcknowledgements {
  /**
   * Acknowledges every AwsSolutions finding the construct knowingly raises, each with its reason, on the
   * resources it creates only (a bucket or secret you pass in keeps its findings). Works with cdk-nag 3
   * (`Validations.of(app).addPlugins(...)`) and cdk-nag 2 (`Aspects.of(app).add(...)`), whichever the app uses.
   */
  public static acknowledge(webhooks: SmartcarWebhooks): void {
    acknowledgeNagFindings(webhooks);
  }
}

/** See {@link NagAcknowledgements.acknowledge}. */
export function acknowledgeNagFindings(webhooks: SmartcarWebhooks): void {
  if (acknowledged.has(webhooks)) return;
  acknowledged.add(webhooks);
  const { receiver, dataLake, subscriptionWorkflow: workflow } = webhooks;
  /** Created by the construct (under it in the tree), not brought by the consumer. */
  const ours = (c: IConstruct) => c === webhooks || c.node.scopes.includes(webhooks);
  const acks: Acknowledgement[] = [];
  const ack = (scope: Scope, id: string, reason: string): void => {
    // A guard on this file: an acknowledgement reaches everything under its scope. The one exception is
    // the stack-level function CDK adds for the landing zone's bucket notification (created for us).
    const singleton = scope.node.scope?.node.id === NOTIFICATIONS_HANDLER_ID && webhooks.landing !== undefined;
    if (!ours(scope) && !singleton)
      throw new Error(`AwsSolutions-${id} would be acknowledged on ${scope.node.path}, not ours`);
    Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${id}`, reason });
    acks.push({ scope, id, reason });
  };
  Aspects.of(webhooks).add(new Nag2Suppressions(webhooks, acks), { priority: AspectPriority.MUTATING });

  if (receiver.api)
    ack(
      receiver.api,
      'APIG4',
      'Smartcar cannot send API Gateway credentials; every delivery is authenticated by its SC-Signature ' +
        '(HMAC-SHA256 with the management token) in the verification function, and the route is throttled.',
    );
  for (const fn of [
    receiver.verifyFunction,
    dataLake.ingestFunction,
    ...(webhooks.quarantine ? [webhooks.quarantine.recoverFunction, webhooks.quarantine.writerFunction] : []),
    workflow.planFunction,
    workflow.vehicleFunction,
    workflow.resultsFunction,
    ...(dataLake.stateFunction ? [dataLake.stateFunction] : []),
  ]) {
    ack(
      fn,
      'L1',
      'The project targets the nodejs22.x runtime on purpose (tested there); upgrades are a reviewed change.',
    );
  }

  // --- data lake -------------------------------------------------------------------------------------
  const ingestRole = dataLake.ingestFunction.role as NonNullable<typeof dataLake.ingestFunction.role>;
  ack(
    ingestRole,
    'IAM5[Action::s3:Abort*]',
    'Part of bucket.grantPut: lets the function abort its own multipart uploads; it cannot read or delete.',
  );
  // cdk-nag names the finding after the resource as written in the template.
  const bucketResource = dataLake.bucket.node.defaultChild
    ? attr(dataLake.bucket, 'Arn')
    : Token.isUnresolved(dataLake.bucket.bucketName)
      ? undefined // an imported bucket known only at deploy time: its owner acknowledges the finding
      : `arn:<AWS::Partition>:s3:::${dataLake.bucket.bucketName}`;
  if (bucketResource) {
    ack(
      ingestRole,
      `IAM5[Resource::${bucketResource}/${dataLake.rawPrefix}/*]`,
      'Object keys are generated per batch; the grant is limited to the raw-zone prefix of the lake bucket.',
    );
  }
  if (webhooks.landing && bucketResource) {
    const landingObjects = `IAM5[Resource::${bucketResource}/${webhooks.landing.prefix}/*]`;
    ack(
      ingestRole,
      landingObjects,
      'Firehose names each landing object; the ingest function may read and delete only the landing zone of the lake bucket.',
    );
    ack(
      webhooks.landing.node.findChild('StreamRole'),
      landingObjects,
      'Firehose names each landing object; the stream may write only the landing zone of the lake bucket.',
    );
  }
  if (webhooks.landing) {
    // CDK's one bucket-notifications function per stack (it configures S3 event notifications at deploy time).
    const handler = Stack.of(webhooks).node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
    const handlerRole = handler?.node.tryFindChild('Role');
    if (handlerRole)
      ack(
        handlerRole,
        'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's bucket-notifications function (it sets the landing zone's S3 notification at deploy time) writes only its own logs.",
      );
  }
  if (ours(dataLake.bucket)) {
    ack(
      dataLake.bucket,
      'S1',
      'Writes come only from the ingest function (CloudTrail data events can be enabled account-wide); ' +
        'pass bucketProps.serverAccessLogsBucket to turn on S3 server access logs.',
    );
  }
  if (dataLake.dedupTable) {
    ack(
      dataLake.dedupTable,
      'DDB3',
      'The table only caches stored eventIds for deduplication (items expire by TTL); losing it can cause a ' +
        'duplicate record, never a lost one, so point-in-time recovery would be cost without benefit.',
    );
  }
  if (dataLake.vehicleStateTable) {
    ack(
      dataLake.vehicleStateTable,
      'DDB3',
      'The table holds current state derived from the lake; `npx smartcar-webhooks rebuild-state` rebuilds it from the lake, which is ' +
        'versioned, so point-in-time recovery would be cost without benefit.',
    );
  }
  if (dataLake.stateFunction && bucketResource) {
    const stateRole = dataLake.stateFunction.role as Scope;
    for (const finding of ['IAM5[Action::s3:GetBucket*]', 'IAM5[Action::s3:GetObject*]', 'IAM5[Action::s3:List*]']) {
      ack(
        stateRole,
        finding,
        'Part of bucket.grantRead on the raw-zone prefix: the state function reads back the objects the ingest function wrote.',
      );
    }
    ack(
      stateRole,
      `IAM5[Resource::${bucketResource}/${dataLake.rawPrefix}/*]`,
      'Object keys are generated per batch; the state function may read only the raw zone of the lake bucket.',
    );
  }
  if (ours(webhooks.managementTokenSecret)) {
    ack(
      webhooks.managementTokenSecret,
      'SMG4',
      'The Smartcar management token is issued by the Smartcar Dashboard and cannot be rotated by a Lambda; ' +
        '`npx smartcar-webhooks rotate-token` replaces it by hand and the receiver picks it up without a redeploy.',
    );
  }

  ack(
    webhooks.catalog.resultsBucket,
    'S1',
    'Holds only Athena query results, written through the workgroup and expiring after 30 days; Athena and CloudTrail record who queried what.',
  );

  // --- quarantine ------------------------------------------------------------------------------------
  const quarantine = webhooks.quarantine;
  if (quarantine) {
    ack(
      quarantine.bucket,
      'S1',
      'Holds only deliveries rejected for their signature, written by the quarantine function (PutObject only) and ' +
        'read by the recovery function; expires after 14 days. Every write is counted in the Quarantined metric.',
    );
    const quarantined = `IAM5[Resource::${attr(quarantine.bucket, 'Arn')}/quarantine/*]`;
    for (const fn of [quarantine.writerFunction, quarantine.recoverFunction]) {
      ack(
        fn.role as Scope,
        quarantined,
        'Quarantined deliveries have generated keys; access is limited to the quarantine/ prefix of the quarantine bucket ' +
          '(the quarantine function may only put, the recovery function only get and delete).',
      );
    }
    ack(
      quarantine.recoverFunction.role as Scope,
      `IAM5[Resource::${attr(quarantine.bucket, 'Arn')}/recovery/*]`,
      "Recovery's progress markers have generated keys (one per quarantine object); only the recovery function reads and writes them.",
    );
  }

  // --- subscription workflow -------------------------------------------------------------------------
  ack(
    workflow.workBucket,
    'S1',
    'Holds only vehicle-id pages and run reports, written and read by the workflow functions; expires after 30 days.',
  );
  ack(
    workflow.stateMachine,
    'SF1',
    'Logging is at ERROR without execution data on purpose: ALL would copy vehicle ids and task payloads into ' +
      'CloudWatch Logs for every step of runs that take hours; the execution history keeps the detail.',
  );
  const workObjects = `IAM5[Resource::${attr(workflow.workBucket, 'Arn')}/runs/*]`;
  for (const fn of [workflow.planFunction, workflow.resultsFunction]) {
    ack(
      fn.role as Scope,
      workObjects,
      'Run objects have generated keys; access is limited to the runs/ prefix of the work bucket.',
    );
  }
  const tokenSecrets = `IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${
    workflow.accessTokenSecretPrefix
  }*]`;
  for (const fn of [workflow.planFunction, workflow.vehicleFunction]) {
    ack(
      fn.role as Scope,
      tokenSecrets,
      'Callers name per-user access-token secrets at run time; GetSecretValue is limited to the documented name prefix.',
    );
  }
  const smName = attr(workflow.stateMachine, 'Name');
  ack(
    workflow,
    `IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${smName}:*]`,
    'The task functions read the input of executions of this state machine only (to fetch the access token ' +
      'without carrying it in state); execution names are chosen by callers.',
  );
  const role = workflow.stateMachine.role;
  for (const fn of [workflow.planFunction, workflow.vehicleFunction, workflow.resultsFunction]) {
    ack(
      role,
      `IAM5[Resource::${attr(fn, 'Arn')}:*]`,
      'Added by LambdaInvoke: the state machine may invoke its own task functions and their versions only.',
    );
  }
  ack(
    role,
    'IAM5[Resource::*]',
    'X-Ray tracing and CloudWatch Logs delivery: AWS documents these actions as not supporting resource-level permissions.',
  );
  // The Distributed Map starts, describes and stops child executions of its own state machine.
  const smRef = `{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${Stack.of(workflow).getLogicalId(
    workflow.stateMachine.node.defaultChild as CfnElement,
  )}"}]}]}`;
  for (const pattern of [`${smRef}/*:*`, `${smRef}:*`]) {
    ack(
      workflow.stateMachine,
      `IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${pattern}]`,
      'Added by DistributedMap: the state machine manages the child executions of its own runs only.',
    );
  }

  // --- reconcile --------------------------------------------------------------------------------------
  const reconcile = webhooks.reconcile;
  ack(
    reconcile.reconcileFunction,
    'L1',
    'The project targets the nodejs22.x runtime on purpose (tested there); upgrades are a reviewed change.',
  );
  ack(
    reconcile.reconcileFunction.role as Scope,
    `IAM5[Resource::${attr(workflow.workBucket, 'Arn')}/reconcile/*]`,
    'Run lists, reports and the incremental watermark have generated keys; access is limited to the reconcile/ prefix.',
  );
  ack(
    reconcile.stateMachine.role,
    `IAM5[Resource::${attr(reconcile.reconcileFunction, 'Arn')}:*]`,
    'Added by LambdaInvoke: the state machine may invoke its own task function and its versions only.',
  );
  ack(
    reconcile.stateMachine.role,
    'IAM5[Resource::*]',
    'X-Ray tracing and CloudWatch Logs delivery: AWS documents these actions as not supporting resource-level permissions.',
  );
  ack(
    reconcile.stateMachine,
    'SF1',
    'Logging is at ERROR without execution data on purpose: ALL would copy user and vehicle ids into CloudWatch Logs ' +
      'for every step of runs that take days; the execution history keeps the detail.',
  );
  if (reconcile.clientCredentialsSecret && ours(reconcile.clientCredentialsSecret)) {
    ack(
      reconcile.clientCredentialsSecret,
      'SMG4',
      'Client credentials are issued in the Smartcar Dashboard (up to three secrets at once for rotation without ' +
        'downtime) and cannot be rotated by a Lambda; operators replace the value by hand.',
    );
  }

  // --- fleet check and compaction: state machines that run Athena as themselves -------------------------
  const db = webhooks.catalog.databaseName;
  /** The catalog's query grant on a state machine's role, and what it reads or writes of the lake. */
  const athenaRole = (role: Scope, who: string, extra: string, lake: { raw: string; curated: string }) => {
    for (const finding of [
      'IAM5[Action::s3:Abort*]',
      'IAM5[Action::s3:DeleteObject*]',
      'IAM5[Action::s3:GetBucket*]',
      'IAM5[Action::s3:GetObject*]',
      'IAM5[Action::s3:List*]',
      'IAM5[Resource::*]',
      `IAM5[Resource::${attr(webhooks.catalog.resultsBucket, 'Arn')}/*]`,
      `IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/${db}/*]`,
    ]) {
      ack(
        role,
        finding,
        `The catalog's query grant: Athena runs ${who} as this role, so it reads the Glue tables of its own database ` +
          `and the lake, and reads and writes query results in the results bucket (generated keys); ${extra}`,
      );
    }
    if (bucketResource) {
      ack(role, `IAM5[Resource::${bucketResource}/${dataLake.rawPrefix}/*]`, lake.raw);
      ack(role, `IAM5[Resource::${bucketResource}/${webhooks.catalog.curatedPrefix}/*]`, lake.curated);
    }
  };
  const check = webhooks.fleetCheck;
  athenaRole(
    check.stateMachine.role,
    'the check',
    'cloudwatch:PutMetricData and X-Ray support no resource-level permissions.',
    {
      raw: 'The check reads the raw zone of the lake only.',
      curated: 'The check reads the curated layer of the lake, which the views read with the raw zone.',
    },
  );
  ack(check.stateMachine, 'SF1', 'Logging is at ERROR without execution data on purpose; the results are in Athena.');

  const compaction = webhooks.compaction;
  athenaRole(
    compaction.stateMachine.role,
    "the compaction's statements",
    'cloudwatch:PutMetricData (its count of late raw objects) and X-Ray support no resource-level permissions.',
    {
      raw: 'The compaction reads the raw zone (Athena reads it; nothing of ours does).',
      curated:
        'Athena writes the curated layer (Parquet under generated names) and reads it back to leave out curated events.',
    },
  );
  ack(
    compaction.stateMachine,
    'SF1',
    'Logging is at ERROR without execution data on purpose; each statement is an Athena query with its own history.',
  );

  // --- erasure ----------------------------------------------------------------------------------------
  const erasure = webhooks.erasure;
  if (erasure) {
    ack(
      erasure.eraseFunction,
      'L1',
      'The project targets the nodejs22.x runtime on purpose (tested there); upgrades are a reviewed change.',
    );
    for (const { bucket, pattern, reason } of erasure.objectGrants) {
      const arn = bucket.node.defaultChild
        ? attr(bucket, 'Arn')
        : Token.isUnresolved(bucket.bucketName)
          ? undefined // an imported bucket known only at deploy time: its owner acknowledges the finding
          : `arn:<AWS::Partition>:s3:::${bucket.bucketName}`;
      if (arn) ack(erasure.eraseFunction.role as Scope, `IAM5[Resource::${arn}/${pattern}]`, reason);
    }
    ack(
      erasure.stateMachine.role,
      `IAM5[Resource::${attr(erasure.eraseFunction, 'Arn')}:*]`,
      'Added by LambdaInvoke: the state machine may invoke its own task function and its versions only.',
    );
    ack(
      erasure.stateMachine.role,
      'IAM5[Resource::*]',
      'X-Ray tracing and CloudWatch Logs delivery: AWS documents these actions as not supporting resource-level permissions.',
    );
    ack(
      erasure.stateMachine,
      'SF1',
      'Logging is at ERROR without execution data on purpose: the input is the id being erased; the receipt in the ' +
        'work bucket records what was done.',
    );
  }
}
