/**
 * Configuration read from the environment once, validated at start. Both runtimes set the same
 * variables (names from lib/topology.ts `envVarFor`); a missing one is a deployment error and
 * fails the first invocation with a clear message rather than a confusing AWS error later.
 */
import { envVarFor } from '../../lib/topology.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new ConfigError(`environment variable ${name} is not set`);
  return v;
}

export const config = {
  tableName: (table: string) => required(envVarFor.table(table)),
  queueUrl: (queue: string) => required(envVarFor.queue(queue)),
  bucketName: (bucket: string) => required(envVarFor.bucket(bucket)),
  stateMachineArn: (sm: string) => required(envVarFor.stateMachine(sm)),
};
