/**
 * API Gateway REQUEST authorizer: `Authorization: Bearer <merchant API key>` → merchant.
 *
 * Allows every route of the API for that merchant (the policy is cached by API Gateway per key,
 * so it must not be route-specific) and passes `merchantId` to handlers in the request context.
 * An unknown key, a missing header or a disabled merchant is `Unauthorized` (API Gateway → 401).
 * Resolved keys are also cached in the container for a minute to spare DynamoDB.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { merchantForApiKey } from '../store/merchants.ts';
import { logger } from '../shared/logger.ts';

const CACHE_MS = 60_000;
const cache = new Map<string, { merchantId: string | undefined; until: number }>();

function apiArnPattern(methodArn: string): string {
  // arn:aws:execute-api:region:account:apiId/stage/METHOD/path → every method and path of the stage.
  const [prefix, rest = ''] = methodArn.split(/:(?=[^:]*$)/);
  const [apiId, stage] = rest.split('/');
  return `${prefix}:${apiId}/${stage}/*`;
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const header =
    Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1] ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new Error('Unauthorized');
  const key = match[1]!;
  let entry = cache.get(key);
  if (!entry || entry.until < Date.now()) {
    const merchant = await merchantForApiKey(key);
    entry = { merchantId: merchant?.id, until: Date.now() + CACHE_MS };
    if (cache.size > 10_000) cache.clear();
    cache.set(key, entry);
  }
  if (!entry.merchantId) {
    logger.info('rejected API key', { keyPrefix: key.slice(0, 8) });
    throw new Error('Unauthorized');
  }
  return {
    principalId: entry.merchantId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [
        { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: apiArnPattern(event.methodArn) },
      ],
    },
    context: { merchantId: entry.merchantId },
  };
}
