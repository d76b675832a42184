/**
 * Exactly-once money movement under crashes (docs/states.md, "Idempotent requests and crashes").
 *
 * For every money-moving route: a runtime in a child process (test/fixtures/crash-runtime.ts) is
 * killed with SIGKILL at a point of the request chosen by fast-check — the k-th write to the
 * local DynamoDB, before it is applied or once applied but before its caller hears of it, which
 * includes the points around the processor call and inside the workflow the request starts. The
 * runtime is started again on the same data dir and the client retries with the same
 * Idempotency-Key and body. Then: the retry is answered at once (no lock held by the dead
 * process), with the same object, and the processor shows exactly one effect.
 *
 * The refund, the route that once paid twice, also with SIGTERM: the runtime's graceful stop starts
 * while the request is in flight (it may answer first), and the retry after the restart still
 * makes one refund.
 *
 * The incident backlog too: the release of a held capture and refund (resolving the incident) is
 * killed at any write, and the resolve retried: each happens once at the processor.
 *
 * Runs per route: PAYSTEP_CRASH_RUNS (in the suite, 2 for refunds and 1 for the others, to keep
 * it fast; `PAYSTEP_CRASH_RUNS=10 npm test -- test/integration/crash.test.ts` for the long run).
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import {
  Child,
  call,
  crashAndRetry,
  describeCrashes,
  until,
  type CrashRoute,
  type Json,
} from '../fixtures/crash-child.ts';

/** Kill points per route: one in the suite (two for refunds, the route that once paid twice). */
const RUNS = process.env.PAYSTEP_CRASH_RUNS ? Number(process.env.PAYSTEP_CRASH_RUNS) : undefined;
const runsFor = (route: string) => RUNS ?? (route === 'POST /v1/refunds' ? 2 : 1);

const payment = async (c: Child, key: string, body: Json) => {
  const r = await call(c.url, key, 'POST', '/v1/payments', { amount: 6000, currency: 'usd', ...body });
  expect(r.status).toBe(201);
  return r.body;
};
const get = async (c: Child, key: string, p: string) => (await call(c.url, key, 'GET', p)).body;

