/**
 * Disputes in DynamoDB (table `main`).
 *
 *   pk DISPUTE#<id>                      sk DISPUTE      the dispute (`DisputeRecord`, plus gsi keys)
 *   pk DISPUTEREF#<processor>#<ref>      sk DISPUTEREF   processor dispute id → { dispute_id, payment_id, merchant_id }
 *   pk PAYMENT#<payment>                 sk DISPUTE#<id> link: the disputes of a payment
 *   gsi1pk MERCHANT#<merchant>#DISPUTES  gsi1sk <created ms, 13 digits>#<id>   listing, newest first
 *   gsi2pk DISPUTES#ANSWERABLE           gsi2sk <evidence deadline ms, 13 digits>#<id>
 *       while the dispute needs a response (sparse): the console's list by deadline, all merchants
 *   pk DISPUTE_SWEEP                     sk <id>         handed over to the sweeper (see markForSweep)
 *
 * The dispute item is what merchant events are built from (its stream images): every status change,
 * reminder and escalation is a change of that one item. Processor changes are applied with an
 * optimistic lock (`version`), so two concurrent events can never interleave their writes; task
 * tokens, reminders and escalations are separate single-attribute updates that do not touch the
 * fields a processor change writes.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { conditionalUpdate, conditionalWrite, putIfAbsent } from './conditional.ts';
import { updateExpression, type Condition } from './expressions.ts';
import { cursorPage, queryAll } from './pages.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import type { PaymentStatus } from '../domain/payment.ts';
import type { BalanceEffect, DisputeStatus } from '../disputes/model.ts';
import { addEvent, type TimelineEntry } from './payments.ts';

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `DISPUTE#${id}`, sk: 'DISPUTE' });
const refKey = (processor: string, ref: string) => ({
  pk: `DISPUTEREF#${processor}#${ref}`,
  sk: 'DISPUTEREF',
});
const INTERNAL = [
  'pk',
  'sk',
  'gsi1pk',
  'gsi1sk',
  'gsi2pk',
  'gsi2sk',
  'kind',
  'task_token',
  'task_token_state',
  'created_ms',
];

/** Keep the fingerprints of the last events applied (enough to recognise redeliveries). */
const APPLIED_EVENTS_KEPT = 50;

export interface DisputeRecord {
  id: string;
  object: 'dispute';
  merchant_id: string;
  payment_id: string;
  processor: string;
  /** The processor's dispute id (Stripe `dp_…` / `du_…`). */
  processor_reference: string;
  charge: string | null;
  payment_intent: string | null;
  amount: number;
  currency: string;
  reason: string;
  status: DisputeStatus;
  processor_status: string;
  network_reason_code: string | null;
  evidence_due_by: number | null;
  /** When the workflow reminds the merchant (epoch s). */
  remind_at: number;
  evidence: Record<string, string>;
  has_evidence: boolean;
  submission_count: number;
  evidence_submitted_at: number | null;
  balance_transactions: BalanceEffect[];
  funds_withdrawn_amount: number;
  funds_reinstated_amount: number;
  dispute_fee: number;
  dispute_fee_returned: number;
  /** The payment's money status before the dispute moved it to `disputed` (a win restores it). */
  payment_status_before: PaymentStatus | null;
  accepted_by_merchant: boolean;
  /** Set by the workflow (absent until then). */
  reminded_at?: number;
  reminders?: { at: number; kind: 'inquiry' | 'chargeback' }[];
  reminder_kinds?: string[];
  escalations?: { at: number; reason: string }[];
  escalation_reasons?: string[];
  execution_arn: string;
  workflow_started: boolean;
  /** Incremented on every status change. */
  status_seq: number;
  /** `created` of the newest processor event applied (epoch s). */
  processor_updated: number;
  applied_events: string[];
  created: number;
  updated: number;
  closed_at: number | null;
  version: number;
}

export class DisputeConflict extends PaystepError {
  override name = 'DisputeConflict';
}

export function toDispute(item: Record<string, unknown>): DisputeRecord {
  const out: Record<string, unknown> = { ...item };
  for (const k of INTERNAL) delete out[k];
  return out as unknown as DisputeRecord;
}

export async function getDispute(id: string, consistent = true): Promise<DisputeRecord | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: key(id), ConsistentRead: consistent }));
  return out.Item ? toDispute(out.Item) : undefined;
}

