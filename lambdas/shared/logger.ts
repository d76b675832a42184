/** Powertools Logger shared by handlers: JSON, correlation ids added per invocation, no card data. */
import { Logger } from '@aws-lambda-powertools/logger';
import { config } from './config.ts';

export const logger = new Logger({ serviceName: config.serviceName() });
