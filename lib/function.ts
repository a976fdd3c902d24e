/**
 * The one house Lambda construct: every function in the project is Node.js 22 on arm64 (cheaper per
 * GB-second than x86), deployed from the handler bundles prebuilt at package build time
 * (`dist/handlers/<name>/`, see scripts/build-handlers.ts), with source maps, JSON logs and an explicit
 * log group whose retention the caller sets. Synth bundles nothing: no esbuild, no Docker, no lock file.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';
import { type HandlerName, METRICS_NAMESPACE } from '../lambda/contract';
import { ConfigurationError } from './validation';

/**
 * The package's root: the nearest folder above this file with a package.json. From source that is the
 * repository (lib/ → ..), from the compiled package the installed package (dist/lib/ → ../..).
 */
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}

/** The folder holding one prebuilt handler (`index.js` and its source map). */
export function handlerAssetPath(name: HandlerName): string {
  const dir = path.join(packageRoot(), 'dist', 'handlers', name);
  if (!existsSync(path.join(dir, 'index.js'))) {
    throw new ConfigurationError(
      `The prebuilt handler ${name} is missing at ${dir}: run "npm run build" in the package (it runs on npm ci and npm pack).`,
    );
  }
  return dir;
}

/** The service name each instance of the construct publishes under, by the construct that set it. */
const serviceNames = new WeakMap<IConstruct, string>();

/**
 * Names the Powertools service (the `service` dimension of metrics, the `service` field of logs) of every
 * function and state machine created under `scope` that does not name its own.
 */
export function setServiceName(scope: IConstruct, name: string): void {
  serviceNames.set(scope, name);
}

/** The service name set on `scope` or the nearest construct above it, else the stack name. */
export function serviceNameOf(scope: IConstruct): string {
  for (let s: IConstruct | undefined = scope; s; s = s.node.scope) {
    const name = serviceNames.get(s);
    if (name !== undefined) return name;
  }
  return Stack.of(scope).stackName;
}

export interface HouseFunctionProps {
  /** Which handler (folder under `lambda/`, prebuilt to `dist/handlers/`) the function runs. */
  readonly handler: HandlerName;
  /** What the function is for, shown in the console. */
  readonly description: string;
  /**
   * Maximum run time.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MiB; CPU grows with it.
   * @default 256
   */
  readonly memorySize?: number;
  /** Environment variables, in addition to the ones the house sets. @default - none */
  readonly environment?: Record<string, string>;
  /**
   * Names the deployment in logs and metrics (the `service` dimension that alarms filter on).
   * @default - the service name of the SmartcarWebhooks instance it belongs to (see
   * `SmartcarWebhooks.serviceName`), else the stack name
   */
  readonly serviceName?: string;
  /** Retention of the function's log group. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
  /**
   * Maximum concurrent executions reserved for (and capping) this function.
   * @default - unreserved: shares the account's concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Keep Lambda's own per-invocation log records (platform start and report, about 0.6 KB per
   * invocation) out of the log group: only its warnings and errors are written. For functions invoked
   * once per request, where those records would be most of the CloudWatch Logs bill.
   * @default false
   */
  readonly quietPlatformLogs?: boolean;
  /**
   * Start Node with `--enable-source-maps`, so every stack is in TypeScript terms, at the price of reading
   * the map on every cold start (about 15 ms for the verification bundle). Off, the function maps the
   * stacks it logs itself, when it logs them (lambda/adapters/source-map.ts).
   * @default true
   */
  readonly sourceMapsAtStartup?: boolean;
}

export class HouseFunction extends lambda.Function {
  /** The function's own log group. */
  public readonly functionLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: HouseFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    // Its own role, allowed to write to its own log group only (instead of the AWS managed
    // AWSLambdaBasicExecutionRole, which may write to every log group in the account).
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      code: lambda.Code.fromAsset(handlerAssetPath(props.handler)),
      handler: 'index.handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(10),
      memorySize: props.memorySize ?? 256,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      systemLogLevelV2: props.quietPlatformLogs ? lambda.SystemLogLevel.WARN : undefined,
      environment: {
        ...(props.sourceMapsAtStartup === false ? {} : { NODE_OPTIONS: '--enable-source-maps' }),
        // Powertools: the service name becomes the logs' "service" field and the metrics' service dimension.
        POWERTOOLS_SERVICE_NAME: props.serviceName ?? serviceNameOf(scope),
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
    });
    this.functionLogGroup = logGroup;
  }
}
