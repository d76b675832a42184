/**
 * Payments in DynamoDB (table `main`).
 *
 *   pk PAYMENT#<id>  sk PAYMENT                 the payment (attributes of `Payment`, plus gsi keys);
 *                                               `timeline`: the entries written with the payment's own
 *                                               writes (created, status changes, risk, routing, attempts)
 *                                               and processor events compared with it, once per event
 *                                               (`webhook_events`: `recordWebhookEntries`)
 *   pk PAYMENT#<id>  sk EVENT#<ms>#<seq>#<rnd>  timeline entries that accompany no payment write
 *                                               (webhooks, refunds, disputes, reviews, sweeper …)
 *   gsi1pk MERCHANT#<merchant>#PAYMENTS  gsi1sk <created ms, 13 digits>#<id>   listing, newest first
 *   gsi2pk OPEN#payment#<shard>  gsi2sk <status change ms>#<id>   while processing, requires_action
 *                                                            or authorized (lambdas/store/open-items.ts)
 *   pk VELOCITY#<merchant>#<customer>#<hour>    per-customer counter for the risk screen (TTL 2 h)
 *
 * Every status change goes through `transition`, a conditional update that succeeds only from an
 * allowed previous status (docs/states.md) and bumps `version`; a stale or repeated step fails the
 * condition and changes nothing.
 *
 * Timeline entries go with the write they record: `createPayment`, `transition` (its status change),
 * `annotate`, `recordPaymentAttempt`, `moveToNextProcessor`, … append them to the payment's internal
 * `timeline` list in the same PutItem/UpdateItem, so the change and its entry are one write and
 * neither exists without the other. `addEvent` is for entries that accompany no payment write: an
 * item of its own. `timeline(id)` merges both, ordered by the entry key (`<ms>#<seq>#<random>`). The
 * list stays small (a payment's own writes are few); past MAX_INLINE_ENTRIES its oldest entries are
 * moved to items of their own (`spillTimeline`), so the payment stays far from the 400 KB item limit.
 */
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import {
  conditionalUpdate,
  conditionalWrite,
  putIfAbsent,
  updateOrCurrent,
  updateReturningOld,
} from './conditional.ts';
import { allOf, statusIn, updateExpression, type Condition } from './expressions.ts';
import { withoutInternal } from './items.ts';
import { openIndex } from './open-items.ts';
import { paymentChanged } from './payment-changes.ts';
import { putSearchItems } from './payment-search.ts';
import { cursorPage, queryAll, startKeyOf } from './pages.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import {
  allowedSources,
  MODIFICATIONS,
  type ModificationAction,
  type Payment,
  type PaymentAttempt,
  type PaymentStatus,
  type PendingModification,
} from '../domain/payment.ts';

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
  'modifications_requested',
  'timeline',
  'webhook_events',
  'rollup',
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

/**
/**
 * Stores a new payment, with its first timeline entries (`entries`, e.g. `created`) in the same
 * write; false if a payment with its id exists (a resumed request wrote it). Its search lookups
 * (order id, email: lambdas/store/payment-search.ts) are written first, so a stored payment always
 * has them (a retry writes the same ones again).
 */
export async function createPayment(
  p: Payment,
  createdMs = p.created * 1000,
  entries: TimelineEntry[] = [],
): Promise<boolean> {
  await putSearchItems(p, createdMs);
  return putIfAbsent(table(), paymentItem(p, createdMs, entries));
}

/**
 * The item `createPayment` stores for a new payment (its keys, listing and open-items index
 * entries); with `searchItems` (lambdas/store/payment-search.ts), what a bulk load into an empty
 * table writes in batches (bench/console).
 */
export function paymentItem(
  p: Payment,
  createdMs = p.created * 1000,
  entries: TimelineEntry[] = [],
): Record<string, unknown> {
  return {
    ...key(p.id),
    kind: 'payment',
    ...p,
    created_ms: createdMs,
    // Counted in the approval rollups (lambdas/analytics/stream.ts ROLLUP_MARK).
    rollup: 1,
    gsi1pk: `MERCHANT#${p.merchant_id}#PAYMENTS`,
    gsi1sk: `${String(createdMs).padStart(13, '0')}#${p.id}`,
    ...openIndex('payment', p.id, p.status, createdMs).set,
    ...(entries.length ? { timeline: entries.map((e) => storedEntry(e)) } : {}),
  };
}

