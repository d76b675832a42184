/**
 * The refund workflow's "Wait for the final outcome" resumes at once when paystep already knows the
 * outcome: recorded on the refund, or in a verified fact stored before the refund had its processor
 * reference (a notification that overtook a crashed request, parked until its retries ran out).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { handler } from '../../lambdas/refunds/steps/hold.ts';
import { storeFact } from '../../lambdas/store/processor-facts.ts';
import { createRefundItem, type Refund } from '../../lambdas/store/refunds.ts';
import type { RefundFact } from '../../lambdas/connectors/facts.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

const sfn = mockClient(SFNClient);
let table: LocalTable;
beforeAll(async () => {
  table = await startLocalTable();
});
afterAll(async () => {
  sfn.restore();
  await table.stop();
});
beforeEach(() => {
  sfn.reset();
  sfn.on(SendTaskSuccessCommand).resolves({});
});

let n = 0;
async function pendingRefund(reference: string | null): Promise<Refund> {
  const now = Math.floor(Date.now() / 1000);
  const r: Refund = {
    id: `re_hold${++n}`,
    object: 'refund',
    merchant_id: 'mer_1',
    payment_id: 'pay_1',
    amount: 2500,
    currency: 'eur',
    status: 'pending',
    reason: null,
    channel: 'api',
    processor: 'adyen',
    processor_reference: reference,
    failure_reason: null,
    metadata: {},
    execution_arn: 'arn:aws:states:local:000000000000:execution:paystep-refund:x',
    created: now,
    updated: now,
  };
  await createRefundItem(r, Date.now());
  return r;
}

const fact = (reference: string, event: RefundFact['event'], success = true): RefundFact => ({
  kind: 'refund',
  processor: 'adyen',
  id: `adyen:REFUND:${reference}:${event}`,
  at: new Date().toISOString(),
  raw_event: 'REFUND',
  success,
  amount: { value: 2500, currency: 'eur' },
  live: false,
  reference,
  paymentReference: 'PAYREF0000000001',
  merchantReference: null,
  event,
  ...(success ? {} : { reason: 'Insufficient balance' }),
});

const resumed = () =>
  sfn.commandCalls(SendTaskSuccessCommand).map((c) => JSON.parse(c.args[0].input.output!) as unknown);

describe('refund hold step', () => {
  it('resumes at once with a stored fact the refund never saw', async () => {
    const r = await pendingRefund('REFREF0000000001');
    await storeFact(fact('REFREF0000000001', 'succeeded'));
    await handler({ refund_id: r.id, token: 'token-1' });
    expect(resumed()).toEqual([{ status: 'succeeded', failure_reason: null }]);
  });

  it('a failed refund fact resumes with its reason', async () => {
    const r = await pendingRefund('REFREF0000000002');
    await storeFact(fact('REFREF0000000002', 'failed', false));
    await handler({ refund_id: r.id, token: 'token-2' });
    expect(resumed()).toEqual([{ status: 'failed', failure_reason: 'Insufficient balance' }]);
  });

  it('waits when nothing is known (no fact, or no processor reference yet)', async () => {
    const a = await pendingRefund('REFREF0000000003');
    const b = await pendingRefund(null);
    await handler({ refund_id: a.id, token: 'token-3' });
    await handler({ refund_id: b.id, token: 'token-4' });
    expect(resumed()).toEqual([]);
  });
});
