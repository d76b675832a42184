/**
 * Billing workflow tasks (statemachines/billing.asl.json, docs/billing.md "The billing workflow"):
 * one execution per period, `<subscription>-p<n>`.
 *
 * - `schedule`: how long to wait until period n starts. In AWS that is the time left until the
 *   period's start; it is also capped at the time between the previous boundary and this one, which
 *   changes nothing in real time (the next period's execution starts after the previous period
 *   began) but lets the local runtime's scaled Waits pass one period per period.
 * - `open`: the period's invoice (an idempotent put keyed by subscription and period), unless the
 *   subscription is no longer billed (canceled, paused, unpaid, or canceling at this period end).
 * - `charge`: attempt n of the invoice (an ordinary payment), then what comes next.
 * - `check`: what comes next (records the latest attempt's outcome); an attempt whose payment was
 *   left processing without its workflow is resumed under its key (`resumeStalledAttempt`).
 * - `next`: starts the next period's execution.
 * - `unexpected_state`: records a next step the workflow does not know (its Choice's Default).
 */
import { z } from 'zod';
import { applyCredit } from '../../domain/billing.ts';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import { addInvoiceEvent, createInvoice, getInvoice } from '../../store/invoices.ts';
import { getPlan } from '../../store/plans.ts';
import {
  addSubscriptionEvent,
  getSubscription,
  transitionSubscription,
  updateSubscription,
} from '../../store/subscriptions.ts';
import {
  afterPaid,
  assess,
  chargeAttempt,
  nowSeconds,
  resumeStalledAttempt,
  subscriptionPeriod,
  type Next,
} from '../charging.ts';
import { periodInvoiceId, type Subscription } from '../model.ts';
import { newInvoice } from '../service.ts';

const Input = z.object({
  action: z.enum(['schedule', 'open', 'charge', 'check', 'next', 'unexpected_state']),
  seen: z.unknown().optional(),
  subscription_id: prefixedId('sub'),
  period: z.number().int().nonnegative(),
  invoice_id: prefixedId('in').optional(),
  attempt: z.number().int().positive().optional(),
  /** How many times in a row the workflow has waited for this payment's outcome. */
  polls: z.number().int().nonnegative().optional(),
});
type StepInput = z.output<typeof Input>;

/** How long a charge step waits for its payment's outcome before the workflow polls. */
const CHARGE_WAIT_MS = 5000;

type Out = { subscription_id: string; period: number; invoice_id?: string } & (
  Next | { next: 'wait'; wait_seconds: number }
);

/** The first look again after 30 s, then doubling up to 6 h (a payment held for review may take days). */
export const pollSeconds = (polls: number) => Math.min(30 * 2 ** Math.max(0, polls - 1), 6 * 3600);

export const handler = taskHandler('billing-step', Input, async (input) => {
  const out = await step(input);
  // Every output carries `polls` (the Check step's input names it): counted while waiting, else 0.
  if (out.next !== 'wait_payment') return { ...out, polls: 0 };
  const polls = (input.polls ?? 0) + 1;
  return { ...out, polls, wait_seconds: pollSeconds(polls) };
});

async function step(input: StepInput): Promise<Out> {
  const base = { subscription_id: input.subscription_id, period: input.period };
  const invoiceId = input.invoice_id ?? periodInvoiceId(input.subscription_id, input.period);
  switch (input.action) {
    case 'schedule':
      return { ...base, ...(await schedule(input)) };
    case 'open':
      return { ...base, invoice_id: invoiceId, ...(await open(input, invoiceId)) };
    case 'charge': {
      await chargeAttempt(invoiceId, input.attempt ?? 1, CHARGE_WAIT_MS);
      const next = await assess(invoiceId);
      // Still not made (another caller holds the attempt's idempotency key): look again later.
      if (next.next === 'charge' && next.attempt === input.attempt)
        return { ...base, invoice_id: invoiceId, next: 'wait_payment' };
      return { ...base, invoice_id: invoiceId, ...next };
    }
    case 'check': {
      let next = await assess(invoiceId);
      // The latest attempt's payment left processing without its workflow (a request cut short
      // whose client never retried): resumed under its key rather than only waited for.
      if (next.next === 'wait_payment' && (await resumeStalledAttempt(invoiceId, CHARGE_WAIT_MS)))
        next = await assess(invoiceId);
      return { ...base, invoice_id: invoiceId, ...next };
    }
    case 'unexpected_state':
      await addSubscriptionEvent(input.subscription_id, {
        type: 'unexpected_state',
        period: input.period,
        reason: `the billing workflow met a next step it does not know (${JSON.stringify(input.seen)}): see the execution ${input.subscription_id}-p${input.period}`,
      });
      return { ...base, next: 'stop', reason: 'unexpected state recorded' };
    case 'next': {
      const inv = await getInvoice(invoiceId);
      if (inv) await afterPaid(inv);
      return {
        ...base,
        invoice_id: invoiceId,
        next: 'stop',
        reason: 'paid: the next period is billed by its own execution',
      };
    }
  }
}

