/**
 * Console operators and their sessions (docs/console.md "Operators, sign-in and roles"). An
 * operator is a person with a role, created from the CLI; its login key (`opk_…`) is shown once and
 * stored only as its HMAC-SHA256 under the API-key pepper (like merchant and ops keys), so a copy
 * of the table signs no one in. A session is a random token (the cookie) stored the same way, with
 * the operator's id and a CSRF secret; DynamoDB's TTL removes it after it expires, and every read
 * checks the expiry itself (TTL deletes late).
 *
 * Items (table `main`):
 *   pk OPERATOR#<id>             sk OPERATOR       { id, name, role, merchant_id?, refund_limit?, created, disabled,
 *                                                   key_prefix }  gsi1pk OPERATORS gsi1sk <name>  listing
 *   pk OPERATORNAME#<name>       sk OPERATORNAME   { name, operator_id }  one operator per name, forever
 *   pk OPERATORKEY#<hash>        sk OPERATORKEY    { hash, operator_id }
 *   pk CONSOLESESSION#<hash>     sk CONSOLESESSION { id, operator_id, csrf_secret, created, expires, expires_at (TTL) }
 *   pk CONSOLELOGINFAIL#<source> sk <15-minute window>  { count, expires_at (TTL) }  sign-in throttle
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import { newId, randomBase62 } from '../shared/ids.ts';
import { ROLES, type Operator, type Role } from '../console/model.ts';
import { conditionalUpdate, putIfAbsent } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { hashApiKey } from './merchants.ts';
import { queryPages } from './pages.ts';

const table = () => config.tableName('main');
const operatorKey = (id: string) => ({ pk: `OPERATOR#${id}`, sk: 'OPERATOR' });
const nameKey = (name: string) => ({ pk: `OPERATORNAME#${name}`, sk: 'OPERATORNAME' });
const loginKey = (hash: string) => ({ pk: `OPERATORKEY#${hash}`, sk: 'OPERATORKEY' });
const sessionKey = (hash: string) => ({ pk: `CONSOLESESSION#${hash}`, sk: 'CONSOLESESSION' });

/** `opk_` and 40 base62 characters: never the shape of a merchant key or an ops key. */
export const OPERATOR_KEY = /^opk_[0-9A-Za-z]{40}$/;
export const OPERATOR_NAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
/** The session cookie's value: 43 base62 characters (256 bits). */
export const SESSION_TOKEN = /^[0-9A-Za-z]{43}$/;
/** How long a session lasts after sign-in (8 hours). */
export const SESSION_SECONDS = 8 * 3600;
/** Failed sign-ins from one source within LOGIN_WINDOW_SECONDS before it is refused for the window. */
export const LOGIN_FAILURE_LIMIT = 10;
export const LOGIN_WINDOW_SECONDS = 15 * 60;
/** The most a refund limit can be (minor units). */
export const MAX_REFUND_LIMIT = 999_999_999_999;

export class OperatorError extends PaystepError {
  override name = 'OperatorError';
}

export interface NewOperator {
  name: string;
  role: Role;
  merchant_id?: string;
  refund_limit?: number;
}

function toOperator(it: Record<string, unknown>): Operator {
  const op: Operator = {
    id: it.id as string,
    name: it.name as string,
    role: it.role as Role,
    created: it.created as number,
    disabled: it.disabled === true,
  };
  if (typeof it.merchant_id === 'string') op.merchant_id = it.merchant_id;
  if (typeof it.refund_limit === 'number') op.refund_limit = it.refund_limit;
  return op;
}

/** Creates an operator and its login key; the key is returned here and never again. */
export async function createOperator(o: NewOperator): Promise<{ operator: Operator; key: string }> {
  if (!OPERATOR_NAME.test(o.name))
    throw new OperatorError(
      `'${o.name}' is not an operator name: 1 to 64 of a-z 0-9 . _ @ -, starting with a letter or digit`,
    );
  if (!(ROLES as readonly string[]).includes(o.role))
    throw new OperatorError(`unknown role '${o.role}' (expected: ${ROLES.join(', ')})`);
  if (o.refund_limit !== undefined) {
    if (o.role !== 'support')
      throw new OperatorError(
        'a refund limit applies to support operators only (admin has none, finance cannot refund)',
      );
    if (!Number.isSafeInteger(o.refund_limit) || o.refund_limit < 0 || o.refund_limit > MAX_REFUND_LIMIT)
      throw new OperatorError(`refund limit '${o.refund_limit}' is not an amount in minor units`);
  }
  const operator: Operator = {
    id: newId('op'),
    name: o.name,
    role: o.role,
    created: Math.floor(Date.now() / 1000),
    disabled: false,
    ...(o.merchant_id !== undefined ? { merchant_id: o.merchant_id } : {}),
    ...(o.refund_limit !== undefined ? { refund_limit: o.refund_limit } : {}),
  };
  if (
    !(await putIfAbsent(table(), {
      ...nameKey(o.name),
      kind: 'operator_name',
      name: o.name,
      operator_id: operator.id,
    }))
  )
    throw new OperatorError(`an operator named '${o.name}' exists`);
  const key = `opk_${randomBase62(40)}`;
  const hash = await hashApiKey(key);
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...operatorKey(operator.id),
        kind: 'operator',
        gsi1pk: 'OPERATORS',
        gsi1sk: operator.name,
        key_prefix: key.slice(0, 8),
        ...operator,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { ...loginKey(hash), kind: 'operator_key', hash, operator_id: operator.id },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return { operator, key };
}