const ROUTES: CrashRoute[] = [
  {
    name: 'POST /v1/refunds',
    setup: (c, key) => payment(c, key, { payment_method: 'pm_card_visa' }),
    request: (p) => ({ method: 'POST', path: '/v1/refunds', body: { payment: p.id, amount: 2500 } }),
    async check(c, key, p, answer) {
      const done = await until('the refund to finish', async () => {
        const r = await get(c, key, `/v1/refunds/${answer.id}`);
        return r.status === 'pending' ? undefined : r;
      });
      expect(done).toMatchObject({ status: 'succeeded', amount: 2500, payment: p.id });
      const atProcessor = await c.ask<Json[]>('objects', {
        object: 'refund',
        field: 'payment_intent',
        value: p.processor_reference,
      });
      expect(atProcessor.map((r) => r.amount)).toEqual([2500]);
      expect(await get(c, key, `/v1/payments/${p.id}`)).toMatchObject({
        status: 'partially_refunded',
        amount_refunded: 2500,
      });
    },
  },
  {
    name: 'POST /v1/payments',
    setup: async () => ({ order: `ord_${randomUUID()}` }),
    request: (s) => ({
      method: 'POST',
      path: '/v1/payments',
      body: { amount: 4200, currency: 'usd', payment_method: 'pm_card_visa', order_id: s.order },
    }),
    async check(c, key, _s, answer) {
      const done = await until('the payment to finish', async () => {
        const p = await get(c, key, `/v1/payments/${answer.id}`);
        return p.status === 'processing' ? undefined : p;
      });
      expect(done.status).toBe('captured');
      const intents = await c.ask<Json[]>('objects', {
        object: 'payment_intent',
        field: 'metadata.paystep_payment_id',
        value: answer.id,
      });
      expect(intents).toHaveLength(1);
      expect(intents[0]!.amount_received).toBe(4200);
    },
  },
  {
    name: 'POST /v1/payments/{id}/capture',
    setup: (c, key) => payment(c, key, { payment_method: 'pm_card_visa', capture_method: 'manual' }),
    request: (p) => ({ method: 'POST', path: `/v1/payments/${p.id}/capture`, body: { amount: 5000 } }),
    async check(c, key, p, answer) {
      expect(answer.id).toBe(p.id);
      const done = await until('the capture', async () => {
        const x = await get(c, key, `/v1/payments/${p.id}`);
        return x.status === 'authorized' ? undefined : x;
      });
      expect(done).toMatchObject({ status: 'captured', amount_captured: 5000 });
      const captures = await c.ask<number>('events', {
        type: 'charge.captured',
        field: 'payment_intent',
        value: p.processor_reference,
      });
      expect(captures).toBe(1);
    },
  },
  {
    name: 'POST /v1/payments/{id}/cancel',
    setup: (c, key) => payment(c, key, { payment_method: 'pm_card_visa', capture_method: 'manual' }),
    request: (p) => ({ method: 'POST', path: `/v1/payments/${p.id}/cancel`, body: {} }),
    async check(c, key, p, answer) {
      expect(answer.id).toBe(p.id);
      const done = await until('the cancellation', async () => {
        const x = await get(c, key, `/v1/payments/${p.id}`);
        return x.status === 'authorized' ? undefined : x;
      });
      expect(done.status).toBe('canceled');
      const canceled = await c.ask<number>('events', {
        type: 'payment_intent.canceled',
        field: 'id',
        value: p.processor_reference,
      });
      expect(canceled).toBe(1);
    },
  },
  {
    name: 'POST /v1/reviews/{id}/approve',
    setup: (c, key) =>
      payment(c, key, { payment_method: 'pm_card_visa', customer: { id: 'cus_1', country: 'KP' } }),
    request: (p) => ({ method: 'POST', path: `/v1/reviews/${p.review.id}/approve`, body: {} }),
    async check(c, key, p, answer) {
      expect(answer).toMatchObject({ object: 'review', decision: 'approve' });
      const done = await until('the approved payment', async () => {
        const x = await get(c, key, `/v1/payments/${p.id}`);
        return ['pending_review', 'processing'].includes(x.status) ? undefined : x;
      });
      expect(done.status).toBe('captured');
      const intents = await c.ask<Json[]>('objects', {
        object: 'payment_intent',
        field: 'metadata.paystep_payment_id',
        value: p.id,
      });
      expect(intents).toHaveLength(1);
    },
  },
  {
    // Rejected before authorization: nothing may reach the processor, whatever the kill point.
    name: 'POST /v1/reviews/{id}/reject',
    setup: (c, key) =>
      payment(c, key, { payment_method: 'pm_card_visa', customer: { id: 'cus_1', country: 'KP' } }),
    request: (p) => ({ method: 'POST', path: `/v1/reviews/${p.review.id}/reject`, body: {} }),
    async check(c, key, p, answer) {
      expect(answer).toMatchObject({ object: 'review', decision: 'reject' });
      const done = await until('the rejected payment', async () => {
        const x = await get(c, key, `/v1/payments/${p.id}`);
        return x.status === 'pending_review' ? undefined : x;
      });
      expect(done.status).toBe('canceled');
      const intents = await c.ask<Json[]>('objects', {
        object: 'payment_intent',
        field: 'metadata.paystep_payment_id',
        value: p.id,
      });
      expect(intents).toEqual([]);
    },
  },
  ...(['evidence', 'accept'] as const).map((action): CrashRoute => ({
    name: `POST /v1/disputes/{id}/${action}`,
    async setup(c, key) {
      const p = await payment(c, key, { payment_method: 'pm_card_createDispute' });
      await c.ask('createDispute', { paymentIntent: p.processor_reference });
      return until('the dispute', async () => {
        const x = await get(c, key, `/v1/payments/${p.id}`);
        return x.dispute?.status === 'needs_response' ? { ...p, dispute: x.dispute } : undefined;
      });
    },
    request: (p) =>
      action === 'evidence'
        ? {
            method: 'POST',
            path: `/v1/disputes/${p.dispute.id}/evidence`,
            body: { evidence: { uncategorized_text: 'winning_evidence' } },
          }
        : { method: 'POST', path: `/v1/disputes/${p.dispute.id}/accept` },
    async check(c, key, p, answer) {
      expect(answer.id).toBe(p.dispute.id);
      const atProcessor = await c.ask<Json[]>('objects', {
        object: 'dispute',
        field: 'payment_intent',
        value: p.processor_reference,
      });
      expect(atProcessor).toHaveLength(1);
      if (action === 'evidence') {
        expect(atProcessor[0]!.evidence_details.submission_count).toBe(1);
        expect((await get(c, key, `/v1/disputes/${p.dispute.id}`)).status).not.toBe('needs_response');
      } else {
        expect(atProcessor[0]!.status).toBe('lost');
        const closed = await c.ask<number>('events', {
          type: 'charge.dispute.closed',
          field: 'id',
          value: atProcessor[0]!.id,
        });
        expect(closed).toBe(1);
        expect((await get(c, key, `/v1/disputes/${p.dispute.id}`)).status).toBe('accepted');
      }
    },
  })),
];

