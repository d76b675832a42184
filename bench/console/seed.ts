/**
 * The store `npm run bench -- console` measures (bench/console.ts): what an ops console sees after
 * a month of traffic. Every object is written by its store's own code (its create function, or the
 * item builders `createPayment` itself uses), so items and index entries are what production
 * writes; the table's stream consumers (merchant events, ledger, reference index) then do their
 * real work on it, and the benchmark measures only after they have caught up (`rt.settle`).
 *
 * - payments: `total` over the merchants, created over the last 30 days (the newest in the last
 *   hour), with a realistic mix of every status (mostly captured, settled and failed; a few
 *   hundred held for review, open or disputed), order ids, customer emails and processor
 *   references. Written as BatchWriteItem requests of the items `createPayment` writes
 *   (`searchItems` + `paymentItem`), several batches at a time: the same items, 25 to a call.
 * - disputes (`createDispute`), the answerable ones with evidence deadlines over the next 3 weeks;
 * - customers, subscriptions and invoices (`createCustomer`, `createSubscription`, `createInvoice`),
 *   some invoices past due in dunning;
 * - reconciliation runs and open exceptions (`putRun`, `openException`);
 * - audit entries (`writeAudit`), webhook events (`recordWebhookEvent`, some parked by
 *   `releaseWebhookEvent`), incidents (`declareIncident`, `resolveIncident`: its report), and a
 *   daily summary report (`runReport`, bench/console.ts).
 */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Customer, Invoice, Subscription } from '../../lambdas/billing/model.ts';
import type { Failure } from '../../lambdas/connectors/types.ts';
import { declareIncident, resolveIncident } from '../../lambdas/incidents/service.ts';
import type { Payment, PaymentStatus } from '../../lambdas/domain/payment.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { writeAudit } from '../../lambdas/store/audit.ts';
import { createCustomer } from '../../lambdas/store/customers.ts';
import { createDispute, type DisputeRecord } from '../../lambdas/store/disputes.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { createInvoice } from '../../lambdas/store/invoices.ts';
import { searchItems } from '../../lambdas/store/payment-search.ts';
import { paymentItem } from '../../lambdas/store/payments.ts';
import { openException, putRun } from '../../lambdas/store/reconciliation.ts';
import { createSubscription } from '../../lambdas/store/subscriptions.ts';
import { recordWebhookEvent, releaseWebhookEvent } from '../../lambdas/store/webhook-events.ts';

const DAY = 86_400_000;

/** Statuses per 1,000 payments: what a month of card traffic leaves. */
const MIX: [PaymentStatus, number][] = [
  ['captured', 400],
  ['settled', 300],
  ['failed', 230],
  ['canceled', 23],
  ['refunded', 20],
  ['partially_refunded', 10],
  ['authorized', 5],
  ['processing', 3],
  ['disputed', 3],
  ['pending_review', 2],
  ['requires_action', 2],
  ['charged_back', 2],
];
const STATUS_OF: PaymentStatus[] = MIX.flatMap(([s, n]) => Array<PaymentStatus>(n).fill(s));
// Spread each status over the month: slot k of 1,000 goes to a pseudo-random status.
const SLOT = Array.from({ length: 1000 }, (_, k) => STATUS_OF[(k * 389) % 1000]!);

export const benchPaymentId = (i: number) => `pay_bench${String(i).padStart(12, '0')}`;
export const statusOf = (i: number): PaymentStatus => SLOT[i % 1000]!;

const FAILURE: Failure = {
  category: 'soft_decline',
  code: 'insufficient_funds',
  processor_code: 'card_declined/insufficient_funds',
  message: 'Your card has insufficient funds.',
  explanation: 'The issuer declined the payment: the card has insufficient funds.',
  recommended_action: 'Ask the customer to use another card or try again later.',
  retryable: true,
};

