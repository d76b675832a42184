/**
 * Order independence of Adyen notification processing, as a property (fast-check) on the local
 * runtime — the Adyen counterpart of webhooks-order.test.ts. For a fixed scenario — a manual-capture
 * payment captured by paystep, a captured payment whose refund settles by notification, and an
 * authorization canceled by paystep — the simulator's signed notification items (AUTHORISATION,
 * CAPTURE, REFUND, CANCELLATION) are delivered to POST /webhooks/adyen in a random order, grouped
 * into random batches, with duplicates and forged or unsigned batches mixed in. Every run must end
 * in the state in-order delivery reaches, with every side effect once: one transition per status,
 * one refund settlement, each fact stored once and processed, one timeline entry per fact; a
 * forged or unsigned batch answers 401 and stores nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { NotificationRequestItem } from '../../lib/local/processors/adyen/notifications.ts';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { getPayment, timeline } from '../../lambdas/store/payments.ts';
import { getRefundItem } from '../../lambdas/store/refunds.ts';
import { getWebhookEvent } from '../../lambdas/store/webhook-events.ts';
import { listFacts } from '../../lambdas/store/processor-facts.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;
type Item = NotificationRequestItem;

/** AUTHORISATION ×3, CAPTURE, REFUND, CANCELLATION. */
const ITEMS_PER_SCENARIO = 6;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Scenario {
  /** Captured by paystep after a manual authorisation. */
  a: Json;
  /** Captured automatically, then partly refunded. */
  b: Json;
  /** Authorised, then canceled by paystep. */
  c: Json;
  refund: Json;
  items: Item[];
}

type Mode = 'valid' | 'forged' | 'unsigned';
/** One POST: the scenario's items at these indexes, as one batch. */
interface Delivery {
  items: number[];
  mode: Mode;
}

