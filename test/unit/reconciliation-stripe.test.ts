/**
 * Stripe payouts as the simulator models them, read through the real `stripe` SDK: a payout of
 * the balance, the payouts and balance transactions lists (pagination, `payout` filter,
 * `expand[]=data.source`), and the payout's itemized reconciliation report that the importer reads.
 */
import Stripe from 'stripe';
import { StripeSimulator } from '../../lib/local/processors/stripe-simulator.ts';
import { readStripeItemizedCsv } from '../../lambdas/connectors/stripe/settlement.ts';
import type { SettlementItem } from '../../lambdas/reconciliation/types.ts';

const KEY = 'sk_test_paystep_payouts';
let sim: StripeSimulator;
let stripe: Stripe;

beforeAll(async () => {
  sim = new StripeSimulator({ payoutEveryMs: 0 });
  const url = await sim.start(0);
  stripe = new Stripe(KEY, { host: '127.0.0.1', port: new URL(url).port, protocol: 'http' });
});
afterAll(() => sim.stop());

const charge = (amount: number, pm = 'pm_card_visa') =>
  stripe.paymentIntents.create({
    amount,
    currency: 'usd',
    payment_method: pm,
    confirm: true,
    automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    metadata: { merchant_id: 'mch_1' },
  });

test('a payout pays out the balance, net of fees and refunds; nothing is paid twice', async () => {
  const a = await charge(1000);
  const b = await charge(2500);
  const c = await charge(700);
  await stripe.refunds.create({ payment_intent: b.id, amount: 500 });
  expect(sim.createPayout()).toEqual([]); // funds are not available for 2 days
  const [payout] = sim.createPayout({ includePending: true });
  const fees = [1000, 2500, 700].reduce((s, x) => s + Math.round(x * 0.029) + 30, 0);
  expect(payout).toMatchObject({
    object: 'payout',
    amount: 1000 + 2500 + 700 - 500 - fees,
    status: 'paid',
    automatic: true,
  });
  expect(sim.createPayout({ includePending: true })).toEqual([]);

  const retrieved = await stripe.payouts.retrieve(payout!.id);
  expect(retrieved.amount).toBe(payout!.amount);
  const listed = [];
  for await (const p of stripe.payouts.list({ limit: 1, created: { gte: 0 } })) listed.push(p.id);
  expect(listed).toEqual([payout!.id]);

  const txns: Stripe.BalanceTransaction[] = [];
  for await (const t of stripe.balanceTransactions.list({
    payout: payout!.id,
    limit: 2,
    expand: ['data.source'],
  }))
    txns.push(t);
  expect(txns.map((t) => t.type).sort()).toEqual(['charge', 'charge', 'charge', 'payout', 'refund']);
  expect(new Set(txns.map((t) => t.id)).size).toBe(5);
  const refund = txns.find((t) => t.type === 'refund')!;
  expect((refund.source as Stripe.Refund).payment_intent).toBe(b.id);
  expect(txns.filter((t) => t.type !== 'payout').reduce((s, t) => s + t.net, 0)).toBe(payout!.amount);

  const items: SettlementItem[] = [];
  for await (const batch of readStripeItemizedCsv([sim.payoutItemizedCsv(payout!.id)])) items.push(...batch);
  expect(items).toHaveLength(4);
  expect(items.map((i) => i.reference).sort()).toEqual([a.id, b.id, b.id, c.id].sort());
  expect(items.every((i) => i.payout_id === payout!.id && i.merchant_hint === 'mch_1')).toBe(true);
  expect(items.reduce((s, i) => s + i.net, 0)).toBe(payout!.amount);
  const served = await fetch(`${sim.url}/_sim/payouts/${payout!.id}/itemized.csv`);
  expect(served.headers.get('content-type')).toMatch(/^text\/csv/);
  expect(await served.text()).toBe(sim.payoutItemizedCsv(payout!.id));
  const run = await fetch(`${sim.url}/_sim/payouts/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ include_pending: true }),
  });
  expect(await run.json()).toEqual({ payouts: [] }); // nothing left to pay out
});

test('an unknown payout is a 404, an unknown cursor a 400 (resource_missing), as on Stripe', async () => {
  await expect(stripe.balanceTransactions.list({ payout: 'po_nope' })).rejects.toMatchObject({
    statusCode: 404,
  });
  await expect(stripe.payouts.list({ limit: 1, starting_after: 'po_nope' })).rejects.toMatchObject({
    statusCode: 400,
    code: 'resource_missing',
  });
});