export async function getOperator(id: string): Promise<Operator | undefined> {
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: operatorKey(id), ConsistentRead: true }));
  return r.Item ? toOperator(r.Item) : undefined;
}

export async function getOperatorByName(name: string): Promise<Operator | undefined> {
  if (!OPERATOR_NAME.test(name)) return undefined;
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: nameKey(name), ConsistentRead: true }));
  return r.Item ? getOperator(r.Item.operator_id as string) : undefined;
}

/** Every operator, by name (never a key). */
export async function listOperators(): Promise<Operator[]> {
  const out: Operator[] = [];
  for await (const it of queryPages({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :p',
    ExpressionAttributeValues: { ':p': 'OPERATORS' },
  }))
    out.push(toOperator(it));
  return out;
}

/** Disables the operator named `name`: its key stops working and its sessions end at their next request. */
export async function disableOperator(name: string): Promise<Operator | undefined> {
  const op = await getOperatorByName(name);
  if (!op) return undefined;
  const update = updateExpression({ disabled: true })!;
  const after = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: operatorKey(op.id),
      ...update,
      ConditionExpression: 'attribute_exists(pk)',
      ReturnValues: 'ALL_NEW',
    }),
  );
  return after ? toOperator(after) : undefined;
}

/** The enabled operator whose login key is `key`; undefined for any other key (no hint which). */
export async function operatorForKey(key: string): Promise<Operator | undefined> {
  if (!OPERATOR_KEY.test(key)) return undefined;
  const hash = await hashApiKey(key);
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: loginKey(hash) }));
  const stored = r.Item?.hash as string | undefined;
  if (!stored || !timingSafeEqual(Buffer.from(stored, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
  const op = await getOperator(r.Item!.operator_id as string);
  return op && !op.disabled ? op : undefined;
}

export interface Session {
  /** A public id of the session (what the CSRF token is derived from; never the cookie). */
  id: string;
  operator_id: string;
  /** Hex; the key of the CSRF token's HMAC. */
  csrf_secret: string;
  /** Epoch milliseconds. */
  created: number;
  expires: number;
}

/** Starts a session for the operator; returns the cookie's token (shown only to the browser). */
export async function createSession(
  operatorId: string,
  nowMs = Date.now(),
): Promise<{ token: string; session: Session }> {
  const token = randomBase62(43);
  const hash = await hashApiKey(token);
  const session: Session = {
    id: createHash('sha256').update(randomBytes(32)).digest('base64url').slice(0, 22),
    operator_id: operatorId,
    csrf_secret: randomBytes(32).toString('hex'),
    created: nowMs,
    expires: nowMs + SESSION_SECONDS * 1000,
  };
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...sessionKey(hash),
        kind: 'console_session',
        ...session,
        // DynamoDB's TTL (epoch seconds) removes it some time after it expires.
        expires_at: Math.ceil(session.expires / 1000),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return { token, session };
}

/** The live session of a cookie token, or undefined (unknown, expired, malformed). */
export async function getSession(token: string, nowMs = Date.now()): Promise<Session | undefined> {
  if (!SESSION_TOKEN.test(token)) return undefined;
  const hash = await hashApiKey(token);
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: sessionKey(hash), ConsistentRead: true }));
  if (!r.Item || (r.Item.expires as number) <= nowMs) return undefined;
  return {
    id: r.Item.id as string,
    operator_id: r.Item.operator_id as string,
    csrf_secret: r.Item.csrf_secret as string,
    created: r.Item.created as number,
    expires: r.Item.expires as number,
  };
}

/** Signs out: deletes the session (a later request with the cookie finds none). */
export async function deleteSession(token: string): Promise<void> {
  if (!SESSION_TOKEN.test(token)) return;
  const hash = await hashApiKey(token);
  await clients.ddb().send(new DeleteCommand({ TableName: table(), Key: sessionKey(hash) }));
}

const loginWindow = (source: string, nowMs: number) => {
  const start = Math.floor(nowMs / 1000 / LOGIN_WINDOW_SECONDS) * LOGIN_WINDOW_SECONDS;
  return { key: { pk: `CONSOLELOGINFAIL#${source}`, sk: String(start) }, end: start + LOGIN_WINDOW_SECONDS };
};

/** Whether sign-ins from `source` (an IP address) are refused for now: too many failed lately. */
export async function loginThrottled(source: string, nowMs = Date.now()): Promise<boolean> {
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: loginWindow(source, nowMs).key }));
  return ((r.Item?.count as number | undefined) ?? 0) >= LOGIN_FAILURE_LIMIT;
}

/** Counts a failed sign-in from `source` in the current window. */
export async function recordLoginFailure(source: string, nowMs = Date.now()): Promise<void> {
  const w = loginWindow(source, nowMs);
  const update = updateExpression({}, [], {
    add: { count: 1 },
    setIfAbsent: { expires_at: w.end + 60, kind: 'console_login_failures' },
  })!;
  await clients.ddb().send(new UpdateCommand({ TableName: table(), Key: w.key, ...update }));
}
