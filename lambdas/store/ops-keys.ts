/**
 * Ops keys (docs/decisions/0005-ops-keys.md): the credentials of the ops API (/ops/…), for people
 * and tools that run the platform, never a merchant's. `paystep ops key create --name N` prints a
 * key once; what is stored is its HMAC-SHA256 under the same pepper as merchant API keys
 * (lambdas/store/merchants.ts), so a stolen table holds nothing usable. The key's name is what the
 * incident timeline records as `by`.
 *
 * Items (table `main`):
 *   pk OPSKEY#<hash>      sk OPSKEY       { hash, name, key_prefix, created }
 *   pk OPSKEYNAME#<name>  sk OPSKEYNAME   { name, hash, key_prefix, created }  one key per name;
 *       gsi1pk OPSKEYS  gsi1sk <name>   listing
 */
import { timingSafeEqual } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import { randomBase62 } from '../shared/ids.ts';
import { conditionalWrite } from './conditional.ts';
import { hashApiKey } from './merchants.ts';
import { queryPages } from './pages.ts';

const table = () => config.tableName('main');
const hashKey = (hash: string) => ({ pk: `OPSKEY#${hash}`, sk: 'OPSKEY' });
const nameKey = (name: string) => ({ pk: `OPSKEYNAME#${name}`, sk: 'OPSKEYNAME' });

/** `ops_` and 40 base62 characters: never the shape of a merchant key (`sk_test_…`, `sk_live_…`). */
export const OPS_KEY = /^ops_[0-9A-Za-z]{40}$/;
export const OPS_KEY_NAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;

export class OpsKeyError extends PaystepError {
  override name = 'OpsKeyError';
}

export interface OpsKey {
  name: string;
  key_prefix: string;
  /** Epoch seconds. */
  created: number;
}

/** Creates the key named `name` (lowercase letters, digits, . _ @ -); the key is returned once. */
export async function createOpsKey(name: string): Promise<{ opsKey: OpsKey; key: string }> {
  if (!OPS_KEY_NAME.test(name))
    throw new OpsKeyError(
      `'${name}' is not an ops key name: 1 to 64 of a-z 0-9 . _ @ -, starting with a letter or digit`,
    );
  const key = `ops_${randomBase62(40)}`;
  const hash = await hashApiKey(key);
  const opsKey: OpsKey = { name, key_prefix: key.slice(0, 8), created: Math.floor(Date.now() / 1000) };
  const named = await conditionalWrite(
    new PutCommand({
      TableName: table(),
      Item: { ...nameKey(name), kind: 'ops_key', gsi1pk: 'OPSKEYS', gsi1sk: name, hash, ...opsKey },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  if (!named) throw new OpsKeyError(`an ops key named '${name}' exists: revoke it first`);
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { ...hashKey(hash), kind: 'ops_key_hash', hash, ...opsKey },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return { opsKey, key };
}

/** The name of the ops key `key`, or undefined (unknown, revoked, or not shaped like one). */
export async function opsKeyName(key: string): Promise<string | undefined> {
  if (!OPS_KEY.test(key)) return undefined;
  const hash = await hashApiKey(key);
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: hashKey(hash) }));
  const stored = r.Item?.hash as string | undefined;
  if (!stored || !timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
  // The name item is the key's life: a revoked key has none (or one of a newer key).
  const named = await clients.ddb().send(new GetCommand({ TableName: table(), Key: nameKey(r.Item!.name) }));
  return named.Item?.hash === hash ? (r.Item!.name as string) : undefined;
}

export async function listOpsKeys(): Promise<OpsKey[]> {
  const out: OpsKey[] = [];
  for await (const item of queryPages({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :p',
    ExpressionAttributeValues: { ':p': 'OPSKEYS' },
  }))
    out.push({
      name: item.name as string,
      key_prefix: item.key_prefix as string,
      created: item.created as number,
    });
  return out;
}

/** Revokes the key named `name`; false when there is none. */
export async function revokeOpsKey(name: string): Promise<boolean> {
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: nameKey(name) }));
  if (!r.Item) return false;
  const hash = r.Item.hash as string;
  const revoked = await conditionalWrite(
    new DeleteCommand({
      TableName: table(),
      Key: nameKey(name),
      ConditionExpression: '#h = :h',
      ExpressionAttributeNames: { '#h': 'hash' },
      ExpressionAttributeValues: { ':h': hash },
    }),
  );
  if (!revoked) return false;
  await clients.ddb().send(new DeleteCommand({ TableName: table(), Key: hashKey(hash) }));
  return true;
}