export async function getPayment(id: string, consistent = true): Promise<Payment | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: consistent }));
  return out.Item ? toPayment(out.Item) : undefined;
}

/** The payment and the task token its workflow waits on (one read). */
export async function getPaymentState(id: string): Promise<PaymentState | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: true }));
  return out.Item ? paymentState(out.Item) : undefined;
}

/** `getPaymentState`'s answer from a payment item already at hand (e.g. a failed write's). */
export const paymentState = (item: Record<string, unknown>): PaymentState => ({
  payment: toPayment(item),
  token: item.task_token as string | undefined,
  kind: item.task_token_kind as string | undefined,
});

export interface PaymentState {
  payment: Payment;
  token?: string;
  kind?: string;
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
  /** The note of the `status_changed` timeline entry recorded with the change. */
  note?: string;
  /** Other timeline entries recorded in the same write, before the status change's own. */
  entries?: TimelineEntry[];
  /**
   * Records authorization attempt `attempt.attempt` on the payment (`attempts[]`) in the same
   * write, once: the write's condition also requires that attempt not to be recorded yet.
   */
  attempt?: PaymentAttempt;
  /** Overrides the allowed previous statuses (narrower only, e.g. capture only from authorized). */
  from?: PaymentStatus[];
  /**
   * Only while this modification is the payment's pending one (its idempotency key): an outcome
   * resolves the request it belongs to, never a later one.
   */
  modificationKey?: string;
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
  const pending = opts.modificationKey
    ? {
        expression: '#pm.#pmk = :pmk',
        names: { '#pm': 'pending_modification', '#pmk': 'idempotency_key' },
        values: { ':pmk': opts.modificationKey },
      }
    : undefined;
  const once = opts.attempt
    ? {
        expression: 'attribute_not_exists(#att) OR size(#att) < :att_n',
        names: { '#att': 'attempts' },
        values: { ':att_n': opts.attempt.attempt },
      }
    : undefined;
  const entries = [...(opts.entries ?? []), { type: 'status_changed', status: to, note: opts.note }];
  const update = updateExpression(
    { status: to, updated: Math.floor(nowMs / 1000), ...opts.set, ...index.set },
    [...(opts.remove ?? []), ...index.remove],
    {
      add: { version: 1 },
      append: {
        timeline: entries.map((e) => storedEntry(e, nowMs)),
        ...(opts.attempt ? { attempts: [opts.attempt] } : {}),
      },
      condition: allOf(statusIn(from), pending, once),
    },
  )!;
  const written = await conditionalUpdate(
    new UpdateCommand({ TableName: table(), Key: key(id), ...update, ReturnValues: 'ALL_NEW' }),
  );
  if (written) {
    const payment = toPayment(written);
    paymentChanged(id, payment);
    await spillTimeline(id, written);
    return { changed: true, payment };
  }
  const current = await getPayment(id);
  if (current && current.status === to) return { changed: false, payment: current };
  // The attempt was recorded by an earlier write of its own (recordPaymentAttempt): the change
  // itself is still to be made.
  if (
    opts.attempt &&
    current &&
    from.includes(current.status) &&
    (current.attempts?.length ?? 0) >= opts.attempt.attempt
  )
    return transition(id, to, { ...opts, attempt: undefined });
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
        append: { timeline: [storedEntry({ type: 'settlement', processor, payout_id: payoutId, date })] },
        condition: {
          expression: 'attribute_exists(pk) AND (attribute_not_exists(settlement) OR settlement = :null)',
          values: { ':null': null },
        },
      })!,
    }),
  );
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

// --- Pending capture and cancel (docs/states.md, "Pending capture and cancel") -------------------

/** Another modification is pending: one capture or cancel at a time. */
export class ModificationInProgress extends PaystepError {
  override name = 'ModificationInProgress';
  readonly pending: PendingModification;
  constructor(id: string, pending: PendingModification) {
    super(`payment ${id} has a ${pending.action} pending at the processor`, { code: 'modification_pending' });
    this.pending = pending;
  }
}

/**
 * Records a capture or cancel before the processor is asked, so its idempotency key is chosen once:
 * a retried step, or a later request while the outcome is unknown, sends the same key and the
 * processor modifies once. A new key is taken only once the previous one has a known outcome (the
 * pending modification is cleared): `<payment>:<action>` first, then `<payment>:<action>:<n>`.
 * Only from the status the modification starts from (MODIFICATIONS, lambdas/domain/payment.ts).
 * Returns the pending modification (this one, or the same action recorded before), or undefined
 * when the payment is no longer in that status; throws ModificationInProgress for the other action.
 */