describe('Adyen notification processing is order-independent (property over random deliveries)', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;

  const call = async (method: string, p: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = randomUUID();
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const inStatus = async (id: string, status: string) =>
    (await waitFor(`payment ${id} ${status}`, async () => {
      const p = await getPayment(id);
      return p?.status === status ? p : undefined;
    })) as unknown as Json;
  const pay = async (amount: number, capture: 'automatic' | 'manual') => {
    const r = await call('POST', '/v1/payments', {
      amount,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      capture_method: capture,
      processor: 'adyen',
    });
    expect(r.status).toBe(201);
    return inStatus(r.body.id, capture === 'manual' ? 'authorized' : 'captured');
  };
  /** The items the simulator made (delivered or not) about these pspReferences. */
  const itemsAbout = (refs: string[]) =>
    rt
      .adyen!.notificationItems()
      .filter(
        (i) => refs.includes(i.pspReference) || (i.originalReference && refs.includes(i.originalReference)),
      );

  async function scenario(): Promise<Scenario> {
    const [a, b, c] = await Promise.all([pay(1200, 'manual'), pay(1050, 'automatic'), pay(900, 'manual')]);
    const captured = await call('POST', `/v1/payments/${a.id}/capture`, {});
    expect(captured.status).toBeLessThan(300);
    const canceled = await call('POST', `/v1/payments/${c.id}/cancel`, {});
    expect(canceled.status).toBeLessThan(300);
    const refund = (await call('POST', '/v1/refunds', { payment: b.id, amount: 400 })).body;
    expect(refund.status).toBe('pending');
    const refundPsp = await waitFor(
      'the refund sent to Adyen',
      async () => (await getRefundItem(refund.id))?.processor_reference as string | undefined,
    );
    const refs = [a.processor_reference, b.processor_reference, c.processor_reference, refundPsp];
    // Every outcome decided by the simulator (its notification made, and dropped).
    const items = await waitFor('the six notifications', async () => {
      const found = itemsAbout(refs);
      return found.length === ITEMS_PER_SCENARIO ? found : undefined;
    });
    return { a, b, c, refund, items };
  }

  const pool: Promise<Scenario>[] = [];
  const nextScenario = () => {
    while (pool.length < 3) {
      const s = scenario();
      s.catch(() => undefined); // reported by the run that takes it
      pool.push(s);
    }
    return pool.shift()!;
  };

  const batch = (items: Item[]) =>
    JSON.stringify({ live: 'false', notificationItems: items.map((i) => ({ NotificationRequestItem: i })) });

  async function deliver(s: Scenario, plan: Delivery[]): Promise<void> {
    for (const d of plan) {
      let items = d.items.map((i) => structuredClone(s.items[i]!));
      if (d.mode === 'forged')
        items = items.map((i) => ({ ...i, amount: { ...i.amount, value: i.amount.value! + 1 } }));
      if (d.mode === 'unsigned')
        items = items.map((i) => ({ ...i, additionalData: { ...i.additionalData, hmacSignature: '' } }));
      const res = await fetch(`${rt.url}/webhooks/adyen`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: batch(items),
      });
      const text = await res.text();
      const ok = res.status === 200 && text === '[accepted]';
      if (ok !== (d.mode === 'valid'))
        throw new Error(`${d.mode} delivery of items ${d.items.join(',')}: ${res.status} ${text}`);
    }
  }

  async function finalState(s: Scenario) {
    const refs = [s.a.processor_reference, s.b.processor_reference, s.c.processor_reference];
    const facts = (await Promise.all(refs.map((r: string) => listFacts('adyen', r)))).flat();
    const ids = [...new Set(facts.map((f) => f.id))];
    await waitFor('every fact processed', async () => {
      for (const id of ids) if ((await getWebhookEvent('adyen', id))?.status !== 'processed') return false;
      return true;
    });
    await waitFor('the refund settled', async () => (await getRefundItem(s.refund.id))?.status !== 'pending');
    const refundExecution = (await getRefundItem(s.refund.id))!.execution_arn as string;
    const execRefund = await rt.stepFunctions.waitForExecution(refundExecution);
    const [a, b, c] = await Promise.all([getPayment(s.a.id), getPayment(s.b.id), getPayment(s.c.id)]);
    const refund = (await getRefundItem(s.refund.id))!;
    const [ta, tb, tc] = await Promise.all([timeline(s.a.id), timeline(s.b.id), timeline(s.c.id)]);
    const webhookEntries = [...ta, ...tb, ...tc].filter((e) => e.type === 'webhook').map((e) => e.event_id);
    const transitions = (t: typeof ta) => t.filter((e) => e.type === 'status_changed').map((e) => e.status);
    return {
      a: { status: a!.status, amount_captured: a!.amount_captured },
      b: { status: b!.status, amount_captured: b!.amount_captured, amount_refunded: b!.amount_refunded },
      c: { status: c!.status, amount_captured: c!.amount_captured },
      refund: { status: refund.status, workflow: execRefund.status },
      // Each verified item stored once, under its stable id (the refund's under its payment too).
      factsStored: ids.length,
      transitionsA: transitions(ta),
      transitionsB: transitions(tb),
      transitionsC: transitions(tc),
      refundSettlements: tb.filter((e) => e.type === 'refund' && e.event === 'succeeded').length,
      timelineEntryPerFact: new Set(webhookEntries).size === webhookEntries.length,
      needsAttention: [a, b, c].filter((p) => (p as Json).needs_attention).length,
    };
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-webhooks-order-adyen-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100, scheduler: false });
    process.env.PAYSTEP_SYNC_WAIT_MS = '20'; // the scenario waits for states itself
    key = (await createMerchant('Adyen Order')).apiKey;
    rt.adyen!.notifications.configure({ dropRate: 1 }); // the test delivers the simulator's items itself
  });
  afterAll(async () => {
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    await Promise.allSettled(pool);
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let expected: Awaited<ReturnType<typeof finalState>>;

  test('in-order delivery: the reference state', async () => {
    const s = await nextScenario();
    expect(s.items.map((i) => i.eventCode).sort()).toEqual(
      ['AUTHORISATION', 'AUTHORISATION', 'AUTHORISATION', 'CANCELLATION', 'CAPTURE', 'REFUND'].sort(),
    );
    expect(s.items.every((i) => i.success === 'true')).toBe(true);
    await deliver(
      s,
      s.items.map((_, i) => ({ items: [i], mode: 'valid' as const })),
    );
    expected = await finalState(s);
    expect(expected).toEqual({
      a: { status: 'captured', amount_captured: 1200 },
      b: { status: 'partially_refunded', amount_captured: 1050, amount_refunded: 400 },
      c: { status: 'canceled', amount_captured: 0 },
      refund: { status: 'succeeded', workflow: 'SUCCEEDED' },
      factsStored: ITEMS_PER_SCENARIO,
      transitionsA: ['authorized', 'captured'],
      transitionsB: ['captured', 'partially_refunded'],
      transitionsC: ['authorized', 'canceled'],
      refundSettlements: 1,
      timelineEntryPerFact: true,
      needsAttention: 0,
    });
  });

  test('any order, in any batches, with duplicates and bad deliveries, ends in the reference state', async () => {
    expect(expected).toBeDefined();
    const n = ITEMS_PER_SCENARIO;
    const extra = fc.record({
      item: fc.nat(n - 1),
      mode: fc.constantFrom<Mode>('valid', 'valid', 'forged', 'unsigned'),
      at: fc.nat(),
    });
    const plans = fc
      .tuple(
        fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
        // Whether each item of the order joins the previous batch.
        fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        fc.array(extra, { maxLength: 4 }),
      )
      .map(([order, joins, extras]) => {
        const plan: Delivery[] = [];
        order.forEach((item, k) => {
          const last = plan.at(-1);
          if (k > 0 && joins[k] && last) last.items.push(item);
          else plan.push({ items: [item], mode: 'valid' });
        });
        for (const x of extras) plan.splice(x.at % (plan.length + 1), 0, { items: [x.item], mode: x.mode });
        return plan;
      });
    await fc.assert(
      fc.asyncProperty(plans, async (plan) => {
        const s = await nextScenario();
        expect(s.items).toHaveLength(n);
        await deliver(s, plan);
        expect(await finalState(s)).toEqual(expected);
      }),
      // Each run is a whole scenario (three payments, a capture, a cancel and a refund through the
      // API, the queue and the workflows). PAYSTEP_PROPERTY_RUNS=200 for a long soak.
      { numRuns: Number(process.env.PAYSTEP_PROPERTY_RUNS || 8), endOnFailure: true },
    );
  }, 90_000);
});
