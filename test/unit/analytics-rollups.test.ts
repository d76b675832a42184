/**
 * Approval rollups (docs/routing.md "Approval rollups"), pure parts: summing payments'
 * contributions gives what ApprovalAnalytics gives over the payments; so does summing
 * contribution(new) − contribution(old) over every change of each payment, through the stream
 * records' deltas (lambdas/analytics/stream.ts rollupDeltas) and the stored attribute layout
 * (lambdas/analytics/rollup-format.ts), per day and per 5-minute bucket.
 */
import fc from 'fast-check';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { ANALYTICS_DIMENSIONS, ApprovalAnalytics, contributionOf } from '../../lambdas/domain/analytics.ts';
import { PAYMENT_STATUSES, type Payment } from '../../lambdas/domain/payment.ts';
import {
  BUCKET_MINUTES,
  ComboSums,
  minuteCounts,
  paddedSequence,
} from '../../lambdas/analytics/rollup-format.ts';
import { rollupDeltas } from '../../lambdas/analytics/stream.ts';

const DAY0 = Date.UTC(2026, 0, 5);

/** A payment as the analytics read it (the fields they look at, with few values so groups collide). */
const paymentArb = fc.record({
  status: fc.constantFrom(...PAYMENT_STATUSES),
  processor: fc.option(fc.constantFrom('stripe', 'adyen'), { nil: undefined }),
  payment_method: fc.constantFrom('pm_card_visa', 'pm_card_mastercard', 'sepa_123', 'ideal_x'),
  card: fc.option(
    fc.record({
      brand: fc.option(fc.constantFrom('visa', 'mastercard'), { nil: undefined }),
      country: fc.option(fc.constantFrom('US', 'FR'), { nil: undefined }),
    }),
    { nil: undefined },
  ),
  customer: fc.option(fc.record({ country: fc.option(fc.constantFrom('US', 'DE'), { nil: undefined }) }), {
    nil: undefined,
  }),
  channel: fc.option(fc.constantFrom('ecommerce', 'moto'), { nil: undefined }),
  currency: fc.constantFrom('usd', 'eur'),
  amount: fc.integer({ min: 1, max: 100_000 }),
  failure: fc.option(fc.record({ code: fc.constantFrom('card_declined', 'expired_card') }), {
    nil: undefined,
  }),
  attempts: fc.option(
    fc.array(
      fc.record({
        processor: fc.constantFrom('stripe', 'adyen'),
        next: fc.option(fc.record({ cascade: fc.boolean() }), { nil: undefined }),
      }),
      { maxLength: 3 },
    ),
    { nil: undefined },
  ),
});

const asPayment = (x: object, i: number) =>
  JSON.parse(JSON.stringify({ ...x, id: `pay_${i}`, merchant_id: 'mch_a', created: 0 })) as Payment;

const dims = fc.subarray([...ANALYTICS_DIMENSIONS]);

test('summing contributions equals ApprovalAnalytics over the payments, for any grouping', () => {
  fc.assert(
    fc.property(fc.array(paymentArb, { maxLength: 40 }), dims, (xs, d) => {
      const payments = xs.map(asPayment);
      const raw = new ApprovalAnalytics(d);
      for (const p of payments) raw.add(p);
      const sums = new ComboSums();
      for (const p of payments) sums.add(contributionOf(p));
      expect(sums.analytics(d).result()).toEqual(raw.result());
      expect(sums.payments).toBe(payments.length);
    }),
  );
});

/** Each payment's successive versions as stream records (INSERT, MODIFY…), interleaved. */
function records(histories: { versions: object[]; minute: number; day: number }[]) {
  const out: DynamoDBRecord[] = [];
  const cursors = histories.map(() => 0);
  let seq = 1;
  for (let left = histories.reduce((n, h) => n + h.versions.length, 0); left > 0;) {
    for (let i = 0; i < histories.length; i++) {
      const h = histories[i]!;
      const v = cursors[i]!;
      if (v >= h.versions.length) continue;
      const createdMs = DAY0 + h.day * 86_400_000 + h.minute * 60_000 + 1234;
      const image = (x: object) =>
        marshall(
          {
            pk: `PAYMENT#pay_${i}`,
            sk: 'PAYMENT',
            kind: 'payment',
            rollup: 1,
            ...asPayment(x, i),
            created: Math.floor(createdMs / 1000),
            created_ms: createdMs,
          },
          { removeUndefinedValues: true },
        );
      out.push({
        eventName: v === 0 ? 'INSERT' : 'MODIFY',
        dynamodb: {
          SequenceNumber: String(seq++),
          NewImage: image(h.versions[v]!) as never,
          ...(v > 0 ? { OldImage: image(h.versions[v - 1]!) as never } : {}),
        },
      });
      cursors[i] = v + 1;
      left--;
    }
  }
  return out;
}

