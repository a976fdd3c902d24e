/**
 * Reconciliation, unattended: a Standard state machine that keeps every connected vehicle of the
 * application subscribed to the webhook (core/reconcile.ts), with the application's client credentials
 * in their own secret, and two EventBridge Scheduler schedules: an incremental run every 15 minutes (new
 * connections only: O(1) requests when nothing changed) and a full run daily (every connection against
 * every subscription; `prune` removes subscriptions no longer wanted). The schedules are always there
 * for operators to see and switch, DISABLED until `enabled` is true. With a webhook id, a third schedule
 * invokes the function every `webhookHealthInterval` to check the webhook itself (`GET /webhooks/:id`,
 * core/webhook-health.ts) and publish WebhookHealthy; the same secret and client serve it.
 */
import { Aws, Duration, type RemovalPolicy, SecretValue, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  ANY_ERROR_CALLBACK_URL,
  DEFAULT_MAX_PRUNE_FRACTION,
  DEFAULT_RATE_LIMIT,
  DEFAULT_RECONCILE_EXECUTION_SECONDS,
  ENV,
  PLACEHOLDER_SECRET_KEY,
  RECONCILE_ENV,
  RECONCILE_TASKS,
  SMARTCAR_ID_PATTERN,
  WORKFLOW_ENV,
  WORKFLOW_ERRORS,
} from '../lambda/contract';
import { HouseFunction } from './function';
import { listPrefixStatement } from './private-bucket';
import { ConfigurationError, checkApiOrigin, checkInteger, checkPattern } from './validation';

/** Which connections scheduled reconcile runs keep subscribed. */
export enum ReconcileMode {
  /** Vehicles connected in live mode only (real cars). */
  LIVE = 'live',
  /** Simulated vehicles only. */
  SIMULATED = 'simulated',
  /** Every connection, live and simulated. */
  ALL = 'all',
}

/**
 * Which generation of Smartcar's API reconcile lists the application's connections with. Both manage
 * subscriptions through the Management API v3 (`management.api.smartcar.com/v3/subscriptions`).
 */
export enum SmartcarApi {
  /**
   * API v3: `GET vehicle.api.smartcar.com/v3/connections` with the application token (client credentials
   * only). The default: Smartcar's migration guide deprecates v2.0 by Q4 2026.
   */
  V3 = 'v3',
  /**
   * API v2.0: `GET management.smartcar.com/v2.0/management/connections` with the management token, as
   * 0.3 did; for applications whose v3 access is not enabled yet.
   */
  V2 = 'v2',
}

