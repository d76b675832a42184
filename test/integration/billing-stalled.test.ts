/**
 * The billing workflow resumes an attempt a crash left half made, with no client retrying
 * (docs/billing.md "Crash safety"): a request charging an invoice stored the attempt's payment but
 * died before starting its payment workflow, and its client never came back. The workflow looking
 * at the invoice (its "Check the invoice" step) finds the payment `processing` with no payment
 * workflow and resumes the attempt under its key `billing <invoice> a<n>`: the same payment, one
 * charge at Stripe, the invoice paid. Without it the workflow only waited (the sweeper was the one
 * to drive it).
 *
 * The crash's leftovers are made by the real code: `chargeAttempt` with StartExecution of the
 * payment workflow failing (a dead process and a failed start leave the same state: the attempt
 * claimed on the invoice, the payment stored and processing, no execution, the request's
 * idempotency claim open for a taker).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { updateCustomer } from '../../lambdas/store/customers.ts';
import { chargeAttempt } from '../../lambdas/billing/charging.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { getInvoice } from '../../lambdas/store/invoices.ts';
import { getPayment } from '../../lambdas/store/payments.ts';

describe('the billing workflow resumes an attempt left processing without its payment workflow', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;

  const call = async (method: string, p: string, body?: unknown) =>
    (await apiClient(() => rt.url!, key)(method, p, body)).body;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-billing-stalled-'));
    // A daily period in about a second: the workflow waiting for a new payment method looks again
    // about every second.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 86_400, scheduler: false });
    key = (await createMerchant('Acme')).apiKey;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a payment stored but never started: the workflow resumes it under its key, one charge at Stripe', async () => {
    const cus = await call('POST', '/v1/customers', {
      payment_method: 'pm_card_visa_chargeDeclinedExpiredCard',
    });
    const plan = await call('POST', '/v1/plans', {
      name: 'Daily',
      amount: 700,
      currency: 'usd',
      interval: 'day',
    });
    const sub = await call('POST', '/v1/subscriptions', { customer: cus.id, plan: plan.id });
    // A hard decline: the first invoice waits for a new payment method, its workflow looking again.
    expect(sub.status).toBe('incomplete');
    const invoiceId = sub.latest_invoice as string;
    expect(await getInvoice(invoiceId)).toMatchObject({ attempt_count: 1, payment_method_required: true });

    // The card changes in the store only (no at-once retry), then attempt 2 is made and "dies"
    // between storing its payment and starting its workflow.
    await updateCustomer(cus.id, { payment_method: 'pm_card_visa' });
    const paymentMachine = config.stateMachineArn('payment');
    const real = clients.sfn;
    const realClient = real();
    const failing = {
      send: (cmd: unknown) =>
        cmd instanceof StartExecutionCommand && cmd.input.stateMachineArn === paymentMachine
          ? Promise.reject(new Error('killed before the payment workflow started'))
          : realClient.send(cmd as never),
    } as unknown as SFNClient;
    clients.sfn = () => failing;
    try {
      await expect(chargeAttempt(invoiceId, 2, 0)).rejects.toThrow(/killed before the payment workflow/);
    } finally {
      clients.sfn = real;
    }
    const stalled = (await getInvoice(invoiceId))!;
    expect(stalled.attempt_count).toBe(2);
    const paymentId = stalled.attempts.find((a) => a.attempt === 2)!.payment;
    // Stored, without its workflow (the workflow looking at the invoice may resume it any moment now).
    expect(await getPayment(paymentId)).toBeDefined();

    // Nobody retries: the workflow's next look at the invoice resumes the attempt.
    const paid = await until(
      'the invoice paid by the workflow alone',
      async () => {
        const inv = await call('GET', `/v1/invoices/${invoiceId}`);
        return inv.status === 'paid' && inv;
      },
      30_000,
    );
    expect(paid).toMatchObject({ attempt_count: 2, payment: paymentId, amount_paid: 700 });
    expect((await call('GET', `/v1/payments/${paymentId}`)).status).toBe('captured');
    // The subscription follows its paid invoice (the write right after the invoice's).
    await until(
      'the subscription active',
      async () => ((await call('GET', `/v1/subscriptions/${sub.id}`)).status === 'active' ? true : undefined),
      30_000,
    );
    const timeline = paid.timeline as Json[];
    expect(timeline.filter((e) => e.type === 'attempt_resumed')).toMatchObject([
      { attempt: 2, payment: paymentId },
    ]);
    // One charge at Stripe for the resumed attempt (and the one declined for attempt 1).
    const intents = rt.stripe!.objectsWhere('payment_intent', 'metadata.paystep_payment_id', paymentId);
    expect(intents).toHaveLength(1);
    expect(intents[0]).toMatchObject({ status: 'succeeded', amount_received: 700 });
    const first = stalled.attempts.find((a) => a.attempt === 1)!.payment;
    expect(rt.stripe!.objectsWhere('payment_intent', 'metadata.paystep_payment_id', first)).toHaveLength(1);
  });
});