/** What UpdateItem would leave in each item after every delta (ADD counters, set-once keys). */
function applyAll(recs: DynamoDBRecord[], batch: number) {
  const items = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < recs.length; i += batch)
    for (const it of rollupDeltas(recs.slice(i, i + batch))) {
      const k = `${it.key.pk}|${it.key.sk}`;
      const item = items.get(k) ?? { ...it.key };
      for (const d of it.deltas) {
        for (const [n, v] of d.counters) item[n] = ((item[n] as number | undefined) ?? 0) + v;
        for (const [n, v] of d.once) item[n] ??= v;
      }
      items.set(k, item);
    }
  return items;
}

test('deltas of every change, stored and read back, equal ApprovalAnalytics over the final payments', () => {
  const history = fc.record({
    versions: fc.array(paymentArb, { minLength: 1, maxLength: 4 }),
    minute: fc.integer({ min: 0, max: 1439 }),
    day: fc.integer({ min: 0, max: 2 }),
  });
  fc.assert(
    fc.property(
      fc.array(history, { maxLength: 15 }),
      dims,
      fc.integer({ min: 1, max: 25 }),
      (histories, d, batch) => {
        const items = applyAll(records(histories), batch);
        const finals = histories.map((h, i) => asPayment(h.versions.at(-1)!, i));
        // Per day and over all days.
        const all = new ComboSums();
        for (let day = 0; day <= 2; day++) {
          const iso = new Date(DAY0 + day * 86_400_000).toISOString().slice(0, 10);
          const raw = new ApprovalAnalytics(d);
          finals.forEach((p, i) => histories[i]!.day === day && raw.add(p));
          const sums = new ComboSums();
          const item = items.get(`ROLLUP#mch_a|DAY#${iso}`);
          if (item) {
            sums.addItem(item);
            all.addItem(item);
          }
          expect(sums.analytics(d).result()).toEqual(raw.result());
        }
        const raw = new ApprovalAnalytics(d);
        for (const p of finals) raw.add(p);
        expect(all.analytics(d).result()).toEqual(raw.result());
        // Per 5-minute bucket: payments, approved, declined.
        const bucketOf = (minute: number) => Math.floor(minute / BUCKET_MINUTES);
        for (let day = 0; day <= 2; day++)
          for (const minute of new Set(histories.map((h) => h.minute))) {
            const ms = DAY0 + day * 86_400_000 + minute * 60_000;
            const iso = new Date(ms).toISOString().slice(0, 10);
            const got = minuteCounts(items.get(`ROLLUP#mch_a|DAY#${iso}`), ms);
            const here = finals.filter(
              (_, i) => histories[i]!.day === day && bucketOf(histories[i]!.minute) === bucketOf(minute),
            );
            const a = new ApprovalAnalytics([]);
            for (const p of here) a.add(p);
            const g = a.result()[0];
            expect(got).toEqual({
              payments: here.length,
              approved: g?.approved ?? 0,
              declined: g?.declined ?? 0,
            });
          }
      },
    ),
  );
});

test('only marked payment images count: rollup items and unmarked payments add nothing', () => {
  const image = (x: Record<string, unknown>) => marshall(x, { removeUndefinedValues: true }) as never;
  const p = { ...asPayment({ status: 'captured', currency: 'usd', amount: 5 }, 1), created_ms: DAY0 };
  const recs: DynamoDBRecord[] = [
    // A payment written before rollups existed changes: nothing.
    {
      eventName: 'MODIFY',
      dynamodb: {
        SequenceNumber: '1',
        OldImage: image({ kind: 'payment', ...p }),
        NewImage: image({ kind: 'payment', ...p, status: 'refunded' }),
      },
    },
    // A rollup item's own change: nothing.
    {
      eventName: 'MODIFY',
      dynamodb: {
        SequenceNumber: '2',
        NewImage: image({ kind: 'approval_rollup', pk: 'ROLLUP#mch_a', 'c|x|p': 3 }),
      },
    },
  ];
  expect(rollupDeltas(recs)).toEqual([]);
  // The rebuild's mark adds the payment as it is.
  const marked: DynamoDBRecord = {
    eventName: 'MODIFY',
    dynamodb: {
      SequenceNumber: '3',
      OldImage: image({ kind: 'payment', ...p }),
      NewImage: image({ kind: 'payment', ...p, rollup: 1 }),
    },
  };
  const [day] = rollupDeltas([marked]);
  expect(day!.deltas[0]!.counters).toEqual(expect.arrayContaining([[expect.stringMatching(/\|p$/), 1]]));
});

test('sequence numbers are stored so that string order is numeric order', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 40n - 1n }),
      fc.bigInt({ min: 0n, max: 10n ** 40n - 1n }),
      (a, b) => {
        const [x, y] = [paddedSequence(String(a)), paddedSequence(String(b))];
        expect(x < y).toBe(a < b);
      },
    ),
  );
  expect(() => paddedSequence('')).toThrow();
  expect(() => paddedSequence('12a')).toThrow();
});