/** What a user of {@link SmartcarWebhooks} can set about reconciliation. */
export interface ReconcileOptions {
  /**
   * Turn the schedules on (they exist either way, DISABLED until this is true) and create the
   * client-credentials secret ($0.40 a month) unless `existingClientCredentialsSecret` is given. Off, the
   * state machine and its function stay (nothing is charged while they are idle), and a run started by hand
   * fails with one line saying how to turn reconcile on.
   * @default false
   */
  readonly enabled?: boolean;
  /**
   * A secret that already holds the client credentials, JSON `{"clientId": "…", "clientSecret": "…"}`; with
   * it, runs started by hand work with `enabled` false (the schedules stay DISABLED).
   * @default - with `enabled`, a new secret holding a placeholder until you put the credentials in it;
   * without, no secret
   */
  readonly existingClientCredentialsSecret?: secretsmanager.ISecret;
  /** Which connections the scheduled runs keep subscribed. @default ReconcileMode.LIVE */
  readonly mode?: ReconcileMode;
  /** Only these users' vehicles (scheduled runs). @default - every user */
  readonly includeUserIds?: string[];
  /** Never these users' vehicles (scheduled runs). @default - none excluded */
  readonly excludeUserIds?: string[];
  /** Only these vehicles (scheduled runs). @default - every vehicle */
  readonly includeVehicleIds?: string[];
  /** Never these vehicles (scheduled runs). @default - none excluded */
  readonly excludeVehicleIds?: string[];
  /**
   * Scheduled full runs also delete the subscriptions of vehicles that are no longer connected (never those
   * of connected vehicles outside the selection). @default false
   */
  readonly prune?: boolean;
  /**
   * Largest share of the webhook's subscriptions one run deletes; a prune that would delete more deletes
   * nothing, fails its execution with the reason, and raises the failed-runs alarm. Start a run with
   * `{"kind": "full", "prune": true, "allowMassPrune": true}` to remove more on purpose.
   * @default 0.1
   */
  readonly maxPruneFraction?: number;
  /** How often the incremental run starts. @default Duration.minutes(15) */
  readonly incrementalInterval?: Duration;
  /** How often the full run starts. @default Duration.days(1) */
  readonly fullInterval?: Duration;
  /**
   * How often the webhook health check runs (whole minutes, 1 minute to 1 day); it is also the period of
   * the WebhookUnhealthy alarm, so a disabled webhook alarms within one interval. @default Duration.minutes(15)
   */
  readonly webhookHealthInterval?: Duration;
  /**
   * The callback URI the webhook health check expects, when Smartcar delivers to another name for this
   * stack (a custom domain in front of it). @default - the stack's own callback URL
   */
  readonly expectedCallbackUrl?: string;
  /**
   * The vehicle error callback URI the check expects behind a custom domain.
   * @default - `expectedCallbackUrl` with the callback path replaced by `errorCallbackPath`; when that
   * cannot be worked out (a token, or a URL that does not end with the callback path) the error callback
   * URI is not compared
   */
  readonly expectedErrorCallbackUrl?: string;
  /** The client-side pacer: the application's Smartcar rate limit. @default - 120 requests, 2 a minute */
  readonly rateLimitCapacity?: number;
  /** Requests the rate limit regains per minute. @default 2 */
  readonly rateLimitPerMinute?: number;
  /** How long after applying the run lists again to confirm (creation is asynchronous). @default Duration.seconds(60) */
  readonly confirmDelay?: Duration;
  /**
   * Which generation of Smartcar's API lists connections (docs/subscribing.md says which endpoints each
   * uses). @default SmartcarApi.V3
   */
  readonly smartcarApi?: SmartcarApi;
  /** Base URL of the application-token endpoint. @default 'https://iam.smartcar.com' */
  readonly iamOrigin?: string;
  /** Base URL of the connections endpoint. @default 'https://management.smartcar.com' */
  readonly managementOrigin?: string;
  /** Base URL of the v3 subscriptions endpoints. @default 'https://management.api.smartcar.com' */
  readonly subscriptionsOrigin?: string;
  /** Base URL of API v3's connections endpoint (the vehicle API). @default 'https://vehicle.api.smartcar.com' */
  readonly vehicleOrigin?: string;
}