export async function requestModification(
  id: string,
  action: ModificationAction,
  details: { amount?: number; reason?: string },
): Promise<PendingModification | undefined> {
  const from = MODIFICATIONS[action].from;
  const draft = {
    action,
    state: 'requested' as const,
    ...(details.amount !== undefined ? { amount: details.amount } : {}),
    ...(details.reason !== undefined ? { reason: details.reason } : {}),
    requested_at: Math.floor(Date.now() / 1000),
  };
  // The counter (internal) gives the key; a failed condition leaves it unchanged.
  const item = (
    await clients.ddb().send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: true }))
  ).Item;
  if (!item) throw new Error(`payment ${id} not found`);
  const current = toPayment(item);
  const existing = current.pending_modification;
  if (existing) {
    if (existing.action !== action) throw new ModificationInProgress(id, existing);
    return existing;
  }
  if (current.status !== from) return undefined;
  const n = (typeof item.modifications_requested === 'number' ? item.modifications_requested : 0) + 1;
  const pending: PendingModification = {
    ...draft,
    idempotency_key: n === 1 ? `${id}:${action}` : `${id}:${action}:${n}`,
  };
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({ pending_modification: pending, modifications_requested: n }, [], {
        append: {
          timeline: [
            storedEntry({
              type: 'modification',
              event: 'requested',
              action,
              amount: details.amount,
              reason: details.reason,
              idempotency_key: pending.idempotency_key,
            }),
          ],
        },
        condition: {
          expression:
            'attribute_exists(pk) AND #status = :from AND (attribute_not_exists(pending_modification) OR pending_modification = :null)',
          names: { '#status': 'status' },
          values: { ':from': from, ':null': null },
        },
      })!,
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) {
    paymentChanged(id, toPayment(written));
    return pending;
  }
  return requestModification(id, action, details); // changed meanwhile: decide again on what is there
}

/** The processor accepted the modification without deciding it: remember its reference. */
export async function markModificationPending(
  id: string,
  idempotencyKey: string,
  reference?: string,
): Promise<boolean> {
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({}, [], {
        setEntries: { pending_modification: { state: 'pending', ...(reference ? { reference } : {}) } },
        condition: {
          expression: 'attribute_exists(pk) AND #pm.#pmk = :pmk',
          names: { '#pm': 'pending_modification', '#pmk': 'idempotency_key' },
          values: { ':pmk': idempotencyKey },
        },
      })!,
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) paymentChanged(id, toPayment(written));
  return written !== undefined;
}

/**
 * The requested modification is held in the incident backlog (`held`), or no longer (undefined):
 * the API and the explanation say so. False when that modification is no longer the pending one.
 */
export async function markModificationHeld(
  id: string,
  idempotencyKey: string,
  held: { incident_id: string; since: number } | undefined,
): Promise<boolean> {
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression: held ? 'SET #pm.#held = :held' : 'REMOVE #pm.#held',
      ConditionExpression: 'attribute_exists(pk) AND #pm.#pmk = :pmk',
      ExpressionAttributeNames: { '#pm': 'pending_modification', '#pmk': 'idempotency_key', '#held': 'held' },
      ExpressionAttributeValues: { ':pmk': idempotencyKey, ...(held ? { ':held': held } : {}) },
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) paymentChanged(id, toPayment(written));
  return written !== undefined;
}

/**
 * The modification did not happen (refused, or failed at the processor): the pending one is
 * cleared and why it failed is kept (`last_capture_error` / `last_cancel_error`); the status does
 * not change. False when that modification is no longer the pending one.
 */
export async function clearModification(
  id: string,
  pending: PendingModification,
  error: { code: string; message: string },
): Promise<boolean> {
  const field = pending.action === 'capture' ? 'last_capture_error' : 'last_cancel_error';
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({ [field]: { ...error, at: Date.now() } }, ['pending_modification'], {
        condition: {
          expression: 'attribute_exists(pk) AND #pm.#pmk = :pmk',
          names: { '#pm': 'pending_modification', '#pmk': 'idempotency_key' },
          values: { ':pmk': pending.idempotency_key },
        },
      })!,
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) paymentChanged(id, toPayment(written));
  return written !== undefined;
}

/**
 * Stores the task token of "Wait for the capture outcome" / "Wait for the cancel outcome", only
 * while a modification is pending. False when none is (its outcome was applied first): the
 * waiting step then resumes itself.
 */
