/**
 * Charging invoices and dunning (docs/billing.md "The billing workflow", "Dunning"): shared by the
 * billing workflow's steps and the API (pay an invoice now, a new payment method).
 *
 * - An attempt is an ordinary paystep payment (`channel: "subscription"`, metadata naming the
 *   invoice and subscription) started through `startPayment` under the idempotency key
 *   `billing <invoice> a<n>`: whoever starts attempt n (the workflow, a retry by hand, a new card)
 *   gets the same payment, so an attempt is never charged twice. Merchants cannot send that key
 *   (a space is not allowed in Idempotency-Key).
 * - `assess` reads the invoice and its latest payment and says what comes next; everything it
 *   records is computed from stored facts (the attempts, their times and failures), so running it
 *   twice records the same thing.
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { planRetry, type Schedule } from '../domain/dunning.ts';
import { dunningPolicyFor } from './dunning-policy.ts';
import { period, type Recurrence } from '../domain/billing.ts';
import { APPROVED_STATUSES, type Payment } from '../domain/payment.ts';
import { statusWhenPaid, statusWhenRenewalFails } from '../domain/subscription.ts';
import { startPayment } from '../payments/start.ts';
import { waitForPayment } from '../payments/wait.ts';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { getCustomer } from '../store/customers.ts';
import { idempotent, requestHash } from '../store/idempotency.ts';
import {
  addInvoiceEvent,
  claimAttempt,
  getInvoice,
  transitionInvoice,
  updateAttempt,
} from '../store/invoices.ts';
import { getPayment } from '../store/payments.ts';
import { getPlan } from '../store/plans.ts';
import { addSubscriptionEvent, getSubscription, transitionSubscription } from '../store/subscriptions.ts';
import { periodInvoiceId, type Invoice, type InvoiceAttempt, type Plan, type Subscription } from './model.ts';

export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const recurrence = (p: Plan): Recurrence => ({
  interval: p.interval,
  interval_count: p.interval_count,
});

/** Period `index` of the subscription (counted from its anchor, see `anchor_index`). */
export function subscriptionPeriod(s: Subscription & { anchor_index?: number }, plan: Plan, index: number) {
  const base = s.anchor_index ?? 0;
  const p = period(s.anchor, recurrence(plan), index - base);
  return { index, start: p.start, end: p.end };
}

/** The execution that bills period `index`: its name is deterministic, so it runs once. */
export const periodExecutionName = (subscriptionId: string, index: number) => `${subscriptionId}-p${index}`;

/**
 * How long period `index`'s execution waits before opening its invoice: the time left until the
 * period starts, capped at the length between the previous boundary (or the subscription's start)
 * and this one. The cap changes nothing in AWS (an execution starts after the previous period
 * began); with the local runtime's scaled Waits (handlers read the real clock) it makes each period
 * take one scaled period.
 */
export function periodWaitSeconds(
  sub: Subscription & { anchor_index?: number },
  plan: Plan,
  index: number,
  now = nowSeconds(),
): number {
  const p = subscriptionPeriod(sub, plan, index);
  const previous =
    index === (sub.anchor_index ?? 0)
      ? Math.min(sub.created, sub.anchor)
      : subscriptionPeriod(sub, plan, index - 1).start;
  return Math.max(0, Math.min(p.start - now, p.start - previous));
}

/**
 * Starts the execution billing period `index`; false if it exists already (started before). With
 * `waitSeconds` (computed by the caller from the subscription and plan it has read) the execution
 * starts at its Wait; without, its first step computes it.
 */
export async function startPeriod(
  subscriptionId: string,
  index: number,
  waitSeconds?: number,
): Promise<boolean> {
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn('billing'),
        name: periodExecutionName(subscriptionId, index),
        input: JSON.stringify({
          subscription_id: subscriptionId,
          period: index,
          ...(waitSeconds !== undefined ? { wait_seconds: waitSeconds } : {}),
        }),
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ExecutionAlreadyExists || (err as Error).name === 'ExecutionAlreadyExists')
      return false;
    throw err;
  }
}

/**
 * Dunning for a plan change's proration invoice (not a period's): its own billing execution,
 * named after the invoice so it runs once, starting at the invoice's next step (docs/billing.md
 * "Changing plans"). False when it runs already.
 */
