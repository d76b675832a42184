/**
 * The Adyen connector end to end against the Adyen simulator (lib/local/processors/adyen/): the
 * adapter with the real `@adyen/api-library` and the connector's transport, the simulator's signed
 * notifications verified and parsed by the connector into facts, `retrieve` answered from those
 * facts, paystep's test payment methods behaving as documented, disputes, faults, and the
 * simulator's Settlement details report read by the connector's importer.
 */
import { AdyenAdapter, type AdyenStateSource } from '../../lambdas/connectors/adyen/adapter.ts';
import { parseAdyenNotification } from '../../lambdas/connectors/adyen/notifications.ts';
import { AdyenSettlementReader } from '../../lambdas/connectors/adyen/settlement.ts';
import type { ConnectorFact, DisputeFact } from '../../lambdas/connectors/facts.ts';
import { ProcessorUnavailableError, type AuthorizeRequest } from '../../lambdas/connectors/types.ts';
import type { SettlementItem } from '../../lambdas/reconciliation/types.ts';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';

const MERCHANT = 'PaystepConnectorTest';
const API_KEY = 'AQE_test_paystep_connector';
const HMAC_KEY = '7A1D0C3B5E9F2468ACE13579BDF02468ACE13579BDF02468ACE13579BDF02468';

/** What paystep's webhook route and stores would keep: facts stored once, payments by reference. */
const facts = new Map<string, ConnectorFact>();
const payments = new Map<
  string,
  { paymentId: string; amount: number; currency: string; captureMethod: 'automatic' | 'manual' }
>();
const waiters: { pred: (f: ConnectorFact) => boolean; resolve: (f: ConnectorFact) => void }[] = [];
let rejectedBatches = 0;
let lastRaw = '';

function receive(raw: string): { status: number; body: string } {
  lastRaw = raw;
  const parsed = parseAdyenNotification(raw, { hmacKeys: [HMAC_KEY], merchantAccounts: [MERCHANT] });
  for (const f of parsed.facts) {
    if (facts.has(f.id)) continue;
    facts.set(f.id, f);
    for (const w of waiters.splice(0)) (w.pred(f) ? w.resolve : () => waiters.push(w))(f);
  }
  if (!parsed.response) rejectedBatches++;
  return parsed.response ? { status: 200, body: parsed.response } : { status: 401, body: 'unauthorized' };
}

function fact<K extends ConnectorFact['kind']>(
  kind: K,
  pred: (f: Extract<ConnectorFact, { kind: K }>) => boolean,
): Promise<Extract<ConnectorFact, { kind: K }>> {
  const test = (f: ConnectorFact) => f.kind === kind && pred(f as Extract<ConnectorFact, { kind: K }>);
  const found = [...facts.values()].find(test);
  if (found) return Promise.resolve(found as Extract<ConnectorFact, { kind: K }>);
  return new Promise((resolve) =>
    waiters.push({ pred: test, resolve: resolve as (f: ConnectorFact) => void }),
  );
}

const state: AdyenStateSource = {
  payment: async (psp) => payments.get(psp),
  facts: async (psp) =>
    [...facts.values()].filter(
      (f) => f.reference === psp || ('paymentReference' in f && f.paymentReference === psp),
    ),
};

let sim: AdyenSimulator;
let adapter: AdyenAdapter;
let base: string;

beforeAll(async () => {
  sim = new AdyenSimulator({
    hmacKeyHex: HMAC_KEY,
    merchantAccount: MERCHANT,
    apiKey: API_KEY,
    timeScale: 1_000_000,
    settlementEveryMs: 0,
    delays: { defensePeriod: 1e15 },
    notify: { callback: (raw) => receive(raw) },
  });
  base = await sim.start(0);
  adapter = new AdyenAdapter({
    apiKey: API_KEY,
    merchantAccount: MERCHANT,
    apiBase: base,
    timeoutMs: 3000,
    returnUrl: 'https://shop.example/return',
    state,
  });
});

afterAll(async () => {
  await sim.stop();
});

afterEach(() => {
  sim.faults.reset();
});

let seq = 0;
function request(over: Partial<AuthorizeRequest> = {}): AuthorizeRequest {
  seq++;
  return {
    paymentId: `pay_sim_${seq}_${Date.now().toString(36)}`,
    merchantId: 'mch_sim',
    amount: 1000,
    currency: 'eur',
    paymentMethod: 'pm_card_visa',
    captureMethod: 'automatic',
    idempotencyKey: `pay_sim_${seq}:authorize:1`,
    ...over,
  };
}

