/** Recovery analytics (lambdas/billing/recovery.ts): what dunning won back, by attempt, code and days. */
import type { Invoice } from '../../lambdas/billing/model.ts';
import { recoveryReport } from '../../lambdas/billing/recovery.ts';

const DAY = 86_400;
const inv = (over: Partial<Invoice>): Invoice =>
  ({
    id: 'in_x',
    currency: 'usd',
    amount_due: 1000,
    amount_paid: 0,
    status: 'open',
    attempt_count: 1,
    failed_attempts: 1,
    attempts: [{ attempt: 1, payment: 'pay_1', at: 0, outcome: 'failed', code: 'insufficient_funds' }],
    first_failed_at: 0,
    paid_at: null,
    created: 0,
    updated: 0,
    ...over,
  }) as Invoice;

describe('recovery report', () => {
  test('recovered, lost and in dunning, with the recovery rate among decided invoices', () => {
    const [r] = recoveryReport([
      inv({ status: 'paid', amount_paid: 1000, attempt_count: 3, paid_at: 4 * DAY + 5 }),
      inv({ status: 'paid', amount_paid: 1000, attempt_count: 2, paid_at: DAY }),
      inv({
        status: 'uncollectible',
        attempts: [{ attempt: 1, payment: 'p', at: 0, outcome: 'failed', code: 'expired_card' }],
      }),
      inv({ status: 'open' }),
      inv({ status: 'paid', amount_paid: 1000, failed_attempts: 0 }), // never failed: not counted
    ]);
    expect(r).toMatchObject({
      currency: 'usd',
      failed: { invoices: 4, amount: 4000 },
      recovered: { invoices: 2, amount: 2000 },
      lost: { invoices: 1, amount: 1000 },
      in_dunning: { invoices: 1, amount: 1000 },
      recovery_rate: 0.6667,
    });
    expect(r!.by_attempt).toEqual({ '2': { invoices: 1, amount: 1000 }, '3': { invoices: 1, amount: 1000 } });
    expect(r!.by_days_since_first_failure).toEqual({
      '1': { invoices: 1, amount: 1000 },
      '4': { invoices: 1, amount: 1000 },
    });
    expect(r!.by_decline_code).toEqual({
      insufficient_funds: { failed: 3, invoices: 2, amount: 2000 },
      expired_card: { failed: 1, invoices: 0, amount: 0 },
    });
  });

  test('currencies are never added together; nothing failed is an empty list', () => {
    const rs = recoveryReport([inv({ currency: 'usd' }), inv({ currency: 'eur' })]);
    expect(rs.map((r) => r.currency)).toEqual(['eur', 'usd']);
    expect(rs[0]!.recovery_rate).toBeNull();
    expect(recoveryReport([])).toEqual([]);
  });
});