export async function holdForModification(id: string, token: string): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({ task_token: token, task_token_kind: 'modification' }, [], {
        condition: {
          expression: 'attribute_exists(pk) AND attribute_exists(#pm.#pmk)',
          names: { '#pm': 'pending_modification', '#pmk': 'idempotency_key' },
        },
      })!,
    }),
  );
}

/**
 * Removes a task token once used, unless the workflow has stored a newer one since. `record.entry`:
 * the timeline entry of what used it, appended in the same write (a crash cannot keep one without
 * the other). With `record.eventKey`, the processor event that used it: the event is noted as
 * recorded in the same write (see `recordWebhookEntries`), so a later delivery records nothing, and
 * its entry is written even when the token was cleared already (an earlier delivery that stopped
 * before recording it), once per event.
 */
export async function clearTaskToken(
  id: string,
  token: string,
  record?: { entry: TimelineEntry; eventKey?: string },
): Promise<void> {
  const webhook = record?.eventKey ? { eventKey: record.eventKey, entry: record.entry } : undefined;
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({}, ['task_token', 'task_token_kind'], {
        ...(record
          ? {
              ...(webhook ? { add: { webhook_events: new Set([webhook.eventKey]) } } : {}),
              append: { timeline: [storedEntry(record.entry)] },
            }
          : {}),
        condition: { expression: 'task_token = :t', values: { ':t': token } },
      })!,
      ...(record ? { ReturnValues: 'ALL_NEW' as const } : {}),
    }),
  );
  if (!record) return;
  if (!written) {
    // Someone else removed the token first: a processor event still records its entry, once.
    if (webhook) await recordWebhookEntries(id, webhook.eventKey, [webhook.entry], false);
    return;
  }
  paymentChanged(id, toPayment(written));
  await spillTimeline(id, written);
}

/** The key a processor event is known by on a payment's `webhook_events`: `<processor>#<event id>`. */
export const webhookEventKey = (processor: string, eventId: string) => `${processor}#${eventId}`;

/**
 * Records the timeline entries of processor event `eventKey` (`webhookEventKey`) on the payment,
 * once per event: the same write adds the event to the payment's `webhook_events` set and is
 * conditional on it not being there, so concurrent or repeated deliveries of one event (the
 * receiver, the queue consumer, a replay, a redelivered message) record it once whoever delivers
 * it, with no claim of the event. `passive` (an event that acts on nothing, lambdas/webhooks/facts.ts
 * `passiveFact`): also only while the payment does not wait for the customer's authentication, so
 * a decision made from an earlier read still holds when it is written.
 *
 * `recorded` (now), `seen` (recorded before), `changed` (the payment waits for authentication now:
 * apply the event instead), `missing` (no such payment). A failed condition answers from the item
 * it was checked against (`ReturnValuesOnConditionCheckFailure`), with no read.
 *
 * `guess`: a further condition, the payment as the caller guessed it without reading it (lambdas/
 * webhooks/facts.ts `settleByGuess`); when the write's condition does not hold, `guessed` with the
 * payment as it is (its item), for the caller to decide again from as from a read (or `missing`).
 */
export async function recordWebhookEntries(
  id: string,
  eventKey: string,
  entries: TimelineEntry[],
  passive = true,
  guess?: Condition,
): Promise<'recorded' | 'seen' | 'changed' | 'missing' | { guessed: Record<string, unknown> }> {
  const nowMs = Date.now();
  const update = updateExpression({}, [], {
    add: { webhook_events: new Set([eventKey]) },
    append: { timeline: entries.map((e) => storedEntry(e, nowMs)) },
    condition: allOf(
      {
        expression: passive
          ? 'attribute_exists(pk) AND NOT contains(#wh, :wh) AND #wst <> :ra AND (attribute_not_exists(#wtk) OR #wtk <> :auth)'
          : 'attribute_exists(pk) AND NOT contains(#wh, :wh)',
        names: {
          '#wh': 'webhook_events',
          ...(passive ? { '#wst': 'status', '#wtk': 'task_token_kind' } : {}),
        },
        values: {
          ':wh': eventKey,
          ...(passive ? { ':ra': 'requires_action', ':auth': 'authentication' } : {}),
        },
      },
      guess,
    ),
  })!;
  const { written, item } = await updateOrCurrent(
    new UpdateCommand({ TableName: table(), Key: key(id), ...update, ReturnValues: 'ALL_NEW' }),
  );
  if (!written) {
    if (!item) return 'missing';
    if (guess) return { guessed: item };
    return (item.webhook_events as Set<string> | undefined)?.has(eventKey) ? 'seen' : 'changed';
  }
  paymentChanged(id, toPayment(item!));
  await spillTimeline(id, item!);
  return 'recorded';
}

