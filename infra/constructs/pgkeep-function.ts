/**
 * The house Lambda function: every pgkeep Lambda (verify, retention, metrics) is one of these, so
 * they share runtime, architecture, bundling, logging and Powertools settings.
 *
 * - ARM64 on the current Node.js runtime (what cdk-nag's AwsSolutions-L1 expects).
 * - Bundled by the locally installed esbuild, never Docker, as ESM with source maps, so stack
 *   traces in the logs point at the TypeScript sources.
 * - An explicit log group with a retention period, instead of Lambda's never-expiring default.
 * - Powertools environment (service name, log level), matching the task's logger.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export type PowertoolsLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface PgkeepFunctionProps {
  /** The handler's TypeScript source file. */
  entry: string;
  /** Exported handler function name. Default: handler. */
  handler?: string;
  description: string;
  /** Powertools service name, e.g. pgkeep-verify; logs and metrics are grouped by it. */
  serviceName: string;
  logRetention: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. Default: RETAIN. */
  logRemovalPolicy?: RemovalPolicy;
  logLevel?: PowertoolsLogLevel;
  environment?: Record<string, string>;
  /** Default: 30 seconds. */
  timeout?: Duration;
  /** Default: 256 MiB. */
  memorySize?: number;
}

export const PGKEEP_FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** Its `logGroup` is the explicit log group (with retention) created beside it. */
export class PgkeepFunction extends nodejs.NodejsFunction {
  constructor(scope: Construct, id: string, props: PgkeepFunctionProps) {
    // The log group is the function's sibling because it must exist before super() is called.
    const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    super(scope, id, {
      entry: props.entry,
      handler: props.handler ?? 'handler',
      description: props.description,
      runtime: PGKEEP_FUNCTION_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 256,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // A linked map: Node's --enable-source-maps finds it through the bundle's sourceMappingURL comment.
        sourceMapMode: nodejs.SourceMapMode.DEFAULT,
        sourcesContent: false,
        // ESM bundles have no `require`; some CommonJS dependencies still call it.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
  }
}