export interface ReconcileProps extends ReconcileOptions {
  /** The management token secret (connections are listed with it). */
  readonly managementTokenSecret: secretsmanager.ISecret;
  /** The workflow's work bucket; runs keep their lists under `reconcile/`. */
  readonly workBucket: s3.IBucket;
  /** The webhook to keep vehicles subscribed to. @default - every run must name one */
  readonly webhookId?: string;
  /** Webhooks runs may act on. @default - only `webhookId` */
  readonly allowedWebhookIds?: string[];
  /** The stack's callback URL: the webhook health check expects the webhook to deliver there. @default - not compared */
  readonly callbackUrl?: string;
  /** The stack's error callback URL (with `errorCallbackPath`): vehicle errors may go there too. @default - none */
  readonly errorCallbackUrl?: string;
  /** The callback path, to find the error callback behind `expectedCallbackUrl`. @default '/webhooks' */
  readonly callbackPath?: string;
  /** The error callback path, to expect it behind `expectedCallbackUrl` (a custom domain). @default - none */
  readonly errorCallbackPath?: string;
  /**
   * Longest one execution may take; a longer run continues in a new execution after half of it (at most
   * 3 days), so 25,000 vehicles at 2 requests a minute (about 9 days) finish. @default Duration.days(7)
   */
  readonly timeout?: Duration;
  /** Retention of the function's and the state machine's log groups. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to those log groups when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

/**
 * The error callback URL behind a custom domain: the expected callback URL with its callback path swapped
 * for the error path (a base path such as `/smartcar` stays). Without an error path, Smartcar's errors go
 * to the callback (undefined: compared with it). Unknowable (a token, another path): '*', not compared.
 */
function errorUrlBehind(expected: string, callbackPath: string, errorPath: string | undefined): string | undefined {
  if (errorPath === undefined) return undefined;
  if (Token.isUnresolved(expected)) return ANY_ERROR_CALLBACK_URL;
  const url = new URL(expected);
  const path = url.pathname.replace(/\/+$/, '');
  const suffix = callbackPath.replace(/\/+$/, '');
  if (!path.endsWith(suffix)) return ANY_ERROR_CALLBACK_URL;
  url.pathname = `${path.slice(0, path.length - suffix.length)}${errorPath}`;
  return url.toString();
}

function checkHttpsUrl(name: string, value: string | undefined): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  let ok = false;
  try {
    ok = new URL(value).protocol === 'https:';
  } catch {}
  if (!ok) throw new ConfigurationError(`${name} "${value}" must be an https URL.`);
}

const MODES: readonly string[] = Object.values(ReconcileMode);

export class Reconcile extends Construct {
  /** The Standard state machine; start it from the console with `{"kind": "full", "dryRun": true}`. */
  public readonly stateMachine: sfn.StateMachine;
  /** Runs every step of a reconcile run. */
  public readonly reconcileFunction: HouseFunction;
  /**
   * The application's client credentials (Dashboard → API Credentials): the one passed in, or one created
   * with `enabled`; absent otherwise (reconcile is off and costs no secret).
   */
  public readonly clientCredentialsSecret?: secretsmanager.ISecret;
  /** Starts an incremental run every `incrementalInterval`. */
  public readonly incrementalSchedule: scheduler.Schedule;
  /** Starts a full run every `fullInterval`. */
  public readonly fullSchedule: scheduler.Schedule;
  /** The state machine's log group. */
  public readonly logGroup: logs.LogGroup;
  /** The generation of Smartcar's API the runs list connections with. */
  public readonly smartcarApi: SmartcarApi;
  /** Invokes the function's webhook health check every {@link webhookHealthInterval}; only with a webhookId. */
  public readonly webhookHealthSchedule?: scheduler.Schedule;
  /** How often the webhook health check runs. */
  public readonly webhookHealthInterval: Duration;

