/**
 * The billing API's operations (docs/billing.md, docs/api.md "Billing"), shared by the HTTP
 * handlers and the CLI: customers, plans, subscriptions (create, cancel, pause, resume, change
 * plan) and invoices (pay now, void). Charging and dunning are in charging.ts, shared with the
 * billing workflow. Every status change goes through the guarded stores.
 */
import { getPayment } from '../store/payments.ts';
import { planChange, trialEnd } from '../domain/billing.ts';
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import {
  createCustomer,
  getMerchantCustomer,
  updateCustomer as storeUpdateCustomer,
} from '../store/customers.ts';
import {
  addInvoiceEvent,
  createInvoice,
  getInvoice,
  getMerchantInvoice,
  listInvoices,
  transitionInvoice,
} from '../store/invoices.ts';
import { createPlan as storeCreatePlan, getMerchantPlan, getPlan } from '../store/plans.ts';
import {
  addSubscriptionEvent,
  createSubscription as storeCreateSubscription,
  getMerchantSubscription,
  getSubscription,
  subscriptionTimeline,
  transitionSubscription,
  updateSubscription,
} from '../store/subscriptions.ts';
import type { RequestProgress } from '../store/idempotency.ts';
import { periodAt } from '../domain/billing.ts';
import {
  afterPaid,
  assess,
  chargeAttempt,
  nowSeconds,
  recurrence,
  retryNow,
  settleAttempt,
  startPeriod,
  subscriptionPeriod,
} from './charging.ts';
import {
  periodInvoiceId,
  prorationInvoiceId,
  type Customer,
  type Invoice,
  type Plan,
  type Subscription,
} from './model.ts';
import type {
  parseCreateCustomer,
  parseCreatePlan,
  parseCreateSubscription,
  parseUpdateCustomer,
} from './validation.ts';

const unexpected = (what: string, status: string, action: string) =>
  new ApiError(
    400,
    'invalid_request_error',
    `${what}_unexpected_state`,
    `This ${what} is ${status}: it cannot be ${action}.`,
  );

// Customers ----------------------------------------------------------------------------------

export async function createCustomerFor(
  merchantId: string,
  id: string,
  body: ReturnType<typeof parseCreateCustomer>,
): Promise<Customer> {
  const now = nowSeconds();
  const c: Customer = {
    id,
    object: 'customer',
    merchant_id: merchantId,
    email: body.email ?? null,
    name: body.name ?? null,
    country: body.country ?? null,
    payment_method: body.payment_method,
    metadata: body.metadata ?? {},
    created: now,
    updated: now,
    version: 1,
  };
  await createCustomer(c); // false: a resumed request stored it already
  return (await getMerchantCustomer(merchantId, id))!;
}

/**
 * Updates a customer; a new payment method retries the customer's open invoices that failed
 * (past due, or waiting for a payment method) at once. Each invoice retried is recorded, with its
 * attempt, as the request's recovery point before the attempt is made: a retry of the request
 * after a crash settles those attempts (an invoice paid meanwhile still activates its subscription:
 * it is no longer among the failed open invoices) and then goes on with the others.
 */
export async function updateCustomerFor(
  merchantId: string,
  id: string,
  body: ReturnType<typeof parseUpdateCustomer>,
  waitMs: number,
  progress: RequestProgress,
): Promise<Customer> {
  const before = await getMerchantCustomer(merchantId, id);
  if (!before) throw notFound('customer', id);
  const after = (await storeUpdateCustomer(id, body)) ?? before;
  if (body.payment_method === undefined) return after;
  const retried: { invoice: string; attempt: number }[] =
    progress.recoveryPoint === 'retrying' && Array.isArray(progress.recoveryData.invoices)
      ? (progress.recoveryData.invoices as { invoice: string; attempt: number }[])
      : [];
  for (const r of retried) await settleAttempt(r.invoice, waitMs, r.attempt);
  // Each failed invoice is retried unless its latest attempt already used this payment method.
  // (Not "unless the method changed": a retry of this request after a crash finds the customer
  // already updated, and the invoice must still be retried.)
  for (const inv of await failedOpenInvoices(merchantId, id)) {
    if (retried.some((r) => r.invoice === inv.id)) continue;
    const last = inv.attempts.find((a) => a.attempt === inv.attempt_count);
    const lastMethod = last ? (await getPayment(last.payment))?.payment_method : undefined;
    if (lastMethod !== body.payment_method)
      await retryNow(inv.id, `the customer's payment method was updated`, waitMs, async (attempt) => {
        retried.push({ invoice: inv.id, attempt });
        await progress.checkpoint('retrying', { invoices: retried });
      });
    else await settleAttempt(inv.id, waitMs);
  }
  return after;
}

