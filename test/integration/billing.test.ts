/**
 * Subscriptions and billing on the embedded runtime with the Stripe simulator (docs/billing.md):
 * customers, plans, subscriptions billed one execution per period, renewals as ordinary payments,
 * decline-aware dunning, a new payment method paying at once, cancel at period end, idempotent
 * POSTs, merchant isolation and field-naming 400s.
 *
 * Time: timeScale 86400, so a daily period passes in about a second and a dunning retry days
 * away in a few seconds. The tests wait for states (polling the API), never for fixed times.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const TIME_SCALE = 86_400;

describe('billing on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let otherKey: string;

  const call = async (
    method: string,
    p: string,
    body?: unknown,
    opts: { key?: string; idem?: string | null } = {},
  ) => {
    const headers: Record<string, string> = { authorization: `Bearer ${opts.key ?? key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST' && opts.idem !== null) headers['idempotency-key'] = opts.idem ?? randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
  };
  const until = async <T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const invoices = async (sub: string, k = key) =>
    (await call('GET', `/v1/invoices?subscription=${sub}&limit=100`, undefined, { key: k })).body
      .data as Json[];
  const subscription = async (id: string) => (await call('GET', `/v1/subscriptions/${id}`)).body;

  const customer = async (pm: string, extra: Json = {}) => {
    const r = await call('POST', '/v1/customers', { email: 'a@example.com', payment_method: pm, ...extra });
    expect(r.status).toBe(200);
    return r.body;
  };
  const dailyPlan = async (extra: Json = {}) => {
    const r = await call('POST', '/v1/plans', {
      name: 'Daily',
      amount: 500,
      currency: 'usd',
      interval: 'day',
      ...extra,
    });
    expect(r.status).toBe(200);
    return r.body;
  };
  const subscribe = async (cus: string, plan: string, extra: Json = {}) => {
    const r = await call('POST', '/v1/subscriptions', { customer: cus, plan, ...extra });
    expect(r.status).toBe(200);
    return r.body;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-billing-'));
    process.env.PAYSTEP_PROCESSOR_TIMEOUT_MS = '300';
    process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0';
    // Time is compressed but the risk screen's velocity rule counts payments per real hour: a
    // customer's daily renewals would pass its limit (10) within seconds and be held for review.
    process.env.PAYSTEP_RISK_VELOCITY_LIMIT = '100000';
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: TIME_SCALE, scheduler: false });
    key = (await createMerchant('Acme')).apiKey;
    otherKey = (await createMerchant('Other')).apiKey;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a daily plan with pm_card_visa: the first period is charged at once, then one paid invoice per period', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    expect(sub).toMatchObject({ object: 'subscription', status: 'active', customer: cus.id, plan: plan.id });
    const paid = await until('three paid invoices', async () => {
      const list = await invoices(sub.id);
      return list.filter((i) => i.status === 'paid').length >= 3 && list;
    });
    const periods = paid.map((i) => i.period).sort((a, b) => a - b);
    expect(periods.slice(0, 3)).toEqual([0, 1, 2]);
    for (const inv of paid.filter((i) => i.status === 'paid')) {
      expect(inv).toMatchObject({
        amount_due: 500,
        amount_paid: 500,
        attempt_count: 1,
        subscription: sub.id,
      });
      expect(inv.period_end).toBeGreaterThan(inv.period_start);
      const pay = (await call('GET', `/v1/payments/${inv.payment}`)).body;
      expect(pay).toMatchObject({ status: 'captured', amount: 500, channel: 'subscription' });
      expect(pay.metadata).toMatchObject({ invoice: inv.id, subscription: sub.id });
    }
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  const latestFailed = (sub: string) =>
    until(`a failed renewal of ${sub}`, async () =>
      (await invoices(sub)).find((i) => i.failed_attempts >= 1),
    );

  test('insufficient funds: past_due, retries on funding days; the card updated back pays at once and the subscription is active', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    expect(sub.status).toBe('active');
    const switched = await call('POST', `/v1/customers/${cus.id}`, {
      payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds',
    });
    expect(switched.status).toBe(200);
    const failed = await latestFailed(sub.id);
    expect(failed.status).toBe('open');
    expect(failed.attempts[0]).toMatchObject({ outcome: 'failed', code: 'insufficient_funds' });
    expect(failed.attempts[0].next).toMatch(/likely funding day/);
    // The retry is at 14:00 UTC on a funding day at least two days after the attempt.
    const at = new Date(failed.next_attempt_at * 1000);
    expect(at.getUTCHours()).toBe(14);
    expect(failed.next_attempt_at - failed.attempts[0].at).toBeGreaterThanOrEqual(2 * 86_400);
    const day = at.getUTCDate();
    const last = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 0)).getUTCDate();
    expect(day === 1 || day === 15 || day === last || at.getUTCDay() === 5).toBe(true);
    await until('past_due', async () => (await subscription(sub.id)).status === 'past_due');
    const pmEvents = (await call('GET', '/v1/events?type=invoice.payment_failed&limit=100')).body
      .data as Json[];
    await until('invoice.payment_failed', async () =>
      ((await call('GET', '/v1/events?type=invoice.payment_failed&limit=100')).body.data as Json[]).some(
        (e) => e.data.object.id === failed.id,
      ),
    );
    expect(pmEvents).toBeDefined();
    // The second attempt comes when its time has come (scaled), and fails again.
    const retried = await until('the scheduled retry', async () => {
      const inv = (await call('GET', `/v1/invoices/${failed.id}`)).body;
      return inv.attempt_count >= 2 && inv.attempts[1].outcome === 'failed' && inv;
    });
    expect(retried.attempts[1].code).toBe('insufficient_funds');
    // The card is updated back: the invoice is paid in the update's own request.
    const fixed = await call('POST', `/v1/customers/${cus.id}`, { payment_method: 'pm_card_visa' });
    expect(fixed.status).toBe(200);
    const paid = (await call('GET', `/v1/invoices/${failed.id}`)).body;
    expect(paid).toMatchObject({ status: 'paid', amount_paid: 500 });
    expect(paid.timeline.map((e: Json) => e.type)).toEqual(
      expect.arrayContaining(['retry_requested', 'paid']),
    );
    expect((await subscription(sub.id)).status).toBe('active');
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  test('an expired card: no blind retries, customer.payment_method_required, and a new card pays at once', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    await call('POST', `/v1/customers/${cus.id}`, { payment_method: 'pm_card_chargeDeclinedExpiredCard' });
    const failed = await latestFailed(sub.id);
    expect(failed).toMatchObject({ payment_method_required: true, next_attempt_at: null, attempt_count: 1 });
    expect(failed.attempts[0].next).toMatch(/waits for the customer to update their payment method/);
    await until('customer.payment_method_required', async () =>
      (
        (await call('GET', '/v1/events?type=customer.payment_method_required&limit=100')).body.data as Json[]
      ).some((e) => e.data.object.id === failed.id),
    );
    // Three scaled days later, still one attempt: the workflow looked again (daily) without charging.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await call('GET', `/v1/invoices/${failed.id}`)).body.attempt_count).toBe(1);
    expect((await subscription(sub.id)).status).toBe('past_due');
    await call('POST', `/v1/customers/${cus.id}`, { payment_method: 'pm_card_visa' });
    expect((await call('GET', `/v1/invoices/${failed.id}`)).body).toMatchObject({
      status: 'paid',
      attempt_count: 2,
    });
    expect((await subscription(sub.id)).status).toBe('active');
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  test("a merchant's dunning policy: two attempts, then unpaid rather than canceled; bad fields are 400s naming them", async () => {
    const k = (await createMerchant('Strict dunning')).apiKey;
    const as = (method: string, p: string, body?: unknown) => call(method, p, body, { key: k });
    expect((await as('GET', '/v1/billing/dunning_policy')).body).toEqual({
      object: 'dunning_policy',
      max_attempts: 8,
      window_days: 14,
      final_action: 'cancel',
      customized: [],
    });
    for (const [body, param] of [
      [{ max_attempts: 0 }, 'max_attempts'],
      [{ window_days: 90 }, 'window_days'],
      [{ final_action: 'delete' }, 'final_action'],
      [{ retries: 3 }, 'retries'],
    ] as const) {
      const bad = await as('POST', '/v1/billing/dunning_policy', body);
      expect(bad.status).toBe(400);
      expect(bad.body.error.param).toBe(param);
    }
    const set = await as('POST', '/v1/billing/dunning_policy', { max_attempts: 2, final_action: 'unpaid' });
    expect(set.body).toMatchObject({ max_attempts: 2, window_days: 14, final_action: 'unpaid' });
    expect(set.body.customized).toEqual(['max_attempts', 'final_action']);
    // Another merchant keeps the defaults.
    expect((await call('GET', '/v1/billing/dunning_policy')).body.customized).toEqual([]);

    const cus = (await as('POST', '/v1/customers', { payment_method: 'pm_card_visa' })).body;
    const plan = (await as('POST', '/v1/plans', { name: 'D', amount: 700, currency: 'usd', interval: 'day' }))
      .body;
    const sub = (await as('POST', '/v1/subscriptions', { customer: cus.id, plan: plan.id })).body;
    expect(sub.status).toBe('active');
    // A processing error is retried within hours: the two attempts come quickly.
    await as('POST', `/v1/customers/${cus.id}`, { payment_method: 'pm_card_chargeDeclinedProcessingError' });
    const given = await until('the invoice given up after two attempts', async () => {
      const list = (await as('GET', `/v1/invoices?subscription=${sub.id}&limit=100`)).body.data as Json[];
      return list.find((i) => i.status === 'uncollectible');
    });
    expect(given.attempt_count).toBe(2);
    expect(given.attempts.map((a: Json) => a.outcome)).toEqual(['failed', 'failed']);
    // The invoice is given up first, then the subscription follows.
    await until(
      'the subscription unpaid',
      async () => (await as('GET', `/v1/subscriptions/${sub.id}`)).body.status === 'unpaid',
    );
    expect((await as('GET', `/v1/subscriptions/${sub.id}`)).body.canceled_at).toBeNull();
    // Back to the defaults, field by field.
    const reset = await as('POST', '/v1/billing/dunning_policy', { max_attempts: null, final_action: null });
    expect(reset.body).toMatchObject({ max_attempts: 8, final_action: 'cancel', customized: [] });
  });

  test('cancel at period end: the current period stays paid, the next one is not billed, the subscription ends', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    const r = await call('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    expect(r.body).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const ended = await until('the cancellation', async () => {
      const s = await subscription(sub.id);
      return s.status === 'canceled' && s;
    });
    expect(ended.cancellation_reason).toBe('period_end');
    expect((await invoices(sub.id)).map((i) => i.period)).toEqual([0]);
    await until('customer.subscription.deleted', async () =>
      (
        (await call('GET', '/v1/events?type=customer.subscription.deleted&limit=100')).body.data as Json[]
      ).some((e) => e.data.object.id === sub.id),
    );
  });

  test('a renewal payment refunds like any payment', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    const renewal = await until('a paid renewal', async () =>
      (await invoices(sub.id)).find((i) => i.period >= 1 && i.status === 'paid'),
    );
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
    const refund = await call('POST', '/v1/refunds', { payment: renewal.payment });
    expect(refund.status).toBeLessThan(300);
    const refunded = await until('the refund', async () => {
      const p = (await call('GET', `/v1/payments/${renewal.payment}`)).body;
      return p.status === 'refunded' && p;
    });
    expect(refunded).toMatchObject({ amount_refunded: 500, channel: 'subscription' });
  });

  test('every POST is idempotent: the same key twice is one object', async () => {
    const idem = randomUUID();
    const a = await call('POST', '/v1/customers', { payment_method: 'pm_card_visa' }, { idem });
    const b = await call('POST', '/v1/customers', { payment_method: 'pm_card_visa' }, { idem });
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const pk = randomUUID();
    const p1 = await call(
      'POST',
      '/v1/plans',
      { name: 'M', amount: 900, currency: 'usd', interval: 'month' },
      { idem: pk },
    );
    const p2 = await call(
      'POST',
      '/v1/plans',
      { name: 'M', amount: 900, currency: 'usd', interval: 'month' },
      { idem: pk },
    );
    expect(p2.body.id).toBe(p1.body.id);
    // Money-moving: creating a subscription (charges the first period).
    const sk = randomUUID();
    const s1 = await call(
      'POST',
      '/v1/subscriptions',
      { customer: a.body.id, plan: p1.body.id },
      { idem: sk },
    );
    const s2 = await call(
      'POST',
      '/v1/subscriptions',
      { customer: a.body.id, plan: p1.body.id },
      { idem: sk },
    );
    expect(s1.status).toBe(200);
    expect(s2.body.id).toBe(s1.body.id);
    expect((await invoices(s1.body.id)).length).toBe(1);
    const listed = (await call('GET', `/v1/subscriptions?customer=${a.body.id}`)).body.data as Json[];
    expect(listed.map((s) => s.id)).toEqual([s1.body.id]);
    // Money-moving routes refuse a request without a key.
    const nokey = await call(
      'POST',
      '/v1/subscriptions',
      { customer: a.body.id, plan: p1.body.id },
      { idem: null },
    );
    expect(nokey.status).toBe(400);
    expect(nokey.body.error.param).toBe('Idempotency-Key');
    // Money-moving: paying an invoice by hand.
    const cus = await customer('pm_card_chargeDeclinedExpiredCard');
    const s3 = await call('POST', '/v1/subscriptions', { customer: cus.id, plan: p1.body.id });
    expect(s3.body.status).toBe('incomplete');
    const [inv] = await invoices(s3.body.id);
    await call('POST', `/v1/customers/${cus.id}`, {
      payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds',
    });
    const ik = randomUUID();
    const pay1 = await call('POST', `/v1/invoices/${inv!.id}/pay`, undefined, { idem: ik });
    const pay2 = await call('POST', `/v1/invoices/${inv!.id}/pay`, undefined, { idem: ik });
    expect(pay2.body).toEqual(pay1.body);
    expect((await call('GET', `/v1/invoices/${inv!.id}`)).body.attempt_count).toBe(pay1.body.attempt_count);
    // Money-moving: a plan change (prorated charge).
    const up = await call('POST', '/v1/plans', {
      name: 'M+',
      amount: 1800,
      currency: 'usd',
      interval: 'month',
    });
    const ck = randomUUID();
    const c1 = await call('POST', `/v1/subscriptions/${s1.body.id}`, { plan: up.body.id }, { idem: ck });
    const c2 = await call('POST', `/v1/subscriptions/${s1.body.id}`, { plan: up.body.id }, { idem: ck });
    expect(c1.status).toBe(200);
    expect(c2.body).toEqual(c1.body);
    const after = await invoices(s1.body.id);
    const proration = after.filter((i) => i.billing_reason === 'subscription_update');
    expect(proration).toHaveLength(1);
    expect(proration[0]!).toMatchObject({ status: 'paid' });
    expect(proration[0]!.amount_due).toBeGreaterThan(800);
    expect(proration[0]!.amount_due).toBeLessThanOrEqual(900);
    expect(proration[0]!.description).toMatch(/% of the period was left/);
    await call('POST', `/v1/subscriptions/${s1.body.id}/cancel`, {});
    await call('POST', `/v1/subscriptions/${s3.body.id}/cancel`, {});
  });

  test("another merchant's objects are 404s; bad input is a 400 naming the field", async () => {
    const cus = await customer('pm_card_visa');
    const plan = await call('POST', '/v1/plans', {
      name: 'Y',
      amount: 9900,
      currency: 'usd',
      interval: 'year',
    });
    const sub = await subscribe(cus.id, plan.body.id);
    const [inv] = await invoices(sub.id);
    for (const p of [
      `/v1/customers/${cus.id}`,
      `/v1/plans/${plan.body.id}`,
      `/v1/subscriptions/${sub.id}`,
      `/v1/invoices/${inv!.id}`,
    ])
      expect((await call('GET', p, undefined, { key: otherKey })).status).toBe(404);
    expect((await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {}, { key: otherKey })).status).toBe(
      404,
    );
    expect((await call('POST', `/v1/invoices/${inv!.id}/pay`, undefined, { key: otherKey })).status).toBe(
      404,
    );
    expect(
      (await call('GET', `/v1/invoices?subscription=${sub.id}`, undefined, { key: otherKey })).body.data,
    ).toEqual([]);
    const other = await call(
      'POST',
      '/v1/subscriptions',
      { customer: cus.id, plan: plan.body.id },
      { key: otherKey },
    );
    expect(other).toMatchObject({ status: 400, body: { error: { param: 'customer' } } });
    const bad: [string, Json, string][] = [
      ['/v1/plans', { name: 'x', amount: -1, currency: 'usd', interval: 'day' }, 'amount'],
      ['/v1/plans', { name: 'x', amount: 100, currency: 'usd', interval: 'fortnight' }, 'interval'],
      [
        '/v1/plans',
        { name: 'x', amount: 100, currency: 'usd', interval: 'month', interval_count: 13 },
        'interval_count',
      ],
      ['/v1/plans', { amount: 100, currency: 'usd', interval: 'day' }, 'name'],
      ['/v1/customers', { email: 'nope', payment_method: 'pm_card_visa' }, 'email'],
      ['/v1/customers', {}, 'payment_method'],
      ['/v1/subscriptions', { customer: 'cus_x', plan: plan.body.id }, 'customer'],
      ['/v1/subscriptions', { customer: cus.id, plan: plan.body.id, colour: 'red' }, 'colour'],
      [`/v1/subscriptions/${sub.id}/cancel`, { at_period_end: 'yes' }, 'at_period_end'],
    ];
    for (const [p, body, param] of bad) {
      const r = await call('POST', p, body);
      expect({ p, status: r.status, param: r.body.error?.param }).toEqual({ p, status: 400, param });
    }
    const eur = await call('POST', '/v1/plans', {
      name: 'E',
      amount: 100,
      currency: 'eur',
      interval: 'year',
    });
    const change = await call('POST', `/v1/subscriptions/${sub.id}`, { plan: eur.body.id });
    expect(change).toMatchObject({ status: 400, body: { error: { param: 'plan' } } });
    expect((await call('GET', '/v1/invoices?status=late')).body.error.param).toBe('status');
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  test('the CLI lists and shows subscriptions and invoices; an unknown id fails naming it', async () => {
    const { buildProgram } = await import('../../lib/cli/main.ts');
    const cli = async (...args: string[]) => {
      let out = '';
      await buildProgram((str) => (out += str)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
      return JSON.parse(out) as Json;
    };
    const cus = await customer('pm_card_visa');
    const plan = await call('POST', '/v1/plans', {
      name: 'W',
      amount: 300,
      currency: 'usd',
      interval: 'week',
    });
    const sub = await subscribe(cus.id, plan.body.id);
    const merchant = (await cli('subscriptions', 'show', sub.id)).merchant as string;
    expect((await cli('subscriptions', 'show', sub.id)).timeline.map((e: Json) => e.type)).toContain(
      'created',
    );
    expect(
      ((await cli('subscriptions', 'list', '--merchant', merchant, '--customer', cus.id)) as Json[]).map(
        (s) => s.id,
      ),
    ).toEqual([sub.id]);
    const listed = (await cli(
      'invoices',
      'list',
      '--merchant',
      merchant,
      '--subscription',
      sub.id,
    )) as Json[];
    expect(listed).toHaveLength(1);
    expect((await cli('invoices', 'show', listed[0]!.id)).attempts).toHaveLength(1);
    await expect(cli('invoices', 'show', 'in_nope')).rejects.toThrow("no invoice 'in_nope'");
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});

    // The dunning policy through the same service as the API.
    const other = (await createMerchant('CLI dunning')).merchant.id;
    expect(await cli('dunning-policy', 'show', '--merchant', other)).toMatchObject({
      max_attempts: 8,
      customized: [],
    });
    expect(
      await cli(
        'dunning-policy',
        'set',
        '--merchant',
        other,
        '--window-days',
        '21',
        '--final-action',
        'unpaid',
      ),
    ).toMatchObject({ window_days: 21, final_action: 'unpaid', customized: ['window_days', 'final_action'] });
    await expect(cli('dunning-policy', 'set', '--merchant', other)).rejects.toThrow(/nothing to set/);
    await expect(
      cli('dunning-policy', 'set', '--merchant', other, '--final-action', 'delete'),
    ).rejects.toThrow(/delete/);
    expect(await cli('dunning-policy', 'set', '--merchant', other, '--reset')).toMatchObject({
      window_days: 14,
      customized: [],
    });
  });

  test('a plan change whose prorated charge is declined is dunned like a renewal, and a new card pays it', async () => {
    const cus = await customer('pm_card_visa');
    const small = (
      await call('POST', '/v1/plans', { name: 'S', amount: 1000, currency: 'usd', interval: 'month' })
    ).body;
    const big = (
      await call('POST', '/v1/plans', { name: 'B', amount: 4000, currency: 'usd', interval: 'month' })
    ).body;
    const sub = await subscribe(cus.id, small.id);
    expect(sub.status).toBe('active');
    // The card now fails with a processing error (retried within hours): the upgrade's charge fails.
    await call('POST', `/v1/customers/${cus.id}`, {
      payment_method: 'pm_card_chargeDeclinedProcessingError',
    });
    expect((await call('POST', `/v1/subscriptions/${sub.id}`, { plan: big.id })).status).toBe(200);
    const proration = await until('the declined proration invoice', async () =>
      (await invoices(sub.id)).find(
        (i) => i.billing_reason === 'subscription_update' && i.failed_attempts >= 1,
      ),
    );
    expect(proration.status).toBe('open');
    // Dunning retries it on its own (no request asks for it).
    const retried = await until('a dunning retry of the proration invoice', async () => {
      const inv = (await call('GET', `/v1/invoices/${proration.id}`)).body;
      return inv.attempt_count >= 2 && inv;
    });
    expect(retried.attempts[1].outcome).not.toBe('succeeded');
    // A new card pays it at once.
    await call('POST', `/v1/customers/${cus.id}`, { payment_method: 'pm_card_visa' });
    const paid = await until('the proration invoice paid', async () => {
      const inv = (await call('GET', `/v1/invoices/${proration.id}`)).body;
      return inv.status === 'paid' && inv;
    });
    expect(paid.amount_paid).toBe(proration.amount_due);
    // One execution ran its dunning, named after the invoice.
    const run = rt.stepFunctions.describeExecution({
      executionArn: `arn:aws:states:local:000000000000:execution:paystep-billing:${proration.id}`,
    });
    expect(run.name).toBe(proration.id);
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  test('pause skips periods, resume bills again; a plan with another interval starts a new period now', async () => {
    const cus = await customer('pm_card_visa');
    const plan = await dailyPlan();
    const sub = await subscribe(cus.id, plan.id);
    expect((await call('POST', `/v1/subscriptions/${sub.id}/pause`)).body.status).toBe('paused');
    const skipped = await until('a period not billed', async () =>
      ((await subscription(sub.id)).timeline as Json[]).find((e) => e.type === 'period_not_billed'),
    );
    expect(skipped.reason).toBe('the subscription is paused');
    const resumed = (await call('POST', `/v1/subscriptions/${sub.id}/resume`)).body;
    expect(resumed.status).toBe('active');
    const next = await until('a period billed after the resume', async () =>
      (await invoices(sub.id)).find((i) => i.period > skipped.period && i.status === 'paid'),
    );
    expect((await invoices(sub.id)).map((i) => i.period)).not.toContain(skipped.period);
    // Daily → weekly: a new period starts now, invoiced in full less the unused part of the day.
    const weekly = await call('POST', '/v1/plans', {
      name: 'Weekly',
      amount: 2100,
      currency: 'usd',
      interval: 'week',
    });
    const changed = await call('POST', `/v1/subscriptions/${sub.id}`, { plan: weekly.body.id });
    expect(changed.status).toBe(200);
    expect(changed.body.plan).toBe(weekly.body.id);
    expect(changed.body.current_period.index).toBeGreaterThan(next.period);
    expect(changed.body.current_period.end - changed.body.current_period.start).toBe(7 * 86_400);
    const inv = (await invoices(sub.id)).find((i) => i.period === changed.body.current_period.index)!;
    expect(inv).toMatchObject({ billing_reason: 'subscription_update', status: 'paid' });
    expect(inv.amount_due).toBeLessThanOrEqual(2100);
    expect(inv.amount_due).toBeGreaterThanOrEqual(1600);
    expect(inv.description).toMatch(/a new period starts now/);
    await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
  });

  test('the daily subscriptions report: MRR, new and churned subscriptions, and what dunning recovered today', async () => {
    const { runReport } = await import('../../lambdas/reports/daily.ts');
    // The merchant of the tests above: renewals paid, one recovered after insufficient funds,
    // subscriptions canceled on request.
    const someSub = (await call('GET', '/v1/subscriptions?limit=1')).body.data[0] as Json;
    const merchant = (await (
      await import('../../lambdas/store/subscriptions.ts')
    ).getSubscription(someSub.id))!.merchant_id;
    // Two live subscriptions in a currency no other test uses: 30.00 a month and 120.00 a year.
    const cus = await customer('pm_card_visa');
    const monthly = (
      await call('POST', '/v1/plans', { name: 'M', amount: 3000, currency: 'gbp', interval: 'month' })
    ).body;
    const yearly = (
      await call('POST', '/v1/plans', { name: 'Y', amount: 12000, currency: 'gbp', interval: 'year' })
    ).body;
    const live = [await subscribe(cus.id, monthly.id), await subscribe(cus.id, yearly.id)];
    const today = new Date().toISOString().slice(0, 10);
    const files = await runReport('subscriptions', today, { merchant });
    expect(files[0]!.files).toEqual([
      `${merchant}/subscriptions/${today}/subscriptions.csv`,
      `${merchant}/subscriptions/${today}/subscriptions.json`,
    ]);
    const base = path.join(dir, 'buckets', 'paystep-reports', merchant, 'subscriptions', today);
    const json = JSON.parse(fs.readFileSync(path.join(base, 'subscriptions.json'), 'utf8')) as Json;
    const usd = (json.currencies as Json[]).find((r) => r.currency === 'usd')!;
    expect(usd.new).toBeGreaterThanOrEqual(5);
    expect(usd.churned_voluntary).toBeGreaterThanOrEqual(3); // the tests cancel what they made
    expect(usd.recovered_invoices).toBeGreaterThanOrEqual(1);
    expect(usd.recovery.by_decline_code.insufficient_funds.invoices).toBeGreaterThanOrEqual(1);
    expect((json.currencies as Json[]).find((r) => r.currency === 'gbp')).toMatchObject({
      mrr: 4000,
      subscriptions: 2,
      new: 2,
      new_mrr: 4000,
      churned_voluntary: 0,
      churned_involuntary: 0,
    });
    for (const sub of live) await call('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
    const csv = fs.readFileSync(path.join(base, 'subscriptions.csv'), 'utf8').split(/\r?\n/);
    expect(csv[0]).toBe(
      'currency,mrr,subscriptions,new,new_mrr,churned_voluntary,churned_voluntary_mrr,churned_involuntary,churned_involuntary_mrr,recovered_invoices,recovered_amount',
    );
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(expect.arrayContaining(['gbp', 'usd']));
  });

  test('GET /v1/analytics/recovery: the renewals recovered above, by attempt and decline code', async () => {
    const r = await call('GET', '/v1/analytics/recovery');
    expect(r.status).toBe(200);
    const usd = (r.body.data as Json[]).find((x) => x.currency === 'usd')!;
    expect(usd.recovered.invoices).toBeGreaterThanOrEqual(2);
    expect(usd.by_decline_code.insufficient_funds.invoices).toBeGreaterThanOrEqual(1);
    expect(usd.by_decline_code.expired_card.invoices).toBeGreaterThanOrEqual(1);
    expect(
      Object.keys(usd.by_attempt)
        .map(Number)
        .every((n) => n >= 2),
    ).toBe(true);
    expect((await call('GET', '/v1/analytics/recovery', undefined, { key: otherKey })).body.data).toEqual([]);
    expect((await call('GET', '/v1/analytics/recovery?since=1')).body.error.param).toBe('since');
  });
});