/** The dispute if it belongs to the merchant (another merchant's dispute reads as missing). */
export async function getMerchantDispute(merchantId: string, id: string): Promise<DisputeRecord | undefined> {
  if (!/^dp_[0-9A-Za-z]{10,40}$/.test(id)) return undefined;
  const d = await getDispute(id);
  return d && d.merchant_id === merchantId ? d : undefined;
}

export interface DisputeRef {
  dispute_id: string;
  payment_id: string;
  merchant_id: string;
}

export async function getRef(processor: string, reference: string): Promise<DisputeRef | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: refKey(processor, reference), ConsistentRead: true }));
  return out.Item ? (out.Item as unknown as DisputeRef) : undefined;
}

/**
 * Binds a processor dispute to a paystep dispute id, once: the first caller's id wins, every
 * other (concurrent or later) caller gets the same binding back.
 */
export async function claimRef(processor: string, reference: string, ref: DisputeRef): Promise<DisputeRef> {
  const claimed = await putIfAbsent(table(), {
    ...refKey(processor, reference),
    kind: 'dispute_ref',
    ...ref,
  });
  if (claimed) return ref;
  const existing = await getRef(processor, reference);
  if (!existing) throw new Error(`dispute reference ${processor}/${reference} vanished`);
  return existing;
}

/**
 * The deadline index (gsi2) of a dispute in `status`: its keys while it needs a response (one
 * partition: disputes waiting for an answer are few, and written at people's pace), else the
 * attributes to remove. Set by the same write that sets the status, so the index never lists a
 * dispute that no longer needs an answer. A dispute without a deadline sorts last.
 */
export function deadlineIndex(
  id: string,
  status: DisputeStatus,
  evidenceDueBy: number | null,
): { set: Record<string, string>; remove: string[] } {
  if (!ANSWERABLE_STATUSES.includes(status)) return { set: {}, remove: ['gsi2pk', 'gsi2sk'] };
  const due = evidenceDueBy === null ? '9'.repeat(13) : String(evidenceDueBy * 1000).padStart(13, '0');
  return { set: { gsi2pk: DEADLINE_PARTITION, gsi2sk: `${due}#${id}` }, remove: [] };
}
const DEADLINE_PARTITION = 'DISPUTES#ANSWERABLE';
// The answerable statuses (lambdas/disputes/model.ts ANSWERABLE), here to keep the store free of
// the model's imports.
const ANSWERABLE_STATUSES: readonly DisputeStatus[] = ['needs_response', 'warning_needs_response'];

/** Creates the dispute (and its payment link); false if it exists already. */
export async function createDispute(d: DisputeRecord): Promise<boolean> {
  const createdMs = d.created * 1000;
  const created = await putIfAbsent(table(), {
    ...key(d.id),
    kind: 'dispute',
    ...d,
    applied_events: d.applied_events.slice(-APPLIED_EVENTS_KEPT),
    created_ms: createdMs,
    gsi1pk: `MERCHANT#${d.merchant_id}#DISPUTES`,
    gsi1sk: `${String(createdMs).padStart(13, '0')}#${d.id}`,
    ...deadlineIndex(d.id, d.status, d.evidence_due_by).set,
  });
  if (!created) return false;
  await putLink(d.payment_id, d.id);
  return true;
}

/** The payment → dispute link (idempotent: same key, same content). */
export async function putLink(paymentId: string, disputeId: string): Promise<void> {
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `PAYMENT#${paymentId}`,
        sk: `DISPUTE#${disputeId}`,
        kind: 'dispute_link',
        dispute_id: disputeId,
      },
    }),
  );
}

/**
 * Writes processor-derived fields if nobody else did since `expectedVersion` was read (else
 * DisputeConflict: read again and decide again). Returns the dispute as written.
 */
export async function updateDispute(
  id: string,
  expectedVersion: number,
  set: Partial<DisputeRecord>,
): Promise<DisputeRecord> {
  // A status change moves the dispute in or out of the deadline index (a change always carries
  // the deadline with it: lambdas/disputes/apply.ts).
  const index =
    set.status === undefined ? undefined : deadlineIndex(id, set.status, set.evidence_due_by ?? null);
  const update = updateExpression(
    { ...set, applied_events: set.applied_events?.slice(-APPLIED_EVENTS_KEPT), ...index?.set },
    index?.remove ?? [],
    {
      add: { version: 1 },
      condition: {
        expression: 'attribute_exists(pk) AND #version = :v',
        names: { '#version': 'version' },
        values: { ':v': expectedVersion },
      },
    },
  )!;
  const written = await conditionalUpdate(
    new UpdateCommand({ TableName: table(), Key: key(id), ...update, ReturnValues: 'ALL_NEW' }),
  );
  if (!written) throw new DisputeConflict(`dispute ${id} changed concurrently`);
  return toDispute(written);
}

