/**
 * The ledger as a specification: movements from cumulative amounts, balanced entries,
 * deterministic ids (replays and reordering change nothing), the balance projection and the
 * invariant check.
 */
import { compareRefunds } from '../../lambdas/ledger/processor-check.ts';
import {
  checkInvariants,
  entriesFromChange,
  entryProblems,
  feeEntry,
  payoutEntry,
  project,
  SourceTotalsBuilder,
  type ItemChange,
  type LedgerEntry,
} from '../../lambdas/ledger/domain.ts';

const payment = (over: Record<string, unknown> = {}) => ({
  kind: 'payment',
  id: 'pay_1',
  merchant_id: 'mch_1',
  processor: 'stripe',
  processor_reference: 'pi_1',
  currency: 'usd',
  status: 'captured',
  amount: 1000,
  amount_captured: 0,
  amount_refunded: 0,
  created: 1_700_000_000,
  updated: 1_700_000_000,
  ...over,
});

/** The stream of one payment's life: each record carries its old and new image. */
function lifeOfAPayment(): ItemChange[] {
  const states = [
    payment({ status: 'processing' }),
    payment({ status: 'captured', amount_captured: 1000, updated: 1_700_000_010 }),
    payment({
      status: 'partially_refunded',
      amount_captured: 1000,
      amount_refunded: 300,
      updated: 1_700_000_020,
    }),
    payment({
      status: 'partially_refunded',
      amount_captured: 1000,
      amount_refunded: 450,
      updated: 1_700_000_030,
    }),
    payment({ status: 'refunded', amount_captured: 1000, amount_refunded: 1000, updated: 1_700_000_040 }),
  ];
  return states.map((s, i) => ({
    eventName: i === 0 ? 'INSERT' : 'MODIFY',
    oldImage: i === 0 ? undefined : states[i - 1],
    newImage: s,
  }));
}

function dispute(over: Record<string, unknown> = {}) {
  return {
    kind: 'dispute',
    id: 'dp_1',
    payment_id: 'pay_1',
    funds_withdrawn_amount: 0,
    funds_reinstated_amount: 0,
    updated: 1_700_000_100,
    ...over,
  };
}

/** A store like DynamoDB with a conditional put: the first entry with an id wins. */
function book(changes: ItemChange[], store = new Map<string, LedgerEntry>()) {
  for (const c of changes)
    for (const e of entriesFromChange(c, { merchant_id: 'mch_1', processor: 'stripe', currency: 'usd' }))
      if (!store.has(e.id)) store.set(e.id, e);
  return store;
}

const sorted = (m: Map<string, LedgerEntry>) => [...m.values()].sort((a, b) => (a.id < b.id ? -1 : 1));