/**
 * Records authorization attempt `entry.attempt` on the payment, once: a replayed step finds it
 * recorded and changes nothing. Returns whether it was recorded now. (A status change that comes
 * with the attempt records it in its own write: `transition`'s `attempt`.)
 */
export async function recordPaymentAttempt(
  id: string,
  entry: PaymentAttempt,
  entries: TimelineEntry[] = [],
): Promise<boolean> {
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression({}, [], {
        append: { attempts: [entry], timeline: entries.map((e) => storedEntry(e)) },
        condition: {
          expression: 'attribute_exists(pk) AND (attribute_not_exists(#att) OR size(#att) < :att_n)',
          names: { '#att': 'attempts' },
          values: { ':att_n': entry.attempt },
        },
      })!,
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) {
    paymentChanged(id, toPayment(written));
    await spillTimeline(id, written);
  }
  return written !== undefined;
}

/**
 * Moves a `processing` payment from attempt `entry.attempt` to the next processor, recording the
 * attempt (with its `next`) in the same write. Only from that attempt: a replayed step that
 * already moved on changes nothing (false).
 */
export async function moveToNextProcessor(
  id: string,
  entry: PaymentAttempt & { next: NonNullable<PaymentAttempt['next']> },
  entries: TimelineEntry[] = [],
): Promise<boolean> {
  const next = entry.next;
  const written = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression:
        'SET attempts = list_append(if_not_exists(attempts, :empty), :a), processor = :p, authorize_attempt = :n1, processor_reference = :null, updated = :u, #tl = list_append(if_not_exists(#tl, :empty), :tl)',
      ConditionExpression:
        'attribute_exists(pk) AND #status = :processing AND (attribute_not_exists(authorize_attempt) OR authorize_attempt = :n)',
      ExpressionAttributeNames: { '#status': 'status', '#tl': 'timeline' },
      ExpressionAttributeValues: {
        ':tl': entries.map((e) => storedEntry(e)),
        ':empty': [],
        ':a': [entry],
        ':p': next.processor,
        ':n': entry.attempt,
        ':n1': entry.attempt + 1,
        ':null': null,
        ':u': Math.floor(Date.now() / 1000),
        ':processing': 'processing',
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (written) {
    paymentChanged(id, toPayment(written));
    await spillTimeline(id, written);
  }
  return written !== undefined;
}

/**
 * Notes, before a request of attempt `n` goes out, that it may reach the processor (see
 * `Payment.authorize_sent`): only while the payment is `processing` at that attempt and not noted
 * yet. Returns the payment as it was just before, whether this wrote or not (`updateReturningOld`:
 * the write's old image, or the item its condition failed on), so the step needs no read of its own;
 * undefined when there is no such payment.
 */
export async function markAuthorizeSent(
  id: string,
  n: number,
): Promise<{ written: boolean; before?: Payment }> {
  const { written, old } = await updateReturningOld(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression: 'SET authorize_sent = :n',
      ConditionExpression:
        'attribute_exists(pk) AND #status = :processing AND (attribute_not_exists(authorize_attempt) OR authorize_attempt = :n) AND (attribute_not_exists(authorize_sent) OR authorize_sent <> :n)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':n': n, ':processing': 'processing' },
    }),
  );
  return { written, before: old ? toPayment(old) : undefined };
}

/**
 * Sets attributes without a status change (e.g. a task token, the execution ARN), with the
 * timeline entries that record it (`entries`) in the same write.
 */
export async function annotate(
  id: string,
  set: Record<string, unknown>,
  remove: string[] = [],
  entries: TimelineEntry[] = [],
  /** A further condition: the payment is as the caller saw it (undefined returned if not). */
  condition?: Condition,
): Promise<Payment | undefined> {
  const update = updateExpression(set, remove, {
    append: { timeline: entries.map((e) => storedEntry(e)) },
    condition: allOf({ expression: 'attribute_exists(pk)' }, condition),
  });
  if (!update) return undefined;
  const cmd = new UpdateCommand({ TableName: table(), Key: key(id), ...update, ReturnValues: 'ALL_NEW' });
  const written = condition ? await conditionalUpdate(cmd) : (await clients.ddb().send(cmd)).Attributes;
  if (!written) return undefined;
  const payment = toPayment(written);
  paymentChanged(id, payment);
  await spillTimeline(id, written);
  return payment;
}

