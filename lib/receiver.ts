/**
 * The public edge: a front door (a Lambda Function URL, or an HTTP API with one throttled, access-logged
 * `POST` route), the verification function behind it, and the encrypted queue (with its dead-letter
 * queue) it hands deliveries to. Both front doors hand the function the same payload 2.0 event; behind a
 * Function URL the function checks path and method itself, and reserved concurrency is the throttle.
 */
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_TOKEN_CACHE_TTL_SECONDS, ENV, METRICS_NAMESPACE, SMARTCAR_ATTEMPTS } from '../lambda/contract';
import { HouseFunction } from './function';
import { queueWithDeadLetters } from './private-bucket';
import { ConfigurationError, checkCallbackPath } from './validation';

/** The front door Smartcar posts to. */
export enum ReceiverEndpoint {
  /** A Lambda Function URL: no API Gateway charge, throttled by the function's reserved concurrency. */
  FUNCTION_URL = 'function-url',
  /** An API Gateway HTTP API: access logs, custom domains and a stage throttle, $1.00 per million requests more. */
  HTTP_API = 'http-api',
}

/** The front doors Smartcar can post to, as `cdk.json` names them. */
export const ENDPOINTS: readonly string[] = Object.values(ReceiverEndpoint);
/**
 * The default front door: an API Gateway HTTP API, the door the project's brief names (access logs,
 * custom domains, a stage throttle). The Function URL is the cheapest supported door, one prop away.
 */
export const DEFAULT_ENDPOINT = ReceiverEndpoint.HTTP_API;
/** Peak deliveries per second the front door is sized for unless told otherwise. */
export const DEFAULT_EXPECTED_PEAK_PER_SECOND = 500;

/**
 * Front-door capacity for a peak of `peak` deliveries per second. During a token mistake every delivery
 * is answered 401 and Smartcar tries it four times (the first attempt and three retries within about three
 * minutes), so the door must admit four times the peak, or genuine deliveries are lost before the
 * quarantine can keep them. The HTTP API's stage throttle gets that with 25% headroom (rate and burst 5 ×
 * peak); a Function URL's reserved concurrency covers it at 50 ms per request (a warm request takes 20 to
 * 50 ms), which is also the normal peak at 250 ms (cold starts included).
 */
export function frontDoorCapacity(peak: number): {
  rateLimit: number;
  burstLimit: number;
  reservedConcurrency: number;
} {
  const attempts = peak * SMARTCAR_ATTEMPTS * 1.25;
  return {
    rateLimit: Math.max(50, Math.ceil(attempts)),
    burstLimit: Math.max(100, Math.ceil(attempts)),
    reservedConcurrency: Math.max(10, Math.ceil(attempts * 0.05)),
  };
}

/** Request rate limits of the API stage. */
export interface ReceiverThrottle {
  /** Steady-state requests per second. @default - 5 × expectedPeakDeliveriesPerSecond (at least 50) */
  readonly rateLimit?: number;
  /** Burst of requests above the steady rate. @default - 5 × expectedPeakDeliveriesPerSecond (at least 100) */
  readonly burstLimit?: number;
}

