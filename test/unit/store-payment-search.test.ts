/**
 * Payment search lookups (lambdas/store/payment-search.ts) against a local DynamoDB: a payment is
 * found by its order id and email (any case) from the moment it is stored, a page at a time; the
 * listing merged across merchants returns every payment once, newest first, also when a sparse
 * filter makes a merchant's read stop at its page budget; a payment's ledger entries and the
 * events about an object are read from their own index keys.
 */
import { createPayment } from '../../lambdas/store/payments.ts';
import { findByKey, listAcrossMerchants, searchItems } from '../../lambdas/store/payment-search.ts';
import { entriesOfPayment, recordEntry } from '../../lambdas/store/ledger.ts';
import { eventsOfObject, putEvent } from '../../lambdas/store/merchant-events.ts';
import { postings } from '../../lambdas/ledger/domain.ts';
import { paymentItem } from '../fixtures/payments.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

let seq = 0;
const pid = () => `pay_search${String(++seq).padStart(10, '0')}`;

test('the lookup items of a payment: its order id as given, its email in lower case', () => {
  const p = paymentItem({
    id: 'pay_0123456789',
    merchant_id: 'mch_a',
    order_id: 'Ord-1',
    customer: { email: 'A@B.co' },
  });
  expect(searchItems(p, 5).map((i) => [i.pk, i.sk])).toEqual([
    ['SEARCH#order#Ord-1', '0000000000005#pay_0123456789'],
    ['SEARCH#email#a@b.co', '0000000000005#pay_0123456789'],
  ]);
  expect(searchItems(paymentItem({ id: 'pay_0123456789', merchant_id: 'mch_a' }), 5)).toEqual([]);
});

test('found by order id and email, newest first, a page at a time, limited to a merchant when asked', async () => {
  const made: string[] = [];
  for (let i = 0; i < 5; i++) {
    const id = pid();
    const merchant_id = i === 2 ? 'mch_other' : 'mch_one';
    await createPayment(
      paymentItem({ id, merchant_id, order_id: 'ORDER-7', customer: { email: 'Pat@Example.com' } }),
      1_000 + i,
    );
    made.push(id);
  }
  const pages: string[][] = [];
  let before: string | undefined;
  do {
    const page = await findByKey('order', 'ORDER-7', { limit: 2, before });
    pages.push(page.data.map((p) => p.id));
    before = page.next;
  } while (before);
  expect(pages).toEqual([[made[4], made[3]], [made[2], made[1]], [made[0]]]);
  const mine = await findByKey('email', ' pat@EXAMPLE.com', { limit: 10, merchantId: 'mch_one' });
  expect(mine.data.map((p) => p.id)).toEqual([made[4], made[3], made[1], made[0]]);
  expect((await findByKey('order', 'order-7', { limit: 10 })).data).toEqual([]); // order ids are exact
});

test('merged across merchants: every payment once, newest first, also when a filter is sparse', async () => {
  const merchants = ['mch_m1', 'mch_m2', 'mch_m3'];
  const made: { id: string; ms: number; status: string; merchant: string }[] = [];
  const base = Date.parse('2021-05-01T00:00:00Z');
  for (let i = 0; i < 40; i++)
    for (const [k, merchant] of merchants.entries()) {
      // Uneven: the third merchant has a payment only every other step.
      if (k === 2 && i % 2) continue;
      const ms = base + i * 10_000 + k;
      const status = (i + k) % 9 === 0 ? 'failed' : 'captured';
      const id = pid();
      await createPayment(
        paymentItem({ id, merchant_id: merchant, status, created: Math.floor(ms / 1000) }),
        ms,
      );
      made.push({ id, ms, status, merchant });
    }
  const expected = (f: (p: (typeof made)[number]) => boolean) =>
    made
      .filter(f)
      .sort((a, b) => b.ms - a.ms)
      .map((p) => p.id);
  const walk = async (o: {
    status?: 'failed';
    limit: number;
    maxPagesPerMerchant?: number;
    fromMs?: number;
    toMs?: number;
  }) => {
    const seen: string[] = [];
    let before: string | undefined;
    let pages = 0;
    do {
      const page = await listAcrossMerchants({ merchantIds: merchants, ...o, before });
      seen.push(...page.data.map((p) => p.id));
      before = page.next;
      pages++;
    } while (before && pages < 200);
    return seen;
  };
  expect(await walk({ limit: 7 })).toEqual(expected(() => true));
  // One Query page per merchant per request: sparse matches arrive over more (partly empty) pages.
  expect(await walk({ status: 'failed', limit: 3, maxPagesPerMerchant: 1 })).toEqual(
    expected((p) => p.status === 'failed'),
  );
  const from = base + 10 * 10_000;
  const to = base + 20 * 10_000;
  expect(await walk({ limit: 4, fromMs: from, toMs: to })).toEqual(
    expected((p) => p.ms >= from && p.ms < to),
  );
});

test("a payment's ledger entries and an object's events are read from their own keys", async () => {
  const id = pid();
  const entry = (n: number) => ({
    id: `cap:${id}:${n}`,
    type: 'capture' as const,
    merchant_id: 'mch_l',
    processor: 'stripe',
    currency: 'usd',
    amount: n,
    postings: postings(n, 'processor_receivable', 'sales'),
    payment_id: id,
    source_id: id,
    processor_reference: null,
    occurred_at: `2021-05-0${n}T00:00:00.000Z`,
  });
  await recordEntry(entry(2));
  await recordEntry(entry(1));
  await recordEntry({ ...entry(3), id: 'pout:stripe:po_1:mch_l:usd', type: 'payout', payment_id: null });
  expect((await entriesOfPayment(id)).map((e) => e.id)).toEqual([`cap:${id}:1`, `cap:${id}:2`]);

  for (const [n, type] of ['payment.created', 'payment.captured'].entries())
    await putEvent(
      {
        event: {
          id: `evt_search${id.slice(-10)}${n}`,
          object: 'event',
          type,
          created: 1,
          data: { object: { id } },
        },
        merchantId: 'mch_l',
        objectKind: 'payment',
        objectId: id,
        order: `0${n}`,
      },
      1_000 + n,
    );
  expect((await eventsOfObject(id)).map((e) => e.type)).toEqual(['payment.created', 'payment.captured']);
  expect(await eventsOfObject('pay_nothing000000')).toEqual([]);
});
