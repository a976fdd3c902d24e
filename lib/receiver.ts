/**
 * The public edge: an HTTP API with one throttled, access-logged `POST` route, the verification
 * function behind it, and the encrypted queue (with its dead-letter queue) it hands deliveries to.
 */
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_TOKEN_CACHE_TTL_SECONDS, ENV } from '../lambda/contract';
import { HouseFunction } from './function';
import { ConfigurationError } from './validation';

/** Request rate limits of the API stage. */
export interface ReceiverThrottle {
  /** Steady-state requests per second. @default 50 */
  readonly rateLimit?: number;
  /** Burst of requests above the steady rate. @default 100 */
  readonly burstLimit?: number;
}

export interface ReceiverProps {
  /** The secret holding the application management token. */
  readonly managementTokenSecret: secretsmanager.ISecret;
  /** Path of the callback route. @default '/webhooks' */
  readonly callbackPath?: string;
  /** Stage throttling. @default - 50 requests/s, bursts of 100 */
  readonly throttle?: ReceiverThrottle;
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
  /** The HTTP API Smartcar posts to. */
  public readonly api: apigwv2.HttpApi;
  /** Its throttled default stage, with access logs. */
  public readonly stage: apigwv2.HttpStage;
  /** The stage's access log group. */
  public readonly accessLogGroup: logs.LogGroup;
  /** Answers VERIFY and authenticates deliveries. */
  public readonly verifyFunction: HouseFunction;
  /** Authentic deliveries, waiting for the ingest function. */
  public readonly queue: sqs.Queue;
  /** Deliveries the ingest function failed to store after `maxReceiveCount` tries. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The URL to paste into the Smartcar Dashboard. */
  public readonly callbackUrl: string;

  constructor(scope: Construct, id: string, props: ReceiverProps) {
    super(scope, id);
    const callbackPath = props.callbackPath ?? '/webhooks';
    if (
      !Token.isUnresolved(callbackPath) &&
      (!/^\/[A-Za-z0-9._~\-/]*$/.test(callbackPath) || callbackPath.includes('{'))
    ) {
      throw new ConfigurationError(
        `callbackPath "${callbackPath}" must start with "/" and use only URL path characters, e.g. "/webhooks".`,
      );
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      removalPolicy: props.queueRemovalPolicy ?? RemovalPolicy.DESTROY,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'DeliveryQueue', {
      removalPolicy: props.queueRemovalPolicy ?? RemovalPolicy.DESTROY,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
      visibilityTimeout: props.queueVisibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });

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
    });
    props.managementTokenSecret.grantRead(this.verifyFunction);
    this.queue.grantSendMessages(this.verifyFunction);

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
        rateLimit: props.throttle?.rateLimit ?? 50,
        burstLimit: props.throttle?.burstLimit ?? 100,
      },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogGroup),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.api.addRoutes({
      path: callbackPath,
      methods: [apigwv2.HttpMethod.POST],
      integration: new integrations.HttpLambdaIntegration('VerifyIntegration', this.verifyFunction, {
        payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    this.callbackUrl = `${this.api.apiEndpoint}${callbackPath}`;
  }
}
