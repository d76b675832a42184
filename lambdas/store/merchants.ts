/**
 * Merchants and their API keys.
 *
 * An API key is shown once, at creation. What is stored is HMAC-SHA256(pepper, key): a keyed hash
 * that is fast to check on every request yet useless without the pepper (a secret outside the
 * table). The lookup item's key is the hash itself, so resolving a key is one GetItem; the stored
 * hash is compared again in constant time.
 *
 * Items (table `main`):
 *   pk MERCHANT#<id>  sk MERCHANT   { id, name, created, status, processors? }
 *       gsi1pk MERCHANTS  gsi1sk <created, 10 digits>#<id>   every merchant, for platform-wide
 *       work (incident events and reports: lambdas/incidents/); a merchant created before the
 *       index existed is put on it the first time it is read (`ensureListed`)
 *   pk APIKEY#<hash>  sk APIKEY     { merchant_id, key_prefix, created }
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { queryPages } from './pages.ts';
import { clients } from '../shared/aws.ts';
import { conditionalUpdate } from './conditional.ts';
import { forgetRoutingSettings } from './routing-cache.ts';
import { config } from '../shared/config.ts';
import { newId, randomBase62 } from '../shared/ids.ts';
import { getSecret } from '../shared/secrets.ts';
import type { DunningPolicy } from '../domain/dunning.ts';

export interface Merchant {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  created: number;
  /**
   * The merchant's processor order (`paystep merchant update ID --processors adyen,stripe`): a
   * payment that names no processor goes to the first of these that is enabled; none: the
   * platform's order (PAYSTEP_PROCESSORS).
   */
  processors?: string[];
  /**
   * The merchant's dunning policy (docs/billing.md "Dunning policy"), only the fields it set;
   * the rest are paystep's defaults (`DEFAULT_DUNNING_POLICY`).
   */
  dunning_policy?: Partial<DunningPolicy>;
}

type Item = Record<string, unknown>;

/** A merchant item as the API and CLI show it (never the key hashes, which live in other items). */
function fromItem(item: Item): Merchant {
  const m: Merchant = {
    id: item.id as string,
    name: item.name as string,
    status: item.status as Merchant['status'],
    created: item.created as number,
  };
  if (Array.isArray(item.processors) && item.processors.length) m.processors = item.processors as string[];
  if (item.dunning_policy && typeof item.dunning_policy === 'object')
    m.dunning_policy = item.dunning_policy as Partial<DunningPolicy>;
  return m;
}

const table = () => config.tableName('main');

export async function hashApiKey(key: string): Promise<string> {
  const pepper = await getSecret('api-key-pepper');
  return createHmac('sha256', pepper).update(key).digest('hex');
}

export function validMerchantName(name: unknown): name is string {
  return typeof name === 'string' && name.trim().length >= 1 && name.length <= 200;
}

/** Creates a merchant and its first API key; the key is returned here and never again. */
export async function createMerchant(name: string): Promise<{ merchant: Merchant; apiKey: string }> {
  if (!validMerchantName(name)) throw new Error('merchant name must be 1 to 200 characters');
  const merchant: Merchant = {
    id: newId('mch'),
    name: name.trim(),
    status: 'active',
    created: Math.floor(Date.now() / 1000),
  };
  const apiKey = `sk_${config.apiKeyMode()}_${randomBase62(32)}`;
  const hash = await hashApiKey(apiKey);
  const ddb = clients.ddb();
  await ddb.send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `MERCHANT#${merchant.id}`,
        sk: 'MERCHANT',
        kind: 'merchant',
        ...listing(merchant),
        ...merchant,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  await ddb.send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `APIKEY#${hash}`,
        sk: 'APIKEY',
        kind: 'api_key',
        hash,
        merchant_id: merchant.id,
        key_prefix: apiKey.slice(0, 12),
        created: merchant.created,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return { merchant, apiKey };
}

/** The active merchant owning `apiKey`, or undefined. */
export async function merchantForApiKey(apiKey: string): Promise<Merchant | undefined> {
  if (!/^sk_(test|live)_[0-9A-Za-z]{32}$/.test(apiKey)) return undefined;
  const hash = await hashApiKey(apiKey);
  const ddb = clients.ddb();
  const key = await ddb.send(
    new GetCommand({ TableName: table(), Key: { pk: `APIKEY#${hash}`, sk: 'APIKEY' } }),
  );
  const stored = key.Item?.hash as string | undefined;
  if (!stored || !timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
  const m = await ddb.send(
    new GetCommand({ TableName: table(), Key: { pk: `MERCHANT#${key.Item!.merchant_id}`, sk: 'MERCHANT' } }),
  );
  if (!m.Item || m.Item.status !== 'active') return undefined;
  await ensureListed(m.Item);
  return fromItem(m.Item);
}

const listing = (m: { id: string; created: number }) => ({
  gsi1pk: 'MERCHANTS',
  gsi1sk: `${String(m.created).padStart(10, '0')}#${m.id}`,
});

/**
 * Puts a merchant created before the merchants index existed on it (once: a conditional write
 * that nothing repeats), so platform-wide work (incident events and reports) reaches it as soon
 * as it authenticates or takes a payment. A failure is left for the next read to retry.
 */
async function ensureListed(item: Item): Promise<void> {
  if (item.gsi1pk === 'MERCHANTS' || typeof item.id !== 'string' || typeof item.created !== 'number') return;
  const { gsi1pk, gsi1sk } = listing({ id: item.id, created: item.created });
  await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `MERCHANT#${item.id}`, sk: 'MERCHANT' },
      UpdateExpression: 'SET gsi1pk = :pk, gsi1sk = :sk',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(gsi1pk)',
      ExpressionAttributeValues: { ':pk': gsi1pk, ':sk': gsi1sk },
    }),
  ).catch(() => undefined);
}

/** The merchant `id`, whatever its status, or undefined. */
export async function getMerchant(id: string): Promise<Merchant | undefined> {
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: { pk: `MERCHANT#${id}`, sk: 'MERCHANT' } }));
  if (!r.Item) return undefined;
  await ensureListed(r.Item);
  return fromItem(r.Item);
}

/** Sets one attribute of the merchant; undefined when there is no such merchant. */
async function setMerchantAttribute(id: string, name: string, value: unknown): Promise<Merchant | undefined> {
  const item = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `MERCHANT#${id}`, sk: 'MERCHANT' },
      UpdateExpression: 'SET #a = :v',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#a': name },
      ExpressionAttributeValues: { ':v': value },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return item ? fromItem(item) : undefined;
}

/** Sets the merchant's dunning policy (validated by the caller). */
export const setMerchantDunningPolicy = (id: string, policy: Partial<DunningPolicy>) =>
  setMerchantAttribute(id, 'dunning_policy', policy);

/**
 * Sets the merchant's processor order (validated by the caller against the enabled processors);
 * undefined when there is no such merchant.
 */
export async function setMerchantProcessors(id: string, processors: string[]): Promise<Merchant | undefined> {
  const merchant = await setMerchantAttribute(id, 'processors', processors);
  // Routing in this container uses the new order at once (lambdas/store/routing-cache.ts).
  forgetRoutingSettings(id);
  return merchant;
}

/** Every merchant (active or not), oldest first, one index page at a time. */
export async function* allMerchants(): AsyncGenerator<Merchant> {
  for await (const item of queryPages({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :p',
    ExpressionAttributeValues: { ':p': 'MERCHANTS' },
  }))
    yield fromItem(item);
}