export async function startInvoiceDunning(inv: Invoice): Promise<boolean> {
  if (inv.id === periodInvoiceId(inv.subscription, inv.period)) return false;
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn('billing'),
        name: inv.id,
        input: JSON.stringify({
          subscription_id: inv.subscription,
          period: inv.period,
          invoice_id: inv.id,
          polls: 0,
        }),
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ExecutionAlreadyExists || (err as Error).name === 'ExecutionAlreadyExists')
      return false;
    throw err;
  }
}

const FAILED = new Set(['failed', 'canceled']);

export type Next =
  | { next: 'charge'; attempt: number }
  | { next: 'wait_payment' }
  | { next: 'retry'; attempt: number; wait_seconds: number; retry_at: number; reason: string }
  | { next: 'wait_for_payment_method'; attempt: number; wait_seconds: number; reason: string }
  | { next: 'paid' }
  | { next: 'stop'; reason: string };

const attemptKey = (invoiceId: string, n: number) => `billing ${invoiceId} a${n}`;

/**
 * Makes attempt `n` of the invoice unless it was made already (by anyone): an ordinary payment
 * for the amount due with the customer's current payment method. Waits up to `waitMs` for its
 * outcome; the outcome is recorded by `assess`. True when this call made (or resumed) it.
 */
export async function chargeAttempt(invoiceId: string, n: number, waitMs: number): Promise<boolean> {
  const inv = await getInvoice(invoiceId);
  if (!inv || (inv.status !== 'open' && inv.status !== 'uncollectible')) return false;
  // Attempt n is made unless it was. A claimed attempt is resumed under the same idempotency key
  // when a crash may have cut it short: its payment never stored (it gets the claimed payment id),
  // or stored but still processing (startPayment resumes it under its key; a request that had
  // finished is replayed, one still running elsewhere answers 409). Never a second payment.
  const claimed = inv.attempts.find((a) => a.attempt === n);
  const stored = inv.attempt_count === n && claimed ? await getPayment(claimed.payment) : undefined;
  const resume = inv.attempt_count === n && claimed && (!stored || stored.status === 'processing');
  if (inv.attempt_count !== n - 1 && !resume) return false;
  const customer = await getCustomer(inv.customer);
  if (!customer) throw new Error(`invoice ${inv.id}: customer ${inv.customer} is missing`);
  const body = {
    amount: inv.amount_due,
    currency: inv.currency,
    // A stored attempt is resumed with its own method (the customer's may have changed since).
    payment_method: stored?.payment_method ?? customer.payment_method,
    capture_method: 'automatic' as const,
    channel: 'subscription',
    customer: {
      id: customer.id,
      ...(customer.email ? { email: customer.email } : {}),
      ...(customer.country ? { country: customer.country } : {}),
    },
    description: `Invoice ${inv.id} (subscription ${inv.subscription}, period ${inv.period}), attempt ${n}`,
    metadata: { invoice: inv.id, subscription: inv.subscription, attempt: String(n) },
  };
  const key = attemptKey(inv.id, n);
  let paymentId: string;
  try {
    const { response, replayed } = await idempotent(
      inv.merchant_id,
      key,
      requestHash('POST', '/v1/payments', body),
      async (id) => {
        // Recorded before the payment exists, so a crash after it leaves the attempt pointing at it.
        await claimAttempt(inv, n, { attempt: n, payment: id, at: nowSeconds(), outcome: 'processing' });
        const p = await startPayment({ merchantId: inv.merchant_id, id, body, idempotencyKey: key, waitMs });
        return { status: 201, body: { id: p.id, status: p.status } };
      },
      { operation: 'invoice.charge', newResourceId: () => newId('pay') },
    );
    paymentId = (response.body as { id: string }).id;
    if (replayed) return false; // made before, its attempt event with it
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) return false; // another caller is making this attempt
    throw err;
  }
  await addInvoiceEvent(inv.id, { type: 'attempt', attempt: n, payment: paymentId });
  return true;
}

/** Whether the payment's workflow execution exists (it may have ended). */
async function workflowExists(p: Payment): Promise<boolean> {
  if (!p.execution_arn) return false;
  try {
    await clients.sfn().send(new DescribeExecutionCommand({ executionArn: p.execution_arn }));
    return true;
  } catch (err) {
    if (err instanceof ExecutionDoesNotExist || (err as Error).name === 'ExecutionDoesNotExist') return false;
    throw err;
  }
}

