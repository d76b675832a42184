/**
 * API Gateway REQUEST authorizer: `Authorization: Bearer <key>` → a merchant or an ops key.
 *
 * A merchant API key (`sk_…`) is allowed every merchant route, `/v1/*`, and passes `merchantId`;
 * an ops key (`ops_…`, lambdas/store/ops-keys.ts) is allowed the ops API, `/ops/*`, and passes
 * `opsKeyName` (docs/decisions/0005-ops-keys.md). The policy is cached by API Gateway per key, so
 * it names every route of the key's kind, never the one asked; a key used on the other kind's
 * routes is denied by its own policy (API Gateway → 401, as the local gateway does).
 * An unknown key, a missing header or a disabled merchant is `Unauthorized` (API Gateway → 401).
 * Resolved keys are also cached in the container for a minute to spare DynamoDB (so a revoked
 * key or a disabled merchant is refused within a minute, plus API Gateway's own cache TTL).
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { merchantForApiKey } from '../store/merchants.ts';
import { opsKeyName } from '../store/ops-keys.ts';
import { logger } from '../shared/logger.ts';

const CACHE_MS = 60_000;
const cache = new Map<string, { merchantId?: string; opsKeyName?: string; until: number }>();

function apiArnPattern(methodArn: string, root: 'v1' | 'ops'): string {
  // arn:aws:execute-api:region:account:apiId/stage/METHOD/path → every method of the stage's /<root>/ paths.
  const [prefix, rest = ''] = methodArn.split(/:(?=[^:]*$)/);
  const [apiId, stage] = rest.split('/');
  return `${prefix}:${apiId}/${stage}/*/${root}/*`;
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const header =
    Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1] ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new Error('Unauthorized');
  const key = match[1]!;
  let entry = cache.get(key);
  if (!entry || entry.until < Date.now()) {
    entry = key.startsWith('ops_')
      ? { opsKeyName: await opsKeyName(key), until: Date.now() + CACHE_MS }
      : { merchantId: (await merchantForApiKey(key))?.id, until: Date.now() + CACHE_MS };
    if (cache.size > 10_000) cache.clear();
    cache.set(key, entry);
  }
  if (entry.opsKeyName)
    return {
      principalId: `ops:${entry.opsKeyName}`,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiArnPattern(event.methodArn, 'ops') },
        ],
      },
      context: { opsKeyName: entry.opsKeyName },
    };
  if (!entry.merchantId) {
    logger.info('rejected API key', { keyPrefix: key.slice(0, 8) });
    throw new Error('Unauthorized');
  }
  return {
    principalId: entry.merchantId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [
        { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiArnPattern(event.methodArn, 'v1') },
      ],
    },
    context: { merchantId: entry.merchantId },
  };
}
