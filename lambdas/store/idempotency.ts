/**
 * Idempotent requests with Stripe's semantics (docs/api.md, "Idempotency"), scoped per merchant:
 * - first request with a key: runs, and its response is stored for 24 h;
 * - same key, same request: the stored response is replayed (`Idempotent-Replayed: true`);
 * - same key, different request (method, path or body): 422 `idempotency_error`;
 * - same key while the first is still running: 409 `conflict`.
 *
 * One DynamoDB item per key, claimed with a conditional put, so among any number of concurrent
 * identical requests exactly one runs. A claim whose holder died (Lambda timeout, crash) expires
 * after `lockSeconds` and can be taken over.
 *
 *   pk IDEMPOTENCY#<merchant>#<key>  sk IDEMPOTENCY  { status, request_hash, response?, locked_until, expires_at }
 */
import { createHash } from 'node:crypto';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError, invalidRequest } from '../shared/errors.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';

const RETENTION_SECONDS = 24 * 3600;
const table = () => config.tableName('main');
const key = (merchantId: string, idemKey: string) => ({
  pk: `IDEMPOTENCY#${merchantId}#${idemKey}`,
  sk: 'IDEMPOTENCY',
});

export interface StoredResponse {
  status: number;
  body: unknown;
}

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n${canonical(body)}`)
    .digest('hex');
}

/**
 * JSON with sorted keys, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request. Iterative
 * (an explicit stack, no recursion), so no nesting can overflow the call stack; the output is the
 * same as the recursive definition's, so stored request hashes stay valid.
 */
function canonical(root: unknown): string {
  const out: string[] = [];
  // A string is emitted as is; `{ v }` is a value still to serialize.
  const stack: (string | { v: unknown })[] = [{ v: root }];
  while (stack.length) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      out.push(item);
      continue;
    }
    const v = item.v;
    if (Array.isArray(v)) {
      stack.push(']');
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ v: v[i] as unknown });
        if (i > 0) stack.push(',');
      }
      stack.push('[');
    } else if (v && typeof v === 'object') {
      const keys = Object.keys(v).sort();
      stack.push('}');
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ v: (v as Record<string, unknown>)[keys[i]!] });
        stack.push(`${JSON.stringify(keys[i])}:`);
        if (i > 0) stack.push(',');
      }
      stack.push('{');
    } else out.push(JSON.stringify(v ?? null));
  }
  return out.join('');
}

export function readIdempotencyKey(headers: Record<string, string>, required: boolean): string | undefined {
  const k = headers['idempotency-key'];
  if (k === undefined || k === '') {
    if (required)
      throw invalidRequest(
        'idempotency_key_required',
        'This request moves money: send an Idempotency-Key header (any unique string up to 255 characters).',
        'Idempotency-Key',
      );
    return undefined;
  }
  if (k.length > 255 || !/^[\x21-\x7e]+$/.test(k))
    throw invalidRequest(
      'idempotency_key_invalid',
      'Idempotency-Key must be 1 to 255 printable ASCII characters.',
      'Idempotency-Key',
    );
  return k;
}

/** Response headers telling the client its response was replayed. */
export const replayHeaders = (replayed: boolean): Record<string, string> =>
  replayed ? { 'Idempotent-Replayed': 'true' } : {};

export type Claim = { kind: 'new'; resourceId: string } | { kind: 'replay'; response: StoredResponse };

/**
 * Claims the key for this request. `resourceId` is the id of whatever the request creates; it is
 * stored with the claim so that a request taking over an abandoned claim (crash, timeout, error
 * after a side effect) resumes the same object instead of creating a second one.
 */
export async function claim(
  merchantId: string,
  idemKey: string,
  hash: string,
  resourceId: string,
  lockSeconds = 60,
): Promise<Claim> {
  const now = Math.floor(Date.now() / 1000);
  const ddb = clients.ddb();
  const claimed = await putIfAbsent(table(), {
    ...key(merchantId, idemKey),
    kind: 'idempotency',
    status: 'in_progress',
    request_hash: hash,
    resource_id: resourceId,
    locked_until: now + lockSeconds,
    expires_at: now + RETENTION_SECONDS,
  });
  if (claimed) return { kind: 'new', resourceId };
  // Take over an abandoned claim of the same request: its holder died or gave up.
  const taken = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET locked_until = :until',
      ConditionExpression: '#s = :inp AND locked_until < :now AND request_hash = :h',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':inp': 'in_progress',
        ':now': now,
        ':h': hash,
        ':until': now + lockSeconds,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (taken) return { kind: 'new', resourceId: (taken.resource_id as string | undefined) ?? resourceId };
  const out = await ddb.send(
    new GetCommand({ TableName: table(), Key: key(merchantId, idemKey), ConsistentRead: true }),
  );
  const item = out.Item;
  if (!item) return claim(merchantId, idemKey, hash, resourceId, lockSeconds);
  if (item.request_hash !== hash)
    throw new ApiError(
      422,
      'idempotency_error',
      'idempotency_key_reused',
      'Keys for idempotent requests can only be used with the same parameters they were first used with. Use a new Idempotency-Key for a different request.',
    );
  if (item.status === 'completed') return { kind: 'replay', response: item.response as StoredResponse };
  throw new ApiError(
    409,
    'conflict',
    'idempotency_request_in_progress',
    'A request with the same Idempotency-Key is still being processed. Retry after it completes.',
  );
}

export async function complete(merchantId: string, idemKey: string, response: StoredResponse): Promise<void> {
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET #s = :c, #r = :r REMOVE locked_until',
      ExpressionAttributeNames: { '#s': 'status', '#r': 'response' },
      ExpressionAttributeValues: { ':c': 'completed', ':r': response },
    }),
  );
}

/**
 * Gives up a claim after an unexpected error, keeping its resource id: the client's retry with
 * the same key takes it over at once and resumes the same object (never creates a second one).
 */
export async function unlock(merchantId: string, idemKey: string): Promise<void> {
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET locked_until = :zero',
      ConditionExpression: '#s = :inp',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':inp': 'in_progress', ':zero': 0 },
    }),
  );
}

/**
 * Runs `fn` once per (merchant, key, request). `fn` receives the resource id to use for what it
 * creates (stable across retries of the same request) and returns the response to store and
 * return; an ApiError with status < 500 (a validation error) is stored too, as Stripe does; any
 * other error unlocks the claim so a retry resumes.
 */
export async function idempotent(
  merchantId: string,
  idemKey: string | undefined,
  hash: string,
  fn: (resourceId: string) => Promise<StoredResponse>,
  newResourceId: () => string = () => '',
): Promise<{ response: StoredResponse; replayed: boolean }> {
  if (!idemKey) return { response: await fn(newResourceId()), replayed: false };
  const c = await claim(merchantId, idemKey, hash, newResourceId());
  if (c.kind === 'replay') return { response: c.response, replayed: true };
  let response: StoredResponse;
  try {
    response = await fn(c.resourceId);
  } catch (err) {
    if (err instanceof ApiError && err.status < 500 && err.status !== 409) {
      response = { status: err.status, body: err.toJSON() };
      await complete(merchantId, idemKey, response);
      return { response, replayed: false };
    }
    await unlock(merchantId, idemKey);
    throw err;
  }
  await complete(merchantId, idemKey, response);
  return { response, replayed: false };
}
