/**
 * Payments in DynamoDB (table `main`).
 *
 *   pk PAYMENT#<id>  sk PAYMENT                 the payment (attributes of `Payment`, plus gsi keys)
 *   pk PAYMENT#<id>  sk EVENT#<ms>#<seq>        timeline entries (status changes, attempts, workflow)
 *   gsi1pk MERCHANT#<merchant>#PAYMENTS  gsi1sk <created ms, 13 digits>#<id>   listing, newest first
 *   gsi2pk OPEN#payment#<shard>  gsi2sk <status change ms>#<id>   while processing, requires_action
 *                                                            or authorized (lambdas/store/open-items.ts)
 *   pk VELOCITY#<merchant>#<customer>#<hour>    per-customer counter for the risk screen (TTL 2 h)
 *
 * Every status change goes through `transition`, a conditional update that succeeds only from an
 * allowed previous status (docs/states.md) and bumps `version`; a stale or repeated step fails the
 * condition and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { withoutInternal } from './items.ts';
import { openIndex } from './open-items.ts';
import { cursorPage, queryAll, startKeyOf } from './pages.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import { allowedSources, type Payment, type PaymentStatus } from '../domain/payment.ts';

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `PAYMENT#${id}`, sk: 'PAYMENT' });
const INTERNAL = [
  'task_token',
  'task_token_kind',
  'created_ms',
  'refundable_remaining',
  'refunds_applied',
  'refunds_released',
  'refunds_reserved',
];

export function toPayment(item: Record<string, unknown>): Payment {
  return withoutInternal(item, INTERNAL) as unknown as Payment;
}

export class TransitionRejected extends PaystepError {
  override name = 'TransitionRejected';
  readonly current?: PaymentStatus;
  constructor(id: string, to: PaymentStatus, current?: PaymentStatus) {
    super(`payment ${id} cannot move to ${to}${current ? ` from ${current}` : ''}`, {
      code: 'transition_rejected',
    });
    this.current = current;
  }
}

/** Stores a new payment; false if a payment with its id exists (a resumed request wrote it). */
export async function createPayment(p: Payment, createdMs = p.created * 1000): Promise<boolean> {
  return putIfAbsent(table(), {
    ...key(p.id),
    kind: 'payment',
    ...p,
    created_ms: createdMs,
    gsi1pk: `MERCHANT#${p.merchant_id}#PAYMENTS`,
    gsi1sk: `${String(createdMs).padStart(13, '0')}#${p.id}`,
    ...openIndex('payment', p.id, p.status, createdMs).set,
  });
}

export async function getPayment(id: string, consistent = true): Promise<Payment | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: consistent }));
  return out.Item ? toPayment(out.Item) : undefined;
}

/** The payment if it belongs to the merchant (another merchant's payment reads as missing). */
export async function getMerchantPayment(merchantId: string, id: string): Promise<Payment | undefined> {
  if (!/^pay_[0-9A-Za-z]{10,40}$/.test(id)) return undefined;
  const p = await getPayment(id);
  return p && p.merchant_id === merchantId ? p : undefined;
}

/** The task token the payment's workflow is waiting on, and what it waits for. */
export async function getTaskToken(id: string): Promise<{ token?: string; kind?: string }> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: key(id),
      ProjectionExpression: 'task_token, task_token_kind',
      ConsistentRead: true,
    }),
  );
  return {
    token: out.Item?.task_token as string | undefined,
    kind: out.Item?.task_token_kind as string | undefined,
  };
}

export interface TransitionOptions {
  /** Attributes set together with the status. */
  set?: Record<string, unknown>;
  /** Attributes removed. */
  remove?: string[];
  /** Timeline entry recorded with the change. */
  note?: string;
  /** Overrides the allowed previous statuses (narrower only, e.g. capture only from authorized). */
  from?: PaymentStatus[];
}

/**
 * Moves the payment to `to` if its current status allows it. Idempotent: already being in `to`
 * with the same attributes is reported as `{ changed: false }` rather than an error. The same
 * write lists the payment on the open-items index, or takes it off (lambdas/store/open-items.ts).
 */
export async function transition(
  id: string,
  to: PaymentStatus,
  opts: TransitionOptions = {},
): Promise<{ changed: boolean; payment: Payment }> {
  const from = opts.from ?? allowedSources(to);
  const nowMs = Date.now();
  const index = openIndex('payment', id, to, nowMs);
  const fromValues = Object.fromEntries(from.map((s, j) => [`:f${j}`, s]));
  const update = updateExpression(
    { status: to, updated: Math.floor(nowMs / 1000), ...opts.set, ...index.set },
    [...(opts.remove ?? []), ...index.remove],
    {
      add: { version: 1 },
      condition: {
        expression: `attribute_exists(pk) AND #status IN (${Object.keys(fromValues).join(', ')})`,
        names: { '#status': 'status' },
        values: fromValues,
      },
    },
  )!;
  const written = await conditionalUpdate(
    new UpdateCommand({ TableName: table(), Key: key(id), ...update, ReturnValues: 'ALL_NEW' }),
  );
  if (written) {
    await addEvent(id, { type: 'status_changed', status: to, note: opts.note });
    return { changed: true, payment: toPayment(written) };
  }
  const current = await getPayment(id);
  if (current && current.status === to) return { changed: false, payment: current };
  throw new TransitionRejected(id, to, current?.status);
}

/**
 * Records that a processor payout paid the payment out (docs/states.md, "Facts beside the
 * status"). The first payout wins: a re-import of the same payout, or another file naming the
 * payment again, changes nothing. The status moves to `settled` only from `captured`: a payment
 * already refunded or disputed keeps that status (higher precedence), and the settlement is
 * still there to read. Returns whether the settlement was recorded now.
 */