async function failedOpenInvoices(merchantId: string, customer: string): Promise<Invoice[]> {
  const out: Invoice[] = [];
  for (const status of ['open', 'uncollectible']) {
    const page = await listInvoices(merchantId, { limit: 100, customer, status });
    out.push(...page.data.filter((i) => i.failed_attempts > 0));
  }
  return out;
}

// Plans --------------------------------------------------------------------------------------

export async function createPlanFor(
  merchantId: string,
  id: string,
  body: ReturnType<typeof parseCreatePlan>,
): Promise<Plan> {
  const p: Plan = {
    id,
    object: 'plan',
    merchant_id: merchantId,
    name: body.name,
    amount: body.amount,
    currency: body.currency,
    interval: body.interval,
    interval_count: body.interval_count,
    trial_period_days: body.trial_period_days ?? null,
    created: nowSeconds(),
  };
  await storeCreatePlan(p);
  return (await getMerchantPlan(merchantId, id))!;
}

// Subscriptions ------------------------------------------------------------------------------

export async function createSubscriptionFor(
  merchantId: string,
  id: string,
  body: ReturnType<typeof parseCreateSubscription>,
): Promise<Subscription> {
  const customer = await getMerchantCustomer(merchantId, body.customer);
  if (!customer) throw invalidRequest('resource_missing', `No such customer: '${body.customer}'`, 'customer');
  const plan = await getMerchantPlan(merchantId, body.plan);
  if (!plan) throw invalidRequest('resource_missing', `No such plan: '${body.plan}'`, 'plan');
  const now = nowSeconds();
  const trial = trialEnd(now, body.trial_period_days ?? plan.trial_period_days ?? undefined);
  const anchor = trial ?? now;
  const s: Subscription & { anchor_index: number } = {
    id,
    object: 'subscription',
    merchant_id: merchantId,
    customer: customer.id,
    plan: plan.id,
    status: trial ? 'trialing' : 'incomplete',
    anchor,
    anchor_index: 0,
    current_period: { index: 0, start: anchor, end: 0 },
    trial_end: trial ?? null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_reason: null,
    credit: 0,
    latest_invoice: null,
    metadata: body.metadata ?? {},
    created: now,
    updated: now,
    version: 1,
  };
  s.current_period = subscriptionPeriod(s, plan, 0);
  if (await storeCreateSubscription(s))
    await addSubscriptionEvent(id, {
      type: 'created',
      status: s.status,
      reason: trial
        ? `trial until ${new Date(trial * 1000).toISOString()}`
        : 'the first period is charged now',
    });
  await startPeriod(id, 0);
  return (await getSubscription(id))!;
}

/**
 * A new subscription's first charge is usually decided within a second: answer with it. `resumed`
 * (a retry taking over a request that crashed): the first invoice's attempt a crash may have cut
 * short is resumed under its key (`chargeAttempt`), once, never repeated.
 */
