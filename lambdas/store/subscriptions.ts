/**
 * Subscriptions (docs/billing.md), table `main`: `SUBSCRIPTION#<id>` with its timeline, listed per
 * merchant on gsi1. Every status write goes through `transitionSubscription`: a conditional update
 * from the statuses the transition table allows (lambdas/domain/subscription.ts), so a stale step
 * (a cancel racing a renewal) changes nothing.
 */
import type { Subscription } from '../billing/model.ts';
import { subscriptionSources, type SubscriptionStatus } from '../domain/subscription.ts';
import {
  addTimeline,
  getMerchantObject,
  getObject,
  listObjects,
  putObject,
  timeline,
  updateObject,
  type ObjectUpdate,
  type TimelineEntry,
} from './billing-objects.ts';

export const createSubscription = (s: Subscription) => putObject('subscription', s);
export const getSubscription = (id: string) => getObject<Subscription>('subscription', id);
export const getMerchantSubscription = (merchantId: string, id: string) =>
  getMerchantObject<Subscription>('subscription', merchantId, id);

/**
 * Moves the subscription to `to` if its status allows it (narrowed by `from`); the new
 * subscription, or undefined when the transition was refused (nothing written).
 */
export function transitionSubscription(
  id: string,
  to: SubscriptionStatus,
  opts: {
    set?: Record<string, unknown>;
    from?: SubscriptionStatus[];
    condition?: ObjectUpdate['condition'];
  } = {},
): Promise<Subscription | undefined> {
  const allowed = subscriptionSources(to).filter((s) => !opts.from || opts.from.includes(s));
  return updateObject<Subscription>('subscription', id, {
    set: { ...opts.set, status: to },
    fromStatuses: allowed,
    condition: opts.condition,
  });
}

/** Changes fields other than the status, only while the status is one of `whileIn`. */
export const updateSubscription = (
  id: string,
  set: Record<string, unknown>,
  whileIn?: readonly SubscriptionStatus[],
  condition?: ObjectUpdate['condition'],
) => updateObject<Subscription>('subscription', id, { set, fromStatuses: whileIn, condition });

export interface SubscriptionFilters {
  limit: number;
  startingAfter?: string;
  customer?: string;
  plan?: string;
  status?: string;
}

export const listSubscriptions = (merchantId: string, f: SubscriptionFilters) =>
  listObjects<Subscription>('subscription', merchantId, {
    limit: f.limit,
    startingAfter: f.startingAfter,
    equals: { customer: f.customer, plan: f.plan, status: f.status },
  });

export const addSubscriptionEvent = (id: string, entry: Omit<TimelineEntry, 'at'>) =>
  addTimeline('subscription', id, entry);
export const subscriptionTimeline = (id: string) => timeline('subscription', id);