/** The i-th benchmark payment. */
export function benchPayment(i: number, merchantId: string, createdMs: number): Payment {
  const status = statusOf(i);
  const s = Math.floor(createdMs / 1000);
  const amount = 1000 + (i % 5000);
  const captured = ['captured', 'settled', 'partially_refunded', 'refunded', 'disputed', 'charged_back'];
  const refunded = status === 'refunded' ? amount : status === 'partially_refunded' ? 500 : 0;
  const processor = i % 3 === 0 ? 'adyen' : 'stripe';
  return {
    id: benchPaymentId(i),
    object: 'payment',
    merchant_id: merchantId,
    amount,
    currency: i % 7 === 0 ? 'eur' : 'usd',
    status,
    amount_captured: captured.includes(status) ? amount : 0,
    amount_refunded: refunded,
    capture_method: 'automatic',
    payment_method: 'pm_card_visa',
    processor,
    processor_reference: processor === 'stripe' ? `pi_bench${i}` : `ADY${String(i).padStart(12, '0')}`,
    failure: status === 'failed' ? FAILURE : null,
    order_id: `ORDER-${i}`,
    customer: { email: `customer${i % 20_000}@example.com`, country: i % 5 === 0 ? 'DE' : 'US' },
    channel: i % 4 === 0 ? 'mobile' : 'web',
    description: null,
    metadata: {},
    card: { brand: i % 3 === 1 ? 'mastercard' : 'visa', last4: '4242' },
    capture_before: null,
    cancellation_reason: status === 'canceled' ? 'requested_by_customer' : null,
    review:
      status === 'pending_review'
        ? { id: `rev_bench${i}`, reasons: ['amount_over_limit'], status: 'open' }
        : null,
    execution_arn: null,
    created: s,
    updated: s,
    version: 1,
  };
}

async function batchWrite(items: Record<string, unknown>[]): Promise<void> {
  const table = config.tableName('main');
  let pending = items.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 0; pending.length; attempt++) {
    const out = await clients.ddb().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
    pending = (out.UnprocessedItems?.[table] ?? []) as typeof pending;
    if (pending.length) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
  }
}

/**
 * Writes `total` payments over `merchants`, created from 30 days before `nowMs` to a few seconds
 * before it, oldest first; `progress(n)` after each 10,000.
 */
export async function seedPayments(
  merchants: string[],
  total: number,
  nowMs: number,
  progress: (written: number) => void,
  concurrency = 6,
): Promise<void> {
  const span = 30 * DAY - 5000;
  const PER_BATCH = 8; // a payment and its two lookup items: 24 writes of BatchWriteItem's 25
  let next = 0;
  let written = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let start = next; start < total; start = next) {
        next = start + PER_BATCH;
        const items: Record<string, unknown>[] = [];
        for (let i = start; i < Math.min(total, start + PER_BATCH); i++) {
          const createdMs = nowMs - 30 * DAY + Math.floor((i / total) * span);
          const p = benchPayment(i, merchants[i % merchants.length]!, createdMs);
          items.push(...searchItems(p, createdMs), paymentItem(p, createdMs, [{ type: 'created' }]));
        }
        await batchWrite(items);
        const before = written;
        written += Math.min(PER_BATCH, total - start);
        if (Math.floor(written / 10_000) > Math.floor(before / 10_000)) progress(written);
      }
    }),
  );
}

/** `fn(i)` for i in [0, n), `concurrency` at a time. */
async function each(n: number, fn: (i: number) => Promise<unknown>, concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
}

export interface Seeded {
  disputeId: string;
  incidentId: string;
  /** A resolved incident (it has a report). */
  resolvedIncidentId: string;
  /** A payment of merchant 0 that has a dispute. */
  disputedPaymentId: string;
  counts: Record<string, number>;
}

/**
 * Everything but the payments: disputes on some disputed payments, billing objects, reconciliation,
 * audit, webhook events, incidents. `total` is the number of payments seeded before.
 */
