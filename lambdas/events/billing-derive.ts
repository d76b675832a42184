/**
 * Merchant events of billing objects (docs/merchant-events.md "Billing events"), derived from
 * changes of subscription and invoice items on the main table's stream like every other event
 * (derive.ts): same envelope, same deterministic ids (object id, type, version), so a redelivered
 * stream record stores nothing twice. Pure: no I/O. Names follow Stripe Billing's:
 *
 * | change                                                      | event                                  |
 * | ----------------------------------------------------------- | -------------------------------------- |
 * | subscription inserted                                       | customer.subscription.created          |
 * | subscription → canceled or incomplete_expired               | customer.subscription.deleted          |
 * | subscription status, plan, period or cancel_at_period_end   | customer.subscription.updated          |
 * | invoice inserted                                            | invoice.created (+ invoice.paid if so) |
 * | invoice → paid / uncollectible / void                       | invoice.paid / .uncollectible / .voided|
 * | invoice failed_attempts grew                                | invoice.payment_failed                 |
 * | invoice payment_method_required became true (hard decline)  | customer.payment_method_required       |
 */
import { presentInvoice, presentSubscription, type Invoice, type Subscription } from '../billing/model.ts';
import { eventDrafts, type ChangeLike, type EventDraft } from './derive.ts';

export const BILLING_KINDS = ['subscription', 'invoice'] as const;

export const BILLING_EVENT_TYPES = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.created',
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.uncollectible',
  'invoice.voided',
  'customer.payment_method_required',
] as const;

/** Wildcards a webhook endpoint may subscribe to for billing events (`customer.*` takes customer.subscription.* too). */
export const BILLING_EVENT_PREFIXES = ['customer', 'invoice'];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function subscriptionTypes(change: ChangeLike, item: Record<string, unknown>): string[] {
  if (change.eventName === 'INSERT') return ['customer.subscription.created'];
  const old = change.oldImage ?? {};
  if (old.version === item.version) return [];
  if (item.status !== old.status && (item.status === 'canceled' || item.status === 'incomplete_expired'))
    return ['customer.subscription.deleted'];
  const watched = ['status', 'plan', 'current_period', 'cancel_at_period_end'];
  return watched.some((k) => !same(old[k], item[k])) ? ['customer.subscription.updated'] : [];
}

function invoiceTypes(change: ChangeLike, item: Record<string, unknown>): string[] {
  const old = change.oldImage ?? {};
  if (change.eventName === 'INSERT')
    return item.status === 'paid' ? ['invoice.created', 'invoice.paid'] : ['invoice.created'];
  if (old.version === item.version) return [];
  const out: string[] = [];
  if (Number(item.failed_attempts ?? 0) > Number(old.failed_attempts ?? 0))
    out.push('invoice.payment_failed');
  if (item.payment_method_required === true && old.payment_method_required !== true)
    out.push('customer.payment_method_required');
  if (item.status !== old.status) {
    if (item.status === 'paid') out.push('invoice.paid');
    if (item.status === 'uncollectible') out.push('invoice.uncollectible');
    if (item.status === 'void') out.push('invoice.voided');
  }
  return out;
}

/** The merchant events of a change of a subscription or invoice item (none for other kinds). */
export function deriveBillingEvents(change: ChangeLike, createdSeconds: number): EventDraft[] {
  const item = change.newImage;
  if (change.eventName === 'REMOVE' || !item) return [];
  const kind = item.kind;
  const objectId = item.id;
  const merchantId = item.merchant_id;
  if (typeof objectId !== 'string' || typeof merchantId !== 'string' || !objectId || !merchantId) return [];
  if (kind === 'subscription')
    return eventDrafts(
      change,
      item,
      { merchantId, kind, objectId, createdSeconds },
      subscriptionTypes(change, item),
      () => presentSubscription(item as unknown as Subscription) as Record<string, unknown>,
    );
  if (kind === 'invoice')
    return eventDrafts(
      change,
      item,
      { merchantId, kind, objectId, createdSeconds },
      invoiceTypes(change, item),
      () => presentInvoice(item as unknown as Invoice) as Record<string, unknown>,
    );
  return [];
}
