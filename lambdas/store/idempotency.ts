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
import { DeleteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError, invalidRequest } from '../shared/errors.ts';
import { identifierHoldsCardNumber } from '../domain/pan.ts';
import { cardNumberRefused } from '../shared/input.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';
import { queryPages } from './pages.ts';

const RETENTION_SECONDS = 24 * 3600;
/** Longer than any API function may run (their timeouts are at most 30 s), so a live holder keeps it. */
const LOCK_SECONDS = 60;
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
  // The key is stored (the claim's own key): a card number in it would be kept for 24 h.
  if (identifierHoldsCardNumber(k)) throw cardNumberRefused('Idempotency-Key', 'Idempotency-Key');
  return k;
}

/** Response headers telling the client its response was replayed. */
export const replayHeaders = (replayed: boolean): Record<string, string> =>
  replayed ? { 'Idempotent-Replayed': 'true' } : {};

export type Claim =
  | {
      kind: 'new';
      resourceId: string;
      resumed: boolean;
      recoveryPoint?: string;
      recoveryData?: Record<string, unknown>;
    }
  | { kind: 'replay'; response: StoredResponse };

/** Open claims are listed on gsi1 in this many partitions, so the index has no hot key. */
const OPEN_SHARDS = 8;
const openShard = (merchantId: string, idemKey: string) =>
  `IDEMPOTENCY#OPEN#${createHash('sha256').update(`${merchantId}\n${idemKey}`).digest()[0]! % OPEN_SHARDS}`;

/**
 * Claims the key for this request. `resourceId` is the id of whatever the request creates; it is
 * stored with the claim so that a request taking over an abandoned claim (crash, timeout, error
 * after a side effect) resumes the same object, from its last recovery point, instead of creating
 * a second one. `operation` names the route (`refund.create`, …) for the sweeper.
 */
export async function claim(
  merchantId: string,
  idemKey: string,
  hash: string,
  resourceId: string,
  operation = 'request',
  lockSeconds = LOCK_SECONDS,
): Promise<Claim> {
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const ddb = clients.ddb();
  const claimed = await putIfAbsent(table(), {
    ...key(merchantId, idemKey),
    kind: 'idempotency',
    status: 'in_progress',
    merchant_id: merchantId,
    idempotency_key: idemKey,
    operation,
    request_hash: hash,
    resource_id: resourceId,
    claimed_at: nowMs,
    locked_until: now + lockSeconds,
    expires_at: now + RETENTION_SECONDS,
    // Listed while open (sparse index): the sweeper and the local runtime's start find them.
    gsi1pk: openShard(merchantId, idemKey),
    gsi1sk: `${String(nowMs).padStart(13, '0')}#${merchantId}#${idemKey}`,
  });
  if (claimed) return { kind: 'new', resourceId, resumed: false };
  // Take over an abandoned claim of the same request: its holder died or gave up.
  const taken = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET locked_until = :until, claimed_at = :nowMs ADD attempts :one',
      ConditionExpression: '#s = :inp AND locked_until < :now AND request_hash = :h',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':inp': 'in_progress',
        ':now': now,
        ':nowMs': nowMs,
        ':h': hash,
        ':until': now + lockSeconds,
        ':one': 1,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (taken)
    return {
      kind: 'new',
      resourceId: (taken.resource_id as string | undefined) ?? resourceId,
      resumed: true,
      recoveryPoint: taken.recovery_point as string | undefined,
      recoveryData: taken.recovery_data as Record<string, unknown> | undefined,
    };
  const out = await ddb.send(
    new GetCommand({ TableName: table(), Key: key(merchantId, idemKey), ConsistentRead: true }),
  );
  const item = out.Item;
  if (!item) return claim(merchantId, idemKey, hash, resourceId, operation, lockSeconds);
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

/**
 * Records how far the request got (a recovery point, e.g. `refund_recorded`), so that a request
 * that takes over after a crash continues from there instead of repeating what was done.
 */
export async function checkpoint(
  merchantId: string,
  idemKey: string,
  point: string,
  data: Record<string, unknown> = {},
): Promise<void> {
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET recovery_point = :p, recovery_data = :d',
      ConditionExpression: '#s = :inp',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':p': point, ':d': data, ':inp': 'in_progress' },
    }),
  );
}

export async function complete(merchantId: string, idemKey: string, response: StoredResponse): Promise<void> {
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET #s = :c, #r = :r REMOVE locked_until, gsi1pk, gsi1sk',
      ExpressionAttributeNames: { '#s': 'status', '#r': 'response' },
      ExpressionAttributeValues: { ':c': 'completed', ':r': response },
    }),
  );
}

/**
 * Frees a claim's lock, keeping its resource id and recovery point: the next request with the key
 * takes it over at once and resumes the same object (never creates a second one). With
 * `claimedAt`, only if nobody took the claim over since. Returns whether it was freed.
 */
function freeClaim(merchantId: string, idemKey: string, claimedAt?: number): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(merchantId, idemKey),
      UpdateExpression: 'SET locked_until = :zero',
      ConditionExpression: claimedAt === undefined ? '#s = :inp' : '#s = :inp AND claimed_at = :at',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':inp': 'in_progress',
        ':zero': 0,
        ...(claimedAt === undefined ? {} : { ':at': claimedAt }),
      },
    }),
  );
}

/** Gives up a claim after an unexpected error, so the client's retry resumes at once. */
export async function unlock(merchantId: string, idemKey: string): Promise<void> {
  await freeClaim(merchantId, idemKey);
}