  constructor(scope: Construct, id: string, props: ReconcileProps) {
    super(scope, id);
    const mode = props.mode ?? ReconcileMode.LIVE;
    // For JavaScript callers and values cast from strings.
    if (!MODES.includes(mode))
      throw new ConfigurationError(
        `reconcile.mode "${mode}" must be one of ${Object.keys(ReconcileMode)
          .map((k) => `ReconcileMode.${k}`)
          .join(', ')}.`,
      );
    const smartcarApi = props.smartcarApi ?? SmartcarApi.V3;
    if (!(Object.values(SmartcarApi) as string[]).includes(smartcarApi))
      throw new ConfigurationError(`reconcile.smartcarApi "${smartcarApi}" must be SmartcarApi.V3 or SmartcarApi.V2.`);
    this.smartcarApi = smartcarApi;
    checkInteger('reconcile.rateLimitCapacity', props.rateLimitCapacity, 1, 1_000_000);
    checkInteger('reconcile.rateLimitPerMinute', props.rateLimitPerMinute, 1, 1_000_000);
    this.webhookHealthInterval = props.webhookHealthInterval ?? Duration.minutes(15);
    // The alarm's period: whole minutes, and at most a day (CloudWatch's longest period times one).
    checkInteger(
      'reconcile.webhookHealthInterval (minutes)',
      this.webhookHealthInterval.toMinutes({ integral: false }),
      1,
      1440,
    );
    const fraction = props.maxPruneFraction;
    if (fraction !== undefined && !(fraction > 0 && fraction <= 1))
      throw new ConfigurationError(`reconcile.maxPruneFraction ${fraction} must be above 0 and at most 1 (0.1 = 10%).`);
    for (const [name, value] of [
      ['reconcile.iamOrigin', props.iamOrigin],
      ['reconcile.managementOrigin', props.managementOrigin],
      ['reconcile.subscriptionsOrigin', props.subscriptionsOrigin],
      ['reconcile.vehicleOrigin', props.vehicleOrigin],
    ] as const) {
      checkApiOrigin(name, value);
    }
    for (const list of ['includeUserIds', 'excludeUserIds', 'includeVehicleIds', 'excludeVehicleIds'] as const) {
      for (const v of props[list] ?? [])
        checkPattern(`reconcile.${list} entry`, v, SMARTCAR_ID_PATTERN, 'a Smartcar id is letters, digits, _ and -');
    }

    // A secret costs $0.40 a month whether or not anything reads it: only for a reconcile that is on.
    this.clientCredentialsSecret =
      props.existingClientCredentialsSecret ??
      (props.enabled
        ? new secretsmanager.Secret(this, 'ClientCredentials', {
            description:
              'Smartcar application client credentials (Dashboard → API Credentials): replace the whole value with {"clientId": "…", "clientSecret": "…"}',
            secretStringValue: SecretValue.unsafePlainText(
              JSON.stringify({ [PLACEHOLDER_SECRET_KEY]: 'replace this whole value with the client credentials' }),
            ),
          })
        : undefined);

    const expectedUrl = props.expectedCallbackUrl ?? props.callbackUrl;
    checkHttpsUrl('reconcile.expectedCallbackUrl', props.expectedCallbackUrl);
    checkHttpsUrl('reconcile.expectedErrorCallbackUrl', props.expectedErrorCallbackUrl);
    const expectedErrorUrl =
      props.expectedErrorCallbackUrl ??
      (props.expectedCallbackUrl === undefined
        ? props.errorCallbackUrl
        : errorUrlBehind(props.expectedCallbackUrl, props.callbackPath ?? '/webhooks', props.errorCallbackPath));
    const allowed = props.allowedWebhookIds ?? (props.webhookId ? [props.webhookId] : []);
    const timeout = props.timeout ?? Duration.days(7);
    this.reconcileFunction = new HouseFunction(this, 'ReconcileFunction', {
      handler: 'reconcile',
      description: 'Reconciliation: lists connections and subscriptions, subscribes and unsubscribes, paced',
      timeout: Duration.minutes(14),
      memorySize: 512,
      environment: {
        [WORKFLOW_ENV.workBucketName]: props.workBucket.bucketName,
        [ENV.managementTokenSecretId]: props.managementTokenSecret.secretArn,
        // Unset with reconcile off: the function then fails every run with how to turn it on.
        ...(this.clientCredentialsSecret
          ? { [RECONCILE_ENV.clientCredentialsSecretId]: this.clientCredentialsSecret.secretArn }
          : {}),
        ...(props.webhookId ? { [WORKFLOW_ENV.defaultWebhookId]: props.webhookId } : {}),
        [WORKFLOW_ENV.allowedWebhookIds]: allowed.join(','),
        [RECONCILE_ENV.defaults]: JSON.stringify({ mode }),
        [RECONCILE_ENV.rateCapacity]: String(props.rateLimitCapacity ?? DEFAULT_RATE_LIMIT.capacity),
        [RECONCILE_ENV.ratePerMinute]: String(props.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT.perMinute),
        [RECONCILE_ENV.confirmDelaySeconds]: String((props.confirmDelay ?? Duration.seconds(60)).toSeconds()),
        [RECONCILE_ENV.maxPruneFraction]: String(fraction ?? DEFAULT_MAX_PRUNE_FRACTION),
        // Each execution hands the run on well before the state machine's timeout.
        [RECONCILE_ENV.maxExecutionSeconds]: String(
          Math.min(DEFAULT_RECONCILE_EXECUTION_SECONDS, Math.floor(timeout.toSeconds() / 2)),
        ),
        ...(props.iamOrigin ? { [RECONCILE_ENV.iamOrigin]: props.iamOrigin } : {}),
        ...(props.managementOrigin ? { [RECONCILE_ENV.managementOrigin]: props.managementOrigin } : {}),
        ...(props.subscriptionsOrigin ? { [RECONCILE_ENV.subscriptionsOrigin]: props.subscriptionsOrigin } : {}),
        ...(props.vehicleOrigin ? { [RECONCILE_ENV.vehicleOrigin]: props.vehicleOrigin } : {}),
        [RECONCILE_ENV.smartcarApi]: smartcarApi,
        ...(expectedUrl ? { [RECONCILE_ENV.expectedCallbackUrl]: expectedUrl } : {}),
        ...(expectedErrorUrl ? { [RECONCILE_ENV.expectedErrorCallbackUrl]: expectedErrorUrl } : {}),
      },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const fn = this.reconcileFunction;
    props.managementTokenSecret.grantRead(fn);
    this.clientCredentialsSecret?.grantRead(fn);
    // Exact actions on the reconcile/ prefix: runs' lists, reports and the incremental watermark.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [props.workBucket.arnForObjects('reconcile/*')],
      }),
    );
    fn.addToRolePolicy(listPrefixStatement(props.workBucket, 'reconcile'));