/** Sets attributes that no processor change writes (flags, the payment's money status). */
export async function annotateDispute(
  id: string,
  set: Record<string, unknown>,
  remove: string[] = [],
  condition?: Condition,
): Promise<boolean> {
  const update = updateExpression(set, remove, {
    condition: {
      ...condition,
      expression: `attribute_exists(pk)${condition ? ` AND (${condition.expression})` : ''}`,
    },
  });
  if (!update) return true;
  const cmd = new UpdateCommand({ TableName: table(), Key: key(id), ...update });
  if (!condition) {
    await clients.ddb().send(cmd); // a missing dispute is an error
    return true;
  }
  return conditionalWrite(cmd);
}

/**
 * Stores the task token the workflow now waits on. Returns the dispute as it is right after: the
 * caller compares its `status_seq` with what the workflow last saw (a change in between must not
 * be missed, since its resume went to the previous token).
 */
export async function setTaskToken(id: string, token: string, state: string): Promise<DisputeRecord> {
  const out = await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression: 'SET task_token = :t, task_token_state = :s',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':t': token, ':s': state },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return toDispute(out.Attributes!);
}

export async function getTaskToken(id: string): Promise<string | undefined> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: key(id),
      ProjectionExpression: 'task_token',
      ConsistentRead: true,
    }),
  );
  return out.Item?.task_token as string | undefined;
}

/** Forgets a token once used (only that token: a newer one stays). */
export async function clearTaskToken(id: string, token: string): Promise<void> {
  await annotateDispute(id, {}, ['task_token', 'task_token_state'], {
    expression: 'task_token = :tok',
    values: { ':tok': token },
  });
}

/**
 * Records the reminder once per kind (an inquiry that escalates into a chargeback is reminded
 * again), and only while the merchant can still answer.
 */
export async function recordReminder(
  id: string,
  kind: 'inquiry' | 'chargeback',
  at: number,
): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression:
        'SET reminded_at = :at, reminders = list_append(if_not_exists(reminders, :empty), :e), reminder_kinds = list_append(if_not_exists(reminder_kinds, :empty), :k)',
      ConditionExpression:
        'attribute_exists(pk) AND NOT contains(reminder_kinds, :kind) AND #st IN (:s1, :s2)',
      ExpressionAttributeNames: { '#st': 'status' },
      ExpressionAttributeValues: {
        ':at': at,
        ':empty': [],
        ':e': [{ at, kind }],
        ':k': [kind],
        ':kind': kind,
        ':s1': 'needs_response',
        ':s2': 'warning_needs_response',
      },
    }),
  );
}

/** Records an escalation once per reason. */
export async function recordEscalation(id: string, reason: string, at: number): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression:
        'SET escalations = list_append(if_not_exists(escalations, :empty), :e), escalation_reasons = list_append(if_not_exists(escalation_reasons, :empty), :r)',
      ConditionExpression: 'attribute_exists(pk) AND NOT contains(escalation_reasons, :reason)',
      ExpressionAttributeValues: {
        ':empty': [],
        ':e': [{ at, reason }],
        ':r': [reason],
        ':reason': reason,
      },
    }),
  );
}

/** The disputes of a payment (oldest first). */
export async function listPaymentDisputes(paymentId: string): Promise<DisputeRecord[]> {
  const links = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
    ExpressionAttributeValues: { ':pk': `PAYMENT#${paymentId}`, ':d': 'DISPUTE#' },
    ConsistentRead: true,
  });
  const ds = await Promise.all(links.map((it) => getDispute(it.dispute_id as string)));
  return ds.filter((d): d is DisputeRecord => d !== undefined).sort((a, b) => a.created - b.created);
}

