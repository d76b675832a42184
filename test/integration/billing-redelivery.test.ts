/**
 * A billing step delivered again (docs/billing.md "The billing workflow"): the step that finds a
 * period's invoice paid starts the next period's execution itself, with its wait, so a step run
 * twice (a retry, a redelivery, an execution of an earlier definition calling `next`) starts it
 * once and charges nothing more. A monthly plan at time scale 86400: the next period waits about
 * 30 s, so nothing else moves while the steps are delivered again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeExecutionCommand, GetExecutionHistoryCommand } from '@aws-sdk/client-sfn';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { periodInvoiceId } from '../../lambdas/billing/model.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { apiClient, until } from '../fixtures/api.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('billing steps delivered again', () => {
  let dir: string;
  let rt: Runtime;
  let call: ReturnType<typeof apiClient>;

  const execution = (name: string) =>
    `${config.stateMachineArn('billing').replace(':stateMachine:', ':execution:')}:${name}`;
  const statesEntered = async (name: string) => {
    const h = await clients.sfn().send(new GetExecutionHistoryCommand({ executionArn: execution(name) }));
    return (h.events ?? []).flatMap((e) =>
      e.stateEnteredEventDetails ? [e.stateEnteredEventDetails.name] : [],
    );
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-billing-redelivery-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 86_400, scheduler: false });
    call = apiClient(() => rt.url!, (await createMerchant('Acme')).apiKey);
  });
  afterAll(async () => {
    await rt.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the paid period starts the next one once, however often its steps run', async () => {
    const plan = (
      await call('POST', '/v1/plans', { name: 'Monthly', amount: 900, currency: 'usd', interval: 'month' })
    ).body as Json;
    const cus = (await call('POST', '/v1/customers', { payment_method: 'pm_card_visa' })).body as Json;
    const sub = (await call('POST', '/v1/subscriptions', { customer: cus.id, plan: plan.id })).body as Json;
    expect(sub.status).toBe('active');
    const invoiceId = periodInvoiceId(sub.id, 0);
    // Period 0's execution ends once its step has started period 1's: with no step of its own.
    await until('period 0 billed', async () => {
      const d = await clients
        .sfn()
        .send(new DescribeExecutionCommand({ executionArn: execution(`${sub.id}-p0`) }));
      return d.status === 'SUCCEEDED';
    });
    const p0 = await statesEntered(`${sub.id}-p0`);
    expect(p0).toContain('Find when the period starts');
    expect(p0).toContain('The period is billed');
    expect(p0).not.toContain('Start the next period');
    // Period 1's execution was started with its wait: it begins at the Wait.
    const p1 = await clients
      .sfn()
      .send(new DescribeExecutionCommand({ executionArn: execution(`${sub.id}-p1`) }));
    expect(p1.status).toBe('RUNNING');
    expect(JSON.parse(p1.input!)).toMatchObject({
      subscription_id: sub.id,
      period: 1,
      wait_seconds: expect.any(Number),
    });
    expect(await statesEntered(`${sub.id}-p1`)).not.toContain('Find when the period starts');

    // Period 0's steps delivered again: each finds the invoice paid and period 1 started.
    const base = { subscription_id: sub.id, period: 0, invoice_id: invoiceId };
    for (const event of [
      { ...base, action: 'open' },
      { ...base, action: 'charge', attempt: 1 },
      { ...base, action: 'check', polls: 0 },
    ]) {
      const out = (await rt.lambdas.invoke('billing-step', event)) as Json;
      expect(out).toMatchObject({ next: 'paid', next_started: true, invoice_id: invoiceId });
    }
    // An execution of the earlier definition calls `next`: refused as started, nothing else.
    expect(await rt.lambdas.invoke('billing-step', { ...base, action: 'next' })).toMatchObject({
      next: 'stop',
    });

    const again = await clients
      .sfn()
      .send(new DescribeExecutionCommand({ executionArn: execution(`${sub.id}-p1`) }));
    expect(again.startDate).toEqual(p1.startDate);
    expect(again.input).toBe(p1.input);
    const inv = (await call('GET', `/v1/invoices/${invoiceId}`)).body as Json;
    expect(inv).toMatchObject({ status: 'paid', attempt_count: 1 });
    const payments = (await call('GET', '/v1/payments?limit=100')).body.data as Json[];
    expect(payments.map((p) => p.metadata.invoice)).toEqual([invoiceId]);
    expect(payments[0]).toMatchObject({ status: 'captured', amount: 900 });
    const periods = ((await call('GET', `/v1/invoices?subscription=${sub.id}`)).body.data as Json[]).map(
      (i) => i.period,
    );
    expect(periods).toEqual([0]);
  }, 60_000);
});