/**
 * The invoice's latest attempt, when its payment is stuck `processing` with no payment workflow
 * (what a request killed between storing the payment and starting its workflow leaves, when its
 * client never retries): resumed under its key `billing <invoice> a<n>` (`chargeAttempt`), as the
 * retried request would, so the workflow looking at the invoice does not only wait. A payment
 * whose workflow exists is left to it (one that ended with the payment still processing is
 * flagged for attention and the sweeper's). Returns whether the attempt was stalled.
 */
export async function resumeStalledAttempt(invoiceId: string, waitMs: number): Promise<boolean> {
  const inv = await getInvoice(invoiceId);
  if (!inv || inv.attempt_count === 0) return false;
  const n = inv.attempt_count;
  const last = inv.attempts.find((a) => a.attempt === n);
  const p = last && (await getPayment(last.payment));
  if (!p || p.status !== 'processing' || (await workflowExists(p))) return false;
  // Not resumed while the request making it still runs (it holds the key): looked at again later.
  if (await chargeAttempt(inv.id, n, waitMs))
    await addInvoiceEvent(inv.id, {
      type: 'attempt_resumed',
      attempt: n,
      payment: p.id,
      reason:
        'its payment was left processing with no payment workflow (a request cut short): resumed under its key',
    });
  return true;
}

/** Marks the invoice paid (and the subscription active); idempotent. */
async function markPaid(inv: Invoice, payment: Payment): Promise<void> {
  const n = inv.attempt_count;
  if (inv.attempts.find((a) => a.attempt === n)?.outcome !== 'succeeded')
    await updateAttempt(inv.id, n, { outcome: 'succeeded' }, {}, inv);
  const paid = await transitionInvoice(inv.id, 'paid', {
    amount_paid: payment.amount_captured || payment.amount,
    paid_at: nowSeconds(),
    next_attempt_at: null,
    payment_method_required: false,
  });
  if (paid) await addInvoiceEvent(inv.id, { type: 'paid', payment: payment.id, attempt: n });
  await activateFor(inv, `invoice ${inv.id} paid (attempt ${n}, payment ${payment.id})`);
}

/** The subscription of a paid invoice becomes active (from trialing, incomplete, past_due, unpaid). */
async function activateFor(inv: Invoice, reason: string): Promise<void> {
  const sub = await getSubscription(inv.subscription);
  const to = sub && statusWhenPaid(sub.status);
  if (!sub || !to || sub.status === to) return;
  // Only the latest renewal revives the subscription: an older invoice paid late does not.
  if (sub.latest_invoice && sub.latest_invoice !== inv.id && sub.status !== 'unpaid') {
    const latest = await getInvoice(sub.latest_invoice);
    if (latest && latest.status !== 'paid') return;
  }
  const moved = await transitionSubscription(sub.id, to, { from: [sub.status] });
  if (moved) await addSubscriptionEvent(sub.id, { type: 'status', from: sub.status, to, reason });
}

/** Stops dunning: the invoice is uncollectible and the subscription canceled or unpaid. */
export async function giveUp(
  inv: Invoice,
  reason: string,
  final: 'cancel' | 'unpaid' | 'expire',
): Promise<void> {
  if (final === 'expire') {
    await transitionInvoice(inv.id, 'void', { next_attempt_at: null });
  } else {
    await transitionInvoice(inv.id, 'uncollectible', { next_attempt_at: null });
  }
  await addInvoiceEvent(inv.id, { type: 'gave_up', reason });
  const sub = await getSubscription(inv.subscription);
  if (!sub) return;
  const to = final === 'expire' ? 'incomplete_expired' : final === 'cancel' ? 'canceled' : 'unpaid';
  const moved = await transitionSubscription(sub.id, to, {
    set: to === 'canceled' ? { canceled_at: nowSeconds(), cancellation_reason: 'dunning' } : {},
  });
  if (moved) await addSubscriptionEvent(sub.id, { type: 'status', from: sub.status, to, reason });
}

/**
 * What comes next for the invoice, recording the latest attempt's outcome on the way. `read`: the
 * invoice as the caller has just read or written it (else it is read here).
 */