export interface ReceiverProps {
  /** The secret holding the application management token. */
  readonly managementTokenSecret: secretsmanager.ISecret;
  /**
   * The front door: a Lambda Function URL (no API Gateway charge, throttled by the function's reserved
   * concurrency) or an API Gateway HTTP API (access logs, custom domains and a stage throttle; $1.00 per
   * million requests more).
   * @default ReceiverEndpoint.HTTP_API
   */
  readonly endpoint?: ReceiverEndpoint;
  /** Path of the callback route. @default '/webhooks' */
  readonly callbackPath?: string;
  /**
   * Path of a second callback route for Smartcar's "vehicle error callback URI" (VEHICLE_ERROR deliveries),
   * on the same front door, verified, queued and stored exactly like the callback. Without one Smartcar
   * sends errors to the callback URI. @default - none
   */
  readonly errorCallbackPath?: string;
  /**
   * The most deliveries per second the front door must take without answering 429 (scheduled webhooks
   * arrive together at the top of the hour). Sizes the HTTP API's throttle or the Function URL's reserved
   * concurrency (see `frontDoorCapacity`).
   * @default 500
   */
  readonly expectedPeakDeliveriesPerSecond?: number;
  /** HTTP API stage throttling, instead of the one sized from the expected peak. @default - sized from expectedPeakDeliveriesPerSecond */
  readonly throttle?: ReceiverThrottle;
  /**
   * Reserved concurrency of the verification function behind a Function URL, instead of the one sized from
   * the expected peak. It is taken from the account's concurrency (1,000 by default; new accounts may have
   * less: ask for more, or set this lower).
   * @default - sized from expectedPeakDeliveriesPerSecond
   */
  readonly reservedConcurrency?: number;
  /** How long the verification function caches the token. @default Duration.minutes(5) */
  readonly tokenCacheTtl?: Duration;
  /** Deliveries the ingest function may fail on before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** Visibility timeout of the queue; must exceed the ingest function's timeout plus batching window. */
  readonly queueVisibilityTimeout: Duration;
  /**
   * What happens to the delivery queue and the dead-letter queue when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly queueRemovalPolicy?: RemovalPolicy;
  /** Retention of the function's and the access log's log groups. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to those log groups when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
}

export class Receiver extends Construct {
  /** Which front door Smartcar posts to. */
  public readonly endpoint: ReceiverEndpoint;
  /** The HTTP API Smartcar posts to, when `endpoint` is `ReceiverEndpoint.HTTP_API`. */
  public readonly api?: apigwv2.HttpApi;
  /** Its throttled default stage, with access logs. */
  public readonly stage?: apigwv2.HttpStage;
  /** The stage's access log group. */
  public readonly accessLogGroup?: logs.LogGroup;
  /** The Function URL Smartcar posts to, when `endpoint` is `ReceiverEndpoint.FUNCTION_URL`. */
  public readonly functionUrl?: lambda.FunctionUrl;
  /** Answers VERIFY and authenticates deliveries. */
  public readonly verifyFunction: HouseFunction;
  /** Authentic deliveries, waiting for the ingest function. */
  public readonly queue: sqs.Queue;
  /** Deliveries the ingest function failed to store after `maxReceiveCount` tries. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The URL to paste into the Smartcar Dashboard. */
  public readonly callbackUrl: string;
  /** The URL to paste as the vehicle error callback URI, when `errorCallbackPath` is set. */
  public readonly errorCallbackUrl?: string;

  constructor(scope: Construct, id: string, props: ReceiverProps) {
    super(scope, id);
    this.endpoint = props.endpoint ?? DEFAULT_ENDPOINT;
    // Checked for JavaScript callers and values cast from strings; TypeScript's enum type cannot be bypassed.
    if (!ENDPOINTS.includes(this.endpoint)) {
      throw new ConfigurationError(
        `endpoint "${this.endpoint}" is not a front door: use ReceiverEndpoint.FUNCTION_URL or ReceiverEndpoint.HTTP_API.`,
      );
    }
    const peak = props.expectedPeakDeliveriesPerSecond ?? DEFAULT_EXPECTED_PEAK_PER_SECOND;
    if (!Token.isUnresolved(peak) && !(Number.isInteger(peak) && peak >= 1 && peak <= 10_000)) {
      throw new ConfigurationError(`expectedPeakDeliveriesPerSecond is ${peak}; give a whole number from 1 to 10000.`);
    }
    const capacity = frontDoorCapacity(peak);
    const reserved = props.reservedConcurrency ?? capacity.reservedConcurrency;
    if (!Token.isUnresolved(reserved) && !(Number.isInteger(reserved) && reserved >= 1 && reserved <= 10_000)) {
      throw new ConfigurationError(`reservedConcurrency is ${reserved}; give a whole number from 1 to 10000.`);
    }
    const callbackPath = props.callbackPath ?? '/webhooks';
    checkCallbackPath('callbackPath', callbackPath);
    const errorCallbackPath = props.errorCallbackPath;
    checkCallbackPath('errorCallbackPath', errorCallbackPath);
    if (errorCallbackPath !== undefined && errorCallbackPath === callbackPath) {
      throw new ConfigurationError(
        `errorCallbackPath "${errorCallbackPath}" is the callbackPath; give another path (e.g. "${callbackPath === '/' ? '' : callbackPath}/errors") or leave it unset: Smartcar then sends errors to the callback.`,
      );
    }

    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = queueWithDeadLetters(
      this,
      { queue: 'DeliveryQueue', deadLetterQueue: 'DeadLetterQueue' },
      {
        removalPolicy: props.queueRemovalPolicy ?? RemovalPolicy.DESTROY,
        visibilityTimeout: props.queueVisibilityTimeout,
        maxReceiveCount: props.maxReceiveCount ?? 5,
      },
    ));