    const invoke = (name: string, payload: Record<string, unknown>) =>
      new tasks.LambdaInvoke(this, name, {
        lambdaFunction: fn,
        payloadResponseOnly: true,
        payload: sfn.TaskInput.fromObject(payload),
        retryOnServiceExceptions: true,
      });
    const prepare = invoke('Check reconcile input', {
      task: RECONCILE_TASKS.prepare,
      input: sfn.JsonPath.entirePayload,
      executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
    });
    // A full run that finds another run going waits for it (up to an hour), then fails: never a silent skip.
    prepare.addRetry({
      errors: [WORKFLOW_ERRORS.busy],
      interval: Duration.minutes(10),
      maxAttempts: 6,
      backoffRate: 1,
    });
    const stepState = invoke('Reconcile step', { task: RECONCILE_TASKS.step, run: sfn.JsonPath.entirePayload });
    const summarize = invoke('Summarize reconcile run', {
      task: RECONCILE_TASKS.summarize,
      run: sfn.JsonPath.entirePayload,
    });
    const wait = new sfn.Wait(this, 'Wait (rate limit, backoff or confirmation)', {
      time: sfn.WaitTime.secondsPath('$.waitSeconds'),
    }).next(stepState);
    // A long run continues in a new execution of this state machine (its own ARN from the context object);
    // the input only names the run, which the function saved in the work bucket.
    const handOn = new sfn.CustomState(this, 'Continue in a new execution', {
      stateJson: {
        Type: 'Task',
        Resource: `arn:${Aws.PARTITION}:states:::states:startExecution`,
        Parameters: {
          'StateMachineArn.$': '$$.StateMachine.Id',
          'Name.$': '$.handOff.name',
          Input: {
            'continueRun.$': '$.runId',
            'part.$': '$.handOff.part',
            'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
          },
        },
        ResultPath: null,
        Retry: [
          {
            ErrorEquals: ['StepFunctions.ExecutionLimitExceededException', 'States.TaskFailed'],
            IntervalSeconds: 5,
            MaxAttempts: 5,
            BackoffRate: 2,
          },
        ],
      },
    }).next(new sfn.Succeed(this, 'Handed on', { outputPath: '$.handOff' }));
    const next = new sfn.Choice(this, 'Reconcile done?')
      .when(sfn.Condition.stringEquals('$.phase', 'done'), summarize)
      .when(sfn.Condition.isPresent('$.handOff.name'), handOn)
      .when(sfn.Condition.numberGreaterThan('$.waitSeconds', 0), wait)
      .otherwise(stepState);
    stepState.next(next);
    // A refused prune or an untrustworthy listing fails the execution after the summary is written, so the
    // failed-runs alarm names the reason; everything safe (the subscriptions) was done.
    const refused = new sfn.Fail(this, 'Reconcile stopped', {
      errorPath: '$.failure.error',
      causePath: '$.failure.cause',
    });
    summarize.next(
      new sfn.Choice(this, 'Anything refused?')
        .when(sfn.Condition.isPresent('$.failure.error'), refused)
        .otherwise(new sfn.Succeed(this, 'Reconciled')),
    );
    this.logGroup = new logs.LogGroup(this, 'StateMachineLogs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(prepare.next(next)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      timeout,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
      comment: 'Keeps the connected vehicles subscribed to the webhook: connections vs v3 subscriptions, paced',
    });
    // Starting its own continuation: a policy of its own, so the state machine does not depend on its own ARN.
    new iam.Policy(this, 'ContinuePolicy', {
      roles: [this.stateMachine.role],
      statements: [
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.stateMachine.stateMachineArn] }),
      ],
    });

    const rules = {
      mode,
      ...(props.includeUserIds ? { includeUserIds: props.includeUserIds } : {}),
      ...(props.excludeUserIds ? { excludeUserIds: props.excludeUserIds } : {}),
      ...(props.includeVehicleIds ? { includeVehicleIds: props.includeVehicleIds } : {}),
      ...(props.excludeVehicleIds ? { excludeVehicleIds: props.excludeVehicleIds } : {}),
    };
    const schedule = (name: string, every: Duration, input: Record<string, unknown>, description: string) =>
      new scheduler.Schedule(this, name, {
        description,
        schedule: scheduler.ScheduleExpression.rate(every),
        target: new targets.StepFunctionsStartExecution(this.stateMachine, {
          input: scheduler.ScheduleTargetInput.fromObject(input),
          retryAttempts: 2,
        }),
        enabled: props.enabled ?? false,
      });
    this.incrementalSchedule = schedule(
      'IncrementalSchedule',
      props.incrementalInterval ?? Duration.minutes(15),
      { kind: 'incremental', ...rules },
      'Subscribes newly connected vehicles (incremental reconcile)',
    );
    this.fullSchedule = schedule(
      'FullSchedule',
      props.fullInterval ?? Duration.days(1),
      { kind: 'full', ...rules, ...(props.prune ? { prune: true } : {}) },
      'Reconciles every connection against every subscription (full reconcile)',
    );
    if (props.webhookId) {
      this.webhookHealthSchedule = new scheduler.Schedule(this, 'WebhookHealthSchedule', {
        description: 'Checks the webhook (GET /webhooks/:id): enabled, verified, pointed at this stack',
        schedule: scheduler.ScheduleExpression.rate(this.webhookHealthInterval),
        // No retries: the next check comes within the interval, and a failed one publishes nothing.
        target: new targets.LambdaInvoke(fn, {
          input: scheduler.ScheduleTargetInput.fromObject({ task: RECONCILE_TASKS.webhookHealth }),
          retryAttempts: 0,
        }),
        enabled: props.enabled ?? false,
      });
    }
  }
}
