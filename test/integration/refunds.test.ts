/**
 * Refunds on the local runtime: full and partial, several per payment, never above the captured
 * amount even under concurrency; failed refunds release their reservation; the payment becomes
 * partially_refunded / refunded; one service for the API and the ops CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createRefund, waitForRefund } from '../../lambdas/refunds/service.ts';
import { applyRefundUpdate } from '../../lambdas/refunds/updates.ts';
import { buildProgram } from '../../lib/cli/main.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('refunds on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let merchantId: string;

  const call = async (method: string, p: string, body?: unknown, k = key) => {
    const headers: Record<string, string> = { authorization: `Bearer ${k}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const captured = async (amount = 1000, pm = 'pm_card_visa') => {
    const r = await call('POST', '/v1/payments', { amount, currency: 'usd', payment_method: pm });
    expect(r.body.status).toBe('captured');
    return r.body;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-refunds-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    const m = await createMerchant('Acme');
    key = m.apiKey;
    merchantId = m.merchant.id;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('partial then full refund: partially_refunded, then refunded; nothing left to refund', async () => {
    const p = await captured(1000);
    const a = await call('POST', '/v1/refunds', {
      payment: p.id,
      amount: 300,
      reason: 'requested_by_customer',
    });
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({
      object: 'refund',
      status: 'succeeded',
      amount: 300,
      payment: p.id,
      reason: 'requested_by_customer',
    });
    expect(a.body.processor_reference).toMatch(/^re_/);
    expect((await call('GET', `/v1/payments/${p.id}`)).body).toMatchObject({
      status: 'partially_refunded',
      amount_refunded: 300,
    });
    const b = await call('POST', '/v1/refunds', { payment: p.id });
    expect(b.body).toMatchObject({ status: 'succeeded', amount: 700 });
    expect((await call('GET', `/v1/payments/${p.id}`)).body).toMatchObject({
      status: 'refunded',
      amount_refunded: 1000,
    });
    const c = await call('POST', '/v1/refunds', { payment: p.id, amount: 1 });
    expect(c.status).toBe(400);
    expect(c.body.error.param).toBe('payment');
    const list = await call('GET', `/v1/refunds?payment=${p.id}`);
    expect(list.body.data.map((r: Json) => r.amount).sort()).toEqual([300, 700]);
    expect((await call('GET', `/v1/refunds/${a.body.id}`)).body.status).toBe('succeeded');
  });

  test('50 concurrent partial refunds worth twice the amount: the successful ones sum to at most the captured amount', async () => {
    const p = await captured(5000);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => call('POST', '/v1/refunds', { payment: p.id, amount: 200 })),
    );
    // Accepted ones may still be pending when the 8 s sync wait ends on a loaded machine.
    const ok = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 400);
    // Anything but accepted or refused is shown with its body (a 5xx would be a bug).
    expect(
      results.filter((r) => r.status !== 201 && r.status !== 400).map((r) => [r.status, r.body]),
    ).toEqual([]);
    expect(ok.length).toBe(25);
    for (const r of ok) if (r.body.status !== 'succeeded') await waitForRefund(r.body.id as string, 30_000);
    for (const r of ok) expect((await call('GET', `/v1/refunds/${r.body.id}`)).body.status).toBe('succeeded');
    expect(
      refused.every(
        (r) => r.body.error.code === 'amount_too_large' || r.body.error.code === 'payment_unexpected_state',
      ),
    ).toBe(true);
    await rt.settle();
    const after = (await call('GET', `/v1/payments/${p.id}`)).body;
    expect(after).toMatchObject({ status: 'refunded', amount_refunded: 5000 });
    const stripeRefunded = rt.stripe!.paymentIntent(p.processor_reference)!;
    expect(stripeRefunded.amount_received).toBe(5000);
  }, 60_000);

  test('an amount above what was captured is refused; a refused refund does not consume the refundable amount', async () => {
    const p = await captured(1000);
    const big = await call('POST', '/v1/refunds', { payment: p.id, amount: 1001 });
    expect(big.status).toBe(400);
    expect(big.body.error).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    const ok = await call('POST', '/v1/refunds', { payment: p.id, amount: 1000 });
    expect(ok.body.status).toBe('succeeded');
  });

  test('a processor outage during the refund is retried; a pending refund settles when the processor finishes', async () => {
    const p = await captured(800);
    rt.stripe!.faults.set({ failNext: 2, match: 'POST /v1/refunds' } as never);
    const r = await call('POST', '/v1/refunds', { payment: p.id, amount: 100 });
    rt.stripe!.faults.reset();
    expect(r.body.status).toBe('succeeded');

    const slow = await captured(900, 'pm_card_pendingRefund');
    process.env.PAYSTEP_SYNC_WAIT_MS = '300'; // the refund stays pending: do not wait the default 8 s
    const pending = await call('POST', '/v1/refunds', { payment: slow.id, amount: 900 }).finally(
      () => delete process.env.PAYSTEP_SYNC_WAIT_MS,
    );
    expect(pending.body.status).toBe('pending');
    expect((await call('GET', `/v1/payments/${slow.id}`)).body).toMatchObject({
      status: 'captured',
      amount_refunded: 0,
    });
    // The processor finishes the refund and says so (the webhook path: refund.updated).
    rt.stripe!.settleAsyncRefunds();
    const processorRefund = rt.stripe!.refund(pending.body.processor_reference)! as unknown as {
      id: string;
      status: string;
    };
    expect(processorRefund.status).toBe('succeeded');
    expect(await applyRefundUpdate('stripe', processorRefund, Math.floor(Date.now() / 1000))).toBe('applied');
    const done = await waitForRefund(pending.body.id, 5000);
    expect(done.status).toBe('succeeded');
    expect(await applyRefundUpdate('stripe', processorRefund, Math.floor(Date.now() / 1000))).toBe('ignored'); // duplicate
    expect((await call('GET', `/v1/payments/${slow.id}`)).body).toMatchObject({
      status: 'refunded',
      amount_refunded: 900,
    });
    expect(await applyRefundUpdate('stripe', { id: 're_unknown', status: 'succeeded' }, 0)).toBe(
      'unknown_object',
    );
  });

  test('refusals: uncaptured payment, unknown payment, another merchant, bad amount', async () => {
    const auth = await call('POST', '/v1/payments', {
      amount: 500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
    });
    expect((await call('POST', '/v1/refunds', { payment: auth.body.id })).body.error.code).toBe(
      'payment_unexpected_state',
    );
    expect((await call('POST', '/v1/refunds', { payment: 'pay_doesnotexist000' })).status).toBe(404);
    const p = await captured(500);
    const other = (await createMerchant('Other')).apiKey;
    expect((await call('POST', '/v1/refunds', { payment: p.id }, other)).status).toBe(404);
    expect((await call('POST', '/v1/refunds', { payment: p.id, amount: 0 })).body.error.param).toBe('amount');
    expect((await call('POST', '/v1/refunds', { amount: 5 })).body.error.param).toBe('payment');
  });

  test('the ops path (CLI) uses the same service and the same guarantees', async () => {
    const p = await captured(400);
    const r = await createRefund({
      merchantId,
      paymentId: p.id,
      amount: 150,
      reason: 'duplicate',
      channel: 'cli',
    });
    expect(r).toMatchObject({ status: 'succeeded', channel: 'cli', amount: 150 });
    await expect(
      createRefund({ merchantId, paymentId: p.id, amount: 251, channel: 'cli' }),
    ).rejects.toMatchObject({ status: 400 });
  });

  test('paystep refund create with an idempotency key: run twice, one refund; a refusal exits non-zero', async () => {
    const p = await captured(900);
    const cli = async (...args: string[]) => {
      let text = '';
      await buildProgram((t) => (text += t)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
      return JSON.parse(text) as Json;
    };
    const args = [
      'refund',
      'create',
      '--payment',
      p.id,
      '--amount',
      '300',
      '--idempotency-key',
      'ops-ticket-42',
    ];
    const first = await cli(...args);
    const second = await cli(...args);
    expect(first).toMatchObject({ object: 'refund', amount: 300, channel: 'cli', status: 'succeeded' });
    expect(second.id).toBe(first.id);
    expect(rt.stripe!.objectsWhere('refund', 'payment_intent', p.processor_reference)).toHaveLength(1);
    await expect(
      cli('refund', 'create', '--payment', p.id, '--amount', '601', '--idempotency-key', 'ops-ticket-43'),
    ).rejects.toMatchObject({ name: 'CommandFailed', message: expect.stringContaining('amount_too_large') });
    // The key is stored as the claim's key: one holding a card number is refused, as the API's header.
    await expect(
      cli('refund', 'create', '--payment', p.id, '--idempotency-key', '4242 4242 4242 4242'),
    ).rejects.toMatchObject({ name: 'UsageError', message: expect.stringContaining('--idempotency-key') });
    expect(rt.stripe!.objectsWhere('refund', 'payment_intent', p.processor_reference)).toHaveLength(1);
  });
});

describe('refund poll fallback', () => {
  test('with no webhook, the workflow asks the processor after its wait times out', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-refunds-poll-'));
    // 86400 s of waiting pass in under a second at this scale.
    process.env.PAYSTEP_SIM_WEBHOOK_DROP_RATE = '1'; // the processor's webhooks never arrive
    const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 200_000, scheduler: false }).finally(
      () => delete process.env.PAYSTEP_SIM_WEBHOOK_DROP_RATE,
    );
    try {
      const { apiKey } = await createMerchant('Poller');
      const post = async (p: string, body: unknown) =>
        (
          await fetch(`${rt.url}${p}`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${apiKey}`,
              'content-type': 'application/json',
              'idempotency-key': randomUUID(),
            },
            body: JSON.stringify(body),
          })
        ).json() as Promise<Json>;
      const p = await post('/v1/payments', {
        amount: 700,
        currency: 'usd',
        payment_method: 'pm_card_pendingRefund',
      });
      process.env.PAYSTEP_SYNC_WAIT_MS = '100';
      const r = await post('/v1/refunds', { payment: p.id }).finally(
        () => delete process.env.PAYSTEP_SYNC_WAIT_MS,
      );
      expect(r.status).toBe('pending');
      rt.stripe!.settleAsyncRefunds();
      const done = await waitForRefund(r.id, 8000);
      expect(done.status).toBe('succeeded');
      const history = rt.stepFunctions.getExecutionHistory({
        executionArn: done.execution_arn,
        maxResults: 1000,
      }).events;
      expect(
        history.some(
          (e) =>
            e.type === 'TaskStateEntered' &&
            (e as unknown as { stateEnteredEventDetails: { name: string } }).stateEnteredEventDetails.name ===
              'Ask the processor',
        ),
      ).toBe(true);
    } finally {
      await rt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
