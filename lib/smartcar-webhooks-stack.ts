/**
 * The deployable stack: reads its settings from CDK context, composes `SmartcarWebhooks` with its outputs
 * on (no prefix: what an operator needs next, the callback URL and how to set the token, and what the
 * operations CLI reads), and applies the cdk-nag acknowledgements.
 */
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { DELIVERY_BUFFERS, type DeliveryBuffer } from './landing';
import { acknowledgeNagFindings } from './nag-acknowledgements';
import { ENDPOINTS, type ReceiverEndpoint } from './receiver';
import { SmartcarApi } from './reconcile';
import { SmartcarWebhooks } from './smartcar-webhooks';
import {
  ConfigurationError,
  checkBucketName,
  checkCallbackPath,
  checkSecretName,
  checkStackName,
  checkWebhookId,
} from './validation';

/** Settings read from `cdk.json` or `-c key=value`. */
export interface StackSettings {
  /** CloudFormation stack name. @default 'SmartcarWebhooks' */
  readonly stackName?: string;
  /** Smartcar webhook id. @default - none: the workflow refuses every execution until one is set */
  readonly webhookId?: string;
  /** Name of the management-token secret. @default - generated */
  readonly secretName?: string;
  /** Name of the lake bucket. @default - generated */
  readonly bucketName?: string;
  /** Retention of every log group. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetentionDays?: logs.RetentionDays;
  /** What happens to every bucket the stack creates when it is deleted. @default RemovalPolicy.RETAIN */
  readonly bucketRemovalPolicy?: RemovalPolicy;
  /** Delete raw objects after this many days. @default - never */
  readonly lakeExpireAfterDays?: number;
  /** Turn on the reconcile schedules. @default false */
  readonly reconcile?: boolean;
  /** Which generation of Smartcar's API reconcile lists connections with (context `smartcarApi`: `v3` or `v2`). @default SmartcarApi.V3 */
  readonly smartcarApi?: SmartcarApi;
  /** The front door (context `endpoint`: `function-url` or `http-api`). @default ReceiverEndpoint.HTTP_API */
  readonly endpoint?: ReceiverEndpoint;
  /** How deliveries reach the ingest function (context `deliveryBuffer`: `firehose` or `queue`). @default DeliveryBuffer.FIREHOSE */
  readonly deliveryBuffer?: DeliveryBuffer;
  /** Peak deliveries per second the front door is sized for. @default 500 */
  readonly expectedPeakDeliveriesPerSecond?: number;
  /** A second callback path for the vehicle error callback URI (context `errorCallbackPath`). @default - none */
  readonly errorCallbackPath?: string;
  /** Keep the DynamoDB deduplication table. @default false */
  readonly deduplication?: boolean;
  /** Keep the vehicle state table (and its function). @default false */
  readonly vehicleStateTable?: boolean;
  /**
   * Create the CloudWatch dashboard ($3.00 a month) and have the ingest function publish the per-batch
   * metrics it charts ($1.50 a month plus $0.30 per event type and mode): context `dashboard`. @default false
   */
  readonly dashboard?: boolean;
}

export interface SmartcarWebhooksStackProps extends StackProps {
  /** Settings, usually from CDK context (see {@link settingsFromContext}). @default - all defaults */
  readonly settings?: StackSettings;
}

export class SmartcarWebhooksStack extends Stack {
  public readonly webhooks: SmartcarWebhooks;

  constructor(scope: Construct, id: string, props: SmartcarWebhooksStackProps = {}) {
    super(scope, id, props);
    const s = props.settings ?? {};
    this.webhooks = new SmartcarWebhooks(this, 'SmartcarWebhooks', {
      webhookId: s.webhookId,
      endpoint: s.endpoint,
      deliveryBuffer: s.deliveryBuffer,
      errorCallbackPath: s.errorCallbackPath,
      expectedPeakDeliveriesPerSecond: s.expectedPeakDeliveriesPerSecond,
      deduplication: s.deduplication,
      vehicleStateTable: s.vehicleStateTable,
      managementTokenSecretProps: s.secretName ? { secretName: s.secretName } : undefined,
      bucketProps: s.bucketName ? { bucketName: s.bucketName } : undefined,
      // One setting for every bucket the stack creates: the lake, work, Athena results and quarantine buckets.
      bucketRemovalPolicy: s.bucketRemovalPolicy,
      catalog: { resultsBucketRemovalPolicy: s.bucketRemovalPolicy },
      subscriptionWorkflow: { workBucketRemovalPolicy: s.bucketRemovalPolicy },
      quarantine: { bucketRemovalPolicy: s.bucketRemovalPolicy },
      reconcile: { enabled: s.reconcile ?? false, smartcarApi: s.smartcarApi },
      monitoring: s.dashboard === undefined ? undefined : { dashboard: s.dashboard },
      logRetention: s.logRetentionDays,
      lifecycle: s.lakeExpireAfterDays ? { expireAfter: Duration.days(s.lakeExpireAfterDays) } : undefined,
      // No prefix: the output keys every deployment of this stack has had (CallbackUrl, …).
      outputs: { prefix: '' },
    });
    acknowledgeNagFindings(this.webhooks);
  }
}

