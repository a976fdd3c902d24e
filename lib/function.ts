/**
 * The one house Lambda construct: every function in the project is Node.js 22 on arm64 (cheaper per
 * GB-second than x86), bundled locally by esbuild (never Docker), with source maps, JSON logs and an
 * explicit log group whose retention the caller sets.
 */
import * as path from 'node:path';
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../lambda/contract';

/** Root of the handler sources; entries are `lambda/<name>/index.ts`. */
const LAMBDA_ROOT = path.join(__dirname, '..', 'lambda');
const PROJECT_ROOT = path.join(__dirname, '..');

export interface HouseFunctionProps {
  /** Folder under `lambda/` whose `index.ts` exports `handler`. */
  readonly handlerDir: string;
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
   * @default - the stack name
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
}

export class HouseFunction extends nodejs.NodejsFunction {
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
      entry: path.join(LAMBDA_ROOT, props.handlerDir, 'index.ts'),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(10),
      memorySize: props.memorySize ?? 256,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        // Powertools: the service name becomes the logs' "service" field and the metrics' service dimension.
        POWERTOOLS_SERVICE_NAME: props.serviceName ?? Stack.of(scope).stackName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node22',
        format: nodejs.OutputFormat.CJS,
        // The Node.js 22 runtime ships AWS SDK v3; bundling it would only add cold-start weight.
        externalModules: ['@aws-sdk/*'],
      },
    });
    this.functionLogGroup = logGroup;
  }
}
