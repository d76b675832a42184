/**
 * The open-items index (gsi2) against a local DynamoDB: a payment or refund is listed exactly
 * while its status is open, by the same write that sets the status; items from before the index
 * are listed once by the backfill.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Payment, PaymentStatus } from '../../lambdas/domain/payment.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import {
  backfillOpenIndex,
  openItems,
  waitingForReview,
  type OpenKind,
} from '../../lambdas/store/open-items.ts';
import { createPayment, getPayment, transition } from '../../lambdas/store/payments.ts';
import { createRefundItem, finishRefund, getRefund, type Refund } from '../../lambdas/store/refunds.ts';
import { topology } from '../../lib/topology.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';
import { paymentItem } from '../fixtures/payments.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

let seq = 0;
const id = (prefix: string) => `${prefix}_open${String(++seq).padStart(10, '0')}`;
const now = () => Math.floor(Date.now() / 1000);

function payment(status: PaymentStatus = 'processing'): Payment {
  return paymentItem({ id: id('pay'), merchant_id: 'mch_open', amount: 1000, status });
}

function refund(paymentId: string): Refund {
  return {
    id: id('re'),
    object: 'refund',
    merchant_id: 'mch_open',
    payment_id: paymentId,
    amount: 100,
    currency: 'usd',
    status: 'pending',
    reason: null,
    channel: 'api',
    processor: 'stripe',
    processor_reference: null,
    failure_reason: null,
    metadata: {},
    execution_arn: 'arn',
    created: now(),
    updated: now(),
  };
}

const listed = async (kind: OpenKind) => {
  const ids: string[] = [];
  for await (const it of openItems(kind)) ids.push(String(it.id));
  return ids;
};
const raw = async (pk: string, sk: string) =>
  (await clients.ddb().send(new GetCommand({ TableName: t.name, Key: { pk, sk }, ConsistentRead: true })))
    .Item!;

test('a payment is listed while processing, requires_action or authorized, and not after', async () => {
  const p = payment();
  expect(await createPayment(p)).toBe(true);
  expect(await createPayment(p)).toBe(false); // a resumed request finds it there
  expect(await listed('payment')).toContain(p.id);
  const first = await raw(`PAYMENT#${p.id}`, 'PAYMENT');
  expect(first.gsi2pk).toMatch(/^OPEN#payment#[0-7]$/);

  await transition(p.id, 'requires_action');
  await transition(p.id, 'authorized');
  expect(await listed('payment')).toContain(p.id);
  expect((await raw(`PAYMENT#${p.id}`, 'PAYMENT')).gsi2pk).toBe(first.gsi2pk); // same shard

  const { payment: captured } = await transition(p.id, 'captured', { set: { amount_captured: 1000 } });
  expect(captured).not.toHaveProperty('gsi2pk'); // internal: never in the API's shape
  expect(captured).toMatchObject({ status: 'captured', amount_captured: 1000, version: 4 });
  expect(await listed('payment')).not.toContain(p.id);
  const item = await raw(`PAYMENT#${p.id}`, 'PAYMENT');
  expect(item.gsi2pk).toBeUndefined();
  expect(item.gsi2sk).toBeUndefined();
  // A rejected transition changes nothing (and lists nothing).
  await expect(transition(p.id, 'processing')).rejects.toThrow(/cannot move to processing from captured/);
  expect(await listed('payment')).not.toContain(p.id);
  expect((await getPayment(p.id))!.status).toBe('captured');
});

test('pending_review is not an open item but waits for review; back to processing it is open again', async () => {
  const waiting = async () => (await waitingForReview({ limit: 100 })).items.map((i) => i.id);
  const p = payment();
  await createPayment(p);
  await transition(p.id, 'pending_review');
  expect(await listed('payment')).not.toContain(p.id);
  expect(await waiting()).toContain(p.id);
  await transition(p.id, 'processing');
  expect(await listed('payment')).toContain(p.id);
  expect(await waiting()).not.toContain(p.id);
  await transition(p.id, 'failed');
  expect(await listed('payment')).not.toContain(p.id);
});

test('payments waiting for review come oldest first, a page at a time', async () => {
  const held: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = payment();
    await createPayment(p);
    await transition(p.id, 'pending_review');
    held.push(p.id);
    await new Promise((r) => setTimeout(r, 2)); // distinct hold times
  }
  const all: string[] = [];
  let after: string | undefined;
  do {
    const page = await waitingForReview({ limit: 2, after });
    all.push(...page.items.map((i) => String(i.id)));
    after = page.next;
  } while (after);
  expect(all.filter((id) => held.includes(id))).toEqual(held);
});

test('a refund is listed while pending; finishing it takes it off, once', async () => {
  const r = refund(id('pay'));
  expect(await createRefundItem(r, Date.now())).toBe(true);
  expect(await createRefundItem(r, Date.now())).toBe(false);
  expect(await listed('refund')).toContain(r.id);
  expect(await finishRefund(r.id, 'succeeded')).toBe(true);
  expect(await finishRefund(r.id, 'failed', 'late')).toBe(false);
  expect(await listed('refund')).not.toContain(r.id);
  const done = await getRefund(r.id);
  expect(done).toMatchObject({ status: 'succeeded', failure_reason: null });
  expect(done).not.toHaveProperty('gsi2pk');
});

test('the backfill lists open items written before the index, once, and only in the status they still have', async () => {
  // Items as code from before the index wrote them: no gsi2 keys.
  const old = (item: Record<string, unknown>) =>
    clients.ddb().send(new PutCommand({ TableName: t.name, Item: item }));
  const stuck = payment('requires_action');
  const done = payment('captured');
  const pending = refund(stuck.id);
  await old({ pk: `PAYMENT#${stuck.id}`, sk: 'PAYMENT', kind: 'payment', ...stuck });
  await old({ pk: `PAYMENT#${done.id}`, sk: 'PAYMENT', kind: 'payment', ...done });
  await old({ pk: `REFUND#${pending.id}`, sk: 'REFUND', kind: 'refund', ...pending });
  expect(await listed('payment')).not.toContain(stuck.id);

  expect(await backfillOpenIndex()).toBe(2);
  expect(await listed('payment')).toContain(stuck.id);
  expect(await listed('payment')).not.toContain(done.id);
  expect(await listed('refund')).toContain(pending.id);
  expect((await raw(`PAYMENT#${stuck.id}`, 'PAYMENT')).gsi2sk).toBe(
    `${String(stuck.updated * 1000).padStart(13, '0')}#${stuck.id}`,
  );

  // The marker: later runs do nothing.
  const later = payment('processing');
  await old({ pk: `PAYMENT#${later.id}`, sk: 'PAYMENT', kind: 'payment', ...later });
  expect(await backfillOpenIndex()).toBeUndefined();
  expect(await listed('payment')).not.toContain(later.id);
  // Its next status change lists it.
  await transition(later.id, 'authorized');
  expect(await listed('payment')).toContain(later.id);
});

describe('a table created before the index', () => {
  beforeAll(async () => {
    await t.stop();
    const main = topology.tables.main!;
    t = await startLocalTable({
      ...main,
      globalIndexes: main.globalIndexes!.filter((g) => g.name !== 'gsi2'),
    });
  });

  test('is scanned for its open items instead (the same items)', async () => {
    const open = payment();
    const done = payment();
    await createPayment(open);
    await createPayment(done);
    await transition(done.id, 'failed');
    const ids = await listed('payment');
    expect(ids).toContain(open.id);
    expect(ids).not.toContain(done.id);
  });
});
