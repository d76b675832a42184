/**
 * Secrets: from Secrets Manager (AWS: the stack sets PAYSTEP_SECRET_<NAME>_ARN) or, where the
 * runtime provides the value itself (the local runtime keeps generated secrets in its data dir),
 * from PAYSTEP_SECRET_<NAME>. Values are cached for five minutes and never logged.
 */
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { envVarFor } from '../../lib/topology.ts';
import { clients } from './aws.ts';
import { ConfigError } from './config.ts';

const cache = new Map<string, { value: string; until: number }>();
const TTL_MS = 5 * 60_000;

export async function getSecret(name: string): Promise<string> {
  const direct = process.env[envVarFor.secretValue(name)];
  if (direct) return direct;
  const hit = cache.get(name);
  if (hit && hit.until > Date.now()) return hit.value;
  const arn = process.env[envVarFor.secret(name)];
  if (!arn)
    throw new ConfigError(
      `secret ${name}: neither ${envVarFor.secretValue(name)} nor ${envVarFor.secret(name)} is set`,
    );
  const out = await clients.secrets().send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new ConfigError(`secret ${name} has no string value`);
  cache.set(name, { value: out.SecretString, until: Date.now() + TTL_MS });
  return out.SecretString;
}