export async function seedOthers(merchants: string[], total: number, nowMs: number): Promise<Seeded> {
  const s = Math.floor(nowMs / 1000);
  const counts: Record<string, number> = {};

  // Disputes: on the disputed and charged-back payments, up to 400; the answerable ones due over
  // the next 3 weeks.
  const disputed: number[] = [];
  for (let i = total - 1; i >= 0 && disputed.length < 400; i--)
    if (statusOf(i) === 'disputed' || statusOf(i) === 'charged_back') disputed.push(i);
  await each(disputed.length, async (k) => {
    const i = disputed[k]!;
    const answerable = statusOf(i) === 'disputed';
    const d: DisputeRecord = {
      id: `dp_bench${i}`,
      object: 'dispute',
      merchant_id: merchants[i % merchants.length]!,
      payment_id: benchPaymentId(i),
      processor: 'stripe',
      processor_reference: `du_bench${i}`,
      charge: `ch_bench${i}`,
      payment_intent: `pi_bench${i}`,
      amount: 1000 + (i % 5000),
      currency: 'usd',
      reason: 'fraudulent',
      status: answerable ? (k % 5 === 0 ? 'warning_needs_response' : 'needs_response') : 'lost',
      processor_status: answerable ? 'needs_response' : 'lost',
      network_reason_code: '10.4',
      evidence_due_by: answerable ? s + 3600 + (k % 21) * 86_400 : null,
      remind_at: s + 86_400,
      evidence: {},
      has_evidence: false,
      submission_count: 0,
      evidence_submitted_at: null,
      balance_transactions: [],
      funds_withdrawn_amount: 0,
      funds_reinstated_amount: 0,
      dispute_fee: 1500,
      dispute_fee_returned: 0,
      payment_status_before: 'captured',
      accepted_by_merchant: false,
      execution_arn: '',
      workflow_started: false,
      status_seq: 1,
      processor_updated: s - 86_400,
      applied_events: [],
      created: s - 86_400 - k * 3600,
      updated: s - 86_400,
      closed_at: answerable ? null : s - 3600,
      version: 1,
    };
    await createDispute(d);
  });
  counts.disputes = disputed.length;
  const firstDisputed = disputed.find((i) => i % merchants.length === 0 && statusOf(i) === 'disputed');

  // Billing: 400 customers per merchant, a subscription each, 3 invoices each (the last one open,
  // every tenth of those past due in dunning).
  const perMerchant = 400;
  await each(merchants.length * perMerchant, async (n) => {
    const merchant = merchants[n % merchants.length]!;
    const created = s - 90 * 86_400 + n * 60;
    const c: Customer = {
      id: `cus_bench${n}`,
      object: 'customer',
      merchant_id: merchant,
      email: `subscriber${n}@example.com`,
      name: `Subscriber ${n}`,
      country: 'US',
      payment_method: 'pm_card_visa',
      metadata: {},
      created,
      updated: created,
      version: 1,
    };
    await createCustomer(c);
    const pastDue = n % 10 === 0;
    const sub: Subscription = {
      id: `sub_bench${n}`,
      object: 'subscription',
      merchant_id: merchant,
      customer: c.id,
      plan: 'plan_bench',
      status: pastDue ? 'past_due' : 'active',
      anchor: created,
      current_period: { index: 2, start: s - 10 * 86_400, end: s + 20 * 86_400 },
      trial_end: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_reason: null,
      credit: 0,
      latest_invoice: `in_bench${n}_2`,
      metadata: {},
      created,
      updated: created,
      version: 1,
    };
    await createSubscription(sub);
    for (let period = 0; period < 3; period++) {
      const open = period === 2;
      const failed = open && pastDue;
      const inv: Invoice = {
        id: `in_bench${n}_${period}`,
        object: 'invoice',
        merchant_id: merchant,
        subscription: sub.id,
        customer: c.id,
        billing_reason: period === 0 ? 'subscription_create' : 'subscription_cycle',
        period,
        period_start: s - (3 - period) * 30 * 86_400,
        period_end: s - (2 - period) * 30 * 86_400,
        currency: 'usd',
        subtotal: 900,
        credit_applied: 0,
        amount_due: 900,
        amount_paid: open ? 0 : 900,
        status: open ? 'open' : 'paid',
        attempt_count: failed ? 2 : open ? 0 : 1,
        attempts: failed
          ? [1, 2].map((a) => ({
              attempt: a,
              payment: `pay_bench_inv${n}_${a}`,
              at: s - (3 - a) * 86_400,
              outcome: 'failed' as const,
              code: 'insufficient_funds',
              next: 'retry in 3 days (soft decline)',
            }))
          : [],
        next_attempt_at: failed ? s + 86_400 : null,
        payment: failed ? `pay_bench_inv${n}_2` : null,
        payment_method_required: false,
        failed_attempts: failed ? 2 : 0,
        first_failed_at: failed ? s - 2 * 86_400 : null,
        quick_retries: 0,
        description: null,
        paid_at: open ? null : s - (2 - period) * 30 * 86_400,
        created: s - (3 - period) * 30 * 86_400 + n,
        updated: s - 86_400,
        version: 1,
      };
      await createInvoice(inv);
    }
  });
  counts.customers = counts.subscriptions = merchants.length * perMerchant;
  counts.invoices = merchants.length * perMerchant * 3;

  // Reconciliation: a run per processor and day for 30 days, and 200 open exceptions.
  const day = (d: number) => new Date(nowMs - d * DAY).toISOString().slice(0, 10);
  await each(60, async (k) => {
    const processor = k % 2 ? 'adyen' : 'stripe';
    await putRun({
      processor,
      payout_id: `po_bench${k}`,
      payout_date: day(Math.floor(k / 2) + 1),
      currency: 'usd',
      amount: 1_000_000 + k,
      status: k % 5 === 0 ? 'reconciled_with_exceptions' : 'reconciled',
      items: 3000,
      matched: k % 5 === 0 ? 2990 : 3000,
      exceptions: k % 5 === 0 ? { amount_mismatch: 10 } : {},
      source: 'api',
      as_of: day(0),
      reports: [],
      execution: null,
    });
  });
  await each(200, async (k) => {
    const i = k * 97;
    await openException(
      {
        id: `amount_mismatch:stripe:txn_bench${k}`,
        type: 'amount_mismatch',
        processor: 'stripe',
        merchant_id: k % 10 === 9 ? null : merchants[i % merchants.length]!,
        payout_id: `po_bench${(k % 30) * 2}`,
        item_id: `txn_bench${k}`,
        payment_id: benchPaymentId(i),
        reference: `pi_bench${i}`,
        currency: 'usd',
        expected: 2500,
        actual: 2600,
        reason: 'charge settled for 26.00 but paystep captured 25.00',
      },
      day(k % 30),
    );
  });
  counts.reconciliation_runs = 60;
  counts.reconciliation_exceptions = 200;

  // Audit: 3,000 operator actions over the month.
  const ops = await Promise.all(
    (
      [
        ['ann', 'admin'],
        ['sam', 'support'],
        ['fay', 'finance'],
      ] as const
    ).map(async ([name, role]) => (await createOperator({ name, role })).operator),
  );
  await each(3000, async (k) => {
    const i = (k * 31) % total;
    await writeAudit(
      {
        action: ['refund.create', 'review.approve', 'reconciliation.resolve'][k % 3]!,
        target: { kind: 'payment', id: benchPaymentId(i) },
        merchant_id: merchants[i % merchants.length]!,
        before: { status: 'captured' },
        after: { status: 'partially_refunded' },
        note: 'customer asked',
      },
      ops[k % 3]!,
      nowMs - 30 * DAY + k * 800_000,
    );
  });
  counts.audit_entries = 3000;

  // Webhook events: 300 received, 40 of them parked.
  await each(300, async (k) => {
    const processor = k % 2 ? 'adyen' : 'stripe';
    const id = `evt_bench${k}`;
    await recordWebhookEvent(
      {
        processor,
        id,
        type: 'charge.succeeded',
        created: s - k * 60,
        livemode: false,
        raw: JSON.stringify({ id, type: 'charge.succeeded', data: { object: { id: `ch_bench${k}` } } }),
      },
      30,
    );
    if (k % 7 === 0 && k < 280) await releaseWebhookEvent(processor, id, 'parked', 'payment not found yet');
  });
  counts.webhook_events = 300;

  // Incidents: one resolved on stripe (it has a report), one open on adyen, through the service.
  const past = await declareIncident('stripe', 'elevated declines (bench)', 'cli', nowMs - 5 * 3_600_000);
  await resolveIncident(past.incident.id, 'cli', 'recovered', nowMs - 4 * 3_600_000);
  const { incident } = await declareIncident('adyen', 'elevated timeouts (bench)', 'cli', nowMs - 3_600_000);
  counts.incidents = 2;

  return {
    disputeId: `dp_bench${firstDisputed ?? disputed[0]}`,
    disputedPaymentId: benchPaymentId(firstDisputed ?? disputed[0]!),
    incidentId: incident.id,
    resolvedIncidentId: past.incident.id,
    counts,
  };
}
