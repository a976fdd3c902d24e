/**
 * How an operator reaches a deployed instance from a workstation: the stack outputs the construct emits
 * (opt-in, `outputs`), which the operations CLI (`npx smartcar-webhooks <command> --stack NAME`) reads to
 * find every resource, and the command lines the alarm texts give, which work in the consumer's own stack
 * (not only in a copy of this repository). Without outputs the command lines carry explicit flags instead.
 */
import { Aws, CfnOutput, Stack, Token } from 'aws-cdk-lib';
import { VIEWS } from './queries';
import type { SmartcarWebhooks } from './smartcar-webhooks';
import { ConfigurationError } from './validation';

/** The stack outputs of one instance, for the operations CLI and for people. */
export interface OutputsOptions {
  /**
   * Put in front of every output key (`ProdCallbackUrl`), so that several instances in one stack emit
   * their outputs side by side; the CLI picks one with `--instance <prefix>`. Letters and digits only,
   * and not `default` (the CLI's name for no prefix).
   * @default '' (keys without a prefix: `CallbackUrl`, …)
   */
  readonly prefix?: string;
}

/** The command lines the alarm texts give an operator of one instance. */
export interface OperatorCommands {
  /** Puts a new management token in the secret and recovers what was rejected meanwhile (token piped in). */
  readonly rotateToken: string;
  /** Re-verifies quarantined deliveries with the current token and re-ingests those that pass. */
  readonly recoverRejected: string;
  /** Moves the delivery dead-letter queue's messages back to the delivery queue. */
  readonly redrive: string;
  /** Moves the state dead-letter queue's messages back to the state queue. */
  readonly redriveState: string;
  /** Rebuilds the vehicle state table from the lake. */
  readonly rebuildState: string;
}

/** The CLI as a consumer runs it: the package's `bin`. */
const CLI = 'npx smartcar-webhooks';

/** Where the CLI finds an instance: its stack (and output prefix), when the instance emits outputs. */
export interface CliAddress {
  readonly stackName: string;
  readonly prefix: string;
}

/** `npx smartcar-webhooks <command> --stack S [--instance P]`, or with `explicit` flags when there is no address. */
export function cliCommand(command: string, address: CliAddress | undefined, explicit: string): string {
  if (!address) return `${CLI} ${command} ${explicit}`;
  return `${CLI} ${command} --stack ${address.stackName}${address.prefix ? ` --instance ${address.prefix}` : ''}`;
}

/** The command lines for one instance; `address` undefined when it emits no outputs. */
export function operatorCommands(webhooks: SmartcarWebhooks, address: CliAddress | undefined): OperatorCommands {
  const { receiver, dataLake, quarantine } = webhooks;
  const secretArn = webhooks.managementTokenSecret.secretArn;
  const dedup = dataLake.dedupTable ? ` --dedup-table ${dataLake.dedupTable.tableName}` : '';
  return {
    rotateToken: cliCommand(
      'rotate-token',
      address,
      `--secret-id ${secretArn}${quarantine ? ` --recover-function ${quarantine.recoverFunction.functionName}` : ''}`,
    ),
    recoverRejected: cliCommand(
      'recover-rejected',
      address,
      quarantine
        ? `--bucket ${quarantine.bucket.bucketName} --secret-id ${secretArn} --queue-url ${receiver.queue.queueUrl}${dedup}`
        : '',
    ),
    redrive: cliCommand(
      'redrive',
      address,
      `--dlq-url ${receiver.deadLetterQueue.queueUrl} --queue-url ${receiver.queue.queueUrl}`,
    ),
    redriveState: `${cliCommand(
      'redrive',
      address,
      dataLake.stateQueue && dataLake.stateDeadLetterQueue
        ? `--dlq-url ${dataLake.stateDeadLetterQueue.queueUrl} --queue-url ${dataLake.stateQueue.queueUrl}`
        : '',
    )} --queue state`,
    rebuildState: cliCommand(
      'rebuild-state',
      address,
      dataLake.vehicleStateTable
        ? `--bucket ${dataLake.bucket.bucketName} --table ${dataLake.vehicleStateTable.tableName} --prefix ${dataLake.rawPrefix}`
        : '',
    ),
  };
}