export interface TimelineEntry {
  /** created, status_changed, attempt, workflow, review, risk, capture_requested, cancel_requested, refund, dispute, webhook, … */
  type: string;
  at?: string;
  [k: string]: unknown;
}

let seq = 0;
/** The order key of a new entry: `<ms, 13 digits>#<seq, 6>#<random, 6 hex>` (an entry item's sk is `EVENT#` + it). */
function entryKey(ms: number): string {
  seq = (seq + 1) % 1_000_000;
  return `${String(ms).padStart(13, '0')}#${String(seq).padStart(6, '0')}#${randomBytes(3).toString('hex')}`;
}

/** A timeline entry as the payment's `timeline` list keeps it: its order key `k`, `at`, and its defined fields. */
function storedEntry(entry: TimelineEntry, ms = Date.now()): Record<string, unknown> {
  const clean = Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined));
  return { k: entryKey(ms), at: new Date(ms).toISOString(), ...clean };
}

/** Entries kept on the payment item at most; older ones move to items of their own. */
export const MAX_INLINE_ENTRIES = 100;

/**
 * Keeps the payment's `timeline` list bounded: when a write left more than MAX_INLINE_ENTRIES on it
 * (`item`: what the write returned), the oldest are written as entry items (sk `EVENT#<k>`: the
 * same key, so a repeated spill rewrites the same items) and then removed from the list. A crash in between leaves an entry in both places:
 * `timeline` reads it once.
 */
async function spillTimeline(id: string, item: Record<string, unknown>): Promise<void> {
  const list = item.timeline;
  if (!Array.isArray(list) || list.length <= MAX_INLINE_ENTRIES) return;
  const moved = (list as Record<string, unknown>[]).slice(0, list.length - MAX_INLINE_ENTRIES / 2);
  for (const { k, ...entry } of moved)
    await clients.ddb().send(
      new PutCommand({
        TableName: table(),
        Item: { pk: `PAYMENT#${id}`, sk: `EVENT#${String(k)}`, kind: 'payment_event', ...entry },
      }),
    );
  // The rest replaces the list only while it is the list that was read (a write that appended
  // meanwhile spills on its own).
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression: 'SET #tl = :rest',
      ConditionExpression: 'attribute_exists(pk) AND size(#tl) = :n AND #tl[0].#k = :k0',
      ExpressionAttributeNames: { '#tl': 'timeline', '#k': 'k' },
      ExpressionAttributeValues: { ':rest': list.slice(moved.length), ':n': list.length, ':k0': moved[0]!.k },
    }),
  );
}

/**
 * Records an entry that accompanies no write of the payment (a webhook compared, a refund, a
 * review …): an item of its own. An entry that records a change of the payment goes with that
 * change instead (`entries` of `transition`, `annotate`, …).
 */
export async function addEvent(id: string, entry: TimelineEntry): Promise<void> {
  const { k, ...stored } = storedEntry(entry);
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { pk: `PAYMENT#${id}`, sk: `EVENT#${String(k)}`, kind: 'payment_event', ...stored },
    }),
  );
}

/**
 * The payment's timeline, oldest first: the entries on the payment item and the entry items, in
 * one query (sk from `EVENT#` to `PAYMENT`: the dispute items, `DISPUTE#…`, sort before).
 */
export async function timeline(id: string): Promise<TimelineEntry[]> {
  const items = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND sk BETWEEN :e AND :p',
    ExpressionAttributeValues: { ':pk': `PAYMENT#${id}`, ':e': 'EVENT#', ':p': 'PAYMENT' },
    ConsistentRead: true,
  });
  const byKey = new Map<string, TimelineEntry>();
  for (const it of items) {
    if (it.sk === 'PAYMENT') {
      for (const { k, ...entry } of (it.timeline ?? []) as Record<string, unknown>[])
        byKey.set(String(k), entry as TimelineEntry);
    } else if (typeof it.sk === 'string' && it.sk.startsWith('EVENT#')) {
      const { pk: _pk, sk, kind: _kind, ...entry } = it;
      byKey.set(String(sk).slice('EVENT#'.length), entry as TimelineEntry);
    }
  }
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
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
