/**
 * Stripe's `charge.dispute.*` events go the processor-neutral way (lambdas/connectors/stripe/
 * webhooks.ts → a `DisputeFact` carrying the dispute as the event saw it → `applyDisputeFact`,
 * lambdas/disputes/facts.ts), like Adyen's notifications. Delivered newest first and duplicated,
 * they end where in-order delivery ends, with the money moved once; applied again, through the
 * webhook facts or through `handleDisputeEvent` with the same event, they change nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { signStripePayload } from '../../lib/local/processors/stripe-webhook-sender.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { getPayment, timeline } from '../../lambdas/store/payments.ts';
import { getDispute, getRef } from '../../lambdas/store/disputes.ts';
import { getWebhookEvent } from '../../lambdas/store/webhook-events.ts';
import { listFacts } from '../../lambdas/store/processor-facts.ts';
import type { DisputeFact } from '../../lambdas/connectors/facts.ts';
import type { StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';
import type { applyDisputeFact as ApplyDisputeFact } from '../../lambdas/disputes/facts.ts';
import type { handleDisputeEvent as HandleDisputeEvent } from '../../lambdas/disputes/events.ts';
import type { stripeWebhookFormat as StripeWebhookFormat } from '../../lambdas/connectors/stripe/webhooks.ts';
import { until } from '../fixtures/api.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const SECRET = 'whsec_paystep_simulator';

describe('Stripe dispute events as neutral dispute facts (local runtime)', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let applyDisputeFact: typeof ApplyDisputeFact;
  let handleDisputeEvent: typeof HandleDisputeEvent;
  let stripeWebhookFormat: typeof StripeWebhookFormat;

  const deliver = async (e: StripeEvent) => {
    const payload = JSON.stringify(e, null, 2);
    const res = await fetch(`${rt.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(payload, SECRET) },
      body: payload,
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  };
  /** A captured payment and its dispute at the simulator, closed `outcome`; the dispute's events. */
  const closedDispute = async (outcome: 'won' | 'lost') => {
    const res = await fetch(`${rt.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'idempotency-key': randomUUID(),
      },
      body: JSON.stringify({ amount: 1200, currency: 'usd', payment_method: 'pm_card_createDispute' }),
    });
    const payment = (await res.json()) as Json;
    expect(payment.status).toBe('captured');
    const pi = (await getPayment(payment.id))!.processor_reference!;
    const charge = rt.stripe!.paymentIntent(pi)!.latest_charge as string;
    const dispute = rt.stripe!.createDisputeNow(charge)!.id as string;
    rt.stripe!.closeDispute(dispute, outcome);
    const events = rt
      .stripe!.events()
      .filter((e) => e.type.startsWith('charge.dispute.') && e.data.object.id === dispute);
    return { payment, dispute, events };
  };
  const allProcessed = (events: StripeEvent[]) =>
    until('every dispute event processed', async () => {
      for (const e of events)
        if ((await getWebhookEvent('stripe', e.id))?.status !== 'processed') return false;
      return true;
    });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-dispute-facts-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100, scheduler: false });
    key = (await createMerchant('Dispute facts')).apiKey;
    rt.stripeWebhooks!.configure({ dropRate: 1 }); // the test delivers the simulator's events itself
    rt.stripe!.configureDisputes({ createDelayMs: 3_600_000 }); // disputes are created by the test
    ({ applyDisputeFact } = await import('../../lambdas/disputes/facts.ts'));
    ({ handleDisputeEvent } = await import('../../lambdas/disputes/events.ts'));
    ({ stripeWebhookFormat } = await import('../../lambdas/connectors/stripe/webhooks.ts'));
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a lost dispute delivered newest first and twice ends charged back, the money withdrawn once', async () => {
    const { payment, dispute, events } = await closedDispute('lost');
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'charge.dispute.created',
        'charge.dispute.funds_withdrawn',
        'charge.dispute.closed',
      ]),
    );
    // Each event's fact carries the dispute as that event saw it, in paystep's terms.
    for (const e of events) {
      const [fact] = stripeWebhookFormat.facts(JSON.stringify(e)) as DisputeFact[];
      expect(fact).toMatchObject({
        kind: 'dispute',
        reference: dispute,
        dispute: { processor_reference: dispute },
      });
    }
    for (const e of [...events].reverse()) await deliver(e);
    for (const e of events) await deliver(e); // Stripe redelivers: stored once, applied once
    await allProcessed(events);

    const ref = (await getRef('stripe', dispute))!;
    const stored = (await getDispute(ref.dispute_id))!;
    expect(stored).toMatchObject({
      status: 'lost',
      payment_id: payment.id,
      funds_withdrawn_amount: 1200,
      funds_reinstated_amount: 0,
    });
    expect((await getPayment(payment.id))!.status).toBe('charged_back');
    const t = await timeline(payment.id);
    const statuses = t.filter((e) => e.type === 'status_changed').map((e) => e.status);
    expect(statuses.filter((s) => s === 'charged_back')).toHaveLength(1);
    expect(t.filter((e) => e.type === 'dispute' && e.event === 'opened')).toHaveLength(1);
    for (const e of events) expect((await getWebhookEvent('stripe', e.id))?.attempts).toBe(1);
    // The fact store keeps each event's meaning, not the dispute object (read again from the event).
    const kept = (await listFacts('stripe', dispute)).filter((f) => f.kind === 'dispute');
    expect(kept.map((f) => f.id).sort()).toEqual(events.map((e) => `stripe:${e.id}`).sort());
    for (const f of kept) expect(f).not.toHaveProperty('dispute');

    // Applied again, in either order, through the neutral applier: nothing changes.
    const facts = events.flatMap((e) => stripeWebhookFormat.facts(JSON.stringify(e))) as DisputeFact[];
    for (const f of [...facts].reverse()) expect(await applyDisputeFact(f)).toBe('ignored');
    for (const f of facts) expect(await applyDisputeFact(f)).toBe('ignored');
    // The same event handed over as Stripe's object (handleDisputeEvent) is the same change.
    for (const e of events)
      expect(await handleDisputeEvent('stripe', e.type, e.data.object, e.created)).toBe('ignored');
    expect(await getDispute(ref.dispute_id)).toMatchObject({
      status: 'lost',
      version: stored.version,
      status_seq: stored.status_seq,
      funds_withdrawn_amount: 1200,
    });
    expect((await getPayment(payment.id))!.status).toBe('charged_back');
  });

  test('a won dispute delivered out of order: the stale needs_response never reopens it', async () => {
    const { payment, dispute, events } = await closedDispute('won');
    const closed = events.find((e) => e.type === 'charge.dispute.closed')!;
    await deliver(closed);
    await allProcessed([closed]);
    const ref = (await getRef('stripe', dispute))!;
    expect(await getDispute(ref.dispute_id)).toMatchObject({ status: 'won' });
    for (const e of events.filter((x) => x !== closed)) await deliver(e);
    await allProcessed(events);
    const stored = (await getDispute(ref.dispute_id))!;
    expect(stored).toMatchObject({
      status: 'won',
      funds_withdrawn_amount: 1200,
      funds_reinstated_amount: 1200,
    });
    expect((await getPayment(payment.id))!.status).toBe('captured');
    const created = events.find((e) => e.type === 'charge.dispute.created')!;
    const [createdFact] = stripeWebhookFormat.facts(JSON.stringify(created)) as DisputeFact[];
    expect(createdFact!.dispute!.status).toBe('needs_response');
    expect(await applyDisputeFact(createdFact!)).toBe('ignored');
    expect((await getDispute(ref.dispute_id))!.version).toBe(stored.version);
  });
});
