/**
 * Exactly-once billing under crashes (docs/billing.md "Crash safety", docs/states.md "Idempotent
 * requests and crashes"): the pattern of test/integration/crash.test.ts for the billing routes that
 * charge a customer. A runtime in a child process is killed with SIGKILL at the k-th DynamoDB write
 * (chosen by fast-check) while the request runs; it is started again on the same data dir and the
 * client retries with the same Idempotency-Key and body. Then the invoice the request charges is
 * paid, by one captured payment (one payment per attempt, none beside), and Stripe shows one
 * successful charge for it, never two:
 *
 * - POST /v1/subscriptions: the first invoice;
 * - POST /v1/subscriptions/{id} with `plan`: an upgrade's proration invoice, one of it, and one
 *   `plan_changed` on the subscription's timeline;
 * - POST /v1/invoices/{id}/pay: a declined first invoice paid by hand (one new payment);
 * - POST /v1/customers/{id} with a new `payment_method`: the declined invoice retried at once, and
 *   paid when the retried request has answered (before the fix a kill point in the payment's start
 *   left it `processing` for good: nobody resumed the attempt).
 *
 * Runs per route: PAYSTEP_CRASH_RUNS (1 in the suite); PAYSTEP_CRASH_AT=12,26 replays those kill
 * points for every route (with -t to pick routes); PAYSTEP_CRASH_LOG=1 logs whether each crashed.
 */
import {
  call,
  describeCrashes,
  until,
  type Child,
  type CrashRoute,
  type Json,
} from '../fixtures/crash-child.ts';

const RUNS = process.env.PAYSTEP_CRASH_RUNS ? Number(process.env.PAYSTEP_CRASH_RUNS) : 1;

const post = async (c: Child, key: string, p: string, body: Json) => {
  const r = await call(c.url, key, 'POST', p, body);
  expect(r.status).toBeLessThan(300);
  return r.body;
};
const get = async (c: Child, key: string, p: string) => (await call(c.url, key, 'GET', p)).body;
/** A monthly plan: no period ends while the test runs, even time-compressed. */
const plan = (c: Child, key: string) =>
  post(c, key, '/v1/plans', { name: 'Monthly', amount: 1900, currency: 'usd', interval: 'month' });

/** The invoice `which` paid by exactly one captured payment, and one successful charge at Stripe. */
async function paidOnce(c: Child, key: string, which: string, find: (list: Json[]) => Json | undefined) {
  const inv = await until(`${which} paid`, async () => {
    const list = (await get(c, key, `/v1/invoices?${which}`)).data as Json[];
    const i = find(list);
    return i?.status === 'paid' ? i : undefined;
  });
  const payments = ((await get(c, key, '/v1/payments?limit=100')).data as Json[]).filter(
    (p) => p.metadata.invoice === inv.id,
  );
  expect(payments.filter((p) => p.status === 'captured').map((p) => p.id)).toEqual([inv.payment]);
  expect(payments).toHaveLength(inv.attempt_count as number); // one payment per attempt, none beside
  let succeeded = 0;
  for (const p of payments) {
    const intents = await c.ask<Json[]>('objects', {
      object: 'payment_intent',
      field: 'metadata.paystep_payment_id',
      value: p.id,
    });
    expect(intents.length).toBeLessThanOrEqual(1);
    succeeded += intents.filter((i) => i.status === 'succeeded').length;
  }
  expect(succeeded).toBe(1);
  return inv;
}
const firstInvoice = (list: Json[]) =>
  list.find((i) => i.period === 0 && i.billing_reason === 'subscription_create');

/**
 * A subscription whose first invoice was declined (insufficient funds) and is open, waiting for a
 * new payment method: no blind retry for 23 h of billing time (83 s here).
 */
async function declinedFirstInvoice(c: Child, key: string) {
  const card = 'pm_card_visa_chargeDeclinedInsufficientFunds';
  const customer = (await post(c, key, '/v1/customers', { payment_method: card })).id as string;
  const sub = await post(c, key, '/v1/subscriptions', { customer, plan: (await plan(c, key)).id });
  const inv = await until('the first invoice declined', async () => {
    const i = firstInvoice((await get(c, key, `/v1/invoices?subscription=${sub.id}`)).data as Json[]);
    return i?.payment_method_required ? i : undefined;
  });
  expect(inv).toMatchObject({ status: 'open', attempt_count: 1, failed_attempts: 1 });
  return { customer, subscription: sub.id as string, invoice: inv.id as string };
}

