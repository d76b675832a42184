/**
 * Routing configurations, versioned per merchant (docs/routing.md). Items (table `main`):
 *   pk MERCHANT#<id>  sk ROUTING#<version, 9 digits>  { version, config, created, source }
 * A new version is a conditional put of the next number: two concurrent writers cannot both
 * create version n (the loser is told, and nothing is overwritten). Versions are never changed or
 * deleted, so every decision can be traced to the configuration that made it.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config as settings } from '../shared/config.ts';
import type { RoutingConfig } from '../domain/routing.ts';
import { conditionalWrite } from './conditional.ts';
import { forgetRoutingSettings } from './routing-cache.ts';

export interface StoredRouting {
  merchant_id: string;
  version: number;
  config: RoutingConfig;
  /** Epoch seconds. */
  created: number;
  /** Who wrote it: `api` or `cli`. */
  source: 'api' | 'cli';
}

const table = () => settings.tableName('main');
const sk = (version: number) => `ROUTING#${String(version).padStart(9, '0')}`;

function fromItem(item: Record<string, unknown>): StoredRouting {
  return {
    merchant_id: item.merchant_id as string,
    version: item.version as number,
    config: item.config as RoutingConfig,
    created: item.created as number,
    source: item.source as StoredRouting['source'],
  };
}

/** The merchant's current configuration (the latest version), or undefined when there is none. */
export async function currentRouting(merchantId: string): Promise<StoredRouting | undefined> {
  const r = await clients.ddb().send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :v)',
      ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':v': 'ROUTING#' },
      ScanIndexForward: false,
      Limit: 1,
    }),
  );
  return r.Items?.[0] ? fromItem(r.Items[0]) : undefined;
}

/** One version, or undefined. */
export async function routingVersion(
  merchantId: string,
  version: number,
): Promise<StoredRouting | undefined> {
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: { pk: `MERCHANT#${merchantId}`, sk: sk(version) } }));
  return r.Item ? fromItem(r.Item) : undefined;
}

/**
 * Writes `config` as version `after + 1`. False when that version exists already (someone wrote
 * in between: read again and decide).
 */
export async function putRoutingVersion(r: StoredRouting): Promise<boolean> {
  const written = await conditionalWrite(
    new PutCommand({
      TableName: table(),
      Item: { pk: `MERCHANT#${r.merchant_id}`, sk: sk(r.version), kind: 'routing', ...r },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  // Routing in this container reads the new version at once (lambdas/store/routing-cache.ts).
  forgetRoutingSettings(r.merchant_id);
  return written;
}
