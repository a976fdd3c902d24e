/**
 * The one Logger factory of the Lambda functions (Powertools Logger: structured JSON, the service name
 * from POWERTOOLS_SERVICE_NAME, level from POWERTOOLS_LOG_LEVEL). The cores take any CoreLogger; the
 * local tools pass the console logger instead.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export function createLogger(): Logger {
  return new Logger({ logRecordOrder: ['level', 'message'] });
}