function shuffle<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('journal entries from the payments stream', () => {
  test('a capture debits the processor receivable and credits sales, keyed by the cumulative amount', () => {
    const [, captured] = lifeOfAPayment();
    const entries = entriesFromChange(captured!);
    expect(entries).toEqual([
      {
        id: 'cap:pay_1:1000',
        type: 'capture',
        merchant_id: 'mch_1',
        processor: 'stripe',
        currency: 'usd',
        amount: 1000,
        postings: [
          { account: 'processor_receivable', debit: 1000, credit: 0 },
          { account: 'sales', debit: 0, credit: 1000 },
        ],
        payment_id: 'pay_1',
        source_id: 'pay_1',
        processor_reference: 'pi_1',
        occurred_at: new Date(1_700_000_010_000).toISOString(),
      },
    ]);
  });

  test('refunds book the delta of amount_refunded; every entry balances', () => {
    const entries = [...book(lifeOfAPayment()).values()];
    expect(entries.map((e) => [e.id, e.type, e.amount])).toEqual([
      ['cap:pay_1:1000', 'capture', 1000],
      ['ref:pay_1:300', 'refund', 300],
      ['ref:pay_1:450', 'refund', 150],
      ['ref:pay_1:1000', 'refund', 550],
    ]);
    for (const e of entries) expect(entryProblems(e)).toEqual([]);
    const refund = entries[1]!;
    expect(refund.postings).toEqual([
      { account: 'refunds', debit: 300, credit: 0 },
      { account: 'processor_receivable', debit: 0, credit: 300 },
    ]);
  });

  test('a status change that moves no money books nothing; neither does a deletion', () => {
    const p = payment({ amount_captured: 1000 });
    expect(
      entriesFromChange({ eventName: 'MODIFY', oldImage: p, newImage: { ...p, status: 'settled' } }),
    ).toEqual([]);
    expect(entriesFromChange({ eventName: 'REMOVE', oldImage: p })).toEqual([]);
    expect(
      entriesFromChange({ eventName: 'INSERT', newImage: { kind: 'refund', id: 're_1', amount: 5 } }),
    ).toEqual([]);
  });

  test('a replayed stream adds nothing', () => {
    const changes = lifeOfAPayment();
    const once = book(changes);
    const twice = book([...changes, ...changes, changes[2]!], new Map(once));
    expect(sorted(twice)).toEqual(sorted(once));
  });

  test('reordered records give the same ledger, for any order', () => {
    const changes = [
      ...lifeOfAPayment(),
      { eventName: 'INSERT' as const, newImage: dispute() },
      {
        eventName: 'MODIFY' as const,
        oldImage: dispute(),
        newImage: dispute({ funds_withdrawn_amount: 1000, updated: 1_700_000_200 }),
      },
      {
        eventName: 'MODIFY' as const,
        oldImage: dispute({ funds_withdrawn_amount: 1000 }),
        newImage: dispute({
          funds_withdrawn_amount: 1000,
          funds_reinstated_amount: 1000,
          updated: 1_700_000_300,
        }),
      },
    ];
    const inOrder = sorted(book(changes));
    for (let seed = 1; seed <= 50; seed++) {
      const shuffled = shuffle(changes, seed);
      const withReplays = [...shuffled, ...shuffle(changes, seed + 100).slice(0, 3)];
      expect(sorted(book(withReplays))).toEqual(inOrder);
    }
  });

  test('a cumulative amount that goes down books a reversal; the balances follow the final amounts', () => {
    const a = payment({ amount_captured: 1000, amount_refunded: 500 });
    const b = payment({ amount_captured: 1000, amount_refunded: 200 });
    const [rev] = entriesFromChange({ eventName: 'MODIFY', oldImage: a, newImage: b });
    expect(rev).toMatchObject({ id: 'ref-rev:pay_1:500', type: 'refund_reversal', amount: 300 });
    expect(rev!.postings).toEqual([
      { account: 'processor_receivable', debit: 300, credit: 0 },
      { account: 'refunds', debit: 0, credit: 300 },
    ]);
    const [bal] = project([
      ...entriesFromChange({ eventName: 'INSERT', newImage: a }),
      ...entriesFromChange({ eventName: 'MODIFY', oldImage: a, newImage: b }),
    ]);
    expect(bal!.movements).toMatchObject({ captured: 1000, refunded: 200 });
    expect(bal!.accounts.processor_receivable).toBe(800);
  });

  test('dispute items book withdrawals and reinstatements from their funds fields', () => {
    const entries = [
      ...entriesFromChange(
        { eventName: 'INSERT', newImage: dispute({ funds_withdrawn_amount: 400 }) },
        { merchant_id: 'mch_1', processor: 'stripe', currency: 'usd', processor_reference: 'pi_1' },
      ),
      ...entriesFromChange(
        {
          eventName: 'MODIFY',
          oldImage: dispute({ funds_withdrawn_amount: 400 }),
          newImage: dispute({ funds_withdrawn_amount: 400, funds_reinstated_amount: 400 }),
        },
        { merchant_id: 'mch_1', processor: 'stripe', currency: 'usd' },
      ),
    ];
    expect(entries.map((e) => [e.id, e.type, e.payment_id, e.postings[0]!.account])).toEqual([
      ['dsp:dp_1:400', 'dispute_withdrawal', 'pay_1', 'disputes'],
      ['rin:dp_1:400', 'dispute_reinstatement', 'pay_1', 'processor_receivable'],
    ]);
  });

  test('a dispute whose payment is unknown fails loudly rather than booking to nobody', () => {
    expect(() =>
      entriesFromChange({ eventName: 'INSERT', newImage: dispute({ funds_withdrawn_amount: 400 }) }),
    ).toThrow(/merchant, processor or currency is unknown/);
  });
});

