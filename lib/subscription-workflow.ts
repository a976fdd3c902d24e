/**
 * The vehicle subscription workflow: a Standard state machine that lists a user's vehicles page by page
 * (or takes the ids it is given), then subscribes (or unsubscribes) each one, waiting out Smartcar's
 * `Retry-After` on 429 and backing off with jitter on transient errors. Pages are processed by a
 * Distributed Map whose children each handle one page, so 10,000 vehicles fit one execution.
 * The user's access token never travels in state: tasks read it back from the execution input (or a
 * secret) themselves.
 */
import { Aws, Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { DEFAULT_SMARTCAR_API_ORIGIN, ENV, WORKFLOW_ENV, WORKFLOW_ERRORS, WORKFLOW_TASKS } from '../lambda/contract';
import { HouseFunction } from './function';
import { privateBucket } from './private-bucket';
import { ConfigurationError, checkApiOrigin, checkInteger, checkPattern, checkWebhookId } from './validation';

/** What a user of {@link SmartcarWebhooks} can set about the subscription workflow. */
export interface SubscriptionWorkflowOptions {
  /**
   * The only webhooks executions may subscribe vehicles to or unsubscribe them from; enforced by the task
   * code, so that starting an execution does not let anyone point vehicles at another webhook.
   * @default - only `webhookId` (none when it is not set: every execution is refused)
   */
  readonly allowedWebhookIds?: string[];
  /** Vehicles processed at the same time within a page of 50. @default 2 */
  readonly maxConcurrency?: number;
  /**
   * Name prefix of the secrets that executions may name in `accessTokenSecretArn`; the task functions
   * can read only secrets under it.
   * @default 'smartcar/access-tokens/'
   */
  readonly accessTokenSecretPrefix?: string;
  /** Base URL of the Smartcar API. @default 'https://api.smartcar.com' */
  readonly smartcarApiOrigin?: string;
  /** Longest an execution may run. @default Duration.days(7) */
  readonly timeout?: Duration;
  /**
   * How long run pages and reports (`runs/`, `reconcile/runs/`) are kept in the work bucket; reconcile's
   * watermarks are kept. @default Duration.days(30)
   */
  readonly workRetention?: Duration;
  /**
   * What happens to the work bucket (run pages, results and reports) when the stack is deleted.
   * `DESTROY` removes it only when it is empty.
   * @default RemovalPolicy.RETAIN
   */
  readonly workBucketRemovalPolicy?: RemovalPolicy;
}

export interface SubscriptionWorkflowProps extends SubscriptionWorkflowOptions {
  /** The secret with the application management token (Unsubscribe uses it). */
  readonly managementTokenSecret: secretsmanager.ISecret;
  /** Webhook id used when an execution names none. @default - executions must pass webhookId */
  readonly webhookId?: string;
  /** Retention of the functions' and the state machine's log groups. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to those log groups when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

export class SubscriptionWorkflow extends Construct {
  /** The Standard state machine operators start (console or StartExecution). */
  public readonly stateMachine: sfn.StateMachine;
  /** Holds each run's vehicle pages, per-page results and report (never tokens). */
  public readonly workBucket: s3.Bucket;
  /** Validates input, lists vehicles. */
  public readonly planFunction: HouseFunction;
  /** Subscribes or unsubscribes one vehicle. */
  public readonly vehicleFunction: HouseFunction;
  /** Loads pages, records results, writes the summary. */
  public readonly resultsFunction: HouseFunction;
  /** The state machine's log group (ERROR level, no execution data). */
  public readonly logGroup: logs.LogGroup;
  /** Name prefix of the secrets executions may name in `accessTokenSecretArn`. */
  public readonly accessTokenSecretPrefix: string;

  constructor(scope: Construct, id: string, props: SubscriptionWorkflowProps) {
    super(scope, id);
    const maxConcurrency = props.maxConcurrency ?? 2;
    checkInteger(
      'subscriptionWorkflow.maxConcurrency',
      maxConcurrency,
      1,
      40,
      "Smartcar's default rate limit refills 2 requests a minute",
    );
    const secretPrefix = props.accessTokenSecretPrefix ?? 'smartcar/access-tokens/';
    checkPattern(
      'subscriptionWorkflow.accessTokenSecretPrefix',
      secretPrefix,
      /^[A-Za-z0-9/_+=.@-]+$/,
      'use only letters, digits and /_+=.@-',
    );
    checkWebhookId('webhookId', props.webhookId);
    for (const id of props.allowedWebhookIds ?? []) checkWebhookId('subscriptionWorkflow.allowedWebhookIds entry', id);
    if (props.allowedWebhookIds?.some((id) => Token.isUnresolved(id))) {
      throw new ConfigurationError(
        'subscriptionWorkflow.allowedWebhookIds must be literal ids: the task code compares them at run time.',
      );
    }
    checkApiOrigin('subscriptionWorkflow.smartcarApiOrigin', props.smartcarApiOrigin);
    this.accessTokenSecretPrefix = secretPrefix;
    const apiOrigin = props.smartcarApiOrigin ?? DEFAULT_SMARTCAR_API_ORIGIN;
    const common = { logRetention: props.logRetention, logRemovalPolicy: props.logRemovalPolicy };

    // A reconcile run reads its plan and outcomes from the work bucket for as long as it lasts (25,000
    // vehicles at the default rate take about 9 days): they must not expire under it.
    if (props.workRetention && props.workRetention.toDays({ integral: false }) < 14)
      throw new ConfigurationError(
        `subscriptionWorkflow.workRetention is ${props.workRetention.toHumanString()}; give at least 14 days (a long reconcile run reads its plan from the work bucket for days).`,
      );
    this.workBucket = privateBucket(this, 'WorkBucket', {
      removalPolicy: props.workBucketRemovalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        // Run pages and reports expire; reconcile's watermarks (reconcile/watermarks/) must not, or the
        // incremental runs would start over from nothing once a month.
        { id: 'expire-runs', prefix: 'runs/', expiration: props.workRetention ?? Duration.days(30) },
        {
          id: 'expire-reconcile-runs',
          prefix: 'reconcile/runs/',
          expiration: props.workRetention ?? Duration.days(30),
        },
        // What a running erasure found (vehicle and event ids) lives here until it completes; one that is
        // never finished or rerun must not keep them for good. Receipts (erasures/receipts/) never expire.
        { id: 'expire-erasure-pending', prefix: 'erasures/pending/', expiration: Duration.days(14) },
        { id: 'abort-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    const taskEnv = {
      [WORKFLOW_ENV.workBucketName]: this.workBucket.bucketName,
      [ENV.smartcarApiOrigin]: apiOrigin,
      [WORKFLOW_ENV.accessTokenSecretPrefix]: secretPrefix,
      [ENV.managementTokenSecretId]: props.managementTokenSecret.secretArn,
      ...(props.webhookId ? { [WORKFLOW_ENV.defaultWebhookId]: props.webhookId } : {}),
      [WORKFLOW_ENV.allowedWebhookIds]: (props.allowedWebhookIds ?? (props.webhookId ? [props.webhookId] : [])).join(
        ',',
      ),
    };
    // Smartcar's latency can reach 300 s; the client gives up at 310 s, the function a little later.
    const apiTimeout = Duration.seconds(330);
    this.planFunction = new HouseFunction(this, 'PlanFunction', {
      handler: 'workflow-plan',
      description: 'Subscription workflow: validates the input and lists the user vehicles page by page',
      timeout: apiTimeout,
      environment: taskEnv,
      ...common,
    });
    this.vehicleFunction = new HouseFunction(this, 'VehicleFunction', {
      handler: 'workflow-vehicle',
      description: 'Subscription workflow: subscribes or unsubscribes one vehicle',
      timeout: apiTimeout,
      environment: taskEnv,
      ...common,
    });
    this.resultsFunction = new HouseFunction(this, 'ResultsFunction', {
      handler: 'workflow-results',
      description: 'Subscription workflow: loads vehicle pages, records results, writes the summary',
      timeout: Duration.seconds(120),
      memorySize: 512,
      environment: taskEnv,
      ...common,
    });

    // Least privilege per function.
    // Exact S3 actions rather than grantPut/grantReadWrite, which add wildcard actions (s3:Abort*, s3:List*,
    // s3:DeleteObject*) that these functions never use.
    const runObjects = this.workBucket.arnForObjects('runs/*');
    this.planFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [runObjects] }));
    this.resultsFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [runObjects] }),
    );
    this.resultsFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.workBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['runs/*'] } },
      }),
    );
    props.managementTokenSecret.grantRead(this.vehicleFunction);
    const accessTokenSecrets = new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [`arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${secretPrefix}*`],
    });
    this.planFunction.addToRolePolicy(accessTokenSecrets);
    this.vehicleFunction.addToRolePolicy(accessTokenSecrets);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: "Lists a Smartcar user's vehicles and subscribes (or unsubscribes) each one to a webhook",
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(maxConcurrency)),
      timeout: props.timeout ?? Duration.days(7),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
    });

    // Tasks read the token from their own execution's input instead of receiving it in state. A policy
    // of its own, so the functions do not depend on the state machine that depends on them.
    const ownExecutions = new iam.Policy(this, 'ReadOwnExecutions', {
      statements: [
        new iam.PolicyStatement({
          actions: ['states:DescribeExecution'],
          resources: [
            `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${this.stateMachine.stateMachineName}:*`,
          ],
        }),
      ],
    });
    for (const fn of [this.planFunction, this.vehicleFunction]) fn.role?.attachInlinePolicy(ownExecutions);
  }

  private definition(maxConcurrency: number): sfn.IChainable {
    const invoke = (
      id: string,
      fn: HouseFunction,
      task: keyof typeof WORKFLOW_TASKS,
      payload: Record<string, unknown>,
    ) =>
      new tasks.LambdaInvoke(this, id, {
        lambdaFunction: fn,
        payloadResponseOnly: true,
        payload: sfn.TaskInput.fromObject({ task: WORKFLOW_TASKS[task], ...payload }),
      });
    const retryTransient = (state: tasks.LambdaInvoke) =>
      state.addRetry({
        errors: [WORKFLOW_ERRORS.retryable],
        interval: Duration.seconds(5),
        backoffRate: 2,
        maxAttempts: 6,
        maxDelay: Duration.minutes(5),
        jitterStrategy: sfn.JitterType.FULL,
      });

    // 1. Validate the input (the task reads it back itself, so the token is not copied into state).
    const checkInput = invoke('Check input', this.planFunction, 'prepare', {
      executionArn: sfn.JsonPath.stringAt('$$.Execution.Id'),
      executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
    });

    // 2. List the user's vehicles, one page per call, waiting out 429s.
    const listPage = retryTransient(
      invoke('List a page of vehicles', this.planFunction, 'listPage', { state: sfn.JsonPath.entirePayload }),
    );
    const waitToList = new sfn.Wait(this, 'Wait before listing again', {
      time: sfn.WaitTime.secondsPath('$.retryAfterSeconds'),
    }).next(listPage);
    const allListed = new sfn.Choice(this, 'All vehicles listed?');

    // 3. Per vehicle: subscribe or unsubscribe, wait out 429s, back off on transient errors, record the rest.
    const processVehicle = retryTransient(
      invoke('Subscribe or unsubscribe vehicle', this.vehicleFunction, 'processVehicle', {
        vehicle: sfn.JsonPath.entirePayload,
      }),
    );
    const recordError = new sfn.Pass(this, 'Record vehicle error', {
      parameters: {
        outcome: 'failed',
        vehicleId: sfn.JsonPath.stringAt('$.vehicleId'),
        failure: {
          vehicleId: sfn.JsonPath.stringAt('$.vehicleId'),
          status: null,
          type: sfn.JsonPath.stringAt('$.error.Error'),
          code: null,
          description: sfn.JsonPath.stringAt('$.error.Cause'),
          requestId: null,
        },
      },
    });
    processVehicle.addCatch(recordError, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
    const tryAgain = new sfn.Pass(this, 'Try vehicle again', {
      parameters: {
        vehicleId: sfn.JsonPath.stringAt('$.vehicleId'),
        plan: sfn.JsonPath.objectAt('$.plan'),
        rateLimitWaits: sfn.JsonPath.numberAt('$.rateLimitWaits'),
      },
    }).next(processVehicle);
    const waitRetryAfter = new sfn.Wait(this, 'Wait for Retry-After', {
      time: sfn.WaitTime.secondsPath('$.retryAfterSeconds'),
    }).next(tryAgain);
    const vehicleChain = processVehicle.next(
      new sfn.Choice(this, 'Rate limited?')
        .when(sfn.Condition.stringEquals('$.outcome', 'rate_limited'), waitRetryAfter)
        .otherwise(new sfn.Succeed(this, 'Vehicle done')),
    );

    const eachVehicle = new sfn.Map(this, 'Process each vehicle of the page', {
      itemsPath: '$.vehicleIds',
      maxConcurrency,
      itemSelector: {
        vehicleId: sfn.JsonPath.stringAt('$$.Map.Item.Value'),
        plan: sfn.JsonPath.objectAt('$.plan'),
        rateLimitWaits: 0,
      },
      resultPath: '$.results',
    }).itemProcessor(vehicleChain);

    const pageChain = invoke('Load vehicle page', this.resultsFunction, 'loadPage', {
      page: sfn.JsonPath.entirePayload,
    })
      .next(eachVehicle)
      .next(
        invoke('Record page results', this.resultsFunction, 'recordPage', {
          plan: sfn.JsonPath.objectAt('$.plan'),
          offset: sfn.JsonPath.numberAt('$.offset'),
          results: sfn.JsonPath.listAt('$.results'),
        }),
      );

    // Pages one after another (each a child execution with its own history); vehicles within a page
    // `maxConcurrency` at a time. Together they keep the request rate near Smartcar's budget.
    const eachPage = new sfn.DistributedMap(this, 'Process vehicles page by page', {
      itemsPath: '$.pageOffsets',
      maxConcurrency: 1,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      itemSelector: {
        plan: sfn.JsonPath.objectAt('$.plan'),
        offset: sfn.JsonPath.numberAt('$$.Map.Item.Value'),
      },
      resultPath: sfn.JsonPath.DISCARD,
    }).itemProcessor(pageChain);

    const summarize = invoke('Summarize', this.resultsFunction, 'summarize', {
      plan: sfn.JsonPath.objectAt('$.plan'),
      vehicleCount: sfn.JsonPath.numberAt('$.vehicleCount'),
    });
    const anyVehicles = new sfn.Choice(this, 'Any vehicles?')
      .when(sfn.Condition.numberGreaterThan('$.vehicleCount', 0), eachPage.next(summarize))
      .otherwise(summarize);

    listPage.next(
      new sfn.Choice(this, 'Listing rate limited?')
        .when(sfn.Condition.isPresent('$.retryAfterSeconds'), waitToList)
        .otherwise(allListed),
    );
    allListed.when(sfn.Condition.booleanEquals('$.done', true), anyVehicles).otherwise(listPage);
    return checkInput.next(allListed);
  }
}
