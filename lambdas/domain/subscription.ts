/**
 * Subscription and invoice state machines (docs/billing.md, docs/states.md "Subscriptions"):
 * statuses, the allowed transitions, and the guards the stores write through. Pure: no I/O.
 *
 * The statuses are Stripe Billing's, so a merchant coming from Stripe reads them the same way;
 * the transitions are paystep's own and are the only ones a store will write.
 */

export const SUBSCRIPTION_STATUSES = [
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'unpaid',
  'paused',
  'canceled',
] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export const SUBSCRIPTION_TRANSITIONS: Record<SubscriptionStatus, readonly SubscriptionStatus[]> = {
  // The first invoice is not paid yet (declined, or waiting for authentication).
  incomplete: ['active', 'incomplete_expired', 'canceled'],
  trialing: ['active', 'past_due', 'paused', 'canceled'],
  active: ['past_due', 'paused', 'canceled'],
  // A renewal failed; dunning retries it.
  past_due: ['active', 'unpaid', 'canceled'],
  // Dunning gave up and the merchant chose to keep the subscription: paying the invoice revives it.
  unpaid: ['active', 'canceled'],
  paused: ['active', 'canceled'],
  incomplete_expired: [],
  canceled: [],
};

export const INVOICE_STATUSES = ['draft', 'open', 'paid', 'uncollectible', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

export const INVOICE_TRANSITIONS: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  draft: ['open', 'void'],
  open: ['paid', 'uncollectible', 'void'],
  // Written off, but a late payment (a retry by hand, a new card) is still welcome.
  uncollectible: ['paid', 'void'],
  paid: [],
  void: [],
};

export const canSubscriptionTransition = (from: SubscriptionStatus, to: SubscriptionStatus) =>
  SUBSCRIPTION_TRANSITIONS[from].includes(to);
export const canInvoiceTransition = (from: InvoiceStatus, to: InvoiceStatus) =>
  INVOICE_TRANSITIONS[from].includes(to);

/** Statuses from which `to` may be reached: the condition of the guarded write. */
export const subscriptionSources = (to: SubscriptionStatus): SubscriptionStatus[] =>
  SUBSCRIPTION_STATUSES.filter((from) => SUBSCRIPTION_TRANSITIONS[from].includes(to));
export const invoiceSources = (to: InvoiceStatus): InvoiceStatus[] =>
  INVOICE_STATUSES.filter((from) => INVOICE_TRANSITIONS[from].includes(to));

export const isSubscriptionStatus = (s: unknown): s is SubscriptionStatus =>
  typeof s === 'string' && (SUBSCRIPTION_STATUSES as readonly string[]).includes(s);
export const isInvoiceStatus = (s: unknown): s is InvoiceStatus =>
  typeof s === 'string' && (INVOICE_STATUSES as readonly string[]).includes(s);

/** Statuses in which the subscription is billed at each period end. */
export const BILLED_STATUSES: readonly SubscriptionStatus[] = ['trialing', 'active', 'past_due'];

/** Statuses that count towards monthly recurring revenue. */
export const REVENUE_STATUSES: readonly SubscriptionStatus[] = ['active', 'past_due'];

/** What the subscription becomes when its invoice for a period is paid. */
export function statusWhenPaid(s: SubscriptionStatus): SubscriptionStatus | undefined {
  return canSubscriptionTransition(s, 'active') ? 'active' : undefined;
}

/** What the subscription becomes when a renewal (not the first invoice) fails. */
export function statusWhenRenewalFails(s: SubscriptionStatus): SubscriptionStatus | undefined {
  return canSubscriptionTransition(s, 'past_due') ? 'past_due' : undefined;
}