export async function recordSettlement(
  id: string,
  processor: string,
  payoutId: string,
  date: string,
): Promise<boolean> {
  const settlement = { processor, payout_id: payoutId, date };
  const recorded = await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({ settlement, updated: Math.floor(Date.now() / 1000) }, [], {
        condition: {
          expression: 'attribute_exists(pk) AND (attribute_not_exists(settlement) OR settlement = :null)',
          values: { ':null': null },
        },
      })!,
    }),
  );
  if (recorded) await addEvent(id, { type: 'settlement', processor, payout_id: payoutId, date });
  // Also when the settlement was recorded before: a crash between the two writes must not leave a
  // paid-out payment `captured` (the guarded transition changes nothing when it already moved).
  await transition(id, 'settled', {
    from: ['captured'],
    note: `settled in ${processor} payout ${payoutId} on ${date}`,
  }).catch((err: Error) => {
    // Refunded or disputed before the payout: that status stays; the settlement is recorded beside it.
    if (!(err instanceof TransitionRejected)) throw err;
  });
  return recorded;
}

/** Sets attributes without a status change (e.g. a task token, the execution ARN). */
export async function annotate(
  id: string,
  set: Record<string, unknown>,
  remove: string[] = [],
): Promise<void> {
  const update = updateExpression(set, remove);
  if (!update) return;
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ConditionExpression: 'attribute_exists(pk)',
      ...update,
    }),
  );
}

export interface TimelineEntry {
  /** created, status_changed, attempt, workflow, review, risk, capture_requested, cancel_requested, refund, dispute, webhook, … */
  type: string;
  at?: string;
  [k: string]: unknown;
}

let seq = 0;
export async function addEvent(id: string, entry: TimelineEntry): Promise<void> {
  const ms = Date.now();
  seq = (seq + 1) % 1_000_000;
  const sk = `EVENT#${String(ms).padStart(13, '0')}#${String(seq).padStart(6, '0')}#${randomBytes(3).toString('hex')}`;
  const clean = Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined));
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { pk: `PAYMENT#${id}`, sk, kind: 'payment_event', at: new Date(ms).toISOString(), ...clean },
    }),
  );
}

export async function timeline(id: string): Promise<TimelineEntry[]> {
  const items = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
    ExpressionAttributeValues: { ':pk': `PAYMENT#${id}`, ':e': 'EVENT#' },
    ConsistentRead: true,
  });
  return items.map(({ pk: _pk, sk: _sk, kind: _kind, ...rest }) => rest as TimelineEntry);
}

export interface ListFilters {
  status?: PaymentStatus;
  orderId?: string;
  createdGte?: number;
  createdLt?: number;
  limit: number;
  startingAfter?: string;
}

/** Newest first; cursor pagination with `starting_after` (a payment id of the previous page). */
export async function listPayments(
  merchantId: string,
  f: ListFilters,
): Promise<{ data: Payment[]; hasMore: boolean; nextStartingAfter?: string }> {
  const values: Record<string, unknown> = { ':pk': `MERCHANT#${merchantId}#PAYMENTS` };
  const names: Record<string, string> = {};
  let keyCond = 'gsi1pk = :pk';
  const lo = f.createdGte !== undefined ? String(f.createdGte * 1000).padStart(13, '0') : undefined;
  const hi = f.createdLt !== undefined ? String(f.createdLt * 1000).padStart(13, '0') : undefined;
  let after: Record<string, unknown> | undefined;
  if (f.startingAfter) {
    const previous = await getMerchantPayment(merchantId, f.startingAfter);
    if (!previous) return { data: [], hasMore: false };
    after = await startKeyOf(table(), key(previous.id));
  }
  if (lo && hi) {
    keyCond += ' AND gsi1sk BETWEEN :lo AND :hi';
    values[':lo'] = lo;
    values[':hi'] = hi;
  } else if (lo) {
    keyCond += ' AND gsi1sk >= :lo';
    values[':lo'] = lo;
  } else if (hi) {
    keyCond += ' AND gsi1sk < :hi';
    values[':hi'] = hi;
  }
  const filters: string[] = [];
  if (f.status) {
    names['#status'] = 'status';
    values[':status'] = f.status;
    filters.push('#status = :status');
  }
  if (f.orderId) {
    values[':order'] = f.orderId;
    filters.push('order_id = :order');
  }
  // Filters may drop items: at most 10 Query pages per request, then `nextStartingAfter` (the last
  // payment examined) to continue from.
  return cursorPage(
    {
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: keyCond,
      FilterExpression: filters.length ? filters.join(' AND ') : undefined,
      ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
      ExpressionAttributeValues: values,
    },
    {
      limit: f.limit,
      after,
      map: toPayment,
      keep: (it) => !hi || String(it.gsi1sk) < hi, // BETWEEN is inclusive at the top
      maxPages: 10,
      resumeAfter: (last) => String(last.pk).replace(/^PAYMENT#/, ''),
    },
  );
}

/** Counts this customer's payment in the current hour and returns the count (risk velocity). */
export async function countCustomerPayment(
  merchantId: string,
  customerId: string,
  paymentId: string,
): Promise<number> {
  const hour = Math.floor(Date.now() / 3_600_000);
  const out = await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `VELOCITY#${merchantId}#${customerId}#${hour}`, sk: 'VELOCITY' },
      UpdateExpression: 'ADD payments :p SET expires_at = :exp, kind = :kind',
      ExpressionAttributeValues: {
        ':p': new Set([paymentId]),
        ':exp': (hour + 2) * 3600,
        ':kind': 'velocity',
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return (out.Attributes?.payments as Set<string> | undefined)?.size ?? 1;
}
