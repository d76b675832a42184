/**
 * Disputes on the embedded runtime with the Stripe simulator: a `pm_card_createDispute*` payment is
 * disputed; the simulator's `charge.dispute.*` events reach `handleDisputeEvent` through an in-test
 * forwarder (and through webhook ingestion where the runtime delivers them too: both paths are
 * idempotent, so the tests hold either way); the dispute workflow reminds before
 * the evidence deadline (time-compressed) and escalates a missed one; evidence and acceptance go
 * through the API to the processor; the payment follows (disputed → captured | charged_back).
 *
 * Time: the simulator's evidence window is set to 4 days, so the reminder point (deadline − 3 days)
 * is a day after the dispute, a second at timeScale 86400; a missed deadline is escalated 4 days
 * (4 s) after the reminder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { disputesToSweep, getDispute, markForSweep } from '../../lambdas/store/disputes.ts';
import { forwardDisputeEvents, type DisputeForwarder } from '../fixtures/dispute-forwarder.ts';
import type { handleDisputeEvent as HandleDisputeEvent } from '../../lambdas/disputes/events.ts';
import type { refreshDispute as RefreshDispute } from '../../lambdas/disputes/sweep.ts';
import type { StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const TIME_SCALE = 86_400;

describe('disputes on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let otherKey: string;
  let forwarder: DisputeForwarder;
  let escalationPayment: Json;
  // Imported once the runtime has set the environment (log level, endpoints), as a handler would be.
  let handleDisputeEvent: typeof HandleDisputeEvent;
  let refreshDispute: typeof RefreshDispute;

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
  const pay = async (pm: string, amount = 1050) => {
    const r = await call('POST', '/v1/payments', { amount, currency: 'usd', payment_method: pm });
    expect(r.body.status).toBe('captured');
    return r.body;
  };
  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 6000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const disputeOf = (paymentId: string) =>
    until(`a dispute on ${paymentId}`, async () => {
      const r = await call('GET', `/v1/disputes?payment=${paymentId}`);
      return r.body.data?.[0] as Json | undefined;
    });
  const getDisputeApi = async (id: string) => (await call('GET', `/v1/disputes/${id}`)).body;
  const disputeWhere = (id: string, what: string, pred: (d: Json) => boolean, ms?: number) =>
    until(
      what,
      async () => {
        const d = await getDisputeApi(id);
        return pred(d) ? d : undefined;
      },
      ms,
    );
  const paymentWhere = (id: string, status: string) =>
    until(`payment ${id} ${status}`, async () => {
      const r = await call('GET', `/v1/payments/${id}`);
      return r.body.status === status ? r.body : undefined;
    });
  const timeline = async (paymentId: string) =>
    (await call('GET', `/v1/payments/${paymentId}/timeline`)).body;
  const statesEntered = async (disputeId: string) => {
    const d = await getDispute(disputeId);
    const exec = await rt.stepFunctions.waitForExecution(d!.execution_arn, 8000);
    const names = rt.stepFunctions
      .getExecutionHistory({ executionArn: d!.execution_arn, maxResults: 1000 })
      .events.filter((e) => e.type.endsWith('StateEntered'))
      .map((e) => (e.stateEnteredEventDetails as { name: string }).name);
    return { status: exec.status, names };
  };
  /** The dispute's workflow has been started (it is, right after the dispute is recorded). */
  const workflowStarted = (id: string) =>
    until(`the workflow of ${id}`, async () => (await getDispute(id))?.workflow_started);
  const disputeEvents = (processorReference: string): StripeEvent[] =>
    rt
      .stripe!.events()
      .filter((e) => e.type.startsWith('charge.dispute.') && e.data.object.id === processorReference);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-disputes-'));
    process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES = 'KP';
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: TIME_SCALE, scheduler: false });
    rt.stripe!.configureDisputes({
      createDelayMs: 50,
      decisionDelayMs: 150,
      responseWindowSeconds: 4 * 86400,
    });
    ({ handleDisputeEvent } = await import('../../lambdas/disputes/events.ts'));
    ({ refreshDispute } = await import('../../lambdas/disputes/sweep.ts'));
    key = (await createMerchant('Acme')).apiKey;
    otherKey = (await createMerchant('Other')).apiKey;
    // The forwarder: every simulator dispute event, in order, to the entry point webhook ingestion calls.
    forwarder = await forwardDisputeEvents(rt);
    // Left without an answer: escalated after the deadline (checked by the last test).
    escalationPayment = await pay('pm_card_createDispute', 3000);
  });
  afterAll(async () => {
    await forwarder?.stop();
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => expect(forwarder.errors).toEqual([]));

  test('a chargeback: payment disputed, reminder before the deadline, evidence wins, payment captured again', async () => {
    const p = await pay('pm_card_createDispute');
    const d = await disputeOf(p.id);
    expect(d).toMatchObject({
      object: 'dispute',
      payment: p.id,
      amount: 1050,
      currency: 'usd',
      reason: 'fraudulent',
      status: 'needs_response',
      is_inquiry: false,
      processor: 'stripe',
      funds_withdrawn_amount: 1050,
      funds_reinstated_amount: 0,
      dispute_fee: 1500,
      reminded_at: null,
    });
    expect(d.id).toMatch(/^dp_[0-9A-Za-z]{22}$/);
    expect(d.processor_reference).toMatch(/^dp_[0-9A-Za-z]{24}$/);
    expect(d.evidence_due_by).toBe(
      (rt.stripe!.dispute(d.processor_reference)! as Json).evidence_details.due_by,
    );
    await paymentWhere(p.id, 'disputed');

    // A day later (a second here), no evidence yet: the merchant is reminded.
    const reminded = await disputeWhere(d.id, 'the reminder', (x) => x.reminded_at !== null);
    expect(reminded.reminded_at).toBeGreaterThanOrEqual(d.created);
    expect(reminded.status).toBe('needs_response');

    // Evidence goes to the processor; the simulator decides for the merchant.
    const bad = await call('POST', `/v1/disputes/${d.id}/evidence`, { evidence: { card_number: '4242' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'parameter_unknown', param: 'evidence.card_number' });
    const ev = await call('POST', `/v1/disputes/${d.id}/evidence`, {
      evidence: { uncategorized_text: 'winning_evidence', product_description: 'Desk lamp, delivered' },
    });
    expect(ev.status).toBe(200);
    // The response is the dispute as it is by then: under review, or decided already.
    expect(['under_review', 'won']).toContain(ev.body.status);
    expect(ev.body).toMatchObject({
      evidence: { uncategorized_text: 'winning_evidence', product_description: 'Desk lamp, delivered' },
      evidence_details: { has_evidence: true, submission_count: 1 },
    });
    expect(rt.stripe!.dispute(d.processor_reference)!.evidence).toMatchObject({
      uncategorized_text: 'winning_evidence',
    });
    const again = await call('POST', `/v1/disputes/${d.id}/evidence`, {
      evidence: { uncategorized_text: 'more' },
    });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('dispute_unexpected_state');

    const won = await disputeWhere(d.id, 'the win', (x) => x.status === 'won');
    expect(won).toMatchObject({
      funds_withdrawn_amount: 1050,
      funds_reinstated_amount: 1050,
      dispute_fee_returned: 1500,
    });
    expect(won.closed_at).toEqual(expect.any(Number));
    await paymentWhere(p.id, 'captured');

    const wf = await statesEntered(d.id);
    expect(wf.status).toBe('SUCCEEDED');
    expect(wf.names).toEqual(
      expect.arrayContaining([
        'Record the dispute',
        'Wait until the reminder point',
        'Remind the merchant',
        'Wait for evidence',
        'Wait for the decision',
        'Record the outcome',
      ]),
    );
    expect(wf.names).not.toContain('Escalate the missed deadline');

    const t = await timeline(p.id);
    expect(t.events.filter((e: Json) => e.type === 'status_changed').map((e: Json) => e.status)).toEqual([
      'captured',
      'disputed',
      'captured',
    ]);
    const disputeEntries = t.events.filter((e: Json) => e.type === 'dispute').map((e: Json) => e.event);
    expect(disputeEntries).toEqual(
      expect.arrayContaining([
        'opened',
        'funds_withdrawn',
        'workflow_started',
        'reminder',
        'evidence_submitted',
        'funds_reinstated',
        'workflow_completed',
      ]),
    );
    expect(disputeEntries.filter((x: string) => x === 'reminder')).toHaveLength(1);
  });

  test('evidence before the reminder point, then lost: charged_back, no reminder', async () => {
    const p = await pay('pm_card_createDisputeProductNotReceived');
    const d = await disputeOf(p.id);
    expect(d.reason).toBe('product_not_received');
    await workflowStarted(d.id);
    const ev = await call('POST', `/v1/disputes/${d.id}/evidence`, {
      evidence: { uncategorized_text: 'losing_evidence' },
    });
    expect(['under_review', 'lost']).toContain(ev.body.status);
    await disputeWhere(d.id, 'the loss', (x) => x.status === 'lost');
    await paymentWhere(p.id, 'charged_back');
    const wf = await statesEntered(d.id);
    expect(wf.status).toBe('SUCCEEDED');
    expect(wf.names).not.toContain('Remind the merchant');
    expect((await getDisputeApi(d.id)).reminded_at).toBeNull();
  });

  test('accepting: accepted at once, payment charged_back; replayed with its key; the close event changes nothing', async () => {
    const p = await pay('pm_card_createDispute');
    const d = await disputeOf(p.id);
    await workflowStarted(d.id);
    const noKey = await call('POST', `/v1/disputes/${d.id}/accept`, undefined, { idem: null });
    expect(noKey.status).toBe(400);
    const idem = randomUUID();
    const a = await call('POST', `/v1/disputes/${d.id}/accept`, undefined, { idem });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ status: 'accepted', funds_withdrawn_amount: 1050 });
    expect(rt.stripe!.dispute(d.processor_reference)!.status).toBe('lost');
    expect((await call('GET', `/v1/payments/${p.id}`)).body.status).toBe('charged_back');
    const replay = await call('POST', `/v1/disputes/${d.id}/accept`, undefined, { idem });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.status).toBe('accepted');
    const twice = await call('POST', `/v1/disputes/${d.id}/accept`);
    expect(twice.status).toBe(400);
    expect(twice.body.error.code).toBe('dispute_unexpected_state');
    // charge.dispute.closed (status lost) arrives afterwards: still accepted.
    await until('the close event', async () =>
      disputeEvents(d.processor_reference).some((e) => e.type === 'charge.dispute.closed'),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect((await getDisputeApi(d.id)).status).toBe('accepted');
    expect((await statesEntered(d.id)).status).toBe('SUCCEEDED');
  });

  test('inquiries move no money; one answered is closed, one escalated becomes a chargeback and is lost', async () => {
    const [p1, p2] = await Promise.all([
      pay('pm_card_createDisputeInquiry'),
      pay('pm_card_createDisputeInquiry'),
    ]);
    const [d1, d2] = await Promise.all([disputeOf(p1.id), disputeOf(p2.id)]);
    await Promise.all([workflowStarted(d1.id), workflowStarted(d2.id)]);
    expect(d1).toMatchObject({
      status: 'warning_needs_response',
      is_inquiry: true,
      funds_withdrawn_amount: 0,
    });
    expect((await call('GET', `/v1/payments/${p1.id}`)).body.status).toBe('captured');

    const a1 = await call('POST', `/v1/disputes/${d1.id}/evidence`, {
      evidence: { uncategorized_text: 'winning_evidence' },
    });
    expect(['warning_under_review', 'warning_closed']).toContain(a1.body.status);
    await disputeWhere(d1.id, 'inquiry closed', (x) => x.status === 'warning_closed');
    expect((await call('GET', `/v1/payments/${p1.id}`)).body.status).toBe('captured');
    const wf1 = await statesEntered(d1.id);
    expect(wf1.status).toBe('SUCCEEDED');
    expect(wf1.names).toContain('Wait until the inquiry reminder point');
    expect(wf1.names).not.toContain('Hold the disputed funds');

    await call('POST', `/v1/disputes/${d2.id}/evidence`, {
      evidence: { uncategorized_text: 'escalate_inquiry_evidence' },
    });
    const esc = await disputeWhere(d2.id, 'escalation', (x) => x.status === 'needs_response');
    expect(esc).toMatchObject({ is_inquiry: false, funds_withdrawn_amount: 1050 });
    await paymentWhere(p2.id, 'disputed');
    rt.stripe!.closeDispute(esc.processor_reference, 'lost');
    await disputeWhere(d2.id, 'the loss', (x) => x.status === 'lost');
    await paymentWhere(p2.id, 'charged_back');
    const wf2 = await statesEntered(d2.id);
    expect(wf2.status).toBe('SUCCEEDED');
    expect(wf2.names).toEqual(
      expect.arrayContaining(['Check the inquiry', 'Hold the disputed funds', 'Record the outcome']),
    );
  });

  test('duplicate, concurrent and out-of-order events never regress the state', async () => {
    // Stripe-shaped events of disputes the simulator does not know (so that only this test delivers
    // them), on real payments, each delivered newest first.
    const disputeEventsFor = async (outcome: 'won' | 'lost') => {
      const p = await pay('pm_card_visa', 2000);
      const pi = rt.stripe!.paymentIntent(p.processor_reference)!;
      const id = `dp_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
      const created = Math.floor(Date.now() / 1000) - 100;
      const txn = (amount: number, fee: number, at: number, category: string) => ({
        id: `txn_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
        object: 'balance_transaction',
        amount,
        fee,
        net: amount - fee,
        currency: 'usd',
        reporting_category: category,
        created: at,
      });
      const withdrawal = txn(-2000, 1500, created, 'dispute');
      const base = {
        id,
        object: 'dispute',
        amount: 2000,
        currency: 'usd',
        charge: pi.latest_charge,
        payment_intent: pi.id,
        reason: 'fraudulent',
        created,
        evidence: { uncategorized_text: null },
        evidence_details: { due_by: created + 7 * 86400, has_evidence: false, submission_count: 0 },
      };
      const open = { ...base, status: 'needs_response', balance_transactions: [withdrawal] };
      const closed = {
        ...base,
        status: outcome,
        balance_transactions:
          outcome === 'won' ? [withdrawal, txn(2000, -1500, created + 50, 'dispute_reversal')] : [withdrawal],
      };
      const events = [
        { type: 'charge.dispute.created', object: open, created },
        { type: 'charge.dispute.funds_withdrawn', object: open, created },
        ...(outcome === 'won'
          ? [{ type: 'charge.dispute.funds_reinstated', object: closed, created: created + 50 }]
          : []),
        { type: 'charge.dispute.closed', object: closed, created: created + 50 },
      ];
      return { p, events };
    };
    const deliver = (e: { type: string; object: Record<string, unknown>; created: number }) =>
      handleDisputeEvent('stripe', e.type, e.object, e.created);

    // Won: the close first (a dispute first seen closed), five times at once; then the older events.
    const won = await disputeEventsFor('won');
    const closed = won.events.at(-1)!;
    const firsts = await Promise.all(Array.from({ length: 5 }, () => deliver(closed)));
    expect(firsts.filter((x) => x === 'applied')).toHaveLength(1);
    expect(firsts.filter((x) => x === 'ignored')).toHaveLength(4);
    expect(await deliver(won.events[0]!)).toBe('ignored'); // created: needs_response < won
    expect(await deliver(won.events[1]!)).toBe('ignored'); // funds_withdrawn: nothing new
    expect(await deliver(won.events[2]!)).toBe('ignored'); // funds_reinstated: the close had it all
    const d = (await call('GET', `/v1/disputes?payment=${won.p.id}`)).body.data[0];
    expect(d).toMatchObject({
      status: 'won',
      funds_withdrawn_amount: 2000,
      funds_reinstated_amount: 2000,
      dispute_fee: 1500,
      dispute_fee_returned: 1500,
    });
    expect((await call('GET', `/v1/payments/${won.p.id}`)).body.status).toBe('captured');
    const seq = (await getDispute(d.id))!.status_seq;

    // Lost, delivered backwards: the payment goes captured → disputed → charged_back in one delivery.
    const lost = await disputeEventsFor('lost');
    expect(await deliver(lost.events.at(-1)!)).toBe('applied');
    for (const e of lost.events.slice(0, -1)) expect(await deliver(e)).toBe('ignored');
    expect((await call('GET', `/v1/payments/${lost.p.id}`)).body.status).toBe('charged_back');
    const lt = await timeline(lost.p.id);
    expect(lt.events.filter((e: Json) => e.type === 'status_changed').map((e: Json) => e.status)).toEqual([
      'captured',
      'disputed',
      'charged_back',
    ]);

    // Every event of both again, in any order: nothing changes.
    for (const e of [...lost.events, ...won.events].reverse()) expect(await deliver(e)).toBe('ignored');
    // An older copy of the object (another delivery time) cannot move the won dispute back.
    expect(
      await deliver({
        ...won.events[0]!,
        type: 'charge.dispute.updated',
        created: won.events[0]!.created - 10,
      }),
    ).toBe('ignored');
    expect((await getDispute(d.id))!.status_seq).toBe(seq);
    expect((await getDisputeApi(d.id)).status).toBe('won');
    // Neither was ever open in paystep: no workflow.
    expect((await getDispute(d.id))!.workflow_started).toBe(false);
  });

  test('unknown payments: parked as unknown_object; PaymentIntents that are not paystep’s are ignored', async () => {
    const stripe = new Stripe('sk_test_paystep_simulator', {
      host: '127.0.0.1',
      port: new URL(rt.stripe!.url).port,
      protocol: 'http',
    });
    const mk = (metadata: Record<string, string>) =>
      stripe.paymentIntents.create({
        amount: 500,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        confirm: true,
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
        metadata,
      });
    const notYet = await mk({ paystep_payment_id: 'pay_NotStoredYet0000000000' });
    const foreign = await mk({});
    const dispute = (pi: string) => ({
      id: `dp_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
      object: 'dispute',
      amount: 500,
      currency: 'usd',
      status: 'needs_response',
      reason: 'general',
      payment_intent: pi,
      charge: null,
      evidence_details: { due_by: Math.floor(Date.now() / 1000) + 86400 },
    });
    const now = Math.floor(Date.now() / 1000);
    expect(await handleDisputeEvent('stripe', 'charge.dispute.created', dispute(notYet.id), now)).toBe(
      'unknown_object',
    );
    expect(await handleDisputeEvent('stripe', 'charge.dispute.created', dispute(foreign.id), now)).toBe(
      'ignored',
    );
    expect(await handleDisputeEvent('stripe', 'charge.refunded', dispute(notYet.id), now)).toBe('ignored');
    expect(await handleDisputeEvent('stripe', 'charge.dispute.created', { object: 'charge' }, now)).toBe(
      'ignored',
    );
  });

  test('merchant scope: another merchant sees 404 and an empty list', async () => {
    const [d] = (await call('GET', '/v1/disputes?limit=1')).body.data as Json[];
    expect(d).toBeDefined();
    expect((await call('GET', `/v1/disputes/${d!.id}`, undefined, { key: otherKey })).status).toBe(404);
    const ev = await call(
      'POST',
      `/v1/disputes/${d!.id}/evidence`,
      { evidence: { customer_name: 'x' } },
      { key: otherKey },
    );
    expect(ev.status).toBe(404);
    expect((await call('POST', `/v1/disputes/${d!.id}/accept`, undefined, { key: otherKey })).status).toBe(
      404,
    );
    const list = await call('GET', `/v1/disputes?payment=${d!.payment}`, undefined, { key: otherKey });
    expect(list.body).toMatchObject({ object: 'list', data: [], has_more: false });
    expect((await call('GET', '/v1/disputes', undefined, { key: otherKey })).body.data).toEqual([]);
    expect((await call('GET', '/v1/disputes/dp_doesnotexist000000000')).status).toBe(404);
    const mine = await call('GET', '/v1/disputes?limit=2');
    expect(mine.body.data).toHaveLength(2);
    expect(mine.body.has_more).toBe(true);
    const next = await call('GET', `/v1/disputes?limit=2&starting_after=${mine.body.data[1].id}`);
    expect(next.body.data.map((x: Json) => x.id)).not.toContain(mine.body.data[0].id);
    expect((await call('GET', '/v1/disputes?limit=0')).status).toBe(400);
  });

  test('no answer by the deadline: reminded, then escalated; a later loss still charges back', async () => {
    const d = await disputeOf(escalationPayment.id);
    const escalated = await disputeWhere(d.id, 'the escalation', (x) => x.escalations.length > 0, 9000);
    expect(escalated.reminded_at).not.toBeNull();
    expect(escalated.escalations).toEqual([{ at: expect.any(Number), reason: 'deadline_passed' }]);
    expect(escalated.status).toBe('needs_response');
    const t = await timeline(escalationPayment.id);
    expect(t.events.find((e: Json) => e.type === 'dispute' && e.event === 'escalated')).toMatchObject({
      dispute: d.id,
      reason: 'deadline_passed',
    });
    rt.stripe!.closeDispute(d.processor_reference, 'lost');
    await paymentWhere(escalationPayment.id, 'charged_back');
    const wf = await statesEntered(d.id);
    expect(wf.status).toBe('SUCCEEDED');
    expect(wf.names).toEqual(
      expect.arrayContaining([
        'Remind the merchant',
        'Escalate the missed deadline',
        'Wait for the decision',
      ]),
    );

    // The sweeper's hook: a dispute handed over is refreshed from the processor; closed, it leaves the list.
    await markForSweep(d.id, 'no_decision', Math.floor(Date.now() / 1000));
    expect((await disputesToSweep()).map((x) => x.dispute_id)).toContain(d.id);
    expect(await refreshDispute(d.id)).toBe('ignored'); // already up to date: lost
    expect((await disputesToSweep()).map((x) => x.dispute_id)).not.toContain(d.id);
    expect((await getDisputeApi(d.id)).status).toBe('lost');
  });
});