export async function assess(invoiceId: string, read?: Invoice): Promise<Next> {
  const inv = read ?? (await getInvoice(invoiceId));
  if (!inv) return { next: 'stop', reason: 'the invoice does not exist' };
  if (inv.status === 'paid') {
    await activateFor(inv, `invoice ${inv.id} paid`);
    return { next: 'paid' };
  }
  if (inv.status === 'void') return { next: 'stop', reason: 'the invoice is void' };
  if (inv.attempt_count === 0) return { next: 'charge', attempt: 1 };
  const n = inv.attempt_count;
  const last = inv.attempts.find((a) => a.attempt === n);
  const payment = last && (await getPayment(last.payment));
  if (!last || !payment) return { next: 'charge', attempt: n }; // claimed, payment not stored: resume it
  if (APPROVED_STATUSES.has(payment.status)) {
    await markPaid(inv, payment);
    return { next: 'paid' };
  }
  if (inv.status === 'uncollectible') return { next: 'stop', reason: 'the invoice is uncollectible' };
  if (!FAILED.has(payment.status) && payment.status !== 'requires_action') return { next: 'wait_payment' };
  const next = await recordFailure(inv, last, payment);
  // A canceled subscription's invoice is not retried (it can still be paid by hand).
  if (next.next !== 'stop' && (await getSubscription(inv.subscription))?.status === 'canceled')
    return { next: 'stop', reason: 'the subscription is canceled: the invoice is not retried' };
  return next;
}

async function recordFailure(inv: Invoice, last: InvoiceAttempt, payment: Payment): Promise<Next> {
  const n = inv.attempt_count;
  const failure = payment.failure
    ? { category: payment.failure.category, code: payment.failure.code, retryable: payment.failure.retryable }
    : payment.status === 'requires_action'
      ? { category: 'authentication' as const, code: 'authentication_required', retryable: false }
      : { category: 'technical' as const, code: payment.cancellation_reason ?? 'canceled', retryable: true };
  const sub = await getSubscription(inv.subscription);
  const firstFailedAt = inv.first_failed_at ?? last.at;
  const quickRetries = inv.attempts.filter(
    (a) => a.attempt < n && (a as { schedule?: Schedule }).schedule === 'quick',
  ).length;
  const firstInvoice = sub?.status === 'incomplete';
  // The merchant's policy in force now (docs/billing.md "Dunning policy").
  const policy = await dunningPolicyFor(inv.merchant_id);
  const plan = firstInvoice
    ? ({
        action: 'wait_for_payment_method',
        reason: `the first payment was declined (${failure.code}): the subscription stays incomplete for 23 h, waiting for a new payment method`,
      } as const)
    : planRetry({
        policy,
        failure,
        attempts: n,
        quickRetries,
        firstFailedAt,
        lastAttemptAt: last.at,
      });
  const failedAttempts = inv.attempts.filter((a) => a.attempt < n && a.outcome === 'failed').length + 1;
  if (last.outcome !== 'failed') {
    const schedule = plan.action === 'retry' ? plan.schedule : undefined;
    const updated = await updateAttempt(
      inv.id,
      n,
      {
        outcome: 'failed',
        code: failure.code,
        next: plan.reason,
        ...(schedule ? { schedule } : {}),
      } as Partial<InvoiceAttempt>,
      {
        failed_attempts: failedAttempts,
        first_failed_at: firstFailedAt,
        next_attempt_at: plan.action === 'retry' ? plan.at : null,
        payment_method_required: plan.action === 'wait_for_payment_method',
      },
    );
    if (updated) {
      await addInvoiceEvent(inv.id, {
        type: 'attempt_failed',
        attempt: n,
        payment: payment.id,
        code: failure.code,
        reason: plan.reason,
      });
      if (sub && !firstInvoice) {
        const to = statusWhenRenewalFails(sub.status);
        if (to && to !== sub.status && (await transitionSubscription(sub.id, to, { from: [sub.status] })))
          await addSubscriptionEvent(sub.id, {
            type: 'status',
            from: sub.status,
            to,
            reason: `invoice ${inv.id} attempt ${n} declined (${failure.code}): ${plan.reason}`,
          });
      }
    }
  }
  const now = nowSeconds();
  if (plan.action === 'retry')
    return {
      next: 'retry',
      attempt: n + 1,
      retry_at: plan.at,
      wait_seconds: Math.max(0, plan.at - now),
      reason: plan.reason,
    };
  if (plan.action === 'wait_for_payment_method') {
    const until = firstInvoice ? last.at + 23 * 3600 : firstFailedAt + policy.window_days * 86_400;
    if (now < until)
      // Looked at again at least daily; a new payment method pays it at once (updateCustomerFor).
      return {
        next: 'wait_for_payment_method',
        attempt: n,
        wait_seconds: Math.min(until - now, 86_400),
        reason: plan.reason,
      };
    const why = firstInvoice
      ? 'the first payment failed and no new payment method came within 23 h: the subscription expired'
      : `no new payment method came within the ${policy.window_days}-day window`;
    await giveUp(inv, why, firstInvoice ? 'expire' : policy.final_action);
    return { next: 'stop', reason: why };
  }
  await giveUp(inv, plan.reason, plan.final);
  return { next: 'stop', reason: plan.reason };
}

