/**
 * Exactly-once on Adyen under crashes (docs/states.md, "Idempotent requests and crashes" and
 * "Pending capture and cancel"): the pattern of test/integration/crash.test.ts for payments sent to
 * Adyen. A runtime in a child process is killed with SIGKILL at the k-th write to the local
 * DynamoDB (chosen by fast-check) during a payment, a capture (which Adyen only accepts and
 * confirms by notification), a cancel and a refund; it is started again on the same data dir (the
 * Adyen simulator keeps its payments, modifications, idempotency records and pending notifications
 * there) and the client retries with the same Idempotency-Key and body. Then: the retry is
 * answered, the payment ends consistent, and the simulator shows exactly one payment, one capture,
 * one cancellation or one refund — never two. Also the shopper's return from 3-D Secure (`GET
 * /v1/payments/{id}/return`), killed and reloaded: the same payment is completed once, captured.
 *
 * Runs per route: PAYSTEP_CRASH_RUNS (1 in the suite; `PAYSTEP_CRASH_RUNS=10 npm test --
 * test/integration/crash-adyen.test.ts` for the long run).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  call,
  describeCrashes,
  until,
  type Child,
  type CrashRoute,
  type Json,
} from '../fixtures/crash-child.ts';

const RUNS = process.env.PAYSTEP_CRASH_RUNS ? Number(process.env.PAYSTEP_CRASH_RUNS) : 1;

/** The Adyen simulator of the runtime now running (its port may change on a restart). */
const simulator = (dir: string) =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'runtime.json'), 'utf8')) as Json).endpoints.adyen as string;
const sim = async (dir: string, p: string): Promise<Json> =>
  (await (await fetch(`${simulator(dir)}/_sim${p}`)).json()) as Json;