/** Authorizes and records the payment as paystep would (for capture, refund and retrieve). */
async function pay(over: Partial<AuthorizeRequest> = {}) {
  const req = request(over);
  const r = await adapter.authorize(req);
  if ('processorReference' in r && r.processorReference)
    payments.set(r.processorReference, {
      paymentId: req.paymentId,
      amount: req.amount,
      currency: req.currency,
      captureMethod: req.captureMethod,
    });
  return { req, r };
}

describe('payments on the simulator', () => {
  test('pm_card_visa, automatic capture: captured with its card; the AUTHORISATION fact agrees', async () => {
    const { r } = await pay();
    expect(r).toMatchObject({
      outcome: 'captured',
      amountCaptured: 1000,
      card: { brand: 'visa', last4: '1111', exp_month: 3, exp_year: 2030 },
      analytics: { bin: '411111' },
    });
    const psp = (r as { processorReference: string }).processorReference;
    const auth = await fact('payment', (f) => f.reference === psp && f.event === 'authorised');
    expect(auth).toMatchObject({ success: true, amount: { value: 1000, currency: 'eur' } });
    expect(await adapter.retrieve(psp)).toMatchObject({ status: 'captured', amountCaptured: 1000 });
  });

  test.each([
    ['pm_card_visa_chargeDeclinedInsufficientFunds', 'insufficient_funds', 'soft_decline'],
    ['pm_card_chargeDeclinedExpiredCard', 'expired_card', 'hard_decline'],
    ['pm_card_chargeDeclinedIncorrectCvc', 'incorrect_cvc', 'hard_decline'],
    ['pm_card_chargeDeclinedFraudulent', 'fraudulent', 'fraud'],
    ['pm_card_chargeDeclinedProcessingError', 'processing_error', 'technical'],
    ['pm_card_visa_chargeDeclined', 'generic_decline', 'soft_decline'],
  ])('%s declines as %s (the same code as on Stripe)', async (paymentMethod, code, category) => {
    const { r } = await pay({ paymentMethod });
    expect(r).toMatchObject({ outcome: 'declined', failure: { code, category } });
  });

  test('the same idempotency key replays the first answer: one payment', async () => {
    const req = request();
    const a = await adapter.authorize(req);
    const b = await adapter.authorize(req);
    expect(b).toEqual(a);
  });

  test('manual capture, a partial capture and a refund settle by notification', async () => {
    const { req, r } = await pay({ captureMethod: 'manual', amount: 2000 });
    expect(r.outcome).toBe('authorized');
    const psp = (r as { processorReference: string }).processorReference;
    await fact('payment', (f) => f.reference === psp && f.event === 'authorised');
    expect(await adapter.retrieve(psp)).toMatchObject({ status: 'authorized' });

    const c = await adapter.capture(psp, 1500, `${req.paymentId}:capture`);
    expect(c).toMatchObject({ rawStatus: 'received', pending: true, amountCaptured: 1500 });
    await fact('payment', (f) => f.reference === psp && f.event === 'captured');
    expect(await adapter.retrieve(psp)).toMatchObject({ status: 'captured', amountCaptured: 1500 });

    const refund = await adapter.refund(psp, 500, `re_${seq}:refund`, 'requested_by_customer');
    expect(refund).toMatchObject({ status: 'pending', amount: 500 });
    await fact('refund', (f) => f.reference === refund.refundReference);
    expect(await adapter.retrieveRefund(refund.refundReference)).toEqual({
      refundReference: refund.refundReference,
      status: 'succeeded',
      amount: 500,
    });
    expect(await adapter.retrieve(psp)).toMatchObject({ amountRefunded: 500 });
  });

  test('cancel an authorization; a refund that fails at the scheme (pm_card_refundFail)', async () => {
    const { req, r } = await pay({ captureMethod: 'manual' });
    const psp = (r as { processorReference: string }).processorReference;
    expect(await adapter.cancel(psp, `${req.paymentId}:cancel`)).toMatchObject({ rawStatus: 'received' });
    await fact('payment', (f) => f.reference === psp && f.event === 'canceled');
    expect(await adapter.retrieve(psp)).toMatchObject({ status: 'canceled' });

    const failing = await pay({ paymentMethod: 'pm_card_refundFail' });
    const p2 = (failing.r as { processorReference: string }).processorReference;
    const refund = await adapter.refund(p2, 400, `re_fail_${seq}:refund`);
    await fact('refund', (f) => f.reference === refund.refundReference && f.event === 'failed');
    expect(await adapter.retrieveRefund(refund.refundReference)).toMatchObject({ status: 'failed' });
  });

  test('3-D Secure: requires_action with the simulator page, then completed with the redirectResult', async () => {
    const { req, r } = await pay({
      paymentMethod: 'pm_card_authenticationRequired',
      captureMethod: 'manual',
    });
    expect(r).toMatchObject({ outcome: 'requires_action', rawStatus: 'RedirectShopper' });
    const url = (r as { nextActionUrl?: string }).nextActionUrl!;
    expect(url).toContain('/_sim/3ds/');
    const answer = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outcome: 'authenticated' }),
    });
    const { redirectResult } = (await answer.json()) as { redirectResult: string };
    const done = await adapter.completeRedirect(redirectResult, req);
    expect(done).toMatchObject({ outcome: 'authorized' });
  });

  test('a dispute: pm_card_createDispute is charged back with Visa 10.4', async () => {
    const { r } = await pay({ paymentMethod: 'pm_card_createDispute' });
    const psp = (r as { processorReference: string }).processorReference;
    const notice = (await fact(
      'dispute',
      (f) => f.paymentReference === psp && f.event === 'notification_of_chargeback',
    )) as DisputeFact;
    expect(notice).toMatchObject({ money: 'none', reasonCode: '10.4' });
    const cb = await fact('dispute', (f) => f.paymentReference === psp && f.event === 'chargeback');
    expect(cb).toMatchObject({
      money: 'withdrawn',
      reference: notice.reference,
      amount: { value: 1000, currency: 'eur' },
    });
  });

  test('faults: down, error and a timeout after processing are unknown outcomes; the retry gets the answer', async () => {
    sim.faults.set({ mode: 'down' });
    await expect(adapter.authorize(request())).rejects.toBeInstanceOf(ProcessorUnavailableError);
    sim.faults.set({ mode: 'error' });
    await expect(adapter.authorize(request())).rejects.toBeInstanceOf(ProcessorUnavailableError);
    const req = request();
    sim.faults.set({ mode: 'timeout-after-processing', count: 1 });
    const quick = new AdyenAdapter({
      apiKey: API_KEY,
      merchantAccount: MERCHANT,
      apiBase: base,
      timeoutMs: 300,
      returnUrl: 'https://shop.example/return', // the same request body, so the key replays it
      state,
    });
    await expect(quick.authorize(req)).rejects.toBeInstanceOf(ProcessorUnavailableError);
    sim.faults.reset();
    const retried = await adapter.authorize(req);
    expect(retried.outcome).toBe('captured');
  });

  test("a forged copy of the simulator's last notification is rejected", () => {
    const body = JSON.parse(lastRaw) as {
      notificationItems: { NotificationRequestItem: { amount: { value: number } } }[];
    };
    body.notificationItems[0]!.NotificationRequestItem.amount.value += 100_00;
    const forged = parseAdyenNotification(JSON.stringify(body), { hmacKeys: [HMAC_KEY] });
    expect(forged.response).toBeNull();
    expect(forged.items[0]).toMatchObject({ verified: false, rejection: 'bad_signature' });
    expect(parseAdyenNotification(lastRaw, { hmacKeys: [HMAC_KEY] }).response).toBe('[accepted]');
  });

  test('every notification the simulator sent verified (none rejected)', () => {
    expect(rejectedBatches).toBe(0);
    expect(facts.size).toBeGreaterThan(10);
  });
});

