/**
 * Billing workflow tasks (statemachines/billing.asl.json, docs/billing.md "The billing workflow"):
 * one execution per period, `<subscription>-p<n>`.
 *
 * - `schedule`: how long to wait until period n starts (`periodWaitSeconds`), for an execution
 *   started without it (period 0, a resumed subscription); the previous period's step computes it
 *   for the next one.
 * - `open`: the period's invoice (an idempotent put keyed by subscription and period), unless the
 *   subscription is no longer billed (canceled, paused, unpaid, or canceling at this period end).
 * - `charge`: attempt n of the invoice (an ordinary payment), then what comes next.
 * - `check`: what comes next (records the latest attempt's outcome); an attempt whose payment was
 *   left processing without its workflow is resumed under its key (`resumeStalledAttempt`).
 * - When `open`, `charge` or `check` finds the invoice paid, it starts the next period's execution
 *   itself if the subscription goes on (`afterPaid`: a deterministic name, so starting it again is
 *   refused) and says so (`next_started`): the workflow ends without a step of its own for it.
 * - `next`: starts the next period's execution (executions of an earlier definition still call it).
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
  periodWaitSeconds,
  resumeStalledAttempt,
  subscriptionPeriod,
  type Next,
} from '../charging.ts';
import { periodInvoiceId, type Invoice, type Subscription } from '../model.ts';
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

type Out = { subscription_id: string; period: number; invoice_id?: string; next_started?: boolean } & (
  Next | { next: 'wait'; wait_seconds: number }
);

/** The first look again after 30 s, then doubling up to 6 h (a payment held for review may take days). */
export const pollSeconds = (polls: number) => Math.min(30 * 2 ** Math.max(0, polls - 1), 6 * 3600);

export const handler = taskHandler('billing-step', Input, async (input) => {
  let out = await step(input);
  // Paid: the next period's execution is started here rather than by a step of its own.
  if (out.next === 'paid' && input.action !== 'next' && out.invoice_id) {
    await afterPaid({ id: out.invoice_id, subscription: input.subscription_id, period: input.period });
    out = { ...out, next_started: true };
  }
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
  const sub = await getSubscription(input.subscription_id);
  const plan = sub && (await getPlan(sub.plan));
  if (!sub || !plan) return { next: 'wait', wait_seconds: 0 };
  return { next: 'wait', wait_seconds: periodWaitSeconds(sub, plan, input.period) };
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
  const created = await createInvoice(inv);
  if (created)
    await addInvoiceEvent(inv.id, {
      type: 'created',
      amount_due: inv.amount_due,
      period: n,
      reason: inv.description,
    });
  // Just written as it is (no attempt yet), or written by an earlier run of this step: read.
  const stored: Invoice = created ? inv : (await getInvoice(invoiceId))!;
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
  return assess(invoiceId, created ? inv : undefined);
}