const simPost = async (dir: string, p: string, body: Json): Promise<Json> =>
  (await (
    await fetch(`${simulator(dir)}/_sim${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  ).json()) as Json;
/** What Adyen did to a payment: its modifications of one type. */
const modifications = async (dir: string, psp: string, type: string) =>
  ((await sim(dir, `/payments/${psp}`)).modifications as Json[]).filter((m) => m.type === type);

const payment = async (c: Child, key: string, body: Json) => {
  const r = await call(c.url, key, 'POST', '/v1/payments', {
    amount: 6000,
    currency: 'eur',
    payment_method: 'pm_card_visa',
    processor: 'adyen',
    ...body,
  });
  expect(r.status).toBe(201);
  return r.body;
};
const get = async (c: Child, key: string, p: string) => (await call(c.url, key, 'GET', p)).body;
const settled = (c: Child, key: string, id: string, busy: string[]) =>
  until(
    `payment ${id} to leave ${busy.join('/')}`,
    async () => {
      const x = await get(c, key, `/v1/payments/${id}`);
      return busy.includes(x.status) || x.pending_modification ? undefined : x;
    },
    30_000,
  );

const ROUTES: CrashRoute[] = [
  {
    name: 'POST /v1/payments (Adyen)',
    setup: async (c) => ({ before: (await sim(c.dir, '/stats')).payments as number }),
    request: () => ({
      method: 'POST',
      path: '/v1/payments',
      body: { amount: 4200, currency: 'eur', payment_method: 'pm_card_visa', processor: 'adyen' },
    }),
    async check(c, key, s, answer) {
      const done = await settled(c, key, answer.id, ['processing']);
      expect(done).toMatchObject({ status: 'captured', processor: 'adyen', amount_captured: 4200 });
      // One payment at Adyen for this request, whatever the kill point.
      expect((await sim(c.dir, '/stats')).payments - s.before).toBe(1);
      expect((await sim(c.dir, `/payments/${done.processor_reference}`)).payment.merchantReference).toBe(
        answer.id,
      );
    },
  },
  {
    name: 'POST /v1/payments/{id}/capture (Adyen, confirmed by notification)',
    setup: (c, key) => payment(c, key, { capture_method: 'manual' }),
    request: (p) => ({ method: 'POST', path: `/v1/payments/${p.id}/capture`, body: { amount: 5000 } }),
    async check(c, key, p, answer) {
      expect(answer.id).toBe(p.id);
      const done = await settled(c, key, p.id, ['authorized']);
      expect(done).toMatchObject({ status: 'captured', amount_captured: 5000, pending_modification: null });
      const captures = await modifications(c.dir, p.processor_reference, 'capture');
      expect(captures.map((m) => [m.status, m.amount.value])).toEqual([['succeeded', 5000]]);
    },
  },
  {
    name: 'POST /v1/payments/{id}/cancel (Adyen, confirmed by notification)',
    setup: (c, key) => payment(c, key, { capture_method: 'manual' }),
    request: (p) => ({ method: 'POST', path: `/v1/payments/${p.id}/cancel`, body: {} }),
    async check(c, key, p, answer) {
      expect(answer.id).toBe(p.id);
      const done = await settled(c, key, p.id, ['authorized']);
      expect(done).toMatchObject({ status: 'canceled', amount_captured: 0 });
      const cancels = await modifications(c.dir, p.processor_reference, 'cancel');
      expect(cancels.map((m) => m.status)).toEqual(['succeeded']);
      expect(await modifications(c.dir, p.processor_reference, 'capture')).toEqual([]);
    },
  },
  {
    name: 'POST /v1/refunds (Adyen)',
    setup: (c, key) => payment(c, key, {}),
    request: (p) => ({ method: 'POST', path: '/v1/refunds', body: { payment: p.id, amount: 2500 } }),
    async check(c, key, p, answer) {
      const done = await until(
        'the refund to finish',
        async () => {
          const r = await get(c, key, `/v1/refunds/${answer.id}`);
          return r.status === 'pending' ? undefined : r;
        },
        30_000,
      );
      expect(done).toMatchObject({ status: 'succeeded', amount: 2500, payment: p.id });
      const refunds = await modifications(c.dir, p.processor_reference, 'refund');
      expect(refunds.map((m) => [m.status, m.amount.value])).toEqual([['succeeded', 2500]]);
      expect(await get(c, key, `/v1/payments/${p.id}`)).toMatchObject({
        status: 'partially_refunded',
        amount_refunded: 2500,
      });
    },
  },
  {
    // The shopper's browser back from 3-D Secure: paystep completes the payment at Adyen
    // (/payments/details) and resumes the waiting workflow; a reload after a crash does it again.
    name: 'GET /v1/payments/{id}/return (Adyen 3-D Secure)',
    async setup(c, key) {
      const p = await payment(c, key, { payment_method: 'pm_card_authenticationRequired' });
      expect(p.status).toBe('requires_action');
      const { redirectResult } = await simPost(c.dir, `/3ds/${p.processor_reference}`, {
        outcome: 'authenticated',
      });
      return { ...p, redirectResult, before: (await sim(c.dir, '/stats')).payments as number };
    },
    request: (p) => ({
      method: 'GET',
      path: `/v1/payments/${p.id}/return?redirectResult=${encodeURIComponent(p.redirectResult)}`,
    }),
    async check(c, key, p, answer) {
      expect(answer).toMatchObject({ object: 'payment_return', payment: p.id });
      const done = await settled(c, key, p.id, ['processing', 'requires_action']);
      expect(done).toMatchObject({ status: 'captured', processor: 'adyen', amount_captured: 6000 });
      // The same payment at Adyen, authorised once; no second payment, at most one capture.
      expect((await sim(c.dir, '/stats')).payments - p.before).toBe(0);
      expect((await sim(c.dir, `/payments/${p.processor_reference}`)).payment.status).toBe('authorised');
      expect((await modifications(c.dir, p.processor_reference, 'capture')).length).toBeLessThanOrEqual(1);
      await until(
        'the workflow to end',
        async () => {
          const t = await get(c, key, `/v1/payments/${p.id}/timeline`);
          return t.workflow?.status === 'SUCCEEDED' ? t : undefined;
        },
        30_000,
      );
    },
  },
];

describeCrashes(
  'exactly once on Adyen under crashes: payment, capture, cancel and refund killed at any write and retried',
  ROUTES,
  { dirPrefix: 'paystep-crash-adyen-', runs: () => RUNS, timeoutMs: (n) => 40_000 + n * 30_000 },
);