describe('settlement', () => {
  test("the simulator's Settlement details report reads into items that add up to its payout", async () => {
    const captured = await pay({ amount: 2500 });
    const psp = (captured.r as { processorReference: string }).processorReference;
    const [batch] = sim.settleBatch();
    expect(batch).toBeDefined();
    const reader = new AdyenSettlementReader();
    const items: SettlementItem[] = [];
    for await (const b of reader.items([batch!.csv])) items.push(...b);
    const charge = items.find((i) => i.reference === psp && i.type === 'charge');
    expect(charge).toMatchObject({ gross: 2500, currency: 'eur', processor: 'adyen' });
    expect(charge!.fee).toBeGreaterThan(0);
    expect(charge!.net).toBe(charge!.gross - charge!.fee);
    expect(items.some((i) => i.type === 'dispute')).toBe(true);
    expect(items.some((i) => i.type === 'refund')).toBe(true);
    const payout = reader.payouts.find((p) => p.currency === 'eur')!;
    expect(payout.payout_id).toBe(`${MERCHANT}-${batch!.number}-EUR`);
    const net = items
      .filter((i) => i.payout_id === payout.payout_id && i.type !== 'payout')
      .reduce((s, i) => s + i.net, 0);
    expect(payout.amount).toBe(net);
    expect(items.every((i) => i.payout_date === payout.payout_date)).toBe(true);
  });
});
