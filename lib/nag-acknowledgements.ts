/**
 * Every cdk-nag (AwsSolutions) finding this project accepts, in one place, each with its reason.
 * Anything not listed here fails `cdk synth` and the test suite.
 */
import { type CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { SmartcarWebhooks } from './smartcar-webhooks';

type Scope = Parameters<typeof Validations.of>[0];

function ack(scope: Scope, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${id}`, reason });
}

/** How cdk-nag writes a resource's ARN attribute in a finding id: `<LogicalId.Arn>`. */
function attr(construct: IConstruct, attribute: string): string {
  const cfn = construct.node.defaultChild as CfnElement;
  return `<${Stack.of(construct).getLogicalId(cfn)}.${attribute}>`;
}

/** cdk-nag (AwsSolutions) acknowledgements for a {@link SmartcarWebhooks}, each with its reason. */
// biome-ignore lint/complexity/noStaticOnlyClass: jsii (the multi-language bindings) exports classes, not free functions
export class NagAcknowledgements {
  /** Acknowledges every AwsSolutions finding the construct knowingly raises, each with its reason. */
  public static acknowledge(webhooks: SmartcarWebhooks): void {
    acknowledgeNagFindings(webhooks);
  }
}

/** See {@link NagAcknowledgements.acknowledge}. */
export function acknowledgeNagFindings(webhooks: SmartcarWebhooks): void {
  const { receiver, dataLake, subscriptionWorkflow: workflow } = webhooks;

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
  if (dataLake.bucket.node.defaultChild) {
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
      'The table holds current state derived from the lake; npm run rebuild-state rebuilds it from the lake, which is ' +
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
  if (webhooks.managementTokenSecret.node.defaultChild) {
    ack(
      webhooks.managementTokenSecret,
      'SMG4',
      'The Smartcar management token is issued by the Smartcar Dashboard and cannot be rotated by a Lambda; ' +
        'the rotation runbook in the README replaces it by hand and the receiver picks it up without a redeploy.',
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
  if (reconcile.clientCredentialsSecret.node.defaultChild) {
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
}