    this.verifyFunction = new HouseFunction(this, 'VerifyFunction', {
      handler: 'verify',
      description: 'Answers Smartcar VERIFY challenges and authenticates webhook deliveries by SC-Signature',
      // Smartcar gives up after 15 s; a cold start plus one Secrets Manager and one SQS call fits in 10.
      timeout: Duration.seconds(10),
      memorySize: 256,
      environment: {
        [ENV.managementTokenSecretId]: props.managementTokenSecret.secretArn,
        [ENV.deliveryQueueUrl]: this.queue.queueUrl,
        [ENV.tokenCacheTtlSeconds]: String(props.tokenCacheTtl?.toSeconds() ?? DEFAULT_TOKEN_CACHE_TTL_SECONDS),
      },
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      reservedConcurrentExecutions: this.endpoint === ReceiverEndpoint.FUNCTION_URL ? reserved : undefined,
      // One invocation per request: Lambda's start/report records would cost more than everything it logs.
      quietPlatformLogs: true,
      // Every scaled-out instance of a top-of-the-hour burst pays a cold start: the stacks it logs are mapped then.
      sourceMapsAtStartup: false,
    });
    props.managementTokenSecret.grantRead(this.verifyFunction);
    this.queue.grantSendMessages(this.verifyFunction);

    if (this.endpoint === ReceiverEndpoint.FUNCTION_URL) {
      this.functionUrl = this.verifyFunction.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
      this.verifyFunction.addEnvironment(ENV.callbackPath, callbackPath);
      // The URL ends with a slash; the callback path starts with one.
      this.callbackUrl = `${this.functionUrl.url}${callbackPath.slice(1)}`;
      if (errorCallbackPath !== undefined) {
        this.verifyFunction.addEnvironment(ENV.errorCallbackPath, errorCallbackPath);
        this.errorCallbackUrl = `${this.functionUrl.url}${errorCallbackPath.slice(1)}`;
      }
      return;
    }
    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Smartcar webhook callback',
      createDefaultStage: false,
    });
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttle?.rateLimit ?? capacity.rateLimit,
        burstLimit: props.throttle?.burstLimit ?? capacity.burstLimit,
      },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogGroup),
        format: apigw.AccessLogFormat.custom(
          // What a person tracing a request or a flood needs, and no more: each line is billed per byte
          // ($0.50 a GB, every request). One route makes routeKey constant; the user agent stays, as it tells
          // a forged flood from Smartcar.
          JSON.stringify({
            requestId: '$context.requestId',
            apiId: '$context.apiId',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            time: '$context.requestTimeEpoch',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const integration = new integrations.HttpLambdaIntegration('VerifyIntegration', this.verifyFunction, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    this.api.addRoutes({ path: callbackPath, methods: [apigwv2.HttpMethod.POST], integration });
    // The vehicle error callback: a second route to the same integration (same function, queue and lake).
    if (errorCallbackPath !== undefined)
      this.api.addRoutes({ path: errorCallbackPath, methods: [apigwv2.HttpMethod.POST], integration });
    // Throttled requests (429) are answered by API Gateway and counted from the access log.
    new logs.MetricFilter(this, 'ThrottledRequests', {
      logGroup: this.accessLogGroup,
      filterPattern: logs.FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: METRICS_NAMESPACE,
      metricName: 'FrontDoorThrottled',
      metricValue: '1',
      // Per API, so that two stacks in one account keep their counts apart.
      dimensions: { ApiId: '$.apiId' },
    });
    this.callbackUrl = `${this.api.apiEndpoint}${callbackPath}`;
    if (errorCallbackPath !== undefined) this.errorCallbackUrl = `${this.api.apiEndpoint}${errorCallbackPath}`;
  }

  /** Requests that reached the front door. */
  public metricRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api
      ? this.api.metricCount({ statistic: 'Sum', ...props })
      : this.urlMetric('UrlRequestCount', { statistic: 'Sum', ...props });
  }

  /** Requests answered 4xx (signature failures, malformed requests, throttling). */
  public metricClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api
      ? this.api.metricClientError({ statistic: 'Sum', ...props })
      : this.urlMetric('Url4xxCount', { statistic: 'Sum', ...props });
  }

  /** Requests answered 5xx: Smartcar retries them, then drops the event. */
  public metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api
      ? this.api.metricServerError({ statistic: 'Sum', ...props })
      : this.urlMetric('Url5xxCount', { statistic: 'Sum', ...props });
  }

  /** Time to answer a request, in milliseconds. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api ? this.api.metricLatency(props) : this.urlMetric('UrlRequestLatency', props);
  }

  /**
   * Requests the front door refused with 429 for want of capacity: the HTTP API's throttle (counted from
   * its access log) or the Function URL's reserved concurrency (the function's throttles).
   */
  public metricThrottled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (this.api)
      return new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: 'FrontDoorThrottled',
        dimensionsMap: { ApiId: this.api.apiId },
        statistic: 'Sum',
        ...props,
      });
    return this.verifyFunction.metricThrottles({ statistic: 'Sum', ...props });
  }

  private urlMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName,
      dimensionsMap: { FunctionName: this.verifyFunction.functionName },
      ...props,
    });
  }
}