/** A merchant's disputes, newest first; cursor `startingAfter` = the last id of the previous page. */
export async function listMerchantDisputes(
  merchantId: string,
  f: { limit: number; startingAfter?: string },
): Promise<{ data: DisputeRecord[]; hasMore: boolean }> {
  let after: Record<string, unknown> | undefined;
  if (f.startingAfter) {
    const previous = await getMerchantDispute(merchantId, f.startingAfter);
    if (!previous) return { data: [], hasMore: false };
    after = {
      ...key(previous.id),
      gsi1pk: `MERCHANT#${merchantId}#DISPUTES`,
      gsi1sk: `${String(previous.created * 1000).padStart(13, '0')}#${previous.id}`,
    };
  }
  return cursorPage(
    {
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}#DISPUTES` },
    },
    { limit: f.limit, after, map: toDispute },
  );
}

/**
 * Disputes that need a response, soonest evidence deadline first, all merchants or one: at most
 * `limit`, reading the deadline index (for one merchant, filtered, at most `maxReads` items);
 * `dueBy` (epoch s): only those whose evidence is due by then (the index is read up to it).
 */
export async function answerableDisputes(f: {
  limit: number;
  merchantId?: string;
  maxReads?: number;
  dueBy?: number;
}): Promise<{ data: DisputeRecord[]; hasMore: boolean }> {
  const data: DisputeRecord[] = [];
  let start: Record<string, unknown> | undefined;
  let read = 0;
  const maxReads = f.maxReads ?? 2000;
  do {
    const out = await clients.ddb().send(
      new QueryCommand({
        TableName: table(),
        IndexName: 'gsi2',
        KeyConditionExpression: f.dueBy === undefined ? 'gsi2pk = :pk' : 'gsi2pk = :pk AND gsi2sk < :due',
        ExpressionAttributeValues: {
          ':pk': DEADLINE_PARTITION,
          ...(f.merchantId ? { ':m': f.merchantId } : {}),
          // Sort keys start with the deadline in ms: every key due by then sorts below the next ms.
          ...(f.dueBy === undefined
            ? {}
            : { ':due': String(Math.floor(f.dueBy * 1000) + 1).padStart(13, '0') }),
        },
        ...(f.merchantId ? { FilterExpression: 'merchant_id = :m' } : {}),
        Limit: Math.min(f.limit + 1, maxReads - read),
        ExclusiveStartKey: start,
      }),
    );
    read += out.ScannedCount ?? 0;
    for (const it of out.Items ?? []) data.push(toDispute(it));
    start = out.LastEvaluatedKey;
  } while (start && data.length <= f.limit && read < maxReads);
  return { data: data.slice(0, f.limit), hasMore: data.length > f.limit || start !== undefined };
}

/** A dispute entry on the payment's timeline (GET /v1/payments/{id}/timeline). */
export async function addDisputeTimelineEntry(
  paymentId: string,
  entry: { event: string; dispute: string } & Record<string, unknown>,
): Promise<void> {
  // TimelineEntry's `type` union (lambdas/store/payments.ts) does not list 'dispute' yet.
  await addEvent(paymentId, { ...entry, type: 'dispute' } as unknown as TimelineEntry);
}

/**
 * Disputes the workflow handed over to the sweeper (escalated `no_decision` / `inquiry_open`), one
 * small item each under one partition (disputes that outlive their workflow are few):
 *   pk DISPUTE_SWEEP  sk <dispute id>  { dispute_id, reason, at }
 */
export async function markForSweep(disputeId: string, reason: string, at: number): Promise<void> {
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: { pk: 'DISPUTE_SWEEP', sk: disputeId, kind: 'dispute_sweep', dispute_id: disputeId, reason, at },
    }),
  );
}

export async function unmarkForSweep(disputeId: string): Promise<void> {
  await clients
    .ddb()
    .send(new DeleteCommand({ TableName: table(), Key: { pk: 'DISPUTE_SWEEP', sk: disputeId } }));
}

/** The disputes handed over to the sweeper, oldest hand-over first. */
export async function disputesToSweep(
  limit = 100,
): Promise<{ dispute_id: string; reason: string; at: number }[]> {
  const out = await clients.ddb().send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': 'DISPUTE_SWEEP' },
      Limit: limit,
    }),
  );
  return (out.Items ?? [])
    .map((it) => ({ dispute_id: it.dispute_id as string, reason: it.reason as string, at: it.at as number }))
    .sort((a, b) => a.at - b.at);
}