/** Throws unless `prefix` can start an output key and be told apart by the CLI. */
export function checkOutputsPrefix(prefix: string): void {
  if (Token.isUnresolved(prefix) || !/^[A-Za-z0-9]{0,64}$/.test(prefix) || prefix === 'default') {
    throw new ConfigurationError(
      `outputs.prefix ${JSON.stringify(prefix)} is invalid: use up to 64 letters and digits (not "default"), e.g. "Staging", or '' for none.`,
    );
  }
}

/**
 * Emits the instance's outputs at the top of its stack: OutputKey `<prefix><Name>`, Description
 * `[smartcar-webhooks:<prefix or default>] …`, one for each part that exists. The CLI reads them by the
 * Description's marker; the key names are the contract (`cli/stack.ts`).
 */
export function emitOutputs(webhooks: SmartcarWebhooks, prefix: string): void {
  const stack = Stack.of(webhooks);
  const marker = `[smartcar-webhooks:${prefix || 'default'}] `;
  const out = (name: string, value: string, description: string) => {
    // Prefixes can differ and keys still meet: 'State' + 'DeadLetterQueueUrl' is the unprefixed
    // instance's StateDeadLetterQueueUrl. Said in one line, not as CDK's duplicate-construct error.
    const existing = stack.node.tryFindChild(`${prefix}${name}`);
    if (existing) {
      throw new ConfigurationError(
        `outputs.prefix ${JSON.stringify(prefix)} of ${webhooks.node.path} makes the output ${prefix}${name}, which ` +
          `stack ${stack.node.id} already has (${existing instanceof CfnOutput ? 'another output' : 'a construct'} of that id); choose another prefix.`,
      );
    }
    return new CfnOutput(stack, `${prefix}${name}`, { value, description: `${marker}${description}` });
  };
  const address = { stackName: Aws.STACK_NAME, prefix };
  const { receiver, dataLake, quarantine, catalog, reconcile, monitoring } = webhooks;
  const secret = webhooks.managementTokenSecret;
  const workflow = webhooks.subscriptionWorkflow.stateMachine;
  const consoleUrl = (arn: string) =>
    `https://${Aws.REGION}.console.aws.amazon.com/states/home?region=${Aws.REGION}#/statemachines/view/${arn}`;

  out(
    'CallbackUrl',
    webhooks.callbackUrl,
    'Paste into Smartcar Dashboard → Webhooks as the callback URI, then press Verify',
  );
  if (webhooks.errorCallbackUrl) {
    out(
      'ErrorCallbackUrl',
      webhooks.errorCallbackUrl,
      'Paste into Smartcar Dashboard → Webhooks as the vehicle error callback URI (VEHICLE_ERROR deliveries)',
    );
  }
  out('ManagementTokenSecretArn', secret.secretArn, 'Secret that must hold the application management token (ARN)');
  out('ManagementTokenSecretName', secret.secretName, 'Secret that must hold the application management token');
  out(
    'SetManagementTokenCommand',
    `aws secretsmanager put-secret-value --secret-id ${secret.secretArn} --secret-string "$SMARTCAR_MANAGEMENT_TOKEN"`,
    'Run once (token from Smartcar Dashboard → Configuration) before pressing Verify',
  );
  out(
    'RotateTokenCommand',
    cliCommand('rotate-token', address, ''),
    'After generating a new token in the Dashboard: pipe it in (never as an argument); recovers what was rejected meanwhile',
  );
  out('LakeBucketName', dataLake.bucket.bucketName, 'S3 bucket of the data lake');
  out('RawPrefix', dataLake.rawPrefix, 'Key prefix of the raw zone in the lake bucket');
  out(
    'DeliveryQueueUrl',
    receiver.queue.queueUrl,
    'Queue between the receiver and the ingest function (the redrive target)',
  );
  out(
    'DeadLetterQueueUrl',
    receiver.deadLetterQueue.queueUrl,
    'Deliveries the ingest function could not store; should stay empty',
  );
  if (quarantine) {
    out(
      'QuarantineBucketName',
      quarantine.bucket.bucketName,
      'Deliveries answered 401 only for their signature, kept 14 days for recovery',
    );
    out('QuarantineQueueUrl', quarantine.queue.queueUrl, 'Rejected deliveries waiting for the quarantine writer');
    out(
      'RecoveryFunctionName',
      quarantine.recoverFunction.functionName,
      'Invoke with {"since": "<ISO time>"} to re-ingest quarantined deliveries that now verify',
    );
    out(
      'RecoverRejectedCommand',
      `${cliCommand('recover-rejected', address, '')} --since <ISO time>`,
      'Re-verify and re-ingest quarantined deliveries from a workstation (add --until/--dry-run)',
    );
  }
  if (dataLake.dedupTable) {
    out('DedupTableName', dataLake.dedupTable.tableName, 'Stored eventIds, for deduplication (expiring)');
  }
  if (dataLake.vehicleStateTable) {
    out('StateTableName', dataLake.vehicleStateTable.tableName, "Each vehicle's current state, derived from the lake");
  }
  if (dataLake.stateQueue) {
    out('StateQueueUrl', dataLake.stateQueue.queueUrl, 'Lake objects waiting for the vehicle state function');
  }
  if (dataLake.stateDeadLetterQueue) {
    out(
      'StateDeadLetterQueueUrl',
      dataLake.stateDeadLetterQueue.queueUrl,
      'Lake objects the vehicle state function failed on; should stay empty',
    );
  }
  out(
    'WorkBucketName',
    webhooks.subscriptionWorkflow.workBucket.bucketName,
    'Vehicle-id pages and run reports of the subscription and reconcile runs',
  );
  out(
    'SubscriptionStateMachineArn',
    workflow.stateMachineArn,
    'Start with {"accessToken": "<user access token>"} to subscribe all of the user vehicles',
  );
  out(
    'SubscriptionConsoleUrl',
    consoleUrl(workflow.stateMachineArn),
    'Open, then press "Start execution" and paste the input',
  );
  if (reconcile.clientCredentialsSecret)
    out(
      'ClientCredentialsSecretName',
      reconcile.clientCredentialsSecret.secretName,
      'Put {"clientId": "…", "clientSecret": "…"} (Dashboard → API Credentials) here before reconciling',
    );
  out(
    'ReconcileStateMachineArn',
    reconcile.stateMachine.stateMachineArn,
    'Start with {"kind": "full", "dryRun": true} to see the plan; the schedules run it when reconcile.enabled',
  );
  out(
    'ReconcileConsoleUrl',
    consoleUrl(reconcile.stateMachine.stateMachineArn),
    'Open, then press "Start execution" with {"kind": "full", "dryRun": true}',
  );
  out(
    'CompactionStateMachineArn',
    webhooks.compaction.stateMachine.stateMachineArn,
    'Compacts closed hours into the curated layer; start with {"lookbackDays": N} to reach older hours',
  );
  out(
    'CompactionLockTableName',
    webhooks.compaction.lockTable.tableName,
    'The compaction lease; erasures hold it too (one item, pk "compaction")',
  );
  if (webhooks.erasure) {
    out(
      'EraseStateMachineArn',
      webhooks.erasure.stateMachine.stateMachineArn,
      'Start with {"vehicleId": "…"} or {"userId": "…"} (add "dryRun": true to count first); the receipt goes to the work bucket',
    );
  }
  out(
    'AthenaResultsBucketName',
    catalog.resultsBucket.bucketName,
    'Athena query results and silent-vehicles reports (expiring)',
  );
  out(
    'FleetCheckStateMachineArn',
    webhooks.fleetCheck.stateMachine.stateMachineArn,
    'Counts silent vehicles and writes the silent-vehicles report',
  );
  out(
    'AthenaWorkGroup',
    catalog.workGroup.ref,
    `Athena workgroup: open it, run the named queries "01…${String(VIEWS.length).padStart(2, '0')} create view" once, in order, then query`,
  );
  out('GlueDatabase', catalog.databaseName, 'Glue database holding the deliveries table and the views');
  if (monitoring.dashboard) {
    out('DashboardName', monitoring.dashboard.dashboardName, 'CloudWatch dashboard of this instance');
  }
  out('AlarmTopicArn', monitoring.alarmTopic.topicArn, 'SNS topic every alarm of this instance notifies');
}
