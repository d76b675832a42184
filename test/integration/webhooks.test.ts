/**
 * Stripe webhooks on the local runtime: the simulator signs and delivers its events to
 * POST /webhooks/stripe; bad signatures and stale timestamps are refused with nothing stored;
 * events are stored once and processed from the queue; 3-D Secure outcomes resume the payment
 * workflow, refund outcomes finish pending refunds; events about unknown objects are parked,
 * retried, then surfaced (CLI) and replayable. The property over random orderings is in
 * webhooks-order.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import Stripe from 'stripe';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { paymentItem } from '../fixtures/payments.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createPayment, getPayment, getTaskToken, timeline } from '../../lambdas/store/payments.ts';
import { getRefundItem } from '../../lambdas/store/refunds.ts';
import {
  getWebhookEvent,
  recordWebhookEvent,
  resetWebhookEvent,
} from '../../lambdas/store/webhook-events.ts';
import { processWebhookEvent } from '../../lambdas/webhooks/process.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { MAX_RECEIVES } from '../../lambdas/webhooks/policy.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const SECRET = 'whsec_paystep_simulator';
const now = () => Math.floor(Date.now() / 1000);
const sign = (payload: string, secret = SECRET, timestamp?: number) =>
  Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
let rt: Runtime;
let key: string;
let merchantId: string;

const call = async (method: string, p: string, body?: unknown) => {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST') headers['idempotency-key'] = randomUUID();
  const res = await fetch(`${rt.url}${p}`, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as Json };
};
const pay = async (pm: string, extra: Json = {}) => {
  const r = await call('POST', '/v1/payments', {
    amount: 1050,
    currency: 'usd',
    payment_method: pm,
    ...extra,
  });
  expect(r.status).toBe(201);
  return r.body;
};
const post = async (payload: string, signature?: string) => {
  const res = await fetch(`${rt.url}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) },
    body: payload,
  });
  return { status: res.status, body: (await res.json()) as Json };
};
const eventJson = (type: string, object: Json, id = `evt_${randomUUID().replace(/-/g, '')}`) =>
  JSON.stringify(
    {
      id,
      object: 'event',
      api_version: '2025-01-01',
      created: now(),
      livemode: false,
      type,
      data: { object },
    },
    null,
    2,
  );
const paymentStatus = (id: string, status: string) =>
  waitFor(`payment ${id} ${status}`, async () => {
    const p = await getPayment(id);
    return p?.status === status ? p : undefined;
  });
/** Waits until every event the simulator emitted about these PaymentIntents is processed. */
const processedAll = async (...paymentIntents: string[]) => {
  let pending: string[] = [];
  try {
    return await waitFor('events processed', async () => {
      const refs = new Set(paymentIntents);
      const events = rt
        .stripe!.events()
        .filter((e) => refs.has(e.data.object.id) || refs.has(e.data.object.payment_intent as string));
      pending = [];
      for (const e of events) {
        const status = (await getWebhookEvent('stripe', e.id))?.status;
        if (status !== 'processed') pending.push(`${e.type} ${e.id}: ${status ?? 'not stored'}`);
      }
      return events.length > 0 && pending.length === 0;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; not processed: ${pending.join(', ')}`);
  }
};
const cli = async (...args: string[]) => {
  // Imported here: the CLI pulls in handler modules whose logger must see the runtime's environment.
  const { buildProgram } = await import('../../lib/cli/main.ts');
  let out = '';
  await buildProgram((s) => (out += s)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
  return JSON.parse(out) as Json;
};

async function start(timeScale: number) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-webhooks-'));
  // Answer with the state reached so far: a pending refund stays pending in the create response.
  process.env.PAYSTEP_SYNC_WAIT_MS = '300';
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale, scheduler: false });
  const m = await createMerchant('Acme');
  key = m.apiKey;
  merchantId = m.merchant.id;
}

async function stop() {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A payment the synchronous path already captured at Stripe, put in place directly; its time. */
async function putCapturedStripePayment(id: string, paymentIntent: string): Promise<number> {
  const t = now();
  await createPayment(
    paymentItem({
      id,
      merchant_id: merchantId,
      status: 'captured',
      amount_captured: 500,
      processor: 'stripe',
      processor_reference: paymentIntent,
      created: t,
      updated: t,
    }),
  );
  return t;
}

describe('Stripe webhooks on the local runtime', () => {
  beforeAll(() => start(1000));
  afterEach(() => rt.stripeWebhooks?.reset());
  afterAll(stop);

  test('bad signatures, stale timestamps and missing headers are refused with 400, nothing stored', async () => {
    const id = `evt_bad${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson('customer.created', { id: 'cus_1', object: 'customer' }, id);
    const cases = [
      [sign(payload, 'whsec_not_ours'), 'signature_invalid'],
      [sign(payload.replace('cus_1', 'cus_2')), 'signature_invalid'],
      [sign(payload, SECRET, now() - 400), 'timestamp_outside_tolerance'],
      [undefined, 'signature_missing'],
    ] as const;
    for (const [signature, code] of cases) {
      const r = await post(payload, signature);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code });
    }
    expect(await getWebhookEvent('stripe', id)).toBeUndefined();
  });

  test('one route for every processor: an unknown or disabled processor is a 404 naming it, nothing stored', async () => {
    const id = `evt_nf${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson('customer.created', { id: 'cus_1', object: 'customer' }, id);
    const res = await fetch(`${rt.url}/webhooks/paypal`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': sign(payload) },
      body: payload,
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(((await res.json()) as Json).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'processor_not_found',
      param: 'processor',
      message: expect.stringContaining('"paypal"'),
    });
    expect(await getWebhookEvent('stripe', id)).toBeUndefined();
    expect(await getWebhookEvent('paypal', id)).toBeUndefined();
    // A processor paystep knows but this deployment has not enabled (PAYSTEP_PROCESSORS).
    const { receiveWebhook } = await import('../../lambdas/webhooks/receive.ts');
    const before = process.env.PAYSTEP_PROCESSORS;
    process.env.PAYSTEP_PROCESSORS = 'stripe';
    try {
      const r = await receiveWebhook('adyen', '{"live":"false","notificationItems":[]}', () => undefined);
      expect(r).toMatchObject({
        status: 404,
        code: 'processor_not_found',
        message: expect.stringContaining('"adyen"'),
      });
    } finally {
      if (before === undefined) delete process.env.PAYSTEP_PROCESSORS;
      else process.env.PAYSTEP_PROCESSORS = before;
    }
    // The same request on the processor's own URL is taken.
    expect(await post(payload, sign(payload))).toMatchObject({ status: 200, body: { id, duplicate: false } });
  });

  test('an event too large for one item is acknowledged and surfaced as failed, not lost', async () => {
    const id = `evt_big${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson(
      'invoice.updated',
      { id: 'in_1', object: 'invoice', memo: 'x'.repeat(400_000) },
      id,
    );
    expect((await post(payload, sign(payload))).status).toBe(200);
    const stored = await getWebhookEvent('stripe', id);
    expect(stored).toMatchObject({ status: 'failed', type: 'invoice.updated' });
    expect(stored!.last_error).toMatch(/too large/);
    expect((await cli('webhooks', 'list', '--status', 'failed')).data.map((e: Json) => e.id)).toContain(id);
  });

  test('a valid event is stored once, acknowledged fast, processed once; duplicates and replays change nothing', async () => {
    const id = `evt_ok${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson('customer.created', { id: 'cus_1', object: 'customer' }, id);
    const signature = sign(payload);
    const started = Date.now();
    const first = await post(payload, signature);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(first).toMatchObject({ status: 200, body: { received: true, id, duplicate: false } });
    const stored = await waitFor('processed', async () => {
      const e = await getWebhookEvent('stripe', id);
      return e?.status === 'processed' ? e : undefined;
    });
    expect(stored).toMatchObject({ type: 'customer.created', outcome: 'ignored', attempts: 1, raw: payload });
    // The same request again (a replay within the tolerance) and a fresh signature of it.
    expect((await post(payload, signature)).body).toMatchObject({ duplicate: true });
    expect((await post(payload, sign(payload))).body).toMatchObject({ duplicate: true });
    await rt.settle();
    expect(await getWebhookEvent('stripe', id)).toMatchObject({ status: 'processed', attempts: 1 });
  });

  test('3-D Secure completed at the processor: its webhook resumes the workflow and the payment is captured', async () => {
    // The create call may answer `processing` on a loaded machine: wait for the status itself.
    const p = await paymentStatus((await pay('pm_card_authenticationRequired')).id, 'requires_action');
    await waitFor('waiting', async () => (await getTaskToken(p.id)).kind === 'authentication');
    rt.stripe!.authenticate(p.processor_reference!, 'succeed');
    const after = await paymentStatus(p.id, 'captured');
    expect(after.amount_captured).toBe(1050);
    const exec = await rt.stepFunctions.waitForExecution(after.execution_arn!);
    expect(exec.status).toBe('SUCCEEDED');
    await processedAll(p.processor_reference!);
    const t = await timeline(p.id);
    expect(t.filter((e) => e.type === 'status_changed').map((e) => e.status)).toEqual([
      'requires_action',
      'captured',
    ]);
    expect(t.filter((e) => e.action === 'resumed')).toHaveLength(1);
    expect((await getTaskToken(p.id)).token).toBeUndefined();
  });

  test('3-D Secure failed: the payment fails with the authentication failure; manual capture after 3DS still captures', async () => {
    const failed = await paymentStatus((await pay('pm_card_authenticationRequired')).id, 'requires_action');
    await waitFor('waiting', async () => (await getTaskToken(failed.id)).kind === 'authentication');
    rt.stripe!.authenticate(failed.processor_reference!, 'fail');
    const f = await paymentStatus(failed.id, 'failed');
    expect(f.failure).toMatchObject({ category: 'authentication', code: 'authentication_failed' });
    expect((await rt.stepFunctions.waitForExecution(f.execution_arn!)).status).toBe('SUCCEEDED');

    const manual = await paymentStatus(
      (await pay('pm_card_authenticationRequired', { capture_method: 'manual' })).id,
      'requires_action',
    );
    await waitFor('waiting', async () => (await getTaskToken(manual.id)).kind === 'authentication');
    rt.stripe!.authenticate(manual.processor_reference!, 'succeed');
    await paymentStatus(manual.id, 'authorized');
    // The workflow now waits for capture (a new token the webhook processing must not remove).
    await waitFor('capture wait', async () => (await getTaskToken(manual.id)).kind === 'capture');
    const c = await call('POST', `/v1/payments/${manual.id}/capture`, {});
    expect(c.status).toBeLessThan(300);
    // The file's sync wait is 300 ms: on a loaded machine the answer may come before the capture.
    expect(await paymentStatus(manual.id, 'captured')).toMatchObject({ amount_captured: 1050 });
  });

  test('a pending refund is finished by its refund.updated webhook', async () => {
    const p = await paymentStatus((await pay('pm_card_pendingRefund')).id, 'captured');
    const r = await call('POST', '/v1/refunds', { payment: p.id, amount: 400 });
    expect(r.body.status).toBe('pending');
    rt.stripe!.settleAsyncRefunds();
    // The refund workflow's poll fallback would only run after a day (86 s here): this is the webhook.
    await waitFor('refund succeeded', async () => (await getRefundItem(r.body.id))?.status === 'succeeded');
    const after = await paymentStatus(p.id, 'partially_refunded');
    expect(after.amount_refunded).toBe(400);
    const updated = rt
      .stripe!.events()
      .find((e) => e.type === 'refund.updated' && e.data.object.id === r.body.processor_reference);
    expect(updated).toBeDefined();
    expect(await getWebhookEvent('stripe', updated!.id)).toMatchObject({
      status: 'processed',
      outcome: 'applied',
    });
  });

  test('a dispute reaches paystep by webhook: the payment is disputed, then charged back when lost', async () => {
    rt.stripe!.configureDisputes({ createDelayMs: 20 });
    const p = await pay('pm_card_createDispute');
    // Read back: on a busy machine the create call may answer `processing`, before the processor.
    const pi = (await paymentStatus(p.id, 'disputed')).processor_reference!;
    const d = await waitFor('the dispute', async () => {
      const r = await call('GET', `/v1/disputes?payment=${p.id}`);
      return r.body.data?.[0] as Json | undefined;
    });
    expect(d).toMatchObject({ status: 'needs_response', amount: 1050 });
    rt.stripe!.closeDispute(d.processor_reference, 'lost');
    await paymentStatus(p.id, 'charged_back');
    await processedAll(pi);

    // The final state, whatever order the events were processed in.
    expect((await call('GET', `/v1/disputes/${d.id}`)).body).toMatchObject({ status: 'lost', amount: 1050 });
    const disputeEvents = rt
      .stripe!.events()
      .filter((e) => e.type.startsWith('charge.dispute.') && e.data.object.id === d.processor_reference);
    expect(disputeEvents.map((e) => e.type)).toEqual(
      expect.arrayContaining(['charge.dispute.created', 'charge.dispute.closed']),
    );
    const outcomes: Record<string, (string | undefined)[]> = {};
    for (const e of disputeEvents) {
      const stored = await getWebhookEvent('stripe', e.id);
      expect(stored?.status).toBe('processed');
      (outcomes[e.type] ??= []).push(stored?.outcome);
    }
    // The dispute is opened by whichever of created and funds_withdrawn is processed first (the
    // other finds nothing new); only closed carries the loss.
    expect([
      ...(outcomes['charge.dispute.created'] ?? []),
      ...(outcomes['charge.dispute.funds_withdrawn'] ?? []),
    ]).toContain('applied');
    expect(outcomes['charge.dispute.closed']).toEqual(['applied']);

    // Each side effect happened exactly once.
    const t = await timeline(p.id);
    expect(t.filter((e) => e.type === 'status_changed').map((e) => e.status)).toEqual([
      'captured',
      'disputed',
      'charged_back',
    ]);
    const disputeEntries = t.filter((e) => e.type === 'dispute' && e.dispute === d.id) as Json[];
    const count = (event: string, status?: string) =>
      disputeEntries.filter((e) => e.event === event && (status === undefined || e.status === status)).length;
    expect(count('opened')).toBe(1);
    expect(count('funds_withdrawn')).toBe(1);
    // One dispute workflow (execution name = dispute id). Its timeline entry can be written twice
    // when two deliveries start it concurrently (StartExecution is idempotent), so it is not counted.
    expect(count('workflow_started')).toBeGreaterThanOrEqual(1);
    const disputeArn = rt.stepFunctions.stateMachineArn('dispute');
    expect(
      rt.stepFunctions
        .listExecutions({ stateMachineArn: disputeArn, maxResults: 1000 })
        .executions.filter((e) => e.name === d.id),
    ).toHaveLength(1);
    expect(count('status_changed', 'lost')).toBe(1);
    const webhookIds = t.filter((e) => e.type === 'webhook').map((e) => e.event_id);
    expect(new Set(webhookIds).size).toBe(webhookIds.length);
  });

  test('duplicated, reordered and delayed delivery by the simulator ends in the same states', async () => {
    rt.stripeWebhooks!.configure({ duplicate: 1, reorderWindow: 4, reorderHoldMs: 20, delayMs: 2 });
    const a = await paymentStatus((await pay('pm_card_authenticationRequired')).id, 'requires_action');
    const b = await paymentStatus((await pay('pm_card_pendingRefund')).id, 'captured');
    await waitFor('waiting', async () => (await getTaskToken(a.id)).kind === 'authentication');
    rt.stripe!.authenticate(a.processor_reference!, 'succeed');
    const r = await call('POST', '/v1/refunds', { payment: b.id });
    rt.stripe!.settleAsyncRefunds();
    expect((await paymentStatus(a.id, 'captured')).amount_captured).toBe(1050);
    expect((await paymentStatus(b.id, 'refunded')).amount_refunded).toBe(1050);
    await waitFor('refund succeeded', async () => (await getRefundItem(r.body.id))?.status === 'succeeded');
    await rt.stripeWebhooks!.idle();
    await processedAll(a.processor_reference!, b.processor_reference!);
    const stats = rt.stripeWebhooks!.stats();
    expect(stats.duplicated).toBeGreaterThan(0);
    const ta = await timeline(a.id);
    expect(ta.filter((e) => e.type === 'status_changed').map((e) => e.status)).toEqual([
      'requires_action',
      'captured',
    ]);
    const ids = ta.filter((e) => e.type === 'webhook').map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    const tb = await timeline(b.id);
    expect(tb.filter((e) => e.type === 'refund' && e.event === 'succeeded')).toHaveLength(1);
  });

  test('an event the synchronous path already applied: the claim, its entry (no read of the payment) and the completion; a duplicate changes nothing', async () => {
    const paymentId = `pay_${randomUUID().replace(/-/g, '').slice(0, 22)}`;
    const pi = `pi_${randomUUID().replace(/-/g, '')}`;
    const id = `evt_noop${randomUUID().replace(/-/g, '')}`;
    const t = await putCapturedStripePayment(paymentId, pi);
    const payload = eventJson(
      'payment_intent.succeeded',
      { id: pi, object: 'payment_intent', status: 'succeeded', metadata: { paystep_payment_id: paymentId } },
      id,
    );
    // Stored as the receiver stores it, and processed here as one queue message would be.
    await recordWebhookEvent(
      {
        processor: 'stripe',
        id,
        type: 'payment_intent.succeeded',
        created: t,
        livemode: false,
        raw: payload,
      },
      1,
    );
    const sent = jest.spyOn(clients.ddb(), 'send');
    // This event's and this payment's calls (the runtime's other work shares the client).
    const mine = new Set([`WEBHOOK#stripe#${id}`, `PAYMENT#${paymentId}`]);
    const calls = () =>
      sent.mock.calls
        .map(([cmd]) => {
          const input = cmd.input as { Key?: { pk?: string }; Item?: { pk?: string } };
          return { name: cmd.constructor.name, pk: input.Key?.pk ?? input.Item?.pk };
        })
        .filter((c) => c.pk && mine.has(c.pk))
        .map((c) => c.name);
    try {
      expect(await processWebhookEvent('stripe', id, 1, 'msg-1')).toEqual({
        state: 'processed',
        outcome: 'recorded',
      });
      // The claim, its entry (an update of the payment: once per event, see recordWebhookEntries,
      // written on the guess of the payment's state that the read used to confirm: settleByGuess)
      // and the completion.
      expect(calls().sort()).toEqual(['UpdateCommand', 'UpdateCommand', 'UpdateCommand']);
      sent.mockClear();
      expect(await processWebhookEvent('stripe', id, 1, 'msg-2')).toEqual({
        state: 'skipped',
        reason: 'already_processed',
      });
      // The claim's condition fails (processed) and the event is read to say why.
      expect(calls()).toEqual(['UpdateCommand', 'GetCommand']);
    } finally {
      sent.mockRestore();
    }
    expect(await getWebhookEvent('stripe', id)).toMatchObject({
      status: 'processed',
      outcome: 'recorded',
      attempts: 1,
    });
    const entries = (await timeline(paymentId)).filter((e) => e.event_id === id);
    expect(entries).toEqual([expect.objectContaining({ type: 'webhook', comparison: 'consistent' })]);
    expect((await getPayment(paymentId))!.status).toBe('captured');
  });

  test('an event the synchronous path already applied, as the processor delivers it: settled by the receiver, never queued, its entry once however often and however concurrently it comes', async () => {
    const paymentId = `pay_${randomUUID().replace(/-/g, '').slice(0, 22)}`;
    const pi = `pi_${randomUUID().replace(/-/g, '')}`;
    const id = `evt_settle${randomUUID().replace(/-/g, '')}`;
    await putCapturedStripePayment(paymentId, pi);
    const payload = eventJson(
      'payment_intent.succeeded',
      { id: pi, object: 'payment_intent', status: 'succeeded', metadata: { paystep_payment_id: paymentId } },
      id,
    );
    const queued = jest.spyOn(clients.sqs(), 'send');
    const mine = () =>
      queued.mock.calls.filter(([cmd]) =>
        String((cmd.input as { MessageBody?: string }).MessageBody ?? '').includes(id),
      );
    try {
      // Five deliveries of the event at once (a processor retrying a slow answer, duplicated sends).
      const answers = await Promise.all([1, 2, 3, 4, 5].map(() => post(payload, sign(payload))));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
      expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
      // Processed when acknowledged: no queue message, no consumer.
      expect(await getWebhookEvent('stripe', id)).toMatchObject({
        status: 'processed',
        outcome: 'recorded',
        attempts: 1,
      });
      expect(mine()).toHaveLength(0);
    } finally {
      queued.mockRestore();
    }
    const entries = async () => (await timeline(paymentId)).filter((e) => e.event_id === id);
    expect(await entries()).toEqual([
      expect.objectContaining({ type: 'webhook', comparison: 'consistent', processor_status: 'succeeded' }),
    ]);
    // Replayed (ops forces it back to received) and processed from the queue: still one entry.
    expect(await resetWebhookEvent('stripe', id, true)).toBe('reset');
    expect(await processWebhookEvent('stripe', id, 1, 'msg-replay')).toEqual({
      state: 'processed',
      outcome: 'recorded',
    });
    expect(await entries()).toHaveLength(1);
    expect((await getPayment(paymentId))!.status).toBe('captured');
  });

  test('a settled event is written on a guess of its payment: a wrong guess costs no read, records what a read would have decided, and is not repeated', async () => {
    const paymentId = `pay_${randomUUID().replace(/-/g, '').slice(0, 22)}`;
    const pi = `pi_${randomUUID().replace(/-/g, '')}`;
    await putCapturedStripePayment(paymentId, pi);
    // A payment_intent event that says `processing` about a captured payment: `behind`.
    const processingEvent = (id: string, intent = pi) =>
      eventJson(
        'payment_intent.processing',
        {
          id: intent,
          object: 'payment_intent',
          status: 'processing',
          metadata: { paystep_payment_id: paymentId },
        },
        id,
      );
    const sent = jest.spyOn(clients.ddb(), 'send');
    const calls = (id: string) =>
      sent.mock.calls
        .map(([cmd]) => {
          const input = cmd.input as { Key?: { pk?: string }; Item?: { pk?: string } };
          return { name: cmd.constructor.name, pk: input.Key?.pk ?? input.Item?.pk };
        })
        .filter((c) => c.pk === `PAYMENT#${paymentId}` || c.pk === `WEBHOOK#stripe#${id}`)
        .map((c) => c.name);
    const ids = [1, 2, 3].map((i) => `evt_guess${i}${randomUUID().replace(/-/g, '')}`);
    const entries = async (id: string) => (await timeline(paymentId)).filter((e) => e.event_id === id);
    try {
      // The first such event in this container: guessed `consistent`, wrong (the write's condition
      // fails and carries the payment), then recorded as a read would have decided.
      const first = processingEvent(ids[0]!);
      expect((await post(first, sign(first))).status).toBe(200);
      expect(calls(ids[0]!).filter((n) => n !== 'PutCommand')).toEqual(['UpdateCommand', 'UpdateCommand']);
      expect(await entries(ids[0]!)).toEqual([
        expect.objectContaining({ type: 'webhook', comparison: 'behind' }),
      ]);
      // The next one is guessed as such events compared lately: one write of the payment, no read.
      sent.mockClear();
      const second = processingEvent(ids[1]!);
      expect((await post(second, sign(second))).status).toBe(200);
      expect(calls(ids[1]!).filter((n) => n !== 'PutCommand')).toEqual(['UpdateCommand']);
      expect(await entries(ids[1]!)).toEqual([
        expect.objectContaining({ type: 'webhook', comparison: 'behind' }),
      ]);
      // Delivered again: the guess's write finds it recorded, nothing more is written.
      expect((await post(second, sign(second))).body.duplicate).toBe(true);
      expect(await entries(ids[1]!)).toHaveLength(1);
      // Another processor payment (another attempt's): the guess fails and, as a read would, ignores it.
      sent.mockClear();
      const other = processingEvent(ids[2]!, `pi_${randomUUID().replace(/-/g, '')}`);
      expect((await post(other, sign(other))).status).toBe(200);
      expect(calls(ids[2]!).filter((n) => n !== 'PutCommand')).toEqual(['UpdateCommand']);
      expect(await entries(ids[2]!)).toEqual([]);
      expect(await getWebhookEvent('stripe', ids[2]!)).toMatchObject({
        status: 'processed',
        outcome: 'ignored',
      });
    } finally {
      sent.mockRestore();
    }
    for (const id of ids.slice(0, 2))
      expect(await getWebhookEvent('stripe', id)).toMatchObject({ status: 'processed', outcome: 'recorded' });
    expect((await getPayment(paymentId))!.status).toBe('captured');
  });

  test('an event about an unknown object is parked and retried, applied once the object exists', async () => {
    const paymentId = `pay_${randomUUID().replace(/-/g, '').slice(0, 22)}`;
    const pi = `pi_${randomUUID().replace(/-/g, '')}`;
    const id = `evt_park${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson(
      'payment_intent.succeeded',
      { id: pi, object: 'payment_intent', status: 'succeeded', metadata: { paystep_payment_id: paymentId } },
      id,
    );
    expect((await post(payload, sign(payload))).status).toBe(200);
    await waitFor('parked', async () => (await getWebhookEvent('stripe', id))?.status === 'parked');
    expect((await cli('webhooks', 'list', '--status', 'parked')).data.map((e: Json) => e.id)).toContain(id);
    await putCapturedStripePayment(paymentId, pi);
    const done = await waitFor('processed', async () => {
      const e = await getWebhookEvent('stripe', id);
      return e?.status === 'processed' ? e : undefined;
    });
    expect(done.outcome).toBe('recorded');
    expect(done.attempts).toBeGreaterThan(1);
    const entry = (await timeline(paymentId)).find((e) => e.event_id === id);
    expect(entry).toMatchObject({ type: 'webhook', comparison: 'consistent', processor_status: 'succeeded' });
    expect((await cli('webhooks', 'list', '--status', 'parked')).data.map((e: Json) => e.id)).not.toContain(
      id,
    );
  });

  test('an event that never finds its object ends in the dead-letter queue, listed as failed, and can be replayed', async () => {
    const id = `evt_dead${randomUUID().replace(/-/g, '')}`;
    const payload = eventJson(
      'refund.updated',
      { id: `re_${randomUUID().replace(/-/g, '')}`, object: 'refund', status: 'succeeded' },
      id,
    );
    expect((await post(payload, sign(payload))).status).toBe(200);
    const failed = await waitFor(
      'failed',
      async () => {
        const e = await getWebhookEvent('stripe', id);
        return e?.status === 'failed' ? e : undefined;
      },
      10_000,
    );
    expect(failed.attempts).toBeGreaterThan(1);
    expect(failed.attempts).toBeLessThanOrEqual(MAX_RECEIVES);
    expect(failed.last_error).toMatch(/unknown object/);
    const dlq = await waitFor('dead-lettered', async () => {
      const s = rt.queues.stats('paystep-webhooks-dlq');
      return s.total > 0 ? s : undefined;
    });
    expect(dlq.total).toBeGreaterThan(0);
    const listed = await cli('webhooks', 'list', '--status', 'failed');
    expect(listed.data.find((e: Json) => e.id === id)).toMatchObject({
      type: 'refund.updated',
      status: 'failed',
    });
    const processedId = rt.stripe!.events()[0]!.id; // long processed
    await expect(cli('webhooks', 'replay', processedId)).rejects.toThrow(/processed already/);
    const replayed = await cli('webhooks', 'replay', id);
    expect(replayed).toMatchObject({ replayed: true, event: { id, status: 'received' } });
    await waitFor('processed again', async () => {
      const e = await getWebhookEvent('stripe', id);
      return e && e.attempts > failed.attempts && e.status !== 'received' ? e : undefined;
    });
  });
});