/**
 * After a renewal invoice is paid: the next period's execution (a no-op when it exists), started at
 * its Wait (the wait computed here, from the subscription and plan this reads anyway).
 */
export async function afterPaid(inv: Pick<Invoice, 'id' | 'subscription' | 'period'>): Promise<void> {
  // A proration within a period is not a period's invoice: the period's own execution goes on.
  if (inv.id !== periodInvoiceId(inv.subscription, inv.period)) return;
  const sub = await getSubscription(inv.subscription);
  if (!sub || !['active', 'trialing', 'past_due'].includes(sub.status)) return;
  const plan = await getPlan(sub.plan);
  if (!plan) return;
  await startPeriod(sub.id, inv.period + 1, periodWaitSeconds(sub, plan, inv.period + 1));
}

/**
 * Attempt `n` of the invoice, made by a request retried after a crash (or its latest attempt when
 * `n` is not given): made if the crash came before it was claimed, resumed if it was cut short,
 * never repeated, and never a new attempt beside it; its outcome is awaited (up to `waitMs`) and
 * recorded, as `retryNow` would have.
 */
export async function settleAttempt(
  invoiceId: string,
  waitMs: number,
  n?: number,
): Promise<Invoice | undefined> {
  const inv = await getInvoice(invoiceId);
  if (!inv) return undefined;
  const attempt = n ?? inv.attempt_count;
  if (n !== undefined || inv.attempts.some((a) => a.attempt === attempt))
    await chargeAttempt(inv.id, attempt, waitMs);
  const made = (await getInvoice(invoiceId))?.attempts.find((a) => a.attempt === attempt);
  if (made && (await getPayment(made.payment)))
    await waitForPayment(made.payment, (p) => p.status !== 'processing', waitMs);
  await assess(invoiceId);
  return afterAttempt(invoiceId);
}

/** The invoice after an attempt by hand: the next period once paid, dunning if still failed. */
async function afterAttempt(invoiceId: string): Promise<Invoice | undefined> {
  const after = await getInvoice(invoiceId);
  if (after?.status === 'paid') await afterPaid(after);
  // A proration invoice still open after a declined charge is dunned like a renewal.
  else if (after?.status === 'open' && after.failed_attempts > 0) await startInvoiceDunning(after);
  return after;
}

/**
 * Charges the invoice now (a retry by hand, or a new payment method) unless it is paid, void, or
 * its latest payment is still being decided (that one is waited for, never doubled); returns the
 * invoice afterwards. A workflow waiting on the invoice finds the attempt made when it looks again.
 * `beforeCharge(n)` runs before attempt `n` is made or resumed (a request records it as its
 * recovery point, so that its retry after a crash settles that attempt: `settleAttempt`).
 */
export async function retryNow(
  invoiceId: string,
  why: string,
  waitMs: number,
  beforeCharge?: (n: number) => Promise<void>,
): Promise<Invoice | undefined> {
  const state = await assess(invoiceId);
  const inv = await getInvoice(invoiceId);
  if (!inv) return undefined;
  if (
    state.next !== 'paid' &&
    state.next !== 'wait_payment' &&
    inv.status !== 'void' &&
    inv.status !== 'paid'
  ) {
    const n = state.next === 'charge' ? state.attempt : inv.attempt_count + 1;
    await beforeCharge?.(n);
    await addInvoiceEvent(inv.id, { type: 'retry_requested', reason: why });
    await chargeAttempt(inv.id, n, waitMs);
    await assess(inv.id);
  } else if (state.next === 'wait_payment') {
    // The latest attempt is still processing: resumed if a crash cut it short (a retried request
    // after a crash), never doubled; its outcome recorded if it came within `waitMs`.
    await beforeCharge?.(inv.attempt_count);
    await chargeAttempt(inv.id, inv.attempt_count, waitMs);
    await assess(inv.id);
  }
  return afterAttempt(inv.id);
}
