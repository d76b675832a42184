/**
 * The ledger check run in the background, pure (lambdas/ledger/check-run.ts): who may move the one
 * stored check (one at a time; a `running` one only once stale) and the bounded result kept of a run.
 */
import {
  BALANCES_KEPT,
  boundedResult,
  MISMATCHES_KEPT,
  mayMove,
  STALE_AFTER_MS,
  type LedgerCheckState,
} from '../../lambdas/ledger/check-run.ts';
import type { Balances, InvariantReport } from '../../lambdas/ledger/domain.ts';

const now = 1_800_000_000_000;
const state = (status: LedgerCheckState['status'], since = now): LedgerCheckState => ({
  status,
  request_id: 'lchk_1',
  requested_at: since,
  requested_by: 'console:op_1',
  status_since: since,
});
const stale = now - STALE_AFTER_MS - 1;

test('a request starts only with no check, a finished one, or a stale run', () => {
  expect(mayMove('request', undefined, now)).toBe(true);
  expect(mayMove('request', state('finished'), now)).toBe(true);
  expect(mayMove('request', state('requested'), now)).toBe(false);
  expect(mayMove('request', state('requested', stale), now)).toBe(false);
  expect(mayMove('request', state('running'), now)).toBe(false);
  expect(mayMove('request', state('running', stale), now)).toBe(true);
});

test('a run starts from its request, or takes over a stale run; it finishes only while running', () => {
  expect(mayMove('start', undefined, now)).toBe(false);
  expect(mayMove('start', state('requested'), now)).toBe(true);
  expect(mayMove('start', state('running'), now)).toBe(false);
  expect(mayMove('start', state('running', stale), now)).toBe(true);
  expect(mayMove('start', state('finished'), now)).toBe(false);
  expect(mayMove('finish', state('running'), now)).toBe(true);
  expect(mayMove('finish', state('requested'), now)).toBe(false);
  expect(mayMove('finish', state('finished'), now)).toBe(false);
});

test('the result keeps its figures whole and cuts its lists, counting them', () => {
  const receivable = Array.from({ length: MISMATCHES_KEPT + 5 }, (_, i) => ({
    merchant_id: `m${i}`,
    processor: 'stripe',
    currency: 'usd',
    receivable: 1,
    expected: 0,
    captured: 0,
    refunded: 0,
    disputed: 0,
    fees: 0,
    paid_out: 0,
    difference: 1,
  }));
  const balances = Array.from(
    { length: BALANCES_KEPT + 1 },
    (_, i) => ({ merchant_id: `m${i}` }) as Balances,
  );
  const report: InvariantReport & { balances: Balances[] } = {
    ok: false,
    entries: 12_345,
    unbalanced: [{ id: 'cap:x:1', problems: ['debits ≠ credits'] }],
    receivable,
    sources: [],
    trial_balance: 0,
    balances,
  };
  const run = {
    request_id: 'lchk_1',
    requested_at: 1,
    requested_by: 'console:op_1',
    started_at: 2,
    finished_at: 3,
  };
  const r = boundedResult(report, run);
  expect(r).toMatchObject({ ...run, ok: false, entries: 12_345, unbalanced: 1, trial_balance: 0 });
  expect(r.receivable).toHaveLength(MISMATCHES_KEPT);
  expect(r.receivable[0]!.merchant_id).toBe('m0');
  expect(r.receivable_count).toBe(MISMATCHES_KEPT + 5);
  expect(r).toMatchObject({ sources: [], sources_count: 0, balances_count: BALANCES_KEPT + 1 });
  expect(r.balances).toHaveLength(BALANCES_KEPT);
});
