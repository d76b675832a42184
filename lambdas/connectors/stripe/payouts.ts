/**
 * Stripe payouts through the API (Stripe's recommended way for automatic payouts): a payout
 * (`GET /v1/payouts/:id`) and its balance transactions (`GET /v1/balance_transactions?payout=…`,
 * with `expand[]=data.source` to reach the PaymentIntent), normalized into SettlementItems.
 * The same code talks to Stripe itself or to the local simulator (STRIPE_API_BASE).
 * lambdas/reconciliation/sources/index.ts reads Stripe's payouts through it.
 */
import type Stripe from 'stripe';
import type { PayoutApi } from '../../reconciliation/sources/index.ts';
import type { PayoutHeader, SettlementItem } from '../../reconciliation/types.ts';
import { config as paystepConfig } from '../../shared/config.ts';
import { getSecret } from '../../shared/secrets.ts';
import { createStripeClient } from './client.ts';
import { stripeCategory } from './settlement.ts';

let client: Promise<Stripe> | undefined;

/** Its own client (client.ts): longer timeout and SDK retries than payments, for long listings. */
function stripe(): Promise<Stripe> {
  client ??= getSecret('stripe-secret-key').then((secretKey) =>
    createStripeClient(
      { secretKey, apiBase: paystepConfig.stripeApiBase(), timeoutMs: 30_000, maxNetworkRetries: 2 },
      'Stripe payouts',
    ),
  );
  client.catch(() => (client = undefined));
  return client;
}

/** Forgets the client (the local runtime restarts the simulator on another port in tests). */
export function resetStripeSource(): void {
  client = undefined;
}

const day = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().slice(0, 10);

export function payoutHeader(p: Stripe.Payout): PayoutHeader {
  return {
    processor: 'stripe',
    payout_id: p.id,
    payout_date: day(p.arrival_date),
    currency: p.currency,
    amount: p.amount,
    status: p.status,
  };
}

export async function stripePayout(id: string): Promise<PayoutHeader | undefined> {
  try {
    return payoutHeader(await (await stripe()).payouts.retrieve(id));
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

/** Paid automatic payouts created at or after `sinceEpochSeconds`, oldest first. */
export async function stripePayouts(sinceEpochSeconds: number): Promise<PayoutHeader[]> {
  const out: PayoutHeader[] = [];
  for await (const p of (await stripe()).payouts.list({ created: { gte: sinceEpochSeconds }, limit: 100 })) {
    if (p.status === 'paid' && p.automatic) out.push(payoutHeader(p));
  }
  return out.sort((a, b) => (a.payout_date + a.payout_id < b.payout_date + b.payout_id ? -1 : 1));
}

/** The payout's lines (the payout's own balance transaction excluded), in batches. */
export async function* stripePayoutItems(payout: PayoutHeader): AsyncGenerator<SettlementItem[]> {
  const s = await stripe();
  let batch: SettlementItem[] = [];
  for await (const t of s.balanceTransactions.list({
    payout: payout.payout_id,
    limit: 100,
    expand: ['data.source'],
  })) {
    if (t.type === 'payout') continue;
    const src = t.source as
      (Stripe.Charge | Stripe.Refund | { id: string; payment_intent?: unknown }) | string | null;
    const obj = src && typeof src === 'object' ? (src as unknown as Record<string, unknown>) : undefined;
    const pi = obj?.payment_intent;
    const metadata = obj?.metadata as Record<string, string> | undefined;
    batch.push({
      processor: 'stripe',
      item_id: t.id,
      payout_id: payout.payout_id,
      payout_date: payout.payout_date,
      type: stripeCategory(t.reporting_category),
      reference:
        typeof pi === 'string' ? pi : pi && typeof pi === 'object' ? String((pi as { id: string }).id) : null,
      source_id: typeof src === 'string' ? src : ((obj?.id as string | undefined) ?? null),
      currency: t.currency,
      gross: t.amount,
      fee: t.fee,
      net: t.net,
      created: new Date(t.created * 1000).toISOString(),
      merchant_hint: metadata?.merchant_id ?? null,
    });
    if (batch.length >= 500) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** For lambdas/reconciliation/sources/index.ts `SOURCES.stripe.api`. */
export const STRIPE_PAYOUT_API: PayoutApi = {
  payout: stripePayout,
  payouts: stripePayouts,
  items: stripePayoutItems,
};
