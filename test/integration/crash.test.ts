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
 * Runs per route: PAYSTEP_CRASH_RUNS (in the suite, 2 for refunds and 1 for the others, to keep
 * it fast; `PAYSTEP_CRASH_RUNS=10 npm test -- test/integration/crash.test.ts` for the long run).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

/** Kill points per route: one in the suite (two for refunds, the route that once paid twice). */
const RUNS = process.env.PAYSTEP_CRASH_RUNS ? Number(process.env.PAYSTEP_CRASH_RUNS) : undefined;
const runsFor = (route: string) => RUNS ?? (route === 'POST /v1/refunds' ? 2 : 1);
const DRIVER = path.resolve(import.meta.dirname, '../fixtures/crash-runtime.ts');

/** The runtime child: started on a data dir, spoken to over IPC, killed from inside. */
class Child {
  url = '';
  private proc!: ChildProcess;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  exited!: Promise<void>;
  dead = false;

  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  async start(): Promise<this> {
    this.dead = false;
    this.proc = fork(DRIVER, [], {
      execArgv: [],
      env: {
        ...process.env,
        CRASH_DATA_DIR: this.dir,
        PAYSTEP_LOG_LEVEL: 'silent',
        PAYSTEP_SYNC_WAIT_MS: '4000',
      },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', () => {
        this.dead = true;
        for (const w of this.waiting.values()) w.reject(new Error('runtime exited'));
        this.waiting.clear();
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      this.proc.once('error', reject);
      this.proc.on('message', (raw) => {
        const m = raw as { op?: string; url?: string; id?: number; result?: unknown; error?: string };
        if (m.op === 'ready') {
          this.url = m.url!;
          resolve();
          return;
        }
        const w = this.waiting.get(m.id!);
        if (!w) return;
        this.waiting.delete(m.id!);
        if (m.error) w.reject(new Error(m.error));
        else w.resolve(m.result);
      });
      void this.exited.then(() => reject(new Error('runtime exited before it was ready')));
    });
    return this;
  }

  ask<T>(op: string, args: Json = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ op, id, ...args });
    });
  }

  async stop(): Promise<void> {
    if (!this.dead) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

async function call(url: string, key: string, method: string, p: string, body?: unknown, idem?: string) {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(method === 'POST' ? { 'idempotency-key': idem ?? randomUUID() } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Route {
  name: string;
  /** What must exist before the request (made on a healthy runtime). */
  setup(c: Child, key: string): Promise<Json>;
  request(setup: Json): { method: string; path: string; body?: unknown };
  /** After the retry answered: the one effect at the processor, and paystep agreeing. */
  check(c: Child, key: string, setup: Json, answer: Json): Promise<void>;
}

const payment = async (c: Child, key: string, body: Json) => {
  const r = await call(c.url, key, 'POST', '/v1/payments', { amount: 6000, currency: 'usd', ...body });
  expect(r.status).toBe(201);
  return r.body;
};
const get = async (c: Child, key: string, p: string) => (await call(c.url, key, 'GET', p)).body;

const ROUTES: Route[] = [
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
  ...(['evidence', 'accept'] as const).map((action): Route => ({
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

describe('exactly once under crashes: every money-moving request, killed at any write and retried', () => {
  let dir: string;
  let child: Child;
  let key: string;
  let crashes = 0;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-crash-'));
    child = await new Child(dir).start();
    key = (await child.ask<{ key: string }>('merchant')).key;
  });
  afterAll(async () => {
    await child?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test.each(ROUTES.map((r) => [r.name, r] as const))(
    '%s',
    async (_name, route) => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 60 }), async (killAt) => {
          if (child.dead) child = await new Child(dir).start();
          const setup = await route.setup(child, key);
          await child.ask('drain');
          const req = route.request(setup);
          const idem = randomUUID();
          await child.ask('arm', { at: killAt });
          const first = await call(child.url, key, req.method, req.path, req.body, idem).catch(
            () => undefined,
          );
          if (first) await child.ask('disarm').catch(() => undefined);
          if (child.dead || !first) {
            await child.exited;
            crashes++;
            child = await new Child(dir).start();
          }
          // The retry: same key, same body. Answered at once (nothing waits out the dead process's lock).
          const retry = await call(child.url, key, req.method, req.path, req.body, idem);
          expect(retry.status).toBeLessThan(300);
          if (first && first.status < 300) expect(retry.body.id).toBe(first.body.id);
          await route.check(child, key, setup, retry.body);
        }),
        { numRuns: runsFor(route.name) },
      );
    },
    30_000 + (RUNS ?? 2) * 20_000,
  );

  test('the runs above crashed the runtime', () => {
    expect(crashes).toBeGreaterThan(0);
  });
});
