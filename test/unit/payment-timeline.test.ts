/**
 * The payment timeline against a local DynamoDB (lambdas/store/payments.ts): entries written with
 * the payment's own writes (on the payment item) and entries of their own (`addEvent`) read back as
 * one ordered timeline; a status change and its entry are one write; an attempt is recorded once;
 * the list on the payment stays bounded without losing an entry; and a wait for the payment ends
 * on a write made in this process without reading it (lambdas/payments/wait.ts).
 */
import { jest } from '@jest/globals';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Payment, PaymentAttempt } from '../../lambdas/domain/payment.ts';
import { waitForPayment } from '../../lambdas/payments/wait.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import {
  addEvent,
  annotate,
  createPayment,
  getPayment,
  markAuthorizeSent,
  MAX_INLINE_ENTRIES,
  timeline,
  transition,
  TransitionRejected,
} from '../../lambdas/store/payments.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';
import { paymentItem } from '../fixtures/payments.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

let seq = 0;
const newId = () => `pay_tl${String(++seq).padStart(10, '0')}`;

function payment(id = newId()): Payment {
  return paymentItem({ id, merchant_id: 'mch_tl', amount: 1000 });
}

const rawItem = async (id: string) =>
  (
    await clients.ddb().send(
      new GetCommand({
        TableName: t.name,
        Key: { pk: `PAYMENT#${id}`, sk: 'PAYMENT' },
        ConsistentRead: true,
      }),
    )
  ).Item!;

const attempt = (n: number): PaymentAttempt => ({
  attempt: n,
  processor: 'stripe',
  idempotency_key: `k:${n}`,
  started: new Date().toISOString(),
  latency_ms: 1,
  outcome: 'captured',
  failure: null,
  processor_reference: 'pi_1',
});

test('entries on the payment and entries of their own read back as one ordered timeline, without the internal list in the payment', async () => {
  const p = payment();
  await createPayment(p, Date.now(), [{ type: 'created', amount: 1000 }]);
  await annotate(
    p.id,
    {},
    [],
    [
      { type: 'workflow', event: 'started' },
      { type: 'risk', decision: 'allow' },
    ],
  );
  await addEvent(p.id, { type: 'webhook', comparison: 'ahead' });
  await annotate(p.id, { processor: 'stripe' }, [], [{ type: 'workflow', event: 'routed' }]);
  await transition(p.id, 'captured', {
    note: 'approved',
    entries: [{ type: 'attempt', outcome: 'captured' }],
  });

  const entries = await timeline(p.id);
  expect(entries.map((e) => e.event ?? e.type)).toEqual([
    'created',
    'started',
    'risk',
    'webhook',
    'routed',
    'attempt',
    'status_changed',
  ]);
  expect(entries.at(-1)).toMatchObject({ type: 'status_changed', status: 'captured', note: 'approved' });
  for (const e of entries) {
    expect(typeof e.at).toBe('string');
    expect(e).not.toHaveProperty('k');
    expect(e).not.toHaveProperty('pk');
  }
  expect(await getPayment(p.id)).not.toHaveProperty('timeline');
  // One payment write per entry group: the entries on the item are the ones written with it.
  expect(((await rawItem(p.id)).timeline as unknown[]).length).toBe(6);
});

test('a rejected transition writes neither the status nor its entry', async () => {
  const p = payment();
  await createPayment(p);
  await transition(p.id, 'failed', { note: 'declined' });
  await expect(transition(p.id, 'captured', { note: 'never' })).rejects.toBeInstanceOf(TransitionRejected);
  const entries = await timeline(p.id);
  expect(entries.filter((e) => e.type === 'status_changed').map((e) => e.status)).toEqual(['failed']);
});

test('an attempt folded into a transition is recorded once: a replay changes nothing', async () => {
  const p = payment();
  await createPayment(p);
  const first = await transition(p.id, 'captured', { attempt: attempt(1), entries: [{ type: 'attempt' }] });
  expect(first.changed).toBe(true);
  const again = await transition(p.id, 'captured', { attempt: attempt(1), entries: [{ type: 'attempt' }] });
  expect(again.changed).toBe(false);
  expect((await getPayment(p.id))!.attempts).toHaveLength(1);
  expect((await timeline(p.id)).filter((e) => e.type === 'attempt')).toHaveLength(1);
});

test('the authorize note is written once, and returns the payment as it was just before, whether it wrote or not', async () => {
  const p = payment();
  await createPayment(p);
  const first = await markAuthorizeSent(p.id, 1);
  expect(first.written).toBe(true);
  expect(first.before).toMatchObject({ id: p.id, status: 'processing', amount: 1000 });
  expect(first.before!.authorize_sent).toBeUndefined();
  expect((await rawItem(p.id)).authorize_sent).toBe(1);
  // A retried step: nothing written again, and it sees the note (the first request may have gone out).
  const again = await markAuthorizeSent(p.id, 1);
  expect(again).toMatchObject({
    written: false,
    before: { id: p.id, status: 'processing', authorize_sent: 1 },
  });
  // Moved on to attempt 2 meanwhile: an attempt-1 run notes nothing and sees the move.
  await annotate(p.id, { authorize_attempt: 2 });
  expect(await markAuthorizeSent(p.id, 1)).toMatchObject({
    written: false,
    before: { authorize_attempt: 2 },
  });
  // Not processing any more: nothing written, the payment as it is.
  await transition(p.id, 'captured', { note: 'approved' });
  const done = await markAuthorizeSent(p.id, 2);
  expect(done).toMatchObject({ written: false, before: { status: 'captured', authorize_sent: 1 } });
  expect((await rawItem(p.id)).authorize_sent).toBe(1);
  // No such payment: nothing written, nothing returned.
  expect(await markAuthorizeSent(newId(), 1)).toEqual({ written: false, before: undefined });
});

test('the list on the payment stays bounded: older entries move to items of their own, none lost or doubled', async () => {
  const p = payment();
  await createPayment(p);
  const n = MAX_INLINE_ENTRIES + 30;
  for (let i = 0; i < n; i++) await annotate(p.id, { n: i }, [], [{ type: 'note', i }]);
  const inline = (await rawItem(p.id)).timeline as unknown[];
  expect(inline.length).toBeLessThanOrEqual(MAX_INLINE_ENTRIES);
  const entries = await timeline(p.id);
  expect(entries.map((e) => e.i)).toEqual([...Array(n).keys()]);
});

test('a wait ends on a write made in this process, with the payment the write returned', async () => {
  const p = payment();
  await createPayment(p);
  const reads = jest.spyOn(clients.ddb(), 'send');
  // Subscribed when called: the write below cannot be missed.
  const waiting = waitForPayment(p.id, (x) => x.status !== 'processing', 5000);
  await transition(p.id, 'captured', { note: 'approved' });
  const got = await waiting;
  expect(got.status).toBe('captured');
  const gets = reads.mock.calls.filter(([cmd]) => cmd instanceof GetCommand);
  reads.mockRestore();
  expect(gets).toHaveLength(0);
});

test('a wait with nothing written in this process finds the outcome by polling, and answers at its deadline', async () => {
  const p = payment();
  await createPayment(p);
  expect((await waitForPayment(p.id, (x) => x.status !== 'processing', 50)).status).toBe('processing');
});
