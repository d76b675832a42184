/**
 * The incident backlog's store (lambdas/store/backlog.ts) on a local DynamoDB: holding the same
 * operation again (a retried step, a re-checking wait, a crash and restart) keeps one entry with
 * its first time and place in the replay order; held → released → done|failed move once each, so
 * a second release finds nothing to do; the task token never leaves the store in an entry.
 */
import { replayOrder, type HeldOperation } from '../../lambdas/domain/backlog.ts';
import {
  finishHeld,
  heldId,
  heldTaskToken,
  holdOperation,
  listHeld,
  markReleased,
  type HoldRequest,
} from '../../lambdas/store/backlog.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

const req = (over: Partial<HoldRequest> = {}): HoldRequest => ({
  incident_id: 'inc_store0000000001',
  processor: 'stripe',
  merchant_id: 'mch_store',
  kind: 'capture',
  payment_id: 'pay_store0000000001',
  amount: 1000,
  currency: 'usd',
  held_at: 1_000,
  ...over,
});

test('holding the same operation twice keeps one entry, its first time, and the newest task token', async () => {
  const first = await holdOperation(req(), 'token-1');
  expect(first.created).toBe(true);
  expect(first.held).toEqual({
    id: 'inc_store0000000001#capture#pay_store0000000001',
    incident_id: 'inc_store0000000001',
    processor: 'stripe',
    merchant_id: 'mch_store',
    kind: 'capture',
    payment_id: 'pay_store0000000001',
    amount: 1000,
    currency: 'usd',
    held_at: 1_000,
    status: 'held',
  });
  // A retried step (no token), then the workflow's wait coming back after its timeout (a new token).
  const again = await holdOperation(req({ held_at: 5_000 }));
  const waiting = await holdOperation(req({ held_at: 9_000 }), 'token-2');
  expect([again.created, waiting.created]).toEqual([false, false]);
  expect(waiting.held).toEqual(first.held);
  expect(await heldTaskToken(first.held)).toBe('token-2');
  expect(await listHeld('inc_store0000000001')).toEqual([first.held]);
});

test('listHeld gives the replay order: as held, then by id; other incidents apart', async () => {
  const inc = 'inc_store0000000002';
  await holdOperation(req({ incident_id: inc, kind: 'refund', refund_id: 're_b', held_at: 300 }));
  await holdOperation(req({ incident_id: inc, kind: 'cancel', payment_id: 'pay_a', held_at: 100 }));
  await holdOperation(req({ incident_id: inc, kind: 'capture', payment_id: 'pay_c', held_at: 300 }));
  await holdOperation(req({ incident_id: 'inc_store0000000003', held_at: 50 }));
  const held = await listHeld(inc);
  expect(held.map((h) => h.id)).toEqual([
    heldId(inc, 'cancel', 'pay_a'),
    heldId(inc, 'capture', 'pay_c'),
    heldId(inc, 'refund', 're_b'),
  ]);
  expect(replayOrder([...held].reverse())).toEqual(held);
  expect(held.every((h) => !('task_token' in h) && !('operation' in h))).toBe(true);
  // A refund is held by its refund: two refunds of one payment are two entries.
  await holdOperation(req({ incident_id: inc, kind: 'refund', refund_id: 're_a', held_at: 400 }));
  expect((await listHeld(inc)).filter((h) => h.kind === 'refund')).toHaveLength(2);
  await expect(holdOperation(req({ incident_id: inc, kind: 'refund' }))).rejects.toThrow(/refund_id/);
});

test('released once, finished once: a second release or finish changes nothing', async () => {
  const inc = 'inc_store0000000004';
  const { held } = await holdOperation(req({ incident_id: inc }), 'token');
  expect(await markReleased(held, 2_000)).toBe(true);
  expect(await markReleased(held, 3_000)).toBe(false);
  const done = await finishHeld(held, 'done', 'captured $10.00', 4_000);
  expect(done).toMatchObject<Partial<HeldOperation>>({
    status: 'done',
    released_at: 2_000,
    finished_at: 4_000,
    outcome: 'captured $10.00',
  });
  expect(await finishHeld(held, 'failed', 'capture failed', 5_000)).toBeUndefined();
  expect(await markReleased(held)).toBe(false);
  expect(await heldTaskToken(held)).toBeUndefined(); // used: nothing waits on it any more
  // Holding it again (a late retry) does not reopen it.
  expect(await holdOperation(req({ incident_id: inc }), 'late')).toMatchObject({
    created: false,
    held: { status: 'done', outcome: 'captured $10.00' },
  });
});

test('an entry finished without a release (nothing to replay) records when', async () => {
  const { held } = await holdOperation(req({ incident_id: 'inc_store0000000005', kind: 'outcome_check' }));
  expect(await finishHeld(held, 'failed', 'outcome still unknown', 7_000)).toMatchObject({
    status: 'failed',
    released_at: 7_000,
    finished_at: 7_000,
  });
});