describe('balances and invariants', () => {
  const sources = (items: Record<string, unknown>[]) => {
    const b = new SourceTotalsBuilder();
    for (const it of items) b.add(it);
    return b.build();
  };
  const finalPayment = payment({ status: 'refunded', amount_captured: 1000, amount_refunded: 1000 });

  function settledLedger(): LedgerEntry[] {
    const p = payment({ id: 'pay_2', processor_reference: 'pi_2', amount_captured: 2000 });
    const entries = [
      ...book(lifeOfAPayment()).values(),
      ...entriesFromChange({ eventName: 'INSERT', newImage: p }),
    ];
    entries.push(
      feeEntry({
        processor: 'stripe',
        itemId: 'txn_1',
        merchantId: 'mch_1',
        currency: 'usd',
        fee: 88,
        paymentId: 'pay_2',
        reference: 'pi_2',
        occurredAt: '2023-11-20T00:00:00.000Z',
      })!,
      payoutEntry({
        processor: 'stripe',
        payoutId: 'po_1',
        merchantId: 'mch_1',
        currency: 'usd',
        net: 2000 - 88,
        occurredAt: '2023-11-20T00:00:00.000Z',
      })!,
    );
    return entries;
  }

  test('the projection derives every account from the entries; the trial balance is zero', () => {
    const [b] = project(settledLedger());
    expect(b).toMatchObject({ merchant_id: 'mch_1', processor: 'stripe', currency: 'usd' });
    expect(b!.accounts).toEqual({
      processor_receivable: 1000 + 2000 - 1000 - 88 - 1912,
      sales: -3000,
      refunds: 1000,
      disputes: 0,
      processor_fees: 88,
      bank: 1912,
    });
    expect(Object.values(b!.accounts).reduce((x, y) => x + y, 0)).toBe(0);
    expect(b!.movements).toEqual({ captured: 3000, refunded: 1000, disputed: 0, fees: 88, paid_out: 1912 });
  });

  test('the invariant holds: receivable = captured − refunded − disputed − fees − paid out', () => {
    const p2 = payment({ id: 'pay_2', amount_captured: 2000 });
    const report = checkInvariants(settledLedger(), sources([finalPayment, p2]));
    expect(report).toMatchObject({ ok: true, unbalanced: [], receivable: [], sources: [], trial_balance: 0 });
    expect(report.entries).toBe(7);
  });

  test('the check finds a missing entry and an unbalanced entry', () => {
    const p2 = payment({ id: 'pay_2', amount_captured: 2000 });
    const missing = settledLedger().filter((e) => e.id !== 'ref:pay_1:450');
    const r1 = checkInvariants(missing, sources([finalPayment, p2]));
    expect(r1.ok).toBe(false);
    expect(r1.receivable[0]).toMatchObject({ receivable: 150, expected: 0, difference: 150 });
    expect(r1.sources).toEqual([
      {
        merchant_id: 'mch_1',
        processor: 'stripe',
        currency: 'usd',
        field: 'refunded',
        ledger: 850,
        source: 1000,
      },
    ]);

    const bad = settledLedger();
    bad[0] = { ...bad[0]!, postings: [{ account: 'processor_receivable', debit: 1000, credit: 0 }] };
    const r2 = checkInvariants(bad, sources([finalPayment, p2]));
    expect(r2.ok).toBe(false);
    expect(r2.unbalanced).toEqual([{ id: 'cap:pay_1:1000', problems: ['debits 1000 ≠ credits 0'] }]);
    expect(r2.trial_balance).toBe(1000);
  });

  test('disputes count through their payment when the dispute item does not name merchant or currency', () => {
    const entries = [
      ...entriesFromChange({ eventName: 'INSERT', newImage: payment({ amount_captured: 1000 }) }),
      ...entriesFromChange(
        { eventName: 'INSERT', newImage: dispute({ funds_withdrawn_amount: 1000 }) },
        { merchant_id: 'mch_1', processor: 'stripe', currency: 'usd' },
      ),
    ];
    const report = checkInvariants(
      entries,
      sources([payment({ amount_captured: 1000 }), dispute({ funds_withdrawn_amount: 1000 })]),
    );
    expect(report.ok).toBe(true);
    expect(project(entries)[0]!.accounts.processor_receivable).toBe(0);
  });
});

describe('refunds against the processor (compareRefunds)', () => {
  const p = {
    id: 'pay_1',
    merchant_id: 'mch_1',
    processor: 'stripe',
    processor_reference: 'pi_1',
    currency: 'usd',
  };
  const r = (status: string, amount: number, ref: string | null) => ({
    status,
    amount,
    processor_reference: ref,
  });

  test('agreeing totals, and refunds still in flight, are not discrepancies', () => {
    expect(compareRefunds(p, 500, [r('succeeded', 500, 're_1')])).toEqual([]);
    expect(compareRefunds(p, 800, [r('succeeded', 500, 're_1'), r('pending', 300, null)])).toEqual([]);
    expect(compareRefunds(p, 500, [r('succeeded', 500, 're_1'), r('pending', 300, null)])).toEqual([]);
  });

  test('a refund the processor paid that paystep did not record', () => {
    expect(compareRefunds(p, 1000, [r('succeeded', 500, 're_1')])).toEqual([
      expect.objectContaining({
        kind: 'refund_not_recorded',
        processor_refunded: 1000,
        recorded_refunded: 500,
      }),
    ]);
  });

  test('a refund recorded twice: by amount, or two refunds naming one processor refund', () => {
    expect(compareRefunds(p, 500, [r('succeeded', 500, 're_1'), r('succeeded', 500, 're_2')])).toEqual([
      expect.objectContaining({ kind: 'refund_recorded_twice', recorded_refunded: 1000 }),
    ]);
    expect(
      compareRefunds(p, 1000, [r('succeeded', 500, 're_1'), r('succeeded', 500, 're_1')])[0]?.explanation,
    ).toContain('re_1 more than once');
  });
});