async function schedule(input: StepInput): Promise<{ next: 'wait'; wait_seconds: number }> {
  const sub = (await getSubscription(input.subscription_id)) as
    (Subscription & { anchor_index?: number }) | undefined;
  const plan = sub && (await getPlan(sub.plan));
  if (!sub || !plan) return { next: 'wait', wait_seconds: 0 };
  const p = subscriptionPeriod(sub, plan, input.period);
  const previous =
    input.period === (sub.anchor_index ?? 0)
      ? Math.min(sub.created, sub.anchor)
      : subscriptionPeriod(sub, plan, input.period - 1).start;
  const now = nowSeconds();
  return { next: 'wait', wait_seconds: Math.max(0, Math.min(p.start - now, p.start - previous)) };
}

async function open(input: StepInput, invoiceId: string): Promise<Next> {
  const sub = (await getSubscription(input.subscription_id)) as
    (Subscription & { anchor_index?: number }) | undefined;
  if (!sub) return { next: 'stop', reason: 'the subscription does not exist' };
  const existing = await getInvoice(invoiceId);
  if (existing) return assess(invoiceId);
  const n = input.period;
  if (sub.status === 'paused')
    // Resuming bills from the period after this one (lambdas/billing/service.ts resumeSubscription).
    await updateSubscription(sub.id, { paused_through: n }, ['paused']);
  if (['canceled', 'incomplete_expired', 'unpaid', 'paused'].includes(sub.status)) {
    await addSubscriptionEvent(sub.id, {
      type: 'period_not_billed',
      period: n,
      reason: `the subscription is ${sub.status}`,
    });
    return { next: 'stop', reason: `the subscription is ${sub.status}` };
  }
  if (sub.cancel_at_period_end && n > 0) {
    const moved = await transitionSubscription(sub.id, 'canceled', {
      set: { canceled_at: nowSeconds(), cancellation_reason: 'period_end' },
    });
    if (moved)
      await addSubscriptionEvent(sub.id, {
        type: 'status',
        from: sub.status,
        to: 'canceled',
        reason: `canceled at the end of period ${n - 1}, as asked`,
      });
    return { next: 'stop', reason: 'canceled at period end' };
  }
  const plan = (await getPlan(sub.plan))!;
  const period = subscriptionPeriod(sub, plan, n);
  const { charge, used } = applyCredit(plan.amount, sub.credit);
  const inv = newInvoice(
    sub,
    invoiceId,
    period,
    plan.currency,
    n === 0 && sub.status === 'incomplete' ? 'subscription_create' : 'subscription_cycle',
    charge,
    `${plan.name}: period ${n}${used ? ` (${used} of credit applied)` : ''}`,
    plan.amount,
    used,
  );
  if (await createInvoice(inv))
    await addInvoiceEvent(inv.id, {
      type: 'created',
      amount_due: inv.amount_due,
      period: n,
      reason: inv.description,
    });
  const stored = (await getInvoice(invoiceId))!;
  // The subscription moves to this period and gives up the credit the invoice used, once: the
  // write is conditional on the version read (a retried step finds latest_invoice set).
  if (sub.latest_invoice !== invoiceId)
    await updateSubscription(
      sub.id,
      {
        current_period: period,
        latest_invoice: invoiceId,
        credit: Math.max(0, sub.credit - stored.credit_applied),
      },
      ['trialing', 'active', 'past_due', 'incomplete'],
      { expression: '#cver = :cver', names: { '#cver': 'version' }, values: { ':cver': sub.version } },
    );
  return assess(invoiceId);
}
