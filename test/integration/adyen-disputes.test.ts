/**
 * Disputes on Adyen, end to end on the local runtime (one runtime for the file): a payment made on
 * Adyen with `pm_card_createDispute` is disputed by the Adyen simulator (NOTIFICATION_OF_CHARGEBACK,
 * CHARGEBACK); the HMAC-signed notifications reach POST /webhooks/adyen and are applied as dispute
 * facts (lambdas/disputes/facts.ts): the dispute is created, the payment disputed, the dispute
 * workflow started. Evidence in paystep's neutral schema goes through POST /v1/disputes/{id}/evidence
 * to Adyen's Disputes API (defense documents + defendDispute, via @adyen/api-library); paystep's
 * test evidence strings decide the outcome as they do on Stripe (`winning_evidence` → won:
 * CHARGEBACK_REVERSED; `losing_evidence` → lost: SECOND_CHARGEBACK). Accepting goes through
 * POST /v1/disputes/{id}/accept (acceptDispute; DISPUTE_DEFENSE_PERIOD_ENDED Accepted follows); a
 * defense period that lapses undefended is lost; an inquiry moves no money.
 * Repeated and reordered notifications change nothing; a retry with the same Idempotency-Key does
 * not reach Adyen again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { listFacts } from '../../lambdas/store/processor-facts.ts';
import { getWebhookEvent } from '../../lambdas/store/webhook-events.ts';
import { getDispute } from '../../lambdas/store/disputes.ts';
import type { DisputeFact } from '../../lambdas/connectors/facts.ts';
import type { applyDisputeFact as ApplyDisputeFact } from '../../lambdas/disputes/facts.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('disputes on Adyen (local runtime)', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let applyDisputeFact: typeof ApplyDisputeFact;

  const call = async (method: string, p: string, body?: unknown, idem: string = randomUUID()) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = idem;
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** Every dispute fact stored for a dispute has been processed. */
  const factsProcessed = async (disputeRef: string, events: string[]) =>
    until(`${events.join(', ')} of ${disputeRef} processed`, async () => {
      const facts = (await listFacts('adyen', disputeRef)).filter(
        (f): f is DisputeFact => f.kind === 'dispute' && f.reference === disputeRef,
      );
      if (!events.every((e) => facts.some((f) => f.raw_event === e))) return undefined;
      for (const f of facts)
        if ((await getWebhookEvent('adyen', f.id))?.status !== 'processed') return undefined;
      return facts;
    });
  /** A captured Adyen payment that the simulator disputes, and its dispute once the funds are withdrawn. */
  const disputedPayment = async (amount: number) => {
    const p = await call('POST', '/v1/payments', {
      amount,
      currency: 'eur',
      payment_method: 'pm_card_createDispute',
      processor: 'adyen',
    });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ status: 'captured', processor: 'adyen' });
    const dispute = await until('the dispute with its funds withdrawn', async () => {
      const r = await call('GET', `/v1/disputes?payment=${p.body.id}`);
      const d = r.body.data?.[0] as Json | undefined;
      return d && d.funds_withdrawn_amount > 0 ? d : undefined;
    });
    return { payment: p.body, dispute };
  };
  const disputeWhere = (id: string, what: string, pred: (d: Json) => boolean) =>
    until(`dispute ${id} ${what}`, async () => {
      const d = (await call('GET', `/v1/disputes/${id}`)).body;
      return pred(d) ? d : undefined;
    });
  const paymentStatus = async (id: string) => (await call('GET', `/v1/payments/${id}`)).body.status as string;
  const adyenRequests = () => rt.adyen!.stats().requests;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-adyen-disputes-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    key = (await createMerchant('Adyen Disputes Shop')).apiKey;
    // The issuer decides a defense 20 minutes of simulated time later (1.2 s here), so the API's
    // answer shows the dispute under review before the decision arrives.
    rt.adyen!.disputes.configure({ disputeDecision: 20 * 60_000 });
    ({ applyDisputeFact } = await import('../../lambdas/disputes/facts.ts'));
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a chargeback is recorded from the notifications: payment disputed, workflow started', async () => {
    const { payment, dispute } = await disputedPayment(2500);
    expect(dispute).toMatchObject({
      object: 'dispute',
      payment: payment.id,
      processor: 'adyen',
      status: 'needs_response',
      is_inquiry: false,
      amount: 2500,
      currency: 'eur',
      reason: 'fraudulent',
      network_reason_code: '10.4',
      funds_withdrawn_amount: 2500,
    });
    expect(dispute.processor_reference).toMatch(/^[A-Z0-9]{16}$/);
    expect(dispute.evidence_due_by).toBeGreaterThan(Math.floor(Date.now() / 1000));
    await until('the payment to be disputed', async () => (await paymentStatus(payment.id)) === 'disputed');
    const stored = await until('the workflow to start', async () => {
      const d = await getDispute(dispute.id);
      return d?.workflow_started ? d : undefined;
    });
    expect(stored.execution_arn).toContain(`:${dispute.id}`);
  });

  test('evidence in the neutral schema wins; the same Idempotency-Key does not call Adyen again', async () => {
    const { payment, dispute } = await disputedPayment(3000);
    const idem = randomUUID();
    const body = {
      evidence: {
        product_description: 'A desk lamp, shipped in one parcel',
        shipping_tracking_number: 'TRACK-1',
        uncategorized_text: 'winning_evidence',
      },
    };
    const before = adyenRequests();
    const r = await call('POST', `/v1/disputes/${dispute.id}/evidence`, body, idem);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 'under_review',
      evidence: body.evidence,
      evidence_details: { has_evidence: true, submission_count: 1 },
    });
    // reasons, documents, defend
    const used = adyenRequests() - before;
    expect(used).toBe(3);
    const again = await call('POST', `/v1/disputes/${dispute.id}/evidence`, body, idem);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(dispute.id);
    expect(adyenRequests() - before).toBe(used);
    // At Adyen: defended with the reason that fits shipping evidence, documents supplied.
    const sim = rt.adyen!.disputes.get(dispute.processor_reference)!;
    expect(sim.defenseReasonCode).toBe('GoodsOrServicesProvided');
    expect(sim.documents).toContain('ProofOfDelivery');

    const won = await disputeWhere(dispute.id, 'won', (d) => d.status === 'won');
    expect(won).toMatchObject({ funds_withdrawn_amount: 3000, funds_reinstated_amount: 3000 });
    await until(
      'the payment to be captured again',
      async () => (await paymentStatus(payment.id)) === 'captured',
    );
    await factsProcessed(dispute.processor_reference, ['CHARGEBACK_REVERSED']);
    const timeline = (await call('GET', `/v1/payments/${payment.id}/timeline`)).body;
    const events = timeline.events as Json[];
    const disputeEvents = events.filter((e) => e.type === 'dispute').map((e) => e.event);
    expect(disputeEvents).toEqual(expect.arrayContaining(['opened', 'evidence_submitted', 'status_changed']));
  });

  test('losing evidence: CHARGEBACK_REVERSED then SECOND_CHARGEBACK → lost, payment charged_back', async () => {
    const { payment, dispute } = await disputedPayment(1800);
    const r = await call('POST', `/v1/disputes/${dispute.id}/evidence`, {
      evidence: { uncategorized_text: 'losing_evidence', customer_name: 'Jane Doe' },
    });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('under_review');
    const lost = await disputeWhere(dispute.id, 'lost', (d) => d.status === 'lost');
    await factsProcessed(dispute.processor_reference, ['CHARGEBACK_REVERSED', 'SECOND_CHARGEBACK']);
    const after = (await call('GET', `/v1/disputes/${dispute.id}`)).body;
    expect(after).toMatchObject({
      status: 'lost',
      funds_withdrawn_amount: 3600,
      funds_reinstated_amount: 1800,
    });
    expect(lost.closed_at).toBeGreaterThan(0);
    await until(
      'the payment to be charged back',
      async () => (await paymentStatus(payment.id)) === 'charged_back',
    );
  });

  test('accepting: acceptDispute at Adyen, accepted, payment charged_back; a retry with the key is replayed', async () => {
    const { payment, dispute } = await disputedPayment(1200);
    const idem = randomUUID();
    const before = adyenRequests();
    const r = await call('POST', `/v1/disputes/${dispute.id}/accept`, undefined, idem);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('accepted');
    expect(adyenRequests() - before).toBe(1);
    expect(await paymentStatus(payment.id)).toBe('charged_back');
    const again = await call('POST', `/v1/disputes/${dispute.id}/accept`, undefined, idem);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(adyenRequests() - before).toBe(1);
    // Adyen's DISPUTE_DEFENSE_PERIOD_ENDED (Accepted) arrives and changes nothing.
    await factsProcessed(dispute.processor_reference, ['DISPUTE_DEFENSE_PERIOD_ENDED']);
    expect((await call('GET', `/v1/disputes/${dispute.id}`)).body.status).toBe('accepted');
    expect(await paymentStatus(payment.id)).toBe('charged_back');
    // A second acceptance (another key) is refused: the dispute no longer needs a response.
    const late = await call('POST', `/v1/disputes/${dispute.id}/accept`);
    expect(late.status).toBe(400);
  });

  test('repeated and reordered notifications change nothing', async () => {
    const { payment, dispute } = await disputedPayment(900);
    await call('POST', `/v1/disputes/${dispute.id}/evidence`, {
      evidence: { uncategorized_text: 'winning_evidence' },
    });
    await disputeWhere(dispute.id, 'won', (d) => d.status === 'won');
    const facts = await factsProcessed(dispute.processor_reference, [
      'NOTIFICATION_OF_CHARGEBACK',
      'CHARGEBACK',
      'CHARGEBACK_REVERSED',
    ]);
    await until(
      'the payment to be captured again',
      async () => (await paymentStatus(payment.id)) === 'captured',
    );
    const stored = (await getDispute(dispute.id))!;

    // Adyen delivers the whole dispute again, as signed: accepted, stored once, not applied again.
    const items = rt.adyen!.notificationItems().filter((i) => i.pspReference === dispute.processor_reference);
    expect(items.length).toBe(facts.length);
    const res = await fetch(`${rt.url}/webhooks/adyen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        live: 'false',
        notificationItems: items.map((i) => ({ NotificationRequestItem: i })),
      }),
    });
    expect(res.status).toBe(200);
    // Applied again directly, newest first and oldest first: every one a duplicate or no change.
    const byTime = [...facts].sort((a, b) => a.at.localeCompare(b.at));
    for (const f of [...byTime].reverse()) expect(await applyDisputeFact(f)).toBe('ignored');
    for (const f of byTime) expect(await applyDisputeFact(f)).toBe('ignored');
    const after = (await getDispute(dispute.id))!;
    expect(after).toMatchObject({
      status: 'won',
      version: stored.version,
      status_seq: stored.status_seq,
      funds_withdrawn_amount: 900,
      funds_reinstated_amount: 900,
    });
    expect(await paymentStatus(payment.id)).toBe('captured');
    for (const f of facts) expect((await getWebhookEvent('adyen', f.id))?.attempts).toBe(1);
  });

  test('an inquiry (REQUEST_FOR_INFORMATION) moves no money; answered, it is under review', async () => {
    const p = await call('POST', '/v1/payments', {
      amount: 1100,
      currency: 'eur',
      payment_method: 'pm_card_createDisputeInquiry',
      processor: 'adyen',
    });
    expect(p.body.status).toBe('captured');
    const inquiry = await until('the inquiry', async () => {
      const r = await call('GET', `/v1/disputes?payment=${p.body.id}`);
      return r.body.data?.[0] as Json | undefined;
    });
    expect(inquiry).toMatchObject({
      status: 'warning_needs_response',
      is_inquiry: true,
      processor: 'adyen',
      funds_withdrawn_amount: 0,
    });
    expect(await paymentStatus(p.body.id)).toBe('captured');
    // Adyen cannot accept an inquiry: refused, nothing changes.
    const accept = await call('POST', `/v1/disputes/${inquiry.id}/accept`);
    expect(accept.status).toBe(400);
    expect(accept.body.error).toMatchObject({ code: 'processor_refused' });
    expect((await call('GET', `/v1/disputes/${inquiry.id}`)).body.status).toBe('warning_needs_response');
    const r = await call('POST', `/v1/disputes/${inquiry.id}/evidence`, {
      evidence: { product_description: 'A lamp', customer_name: 'Jane Doe' },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'warning_under_review', funds_withdrawn_amount: 0 });
    expect(await paymentStatus(p.body.id)).toBe('captured');
  });

  test('a defense period that lapses undefended (DISPUTE_DEFENSE_PERIOD_ENDED Expired) is lost', async () => {
    // Disputes opened from now on give 10 simulated minutes to defend (0.6 s here).
    rt.adyen!.disputes.configure({ defensePeriod: 10 * 60_000 });
    try {
      const { payment, dispute } = await disputedPayment(1300);
      const lost = await disputeWhere(dispute.id, 'lost', (d) => d.status === 'lost');
      expect(lost).toMatchObject({ funds_withdrawn_amount: 1300, funds_reinstated_amount: 0 });
      await factsProcessed(dispute.processor_reference, ['DISPUTE_DEFENSE_PERIOD_ENDED']);
      await until(
        'the payment to be charged back',
        async () => (await paymentStatus(payment.id)) === 'charged_back',
      );
    } finally {
      rt.adyen!.disputes.configure({ defensePeriod: 20 * 24 * 3600 * 1000 });
    }
  });

  test('file evidence of another processor is refused with a 400 naming the field; Adyen is not called', async () => {
    const { dispute } = await disputedPayment(700);
    const before = adyenRequests();
    const r = await call('POST', `/v1/disputes/${dispute.id}/evidence`, {
      evidence: { receipt: 'file_1Abc', uncategorized_text: 'see receipt' },
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'parameter_invalid', param: 'evidence.receipt' });
    expect(adyenRequests()).toBe(before);
    expect((await call('GET', `/v1/disputes/${dispute.id}`)).body.status).toBe('needs_response');
  });
});
