/**
 * The dispute side of the Stripe simulator, through the real `stripe` SDK (the payment adapter to
 * pay, StripeDisputes to answer): Stripe's dispute test cards, evidence test strings
 * (`winning_evidence`, `losing_evidence`, `escalate_inquiry_evidence`), closing (accepting),
 * the events and balance transactions each produces, and a pending dispute surviving a restart.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StripeDisputes } from '../../lambdas/connectors/stripe/disputes.ts';
import { StripeAdapter } from '../../lambdas/connectors/stripe/adapter.ts';
import { ProcessorRequestError } from '../../lambdas/connectors/types.ts';
import { StripeSimulator, type StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';

const KEY = 'sk_test_paystep_disputes';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Stripe objects are checked by assertions
type Obj = Record<string, any>;

let dir: string;
let sim: StripeSimulator;
let url: string;
let events: StripeEvent[];
let seq = 0;

const pay = async (paymentMethod: string, captureMethod: 'automatic' | 'manual' = 'automatic') => {
  const a = new StripeAdapter({ secretKey: KEY, apiBase: url, maxNetworkRetries: 0 });
  seq++;
  const r = await a.authorize({
    paymentId: `pay_sim_${seq}`,
    merchantId: 'mch_sim',
    amount: 2000,
    currency: 'usd',
    paymentMethod,
    captureMethod,
    idempotencyKey: randomUUID(),
  });
  if (r.outcome !== 'captured' && r.outcome !== 'authorized') throw new Error(r.outcome);
  return { a, pi: r.processorReference };
};
const disputes = () => new StripeDisputes({ secretKey: KEY, apiBase: url, maxNetworkRetries: 0 });

async function until<T>(fn: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
const disputeOf = (pi: string) => until(() => sim.disputes({ payment_intent: pi })[0]);
const typesOf = (id: string) => events.filter((e) => e.data.object.id === id).map((e) => e.type);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sim-disputes-'));
  events = [];
  sim = new StripeSimulator({
    dataDir: dir,
    onEvent: (e) => void events.push(e),
    disputes: { createDelayMs: 20, decisionDelayMs: 20 },
  });
  url = await sim.start();
});
afterAll(async () => {
  await sim.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('pm_card_createDispute: a Stripe-shaped chargeback, funds and fee withdrawn, after the delay', async () => {
  const before = Date.now();
  const { pi } = await pay('pm_card_createDispute');
  const d: Obj = await disputeOf(pi);
  const charge = sim.paymentIntent(pi)!.latest_charge as string;
  expect(d).toMatchObject({
    object: 'dispute',
    amount: 2000,
    currency: 'usd',
    charge,
    payment_intent: pi,
    reason: 'fraudulent',
    status: 'needs_response',
    is_charge_refundable: false,
    livemode: false,
    payment_method_details: { type: 'card', card: { brand: 'visa', case_type: 'chargeback' } },
    evidence_details: { has_evidence: false, submission_count: 0, past_due: false },
  });
  expect(d.id).toMatch(/^dp_[0-9A-Za-z]{24}$/);
  expect(d.evidence_details.due_by).toBe(d.created + 7 * 86400);
  expect(d.evidence.uncategorized_text).toBeNull();
  expect(d.created * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  expect(d.balance_transactions).toEqual([
    expect.objectContaining({
      amount: -2000,
      fee: 1500,
      net: -3500,
      reporting_category: 'dispute',
      source: d.id,
    }),
  ]);
  expect(sim.charge(charge)!.disputed).toBe(true);
  await until(() => typesOf(d.id).length === 2 || undefined);
  expect(typesOf(d.id)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn']);
  // Readable through the API as well.
  expect(await disputes().retrieve(d.id)).toMatchObject({ id: d.id, status: 'needs_response' });
});

test('winning_evidence: under_review at once, then won with funds and fee reinstated', async () => {
  const { pi } = await pay('pm_card_createDisputeProductNotReceived');
  const d: Obj = await disputeOf(pi);
  expect(d.reason).toBe('product_not_received');
  const updated: Obj = await disputes().submitEvidence(
    d.id,
    { uncategorized_text: 'winning_evidence', product_description: 'Lamp, delivered 2 May' },
    true,
    randomUUID(),
  );
  expect(updated).toMatchObject({
    status: 'under_review',
    evidence: { uncategorized_text: 'winning_evidence', product_description: 'Lamp, delivered 2 May' },
    evidence_details: { has_evidence: true, submission_count: 1 },
  });
  const won: Obj = await until(() => (sim.dispute(d.id)!.status === 'won' ? sim.dispute(d.id) : undefined));
  expect(won.is_charge_refundable).toBe(true);
  expect(won.balance_transactions.map((t: Obj) => [t.amount, t.fee, t.reporting_category])).toEqual([
    [-2000, 1500, 'dispute'],
    [2000, -1500, 'dispute_reversal'],
  ]);
  await until(() => typesOf(d.id).length === 5 || undefined);
  expect(typesOf(d.id)).toEqual([
    'charge.dispute.created',
    'charge.dispute.funds_withdrawn',
    'charge.dispute.updated',
    'charge.dispute.funds_reinstated',
    'charge.dispute.closed',
  ]);
  // Closed: no more evidence.
  await expect(
    disputes().submitEvidence(d.id, { uncategorized_text: 'x' }, true, randomUUID()),
  ).rejects.toThrow(ProcessorRequestError);
});

test('losing_evidence → lost; plain evidence stays under_review until closeDispute()', async () => {
  const { pi } = await pay('pm_card_createDispute');
  const d: Obj = await disputeOf(pi);
  await disputes().submitEvidence(d.id, { uncategorized_text: 'losing_evidence' }, true, randomUUID());
  await until(() => (sim.dispute(d.id)!.status === 'lost' ? true : undefined));
  expect(sim.dispute(d.id)!.balance_transactions).toHaveLength(1);

  const { pi: pi2 } = await pay('pm_card_createDispute');
  const d2: Obj = await disputeOf(pi2);
  await disputes().submitEvidence(d2.id, { customer_name: 'A. Customer' }, true, randomUUID());
  await new Promise((r) => setTimeout(r, 60));
  expect(sim.dispute(d2.id)!.status).toBe('under_review');
  expect(sim.closeDispute(d2.id, 'won').status).toBe('won');
  expect(() => sim.closeDispute(d2.id, 'lost')).toThrow(/already won/);
});

test('staged evidence (submit=false) keeps needs_response; unknown evidence fields are refused', async () => {
  const { pi } = await pay('pm_card_createDispute');
  const d: Obj = await disputeOf(pi);
  const staged: Obj = await disputes().submitEvidence(d.id, { receipt: 'file_123' }, false, randomUUID());
  expect(staged).toMatchObject({
    status: 'needs_response',
    evidence_details: { has_evidence: true, submission_count: 0 },
  });
  const res = await fetch(`${url}/v1/disputes/${d.id}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'evidence[card_number]=4242',
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as Obj).error).toMatchObject({
    code: 'parameter_unknown',
    param: 'evidence[card_number]',
  });
});

test('close (accept): needs_response → lost, once; the same idempotency key replays', async () => {
  const { pi } = await pay('pm_card_createDispute');
  const d: Obj = await disputeOf(pi);
  const key = randomUUID();
  expect(await disputes().close(d.id, key)).toMatchObject({ status: 'lost' });
  expect(await disputes().close(d.id, key)).toMatchObject({ status: 'lost' });
  await expect(disputes().close(d.id, randomUUID())).rejects.toThrow(ProcessorRequestError);
  await until(() => typesOf(d.id).includes('charge.dispute.closed') || undefined);
  expect(typesOf(d.id).filter((t) => t === 'charge.dispute.closed')).toHaveLength(1);
});

test('pm_card_createDisputeInquiry: an inquiry, nothing withdrawn; escalate_inquiry_evidence makes it a chargeback', async () => {
  const { pi } = await pay('pm_card_createDisputeInquiry');
  const d: Obj = await disputeOf(pi);
  expect(d).toMatchObject({
    status: 'warning_needs_response',
    balance_transactions: [],
    is_charge_refundable: true,
    payment_method_details: { card: { case_type: 'inquiry' } },
  });
  await until(() => typesOf(d.id).length === 1 || undefined);
  expect(typesOf(d.id)).toEqual(['charge.dispute.created']);
  const r: Obj = await disputes().submitEvidence(
    d.id,
    { uncategorized_text: 'escalate_inquiry_evidence' },
    true,
    randomUUID(),
  );
  expect(r.status).toBe('warning_under_review');
  const esc: Obj = await until(() =>
    sim.dispute(d.id)!.status === 'needs_response' ? sim.dispute(d.id) : undefined,
  );
  expect(esc.payment_method_details.card.case_type).toBe('chargeback');
  expect(esc.balance_transactions).toEqual([expect.objectContaining({ amount: -2000, fee: 1500 })]);
  await until(() => typesOf(d.id).length === 4 || undefined);
  expect(typesOf(d.id)).toEqual([
    'charge.dispute.created',
    'charge.dispute.updated',
    'charge.dispute.updated',
    'charge.dispute.funds_withdrawn',
  ]);

  const { pi: pi2 } = await pay('pm_card_createDisputeInquiry');
  const d2: Obj = await disputeOf(pi2);
  await disputes().submitEvidence(d2.id, { uncategorized_text: 'winning_evidence' }, true, randomUUID());
  await until(() => (sim.dispute(d2.id)!.status === 'warning_closed' ? true : undefined));
  expect(sim.dispute(d2.id)!.balance_transactions).toEqual([]);
});

test('manual capture: the dispute comes only after the capture; paystepPaymentId reads the metadata', async () => {
  const { a, pi } = await pay('pm_card_createDispute', 'manual');
  await new Promise((r) => setTimeout(r, 60));
  expect(sim.disputes({ payment_intent: pi })).toEqual([]);
  await a.capture(pi, undefined, randomUUID());
  const d: Obj = await disputeOf(pi);
  expect(d.amount).toBe(2000);
  expect(await disputes().paystepPaymentId({ paymentIntent: pi })).toBe(`pay_sim_${seq}`);
  expect(await disputes().paystepPaymentId({ charge: d.charge })).toBe(`pay_sim_${seq}`);
  expect(await disputes().paystepPaymentId({ paymentIntent: 'pi_unknown' })).toBeUndefined();
});

test('a pending dispute survives a simulator restart', async () => {
  const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sim-disputes-restart-'));
  let s = new StripeSimulator({ dataDir: d2, disputes: { createDelayMs: 150 } });
  const base = await s.start();
  try {
    const a = new StripeAdapter({ secretKey: KEY, apiBase: base, maxNetworkRetries: 0 });
    const r = await a.authorize({
      paymentId: 'pay_restart',
      merchantId: 'mch_sim',
      amount: 700,
      currency: 'usd',
      paymentMethod: 'pm_card_createDispute',
      captureMethod: 'automatic',
      idempotencyKey: randomUUID(),
    });
    await s.stop();
    s = new StripeSimulator({ dataDir: d2 });
    await s.start(Number(new URL(base).port));
    const restarted = s;
    const d = await until(() => restarted.disputes({ payment_intent: r.processorReference })[0]);
    expect(d).toMatchObject({ amount: 700, status: 'needs_response' });
  } finally {
    await s.stop();
    fs.rmSync(d2, { recursive: true, force: true });
  }
});

test('/_sim/disputes/settings reads and changes the response window (demo data: due in 3 days)', async () => {
  const get = await fetch(`${url}/_sim/disputes/settings`);
  expect(await get.json()).toMatchObject({ createDelayMs: 20, responseWindowSeconds: 7 * 86_400 });
  const set = await fetch(`${url}/_sim/disputes/settings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ responseWindowSeconds: 3 * 86_400 }),
  });
  expect(await set.json()).toMatchObject({ createDelayMs: 20, responseWindowSeconds: 3 * 86_400 });
  const { pi } = await pay('pm_card_createDispute');
  const d: Obj = await disputeOf(pi);
  const details = d.evidence_details as { due_by: number };
  expect(details.due_by - (d.created as number)).toBe(3 * 86_400);
  const bad = await fetch(`${url}/_sim/disputes/settings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ responseWindow: 1 }),
  });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toEqual({ error: 'unknown dispute setting: responseWindow' });
  sim.configureDisputes({ responseWindowSeconds: 7 * 86_400 });
});