const ROUTES: CrashRoute[] = [
  {
    name: 'POST /v1/subscriptions',
    setup: async (c, key) => ({
      customer: (await post(c, key, '/v1/customers', { payment_method: 'pm_card_visa' })).id,
      plan: (await plan(c, key)).id,
    }),
    request: (s) => ({
      method: 'POST',
      path: '/v1/subscriptions',
      body: { customer: s.customer, plan: s.plan },
    }),
    check: async (c, key, _s, answer) => {
      await paidOnce(c, key, `subscription=${answer.id}`, firstInvoice);
    },
  },
  {
    // An upgrade within the period: the prorated difference is charged in the request.
    name: 'POST /v1/subscriptions/{id} (plan upgrade)',
    async setup(c, key) {
      const customer = (await post(c, key, '/v1/customers', { payment_method: 'pm_card_visa' })).id;
      const from = (await plan(c, key)).id;
      const to = (
        await post(c, key, '/v1/plans', { name: 'Pro', amount: 4900, currency: 'usd', interval: 'month' })
      ).id;
      const sub = await post(c, key, '/v1/subscriptions', { customer, plan: from });
      await paidOnce(c, key, `subscription=${sub.id}`, firstInvoice);
      return { subscription: sub.id, from, to };
    },
    request: (s) => ({ method: 'POST', path: `/v1/subscriptions/${s.subscription}`, body: { plan: s.to } }),
    async check(c, key, s) {
      const which = `subscription=${s.subscription}`;
      const updates = ((await get(c, key, `/v1/invoices?${which}`)).data as Json[]).filter(
        (i) => i.billing_reason === 'subscription_update',
      );
      expect(updates).toHaveLength(1); // one proration invoice
      const inv = await paidOnce(c, key, which, (list) => list.find((i) => i.id === updates[0]!.id));
      expect(inv.amount_due).toBeGreaterThan(0);
      const sub = await get(c, key, `/v1/subscriptions/${s.subscription}`);
      expect(sub).toMatchObject({ plan: s.to, status: 'active' });
      const changes = (sub.timeline as Json[]).filter((e) => e.type === 'plan_changed');
      expect(changes.map((e) => [e.from, e.to])).toEqual([[s.from, s.to]]);
    },
  },
  {
    // Paid by hand after a declined charge: the customer's card is good again (changed without the
    // API's at-once retry), and nothing else charges the invoice meanwhile.
    name: 'POST /v1/invoices/{id}/pay',
    async setup(c, key) {
      const s = await declinedFirstInvoice(c, key);
      expect(await c.ask('customerCard', { customer: s.customer, payment_method: 'pm_card_visa' })).toBe(
        true,
      );
      return s;
    },
    request: (s) => ({ method: 'POST', path: `/v1/invoices/${s.invoice}/pay`, body: {} }),
    async check(c, key, s) {
      const inv = await paidOnce(c, key, `subscription=${s.subscription}`, firstInvoice);
      expect(inv.attempt_count).toBe(2); // the declined one and one new payment
      expect(await get(c, key, `/v1/subscriptions/${s.subscription}`)).toMatchObject({ status: 'active' });
    },
  },
  {
    // A new payment method retries the declined invoice at once, within the request: once the
    // retried request has answered, the invoice is paid (not later).
    name: 'POST /v1/customers/{id} (new payment method)',
    setup: declinedFirstInvoice,
    request: (s) => ({
      method: 'POST',
      path: `/v1/customers/${s.customer}`,
      body: { payment_method: 'pm_card_visa' },
    }),
    async check(c, key, s) {
      const now = await get(c, key, `/v1/invoices/${s.invoice}`);
      expect(now.status).toBe('paid');
      const inv = await paidOnce(c, key, `subscription=${s.subscription}`, firstInvoice);
      expect(inv.attempt_count).toBe(2);
      expect(await get(c, key, `/v1/subscriptions/${s.subscription}`)).toMatchObject({ status: 'active' });
    },
  },
];

describeCrashes(
  'exactly once in billing under crashes: the charging routes killed at any write and retried',
  ROUTES,
  { dirPrefix: 'paystep-crash-billing-', runs: () => RUNS, timeoutMs: (n) => 40_000 + n * 30_000 },
);