/** Turns raw context values into settings, naming the key and the fix when a value is wrong. */
function booleanOf(key: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new ConfigurationError(`Context "${key}" must be true or false, got ${JSON.stringify(v)}.`);
}

export function settingsFromContext(get: (key: string) => unknown): StackSettings {
  const booleanContext = (key: string) => booleanOf(key, get(key));
  const text = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string')
      throw new ConfigurationError(`Context "${key}" must be a string, got ${JSON.stringify(v)}.`);
    return v;
  };
  const positiveInt = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      throw new ConfigurationError(
        `Context "${key}" must be a positive whole number of days, got ${JSON.stringify(v)}.`,
      );
    }
    return n;
  };
  const endpoint = text('endpoint');
  if (endpoint !== undefined && !ENDPOINTS.includes(endpoint)) {
    throw new ConfigurationError(`Context "endpoint" must be ${ENDPOINTS.join(' or ')}, got "${endpoint}".`);
  }
  const deliveryBuffer = text('deliveryBuffer');
  if (deliveryBuffer !== undefined && !DELIVERY_BUFFERS.includes(deliveryBuffer)) {
    throw new ConfigurationError(
      `Context "deliveryBuffer" must be ${DELIVERY_BUFFERS.join(' or ')}, got "${deliveryBuffer}".`,
    );
  }
  const peakRaw = get('expectedPeakDeliveriesPerSecond');
  let peak: number | undefined;
  if (peakRaw !== undefined && peakRaw !== null && peakRaw !== '') {
    peak = Number(peakRaw);
    if (!Number.isInteger(peak) || peak < 1 || peak > 10_000)
      throw new ConfigurationError(
        `Context "expectedPeakDeliveriesPerSecond" must be a whole number from 1 to 10000, got ${JSON.stringify(peakRaw)}.`,
      );
  }
  const retention = positiveInt('logRetentionDays');
  if (retention !== undefined && !Object.values(logs.RetentionDays).includes(retention)) {
    throw new ConfigurationError(
      `Context "logRetentionDays" is ${retention}; CloudWatch accepts one of ${Object.values(logs.RetentionDays)
        .filter((d) => typeof d === 'number' && d > 0)
        .join(', ')}.`,
    );
  }
  checkWebhookId('Context "webhookId"', text('webhookId'));
  checkSecretName('Context "secretName"', text('secretName'));
  checkBucketName('Context "bucketName"', text('bucketName'));
  checkStackName('Context "stackName"', text('stackName'));
  checkCallbackPath('Context "errorCallbackPath"', text('errorCallbackPath'));
  const smartcarApi = text('smartcarApi');
  if (smartcarApi !== undefined && !(Object.values(SmartcarApi) as string[]).includes(smartcarApi))
    throw new ConfigurationError(
      `Context "smartcarApi" must be ${Object.values(SmartcarApi).join(' or ')}, got "${smartcarApi}".`,
    );
  const removal = text('bucketRemovalPolicy');
  if (removal !== undefined && removal !== 'retain' && removal !== 'destroy') {
    throw new ConfigurationError(`Context "bucketRemovalPolicy" must be "retain" or "destroy", got "${removal}".`);
  }
  return {
    stackName: text('stackName'),
    webhookId: text('webhookId'),
    secretName: text('secretName'),
    bucketName: text('bucketName'),
    logRetentionDays: retention as logs.RetentionDays | undefined,
    bucketRemovalPolicy:
      removal === 'destroy' ? RemovalPolicy.DESTROY : removal === 'retain' ? RemovalPolicy.RETAIN : undefined,
    lakeExpireAfterDays: positiveInt('lakeExpireAfterDays'),
    reconcile: booleanContext('reconcile'),
    smartcarApi: smartcarApi as SmartcarApi | undefined,
    endpoint: endpoint as ReceiverEndpoint | undefined,
    deliveryBuffer: deliveryBuffer as DeliveryBuffer | undefined,
    expectedPeakDeliveriesPerSecond: peak,
    errorCallbackPath: text('errorCallbackPath'),
    deduplication: booleanContext('deduplication'),
    vehicleStateTable: booleanContext('vehicleStateTable'),
    dashboard: booleanContext('dashboard'),
  };
}
