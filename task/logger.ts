import { Logger } from '@aws-lambda-powertools/logger';

/** Structured JSON logs, the same logger the Lambdas use, so one CloudWatch Logs Insights query
 * reads the task and the functions alike. POWERTOOLS_LOG_LEVEL sets the level. */
export function createTaskLogger(command: string, keys: Record<string, string> = {}): Logger {
  return new Logger({ serviceName: `pgkeep-${command}`, persistentKeys: keys });
}