export async function firstChargeSettled(id: string, ms: number, resumed = false): Promise<Subscription> {
  const deadline = Date.now() + ms;
  let delay = 10;
  let resume = resumed;
  for (;;) {
    const s = (await getSubscription(id))!;
    if (s.status !== 'incomplete' || Date.now() >= deadline) return s;
    // A declined first payment is an answer too: the subscription stays incomplete.
    const first = s.latest_invoice ? await getInvoice(s.latest_invoice) : undefined;
    if (first && first.failed_attempts > 0) return s;
    if (resume && first && first.attempt_count > 0) {
      resume = false;
      await chargeAttempt(first.id, first.attempt_count, Math.max(0, deadline - Date.now()));
      await assess(first.id);
      continue;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}

export async function getSubscriptionOf(merchantId: string, id: string): Promise<Subscription> {
  const s = await getMerchantSubscription(merchantId, id);
  if (!s) throw notFound('subscription', id);
  return s;
}

/** Cancels now, or at the end of the current period (`at_period_end`). */
export async function cancelSubscription(
  merchantId: string,
  id: string,
  atPeriodEnd: boolean,
): Promise<Subscription> {
  const s = await getSubscriptionOf(merchantId, id);
  if (s.status === 'canceled' || s.status === 'incomplete_expired')
    throw unexpected('subscription', s.status, 'canceled');
  if (atPeriodEnd) {
    const out = await updateSubscription(id, { cancel_at_period_end: true }, [
      'trialing',
      'active',
      'past_due',
      'unpaid',
      'paused',
      'incomplete',
    ]);
    if (!out) return getSubscriptionOf(merchantId, id);
    await addSubscriptionEvent(id, {
      type: 'cancel_scheduled',
      reason: `cancels when period ${s.current_period.index} ends`,
    });
    return out;
  }
  const out = await transitionSubscription(id, 'canceled', {
    set: { canceled_at: nowSeconds(), cancellation_reason: 'requested' },
  });
  if (!out) throw unexpected('subscription', (await getSubscriptionOf(merchantId, id)).status, 'canceled');
  await addSubscriptionEvent(id, {
    type: 'status',
    from: s.status,
    to: 'canceled',
    reason: 'canceled by the merchant',
  });
  return out;
}

export async function pauseSubscription(merchantId: string, id: string): Promise<Subscription> {
  const s = await getSubscriptionOf(merchantId, id);
  if (s.status === 'paused') return s;
  const out = await transitionSubscription(id, 'paused', { from: ['active', 'trialing'] });
  if (!out) throw unexpected('subscription', s.status, 'paused');
  await addSubscriptionEvent(id, {
    type: 'status',
    from: s.status,
    to: 'paused',
    reason: 'paused by the merchant: periods are not billed while paused',
  });
  return out;
}

/** Resumes a paused subscription: billing starts again with the next period boundary. */
export async function resumeSubscription(merchantId: string, id: string): Promise<Subscription> {
  const s = await getSubscriptionOf(merchantId, id);
  if (s.status !== 'paused') throw unexpected('subscription', s.status, 'resumed');
  const plan = (await getPlan(s.plan))!;
  const base = (s as Subscription & { anchor_index?: number }).anchor_index ?? 0;
  const now = nowSeconds();
  // The next period boundary from now, and never a period the workflow already found paused.
  const pausedThrough = (s as Subscription & { paused_through?: number }).paused_through ?? -1;
  const current = Math.max(periodAt(s.anchor, recurrence(plan), now).index + base, pausedThrough);
  const out = await transitionSubscription(id, 'active', {
    from: ['paused'],
    set: { current_period: subscriptionPeriod(s, plan, current) },
  });
  if (!out) throw unexpected('subscription', (await getSubscriptionOf(merchantId, id)).status, 'resumed');
  await addSubscriptionEvent(id, {
    type: 'status',
    from: 'paused',
    to: 'active',
    reason: `resumed: billing resumes with period ${current + 1}`,
  });
  await startPeriod(id, current + 1);
  return out;
}

/** What a plan change records before it changes the subscription (its recovery point). */
type PlanChangeRecovery = { version: number; from: string; to: string; reason: string; invoice?: Invoice };

/**
 * Changes the plan with the proration rule (docs/billing.md "Changing plans", `planChange`): same
 * interval and count keeps the period and charges (or credits) the difference now; another
 * recurrence starts a new period now, invoiced in full less the unused part.
 *
 * Crash-safe with `progress` (the request's Idempotency-Key): the change and its invoice are
 * recorded as the request's recovery point before the subscription is changed, so a retry after a
 * crash that had changed it finishes the same change (its event, its invoice, the charge) instead
 * of finding the plan already in force and charging nothing.
 */
export async function changePlan(
  merchantId: string,
  id: string,
  planId: string,
  waitMs: number,
  progress?: RequestProgress,
): Promise<Subscription> {
  const s = (await getSubscriptionOf(merchantId, id)) as Subscription & { anchor_index?: number };
  const done =
    progress?.recoveryPoint === 'plan_change' ? (progress.recoveryData as PlanChangeRecovery) : undefined;
  if (done && done.to === planId && s.plan === planId && s.version > done.version)
    return finishPlanChange(id, done, waitMs);
  if (!['active', 'trialing', 'past_due'].includes(s.status))
    throw unexpected('subscription', s.status, 'changed');
  const next = await getMerchantPlan(merchantId, planId);
  if (!next) throw invalidRequest('resource_missing', `No such plan: '${planId}'`, 'plan');
  const old = (await getPlan(s.plan))!;
  if (next.id === old.id) return s;
  if (next.currency !== old.currency)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid plan: its currency (${next.currency}) differs from the subscription's (${old.currency})`,
      'plan',
    );
  const now = nowSeconds();
  const same = next.interval === old.interval && next.interval_count === old.interval_count;
  const r = planChange({
    current: s.current_period,
    oldAmount: s.status === 'trialing' ? 0 : old.amount,
    newAmount: s.status === 'trialing' ? 0 : next.amount,
    sameRecurrence: same,
    now,
    credit: s.credit,
  });
  const set: Record<string, unknown> = { plan: next.id, credit: r.credit };
  let invoice: Invoice | undefined;
  if (r.restartPeriod) {
    const index = s.current_period.index + 1;
    const moved = { ...s, anchor: now, anchor_index: index };
    const period = subscriptionPeriod(moved, next, index);
    Object.assign(set, { anchor: now, anchor_index: index, current_period: period });
    invoice = newInvoice(
      s,
      periodInvoiceId(s.id, index),
      period,
      next.currency,
      'subscription_update',
      r.chargeNow,
      r.explanation,
    );
  } else if (r.chargeNow > 0) {
    invoice = newInvoice(
      s,
      prorationInvoiceId(s.id, s.version),
      s.current_period,
      next.currency,
      'subscription_update',
      r.chargeNow,
      r.explanation,
    );
  }
  if (invoice?.amount_due === 0) invoice.status = 'paid';
  const change: PlanChangeRecovery = {
    version: s.version,
    from: old.id,
    to: next.id,
    reason: r.explanation,
    ...(invoice ? { invoice } : {}),
  };
  await progress?.checkpoint('plan_change', change);
  const out = await updateSubscription(id, set, ['active', 'trialing', 'past_due'], {
    expression: '#cver = :cver',
    names: { '#cver': 'version' },
    values: { ':cver': s.version },
  });
  if (!out)
    throw new ApiError(
      409,
      'conflict',
      'subscription_changed',
      'The subscription changed while the plan was being changed: retry.',
    );
  return finishPlanChange(id, change, waitMs, true);
}

/**
 * The steps of a plan change after the subscription moved to the new plan: its event, its
 * invoice, the charge. Each is done once across a crash and the retry (`first`: this request
 * changed the subscription; otherwise a retry finishing a crashed one, which adds what is missing).
 */
async function finishPlanChange(
  id: string,
  change: PlanChangeRecovery,
  waitMs: number,
  first = false,
): Promise<Subscription> {
  const logged =
    !first &&
    (await subscriptionTimeline(id)).some(
      (e) => e.type === 'plan_changed' && e.from === change.from && e.to === change.to,
    );
  if (!logged)
    await addSubscriptionEvent(id, {
      type: 'plan_changed',
      from: change.from,
      to: change.to,
      reason: change.reason,
    });
  const invoice = change.invoice;
  if (invoice) {
    if (await createInvoice(invoice))
      await addInvoiceEvent(invoice.id, { type: 'created', reason: change.reason });
    if (invoice.status === 'open') await retryNow(invoice.id, 'plan change', waitMs);
    else await afterPaid(invoice);
  }
  return (await getSubscription(id))!;
}

export function newInvoice(
  s: Subscription,
  id: string,
  period: { index: number; start: number; end: number },
  currency: string,
  reason: Invoice['billing_reason'],
  amountDue: number,
  description: string | null,
  subtotal = amountDue,
  creditApplied = 0,
): Invoice {
  const now = nowSeconds();
  return {
    id,
    object: 'invoice',
    merchant_id: s.merchant_id,
    subscription: s.id,
    customer: s.customer,
    billing_reason: reason,
    period: period.index,
    period_start: period.start,
    period_end: period.end,
    currency,
    subtotal,
    credit_applied: creditApplied,
    amount_due: amountDue,
    amount_paid: 0,
    status: amountDue === 0 ? 'paid' : 'open',
    attempt_count: 0,
    attempts: [],
    next_attempt_at: null,
    payment: null,
    payment_method_required: false,
    failed_attempts: 0,
    first_failed_at: null,
    quick_retries: 0,
    description,
    paid_at: amountDue === 0 ? now : null,
    created: now,
    updated: now,
    version: 1,
  };
}

// Invoices -----------------------------------------------------------------------------------

export async function getInvoiceOf(merchantId: string, id: string): Promise<Invoice> {
  const inv = await getMerchantInvoice(merchantId, id);
  if (!inv) throw notFound('invoice', id);
  return inv;
}

/** Retries the invoice now with the customer's current payment method. */
/**
 * POST /v1/invoices/{id}/pay: one attempt now. The attempt's number is the request's recovery
 * point, so a retry after a crash settles that attempt (made, resumed or finished by then) and
 * answers with the invoice as it is, paid included, instead of refusing a paid invoice or making
 * a second attempt.
 */
export async function payInvoice(
  merchantId: string,
  id: string,
  waitMs: number,
  progress: RequestProgress,
): Promise<Invoice> {
  const inv = await getInvoiceOf(merchantId, id);
  const started = progress.recoveryData.attempt;
  if (progress.recoveryPoint === 'charging' && typeof started === 'number')
    return (await settleAttempt(inv.id, waitMs, started)) ?? inv;
  if (inv.status !== 'open' && inv.status !== 'uncollectible')
    throw unexpected('invoice', inv.status, 'paid');
  return (
    (await retryNow(inv.id, 'paid by hand (POST /v1/invoices/{id}/pay)', waitMs, (n) =>
      progress.checkpoint('charging', { attempt: n }),
    )) ?? inv
  );
}

export async function voidInvoice(merchantId: string, id: string): Promise<Invoice> {
  const inv = await getInvoiceOf(merchantId, id);
  const out = await transitionInvoice(id, 'void', { next_attempt_at: null });
  if (!out) throw unexpected('invoice', inv.status, 'voided');
  await addInvoiceEvent(id, { type: 'voided', reason: 'voided by the merchant' });
  return out;
}

export { getInvoice };