describeCrashes(
  'exactly once under crashes: every money-moving request, killed at any write and retried',
  ROUTES,
  {
    dirPrefix: 'paystep-crash-',
    runs: runsFor,
    timeoutMs: () => 30_000 + (RUNS ?? 2) * 20_000,
  },
  (suite) => {
    test(
      'POST /v1/refunds stopped by SIGTERM at any write (a deploy, an operator): retried, one refund',
      async () => {
        const refunds = ROUTES[0]!;
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 60 }), async (killAt) => {
            const stopped = await crashAndRetry(suite.runtime, suite.key(), refunds, killAt, 'SIGTERM');
            if (stopped) suite.crashed();
            if (process.env.PAYSTEP_CRASH_LOG)
              console.error(`SIGTERM refund at ${killAt}: ${stopped ? 'stopped' : 'finished first'}`);
          }),
          { numRuns: RUNS ?? 1 },
        );
      },
      30_000 + (RUNS ?? 1) * 20_000,
    );
    test(
      'the incident backlog: killed at any write of the release, resolved again: the held capture and refund happen once',
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 60 }), async (killAt) => {
            if (suite.runtime.child.dead) suite.runtime.child = await new Child(suite.dir()).start();
            let c = suite.runtime.child;
            const toCapture = await payment(c, suite.key(), {
              payment_method: 'pm_card_visa',
              capture_method: 'manual',
            });
            const toRefund = await payment(c, suite.key(), { payment_method: 'pm_card_visa' });
            const incident = await c.ask<Json>('declare', { processor: 'stripe' });
            const cap = await call(c.url, suite.key(), 'POST', `/v1/payments/${toCapture.id}/capture`, {
              amount: 4000,
            });
            expect(cap.status).toBe(202);
            const refund = await call(c.url, suite.key(), 'POST', '/v1/refunds', {
              payment: toRefund.id,
              amount: 2500,
            });
            expect(refund.body.status).toBe('pending');
            await until('both held, their workflows waiting', async () =>
              (await c.ask<number>('heldWaiting', { incident: incident.id })) === 2 ? true : undefined,
            );
            await c.ask('drain');
            await c.ask('arm', { at: killAt });
            const first = await c.ask<Json>('resolve', { incident: incident.id }).catch(() => undefined);
            if (first) await c.ask('disarm').catch(() => undefined);
            if (c.dead || !first) {
              suite.crashed();
              await c.exited;
              c = suite.runtime.child = await new Child(suite.dir()).start();
              // Resolved already or not: the retried resolve releases what is left.
              await c.ask('resolve', { incident: incident.id });
            }
            const held = await until('the backlog replayed', async () => {
              const h = await c.ask<Json[]>('held', { incident: incident.id });
              return h.every((e) => e.status === 'done') ? h : undefined;
            });
            expect(held.map((h) => [h.kind, h.outcome])).toEqual([
              ['capture', 'captured 40.00 USD'],
              ['refund', expect.stringMatching(/^refund (succeeded|submitted)/)],
            ]);
            const intent = (
              await c.ask<Json[]>('objects', {
                object: 'payment_intent',
                field: 'id',
                value: toCapture.processor_reference,
              })
            )[0]!;
            expect(intent).toMatchObject({ status: 'succeeded', amount_received: 4000 });
            const refunds = await c.ask<Json[]>('objects', {
              object: 'refund',
              field: 'payment_intent',
              value: toRefund.processor_reference,
            });
            expect(refunds.map((r) => r.amount)).toEqual([2500]);
            expect(await get(c, suite.key(), `/v1/payments/${toCapture.id}`)).toMatchObject({
              status: 'captured',
            });
          }),
          { numRuns: RUNS ?? 1 },
        );
      },
      60_000 + (RUNS ?? 1) * 30_000,
    );
  },
);
