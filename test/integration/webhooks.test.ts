/**
 * Stripe webhooks on the local runtime: the simulator signs and delivers its events to
 * POST /webhooks/stripe; bad signatures and stale timestamps are refused with nothing stored;
 * events are stored once and processed from the queue; 3-D Secure outcomes resume the payment
 * workflow, refund outcomes finish pending refunds; events about unknown objects are parked,
 * retried, then surfaced (CLI) and replayable; and — a property over many random orderings —
 * reordered, duplicated and replayed deliveries, with bad ones mixed in, end in the same state as
 * in-order delivery with every side effect once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import Stripe from 'stripe';
import { SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createPayment, getPayment, getTaskToken, timeline } from '../../lambdas/store/payments.ts';
import { getRefundItem } from '../../lambdas/store/refunds.ts';
import { getWebhookEvent } from '../../lambdas/store/webhook-events.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { MAX_RECEIVES } from '../../lambdas/webhooks/policy.ts';
import type { StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';

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
const processedAll = (...paymentIntents: string[]) =>
  waitFor('events processed', async () => {
    const refs = new Set(paymentIntents);
    const ids = rt
      .stripe!.events()
      .filter((e) => refs.has(e.data.object.id) || refs.has(e.data.object.payment_intent as string))
      .map((e) => e.id);
    for (const id of ids) if ((await getWebhookEvent('stripe', id))?.status !== 'processed') return false;
    return ids.length > 0;
  });
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
    const p = await pay('pm_card_authenticationRequired');
    expect(p.status).toBe('requires_action');
    await waitFor('waiting', async () => (await getTaskToken(p.id)).kind === 'authentication');
    rt.stripe!.authenticate(p.processor_reference, 'succeed');
    const after = await paymentStatus(p.id, 'captured');
    expect(after.amount_captured).toBe(1050);
    const exec = await rt.stepFunctions.waitForExecution(after.execution_arn!);
    expect(exec.status).toBe('SUCCEEDED');
    await processedAll(p.processor_reference);
    const t = await timeline(p.id);
    expect(t.filter((e) => e.type === 'status_changed').map((e) => e.status)).toEqual([
      'requires_action',
      'captured',
    ]);
    expect(t.filter((e) => e.action === 'resumed')).toHaveLength(1);
    expect((await getTaskToken(p.id)).token).toBeUndefined();
  });

  test('3-D Secure failed: the payment fails with the authentication failure; manual capture after 3DS still captures', async () => {
    const failed = await pay('pm_card_authenticationRequired');
    await waitFor('waiting', async () => (await getTaskToken(failed.id)).kind === 'authentication');
    rt.stripe!.authenticate(failed.processor_reference, 'fail');
    const f = await paymentStatus(failed.id, 'failed');
    expect(f.failure).toMatchObject({ category: 'authentication', code: 'authentication_failed' });
    expect((await rt.stepFunctions.waitForExecution(f.execution_arn!)).status).toBe('FAILED');

    const manual = await pay('pm_card_authenticationRequired', { capture_method: 'manual' });
    await waitFor('waiting', async () => (await getTaskToken(manual.id)).kind === 'authentication');
    rt.stripe!.authenticate(manual.processor_reference, 'succeed');
    await paymentStatus(manual.id, 'authorized');
    // The workflow now waits for capture (a new token the webhook processing must not remove).
    await waitFor('capture wait', async () => (await getTaskToken(manual.id)).kind === 'capture');
    const c = await call('POST', `/v1/payments/${manual.id}/capture`, {});
    expect(c.body).toMatchObject({ status: 'captured', amount_captured: 1050 });
  });

  test('a pending refund is finished by its refund.updated webhook', async () => {
    const p = await pay('pm_card_pendingRefund');
    expect(p.status).toBe('captured');
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

  test('duplicated, reordered and delayed delivery by the simulator ends in the same states', async () => {
    rt.stripeWebhooks!.configure({ duplicate: 1, reorderWindow: 4, reorderHoldMs: 20, delayMs: 2 });
    const a = await pay('pm_card_authenticationRequired');
    const b = await pay('pm_card_pendingRefund');
    await waitFor('waiting', async () => (await getTaskToken(a.id)).kind === 'authentication');
    rt.stripe!.authenticate(a.processor_reference, 'succeed');
    const r = await call('POST', '/v1/refunds', { payment: b.id });
    rt.stripe!.settleAsyncRefunds();
    expect((await paymentStatus(a.id, 'captured')).amount_captured).toBe(1050);
    expect((await paymentStatus(b.id, 'refunded')).amount_refunded).toBe(1050);
    await waitFor('refund succeeded', async () => (await getRefundItem(r.body.id))?.status === 'succeeded');
    await rt.stripeWebhooks!.idle();
    await processedAll(a.processor_reference, b.processor_reference);
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
    const t = now();
    await createPayment({
      id: paymentId,
      object: 'payment',
      merchant_id: merchantId,
      amount: 500,
      currency: 'usd',
      status: 'captured',
      amount_captured: 500,
      amount_refunded: 0,
      capture_method: 'automatic',
      payment_method: 'pm_card_visa',
      processor: 'stripe',
      processor_reference: pi,
      failure: null,
      order_id: null,
      customer: null,
      channel: null,
      description: null,
      metadata: {},
      card: null,
      capture_before: null,
      cancellation_reason: null,
      review: null,
      execution_arn: null,
      created: t,
      updated: t,
      version: 1,
    });
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
    const replayed = await cli('webhooks', 'replay', id);
    expect(replayed).toMatchObject({ replayed: true, event: { id, status: 'received' } });
    await waitFor('processed again', async () => {
      const e = await getWebhookEvent('stripe', id);
      return e && e.attempts > failed.attempts && e.status !== 'received' ? e : undefined;
    });
  });
});

describe('property: any order, duplicates, replays and bad deliveries mixed in → the in-order result', () => {
  // Slower time than above: the 3-D Secure wait (1 h) must outlast each run (36 s here).
  beforeAll(async () => {
    await start(100);
    process.env.PAYSTEP_SYNC_WAIT_MS = '20'; // scenarios wait for states themselves
  });
  afterAll(stop);

  let sfnSend: ReturnType<typeof jest.spyOn>;
  const succeeded = new Map<string, number>();

  beforeAll(() => {
    const sfn = clients.sfn();
    const original = sfn.send.bind(sfn);
    sfnSend = jest.spyOn(sfn, 'send').mockImplementation((async (command: unknown, ...rest: unknown[]) => {
      const out = await (original as (c: unknown, ...r: unknown[]) => Promise<unknown>)(command, ...rest);
      if (command instanceof SendTaskSuccessCommand) {
        const t = command.input.taskToken!;
        succeeded.set(t, (succeeded.get(t) ?? 0) + 1);
      }
      return out;
    }) as never);
  });
  afterAll(() => sfnSend.mockRestore());

  interface Scenario {
    a: Json;
    b: Json;
    refund: Json;
    tokenA: string;
    tokenRefund: string;
    events: StripeEvent[];
  }

  /** A 3DS payment completed at the processor, and a captured payment with a pending refund that then succeeds. */
  async function scenario(): Promise<Scenario> {
    rt.stripeWebhooks!.configure({ dropRate: 1 }); // we deliver the events ourselves
    const threeDs = (async () => {
      const created = await pay('pm_card_authenticationRequired');
      return (await paymentStatus(created.id, 'requires_action')) as unknown as Json;
    })();
    const refunding = (async () => {
      const created = await pay('pm_card_pendingRefund');
      const p = (await paymentStatus(created.id, 'captured')) as unknown as Json;
      const r = (await call('POST', '/v1/refunds', { payment: p.id, amount: 400 })).body;
      expect(r.status).toBe('pending');
      return [p, r] as const;
    })();
    const [a, [b, refund]] = await Promise.all([threeDs, refunding]);
    const tokenA = await waitFor('a waiting', async () => {
      const t = await getTaskToken(a.id);
      return t.kind === 'authentication' ? t.token : undefined;
    });
    const tokenRefund = await waitFor(
      'refund waiting',
      async () => (await getRefundItem(refund.id))?.task_token as string,
    );
    rt.stripe!.authenticate(a.processor_reference, 'succeed');
    rt.stripe!.settleAsyncRefunds();
    const refs = new Set([a.processor_reference, b.processor_reference]);
    const events = rt
      .stripe!.events()
      .filter((e) => refs.has(e.data.object.id) || refs.has(e.data.object.payment_intent as string));
    return { a, b, refund, tokenA, tokenRefund, events };
  }

  type Delivery = { event: number; mode: 'valid' | 'replay' | 'tampered' | 'stale' | 'wrong_secret' };

  async function deliver(s: Scenario, plan: Delivery[]): Promise<void> {
    const lastHeader = new Map<number, string>();
    for (const d of plan) {
      const payload = JSON.stringify(s.events[d.event], null, 2);
      let status: number;
      if (d.mode === 'valid' || (d.mode === 'replay' && !lastHeader.has(d.event))) {
        const h = sign(payload);
        lastHeader.set(d.event, h);
        status = (await post(payload, h)).status;
        expect(status).toBe(200);
      } else if (d.mode === 'replay') {
        expect((await post(payload, lastHeader.get(d.event))).status).toBe(200);
      } else {
        const bad =
          d.mode === 'tampered'
            ? [payload.replace('"livemode": false', '"livemode": true'), sign(payload)]
            : d.mode === 'stale'
              ? [payload, sign(payload, SECRET, now() - 600)]
              : [payload, sign(payload, 'whsec_forged')];
        expect((await post(bad[0]!, bad[1])).status).toBe(400);
      }
    }
  }

  async function finalState(s: Scenario) {
    const ids = [...new Set(s.events.map((e) => e.id))];
    await waitFor(
      'all events processed',
      async () => {
        for (const id of ids) if ((await getWebhookEvent('stripe', id))?.status !== 'processed') return false;
        return true;
      },
      10_000,
    );
    const a = (await getPayment(s.a.id))!;
    const b = (await getPayment(s.b.id))!;
    const refund = (await getRefundItem(s.refund.id))!;
    const execA = await rt.stepFunctions.waitForExecution(a.execution_arn!);
    const execRefund = await rt.stepFunctions.waitForExecution(refund.execution_arn as string);
    const ta = await timeline(a.id);
    const tb = await timeline(b.id);
    const webhookIds = ta.filter((e) => e.type === 'webhook').map((e) => e.event_id);
    return {
      a: { status: a.status, amount_captured: a.amount_captured, workflow: execA.status },
      b: { status: b.status, amount_refunded: b.amount_refunded, amount_captured: b.amount_captured },
      refund: { status: refund.status, workflow: execRefund.status },
      transitionsA: ta.filter((e) => e.type === 'status_changed').map((e) => e.status),
      transitionsB: tb.filter((e) => e.type === 'status_changed').map((e) => e.status),
      refundSettlements: tb.filter((e) => e.type === 'refund' && e.event === 'succeeded').length,
      resumesA: ta.filter((e) => e.action === 'resumed').length,
      webhookEntriesUnique: new Set(webhookIds).size === webhookIds.length,
      taskSuccessesA: succeeded.get(s.tokenA) ?? 0,
      taskSuccessesRefund: succeeded.get(s.tokenRefund) ?? 0,
      storedOnce: (await Promise.all(ids.map((id) => getWebhookEvent('stripe', id)))).every(
        (e) => e?.status === 'processed',
      ),
    };
  }

  let expected: Awaited<ReturnType<typeof finalState>>;

  test('in-order delivery (the reference)', async () => {
    const s = await scenario();
    expect(s.events.length).toBeGreaterThanOrEqual(8);
    await deliver(
      s,
      s.events.map((_, i) => ({ event: i, mode: 'valid' as const })),
    );
    expected = await finalState(s);
    expect(expected).toEqual({
      a: { status: 'captured', amount_captured: 1050, workflow: 'SUCCEEDED' },
      b: { status: 'partially_refunded', amount_refunded: 400, amount_captured: 1050 },
      refund: { status: 'succeeded', workflow: 'SUCCEEDED' },
      transitionsA: ['requires_action', 'captured'],
      transitionsB: ['captured', 'partially_refunded'],
      refundSettlements: 1,
      resumesA: 1,
      webhookEntriesUnique: true,
      taskSuccessesA: 1,
      taskSuccessesRefund: 1,
      storedOnce: true,
    });
  });

  test('random permutations with duplicates, replays and bad deliveries', async () => {
    expect(expected).toBeDefined();
    const n = 11; // events per scenario (checked below)
    const plan = fc
      .tuple(
        fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
        fc.array(
          fc.record({
            event: fc.nat(n - 1),
            mode: fc.constantFrom('valid', 'replay', 'tampered', 'stale', 'wrong_secret') as fc.Arbitrary<
              Delivery['mode']
            >,
          }),
          { maxLength: 8 },
        ),
        fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
      )
      .map(([order, extras, positions]) => {
        const out: Delivery[] = order.map((event) => ({ event, mode: 'valid' as const }));
        extras.forEach((x, i) => out.splice(positions[i]! % (out.length + 1), 0, x));
        return out;
      });
    await fc.assert(
      fc.asyncProperty(plan, async (p) => {
        const t0 = Date.now();
        const s = await scenario();
        const t1 = Date.now();
        expect(s.events).toHaveLength(n);
        await deliver(s, p);
        const t2 = Date.now();
        const st = await finalState(s);
        console.log('TIMING', t1 - t0, t2 - t1, Date.now() - t2);
        expect(st).toEqual(expected);
      }),
      { numRuns: 30, endOnFailure: true },
    );
  });
});
