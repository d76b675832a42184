/**
 * The sweeper on the local runtime: with the processor's webhooks lost, stuck payments and refunds
 * still reach their true state, by the same guarded transitions and workflow resumptions; an
 * outcome that stays unknown is escalated, never failed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { sweep } from '../../lambdas/sweeper/run.ts';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../../lambdas/shared/aws.ts';
import { checkpoint, claim, requestHash } from '../../lambdas/store/idempotency.ts';
import { getPayment } from '../../lambdas/store/payments.ts';
import { reserve } from '../../lambdas/store/refunds.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('sweeper', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;

  const post = async (p: string, body: unknown) =>
    (await (
      await fetch(`${rt.url}${p}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify(body),
      })
    ).json()) as Json;
  const get = async (p: string) =>
    (await (await fetch(`${rt.url}${p}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Json;
  const until = async (cond: () => Promise<boolean>, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sweeper-'));
    process.env.PAYSTEP_SYNC_WAIT_MS = '300';
    process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0';
    // Slow enough that the workflows' own timeouts (1 h for 3-D Secure, 24 h for refunds) do not fire during the test.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 10, scheduler: false });
    key = (await createMerchant('Acme')).apiKey;
    process.env.PAYSTEP_SWEEP_AFTER_SECONDS = '0';
    process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS = '0';
  });
  afterAll(async () => {
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    delete process.env.PAYSTEP_SWEEP_AFTER_SECONDS;
    delete process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS;
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a refund request that died after reserving, before writing its refund: the sweeper gives the amount back; the same key then refunds once', async () => {
    const created = await post('/v1/payments', {
      amount: 4000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
    });
    await until(async () => (await get(`/v1/payments/${created.id}`)).status === 'captured');
    const p = await get(`/v1/payments/${created.id}`);
    const merchantId = (await getPayment(p.id))!.merchant_id;
    const body = { payment: p.id, amount: 1500 };
    const idem = randomUUID();
    // What the request had done when its process died: claimed, checkpointed, reserved.
    const c = await claim(
      merchantId,
      idem,
      requestHash('POST', '/v1/refunds', body),
      're_abandoned00000001',
      'refund.create',
      -1, // as if its lock had run out already
    );
    expect(c.kind).toBe('new');
    await checkpoint(merchantId, idem, 'reserving', { payment: p.id, amount: 1500 });
    await reserve(p.id, 're_abandoned00000001', 1500);
    const remaining = async () =>
      (
        await clients
          .ddb()
          .send(new GetCommand({ TableName: 'paystep-main', Key: { pk: `PAYMENT#${p.id}`, sk: 'PAYMENT' } }))
      ).Item!.refundable_remaining as number;
    expect(await remaining()).toBe(2500);

    const swept = await sweep();
    expect(swept.resolved).toContainEqual({
      id: 're_abandoned00000001',
      action: 'abandoned refund request: reservation released, claim dropped',
    });
    expect(await remaining()).toBe(4000);
    expect((await sweep()).resolved.map((r) => r.id)).not.toContain('re_abandoned00000001');

    const res = await fetch(`${rt.url}/v1/refunds`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'idempotency-key': idem,
      },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(201);
    await until(async () => (await get(`/v1/payments/${p.id}`)).amount_refunded === 1500);
    expect(rt.stripe!.objectsWhere('refund', 'payment_intent', p.processor_reference)).toHaveLength(1);
  });

  test('lost webhooks: authenticated payments and finished refunds reach their true state; a second sweep changes nothing', async () => {
    rt.stripeWebhooks!.configure({ dropRate: 1 });
    const created = await Promise.all(
      Array.from({ length: 4 }, () =>
        post('/v1/payments', {
          amount: 2000,
          currency: 'usd',
          payment_method: 'pm_card_authenticationRequired',
        }),
      ),
    );
    const threeDs: Json[] = [];
    for (const c of created) {
      await until(async () => (await get(`/v1/payments/${c.id}`)).status === 'requires_action');
      threeDs.push(await get(`/v1/payments/${c.id}`));
    }
    rt.stripe!.authenticate(threeDs[0]!.processor_reference, 'succeed');
    rt.stripe!.authenticate(threeDs[1]!.processor_reference, 'succeed');
    rt.stripe!.authenticate(threeDs[2]!.processor_reference, 'fail');
    // threeDs[3]: the customer has not acted yet; it must stay untouched.

    const slow = await post('/v1/payments', {
      amount: 900,
      currency: 'usd',
      payment_method: 'pm_card_pendingRefund',
    });
    await until(async () => (await get(`/v1/payments/${slow.id}`)).status === 'captured');
    const refund = await post('/v1/refunds', { payment: slow.id, amount: 400 });
    expect(refund.status).toBe('pending');
    rt.stripe!.settleAsyncRefunds();
    await new Promise((r) => setTimeout(r, 300)); // a webhook (had it not been lost) would have arrived by now
    expect((await get(`/v1/payments/${threeDs[0]!.id}`)).status).toBe('requires_action');
    expect((await get(`/v1/refunds/${refund.id}`)).status).toBe('pending');

    const first = await sweep();
    expect(first.escalated).toEqual([]);
    await until(async () => (await get(`/v1/payments/${threeDs[0]!.id}`)).status === 'captured');
    await until(async () => (await get(`/v1/payments/${threeDs[1]!.id}`)).status === 'captured');
    await until(async () => (await get(`/v1/payments/${threeDs[2]!.id}`)).status === 'failed');
    await until(async () => (await get(`/v1/refunds/${refund.id}`)).status === 'succeeded');
    expect((await get(`/v1/payments/${threeDs[3]!.id}`)).status).toBe('requires_action');
    expect(await get(`/v1/payments/${slow.id}`)).toMatchObject({
      status: 'partially_refunded',
      amount_refunded: 400,
    });
    for (const p of threeDs.slice(0, 2))
      expect(rt.stripe!.paymentIntent(p.processor_reference)!.status).toBe('succeeded');

    const second = await sweep();
    expect(second.resolved).toEqual([]);
    expect((await get(`/v1/payments/${slow.id}`)).amount_refunded).toBe(400); // settled once
    rt.stripeWebhooks!.configure({ dropRate: 0 });
  });

  test('a dead workflow is re-driven: an authorized payment gets a new execution and can still be captured', async () => {
    const created = await post('/v1/payments', {
      amount: 1500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
    });
    await until(async () => (await get(`/v1/payments/${created.id}`)).status === 'authorized');
    const first = (await get(`/v1/payments/${created.id}/timeline`)).workflow.execution_arn;
    await until(async () => rt.stepFunctions.pendingTaskTokens(first).length === 1); // waiting for capture
    rt.stepFunctions.stopExecution({ executionArn: first, error: 'Crash', cause: 'simulated crash' });
    const r = await sweep();
    expect(r.resolved).toContainEqual({
      id: created.id,
      action: 'authorized but its workflow was ABORTED'.replace(/^/, 're-driven: '),
    });
    const timeline = await get(`/v1/payments/${created.id}/timeline`);
    expect(timeline.workflow.execution_arn).toBe(`${first}-r1`);
    await until(async () => rt.stepFunctions.pendingTaskTokens(`${first}-r1`).length === 1);
    const captured = await post(`/v1/payments/${created.id}/capture`, {});
    expect(captured).toMatchObject({ status: 'captured', amount_captured: 1500 });
    expect((await sweep()).resolved.filter((x) => x.id === created.id)).toEqual([]);
  });
});

describe('sweeper with 10% of webhooks dropped', () => {
  test('every payment and refund reaches its true terminal state', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sweeper-drop-'));
    process.env.PAYSTEP_SYNC_WAIT_MS = '300';
    process.env.PAYSTEP_SWEEP_AFTER_SECONDS = '0';
    process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS = '0';
    const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 10, scheduler: false });
    try {
      const { apiKey } = await createMerchant('Dropper');
      const call = async (method: string, p: string, body?: unknown) =>
        (await (
          await fetch(`${rt.url}${p}`, {
            method,
            headers: {
              authorization: `Bearer ${apiKey}`,
              'content-type': 'application/json',
              'idempotency-key': randomUUID(),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
          })
        ).json()) as Json;
      const waitStatus = async (p: string, want: (s: string) => boolean) => {
        for (let i = 0; i < 1000; i++) {
          const x = await call('GET', p);
          if (want(x.status)) return x;
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`${p} did not reach the expected status`);
      };
      rt.stripeWebhooks!.configure({ dropRate: 0.1 });
      const payments: Json[] = [];
      for (let i = 0; i < 16; i++) {
        const pm = i % 4 === 3 ? 'pm_card_pendingRefund' : 'pm_card_authenticationRequired';
        const created = await call('POST', '/v1/payments', {
          amount: 1000 + i * 10,
          currency: 'usd',
          payment_method: pm,
        });
        payments.push(await waitStatus(`/v1/payments/${created.id}`, (st) => st !== 'processing'));
      }
      const threeDs = payments.filter((p) => p.status === 'requires_action');
      threeDs.forEach((p, i) =>
        rt.stripe!.authenticate(p.processor_reference, i % 3 === 2 ? 'fail' : 'succeed'),
      );
      const refunds: Json[] = [];
      for (const p of payments.filter((x) => x.status === 'captured'))
        refunds.push(await call('POST', '/v1/refunds', { payment: p.id }));
      rt.stripe!.settleAsyncRefunds();
      await new Promise((r) => setTimeout(r, 500));
      await sweep();
      // The truth is the processor's: every payment and refund ends as the simulator says.
      for (const p of threeDs) {
        const pi = rt.stripe!.paymentIntent(p.processor_reference)!;
        const want = pi.status === 'succeeded' ? 'captured' : 'failed';
        await waitStatus(`/v1/payments/${p.id}`, (st) => st === want);
      }
      for (const r of refunds) await waitStatus(`/v1/refunds/${r.id}`, (st) => st === 'succeeded');
      expect(threeDs.length).toBe(12);
      expect(refunds.length).toBe(4);
      const again = await sweep();
      expect(again.resolved).toEqual([]);
    } finally {
      delete process.env.PAYSTEP_SYNC_WAIT_MS;
      delete process.env.PAYSTEP_SWEEP_AFTER_SECONDS;
      delete process.env.PAYSTEP_SWEEP_AUTH_AFTER_SECONDS;
      await rt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('review window', () => {
  test('a review nobody decides within its window is resolved by policy: the payment is canceled (review_expired)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-review-window-'));
    process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES = 'KP';
    const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 200_000, scheduler: false }); // 24 h ≈ 0.4 s
    try {
      const { apiKey } = await createMerchant('Reviewer');
      process.env.PAYSTEP_SYNC_WAIT_MS = '100';
      const res = await fetch(`${rt.url}/v1/payments`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify({
          amount: 500,
          currency: 'usd',
          payment_method: 'pm_card_visa',
          customer: { country: 'KP' },
        }),
      });
      delete process.env.PAYSTEP_SYNC_WAIT_MS;
      const p = (await res.json()) as Json;
      const exec = await rt.stepFunctions.waitForExecution(
        `arn:aws:states:local:000000000000:execution:paystep-payment:${p.id}`,
        10_000,
      );
      expect(exec.status).toBe('SUCCEEDED');
      const after = (await (
        await fetch(`${rt.url}/v1/payments/${p.id}`, { headers: { authorization: `Bearer ${apiKey}` } })
      ).json()) as Json;
      expect(after).toMatchObject({
        status: 'canceled',
        cancellation_reason: 'review_expired',
        review: { status: 'expired' },
      });
      expect(rt.stripe!.stats().paymentIntentsCreated).toBe(0); // nothing was charged
    } finally {
      delete process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES;
      await rt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sweeper and unknown outcomes', () => {
  test('an outcome still unknown is escalated (needs attention), never failed; later the truth is applied', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-sweeper2-'));
    // Fast enough that the workflow's long retries are spent in about a second.
    const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100_000, scheduler: false });
    try {
      const { apiKey } = await createMerchant('Acme');
      rt.stripe!.faults.set({ failRate: 1 });
      process.env.PAYSTEP_SYNC_WAIT_MS = '200';
      const res = await fetch(`${rt.url}/v1/payments`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify({ amount: 3000, currency: 'usd', payment_method: 'pm_card_visa' }),
      });
      const p = (await res.json()) as Json;
      delete process.env.PAYSTEP_SYNC_WAIT_MS;
      const arn = p.id && `arn:aws:states:local:000000000000:execution:paystep-payment:${p.id}`;
      expect(await rt.stepFunctions.waitForExecution(arn, 20_000)).toMatchObject({
        status: 'FAILED',
        error: 'NeedsAttention',
      });
      const stillDown = await sweep();
      expect(stillDown.escalated.map((e) => e.id)).toContain(p.id);
      const get = async () =>
        (await (
          await fetch(`${rt.url}/v1/payments/${p.id}`, { headers: { authorization: `Bearer ${apiKey}` } })
        ).json()) as Json;
      expect((await get()).status).toBe('processing');
      rt.stripe!.faults.reset();
      const recovered = await sweep();
      expect(recovered.resolved).toContainEqual({ id: p.id, action: 'reconciled: captured' });
      expect(await get()).toMatchObject({ status: 'captured', amount_captured: 3000 });
    } finally {
      await rt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