export interface OpenClaim {
  merchantId: string;
  idemKey: string;
  operation: string;
  resourceId: string;
  recoveryPoint?: string;
  recoveryData: Record<string, unknown>;
  claimedAt: number;
  lockedUntil: number;
}

/** Claims still in progress, claimed before `beforeMs`, oldest first within each shard. */
export async function* openClaims(beforeMs = Date.now()): AsyncGenerator<OpenClaim> {
  for (let shard = 0; shard < OPEN_SHARDS; shard++) {
    for await (const it of queryPages({
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p AND gsi1sk < :before',
      ExpressionAttributeValues: {
        ':p': `IDEMPOTENCY#OPEN#${shard}`,
        ':before': String(beforeMs).padStart(13, '0'),
      },
    })) {
      if (it.kind !== 'idempotency' || it.status !== 'in_progress') continue;
      yield {
        merchantId: it.merchant_id as string,
        idemKey: it.idempotency_key as string,
        operation: (it.operation as string | undefined) ?? 'request',
        resourceId: it.resource_id as string,
        recoveryPoint: it.recovery_point as string | undefined,
        recoveryData: (it.recovery_data as Record<string, unknown> | undefined) ?? {},
        claimedAt: it.claimed_at as number,
        lockedUntil: it.locked_until as number,
      };
    }
  }
}

/**
 * Frees every claim taken before `beforeMs` whose lock has not run out: called by a host that
 * knows no request of its own is running (the local runtime at start, after a crash), so that a
 * retry does not wait out a lock held by a process that is gone. Returns how many were freed.
 */
export async function releaseClaimsBefore(beforeMs: number): Promise<number> {
  const now = Math.floor(Date.now() / 1000);
  let n = 0;
  for await (const c of openClaims(beforeMs)) {
    if (c.lockedUntil < now) continue;
    if (await freeClaim(c.merchantId, c.idemKey, c.claimedAt)) n++;
  }
  return n;
}

/**
 * Forgets an abandoned claim that never produced its object (the sweeper, once nothing was moved
 * for it): a retry with the same key then runs as a new request. Only while it is still open,
 * unlocked and at the same claim time, so a retry that took it over in between keeps it.
 */
export async function dropAbandonedClaim(c: OpenClaim): Promise<boolean> {
  return conditionalWrite(
    new DeleteCommand({
      TableName: table(),
      Key: key(c.merchantId, c.idemKey),
      ConditionExpression: '#s = :inp AND claimed_at = :at AND locked_until < :now',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':inp': 'in_progress',
        ':at': c.claimedAt,
        ':now': Math.floor(Date.now() / 1000),
      },
    }),
  );
}

/** What a request's work receives: the id to use and how far an earlier attempt got. */
export interface RequestProgress {
  /** Id of the object the request creates (the same on every retry of the request). */
  resourceId: string;
  /** This attempt takes over an earlier one that crashed, timed out or failed unexpectedly. */
  resumed: boolean;
  /** The last recovery point the earlier attempts reached, and what was recorded with it. */
  recoveryPoint?: string;
  recoveryData: Record<string, unknown>;
  /** Records a recovery point (kept in memory only without an Idempotency-Key). */
  checkpoint(point: string, data?: Record<string, unknown>): Promise<void>;
}

/** The progress of a request that has no claim to resume (no Idempotency-Key): kept in memory. */
export function freshProgress(resourceId: string): RequestProgress {
  const progress: RequestProgress = {
    resourceId,
    resumed: false,
    recoveryData: {},
    checkpoint: async (point, data = {}) => {
      progress.recoveryPoint = point;
      progress.recoveryData = data;
    },
  };
  return progress;
}

export interface IdempotentOptions {
  /** The route, e.g. `refund.create` (kept on the claim for the sweeper). */
  operation?: string;
  /** A fresh id for what the request creates. */
  newResourceId?: () => string;
}

/**
 * Runs `fn` once per (merchant, key, request). `fn` receives the resource id to use for what it
 * creates (stable across retries of the same request) and the recovery point an interrupted
 * attempt reached, and returns the response to store and return; an ApiError with status < 500
 * (a validation error) is stored too, as Stripe does; any other error unlocks the claim so a
 * retry resumes.
 */
export async function idempotent(
  merchantId: string,
  idemKey: string | undefined,
  hash: string,
  fn: (resourceId: string, progress: RequestProgress) => Promise<StoredResponse>,
  opts: IdempotentOptions = {},
): Promise<{ response: StoredResponse; replayed: boolean }> {
  const newResourceId = opts.newResourceId ?? (() => '');
  if (!idemKey) {
    const progress = freshProgress(newResourceId());
    return { response: await fn(progress.resourceId, progress), replayed: false };
  }
  const c = await claim(merchantId, idemKey, hash, newResourceId(), opts.operation);
  if (c.kind === 'replay') return { response: c.response, replayed: true };
  const progress: RequestProgress = {
    resourceId: c.resourceId,
    resumed: c.resumed,
    recoveryPoint: c.recoveryPoint,
    recoveryData: c.recoveryData ?? {},
    checkpoint: async (point, data = {}) => {
      await checkpoint(merchantId, idemKey, point, data);
      progress.recoveryPoint = point;
      progress.recoveryData = data;
    },
  };
  let response: StoredResponse;
  try {
    response = await fn(c.resourceId, progress);
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
