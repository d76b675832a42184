/** Powertools Logger shared by handlers: JSON, correlation ids added per invocation, no card data. */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'paystep' });
