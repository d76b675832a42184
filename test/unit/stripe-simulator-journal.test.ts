/**
 * The Stripe simulator's own persistence: objects and idempotency records survive a restart, and the
 * journal is compacted while running (each test starts its own simulator in its own data dir).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StripeAdapter } from '../../lambdas/connectors/stripe/adapter.ts';
import { StripeSimulator } from '../../lib/local/processors/stripe-simulator.ts';
import { KEY, authorizeRequest, authorized } from '../fixtures/stripe-simulator.ts';

test('a restarted simulator keeps its objects and idempotency records', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-restart-'));
  let s = new StripeSimulator({ dataDir: dir });
  const base = await s.start();
  const port = Number(new URL(base).port);
  const a = new StripeAdapter({ secretKey: KEY, apiBase: base, maxNetworkRetries: 0 });
  const req = authorizeRequest({ captureMethod: 'manual', amount: 3000 });
  const r = authorized(await a.authorize(req));
  await s.stop();
  expect(fs.existsSync(path.join(dir, 'processors', 'stripe.jsonl'))).toBe(true);

  s = new StripeSimulator({ dataDir: dir });
  try {
    expect(await s.start(port)).toBe(base);
    expect(await a.retrieve(r.processorReference)).toMatchObject({ status: 'authorized', amount: 3000 });
    // The idempotency record survived: the same attempt is not charged again.
    expect(authorized(await a.authorize(req)).processorReference).toBe(r.processorReference);
    expect(s.stats().paymentIntentsCreated).toBe(0);
    expect((await a.capture(r.processorReference, 1000, randomUUID())).amountCaptured).toBe(1000);
    expect(s.events().map((e) => e.type)).toContain('payment_intent.amount_capturable_updated');
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the simulator keeps the latest events and compacts its journal while running; objects survive a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-compact-'));
  const opts = { dataDir: dir, eventLogLimit: 4, journalCompactMinLines: 20 };
  let s = new StripeSimulator(opts);
  const base = await s.start();
  const port = Number(new URL(base).port);
  const a = new StripeAdapter({ secretKey: KEY, apiBase: base, maxNetworkRetries: 0 });
  const journal = path.join(dir, 'processors', 'stripe.jsonl');
  const lines = () => fs.readFileSync(journal, 'utf8').trim().split('\n').length;
  try {
    const refs: string[] = [];
    for (let i = 0; i < 12; i++)
      refs.push(authorized(await a.authorize(authorizeRequest())).processorReference);
    await new Promise((r) => setImmediate(r));
    const events = s.events();
    expect(events.length).toBeLessThanOrEqual(5); // the limit, up to a tenth more (rounded up)
    expect(events.at(-1)?.data.object).toMatchObject({ id: refs.at(-1) });
    const objects = s.memoryStats().objects;
    // 12 payments append 108 lines (9 a payment: each save of an object, the idempotency record, the
    // events); compacted while running, the journal holds one line a live record and what followed.
    expect(lines()).toBeLessThan(100);
    expect(lines()).toBeLessThan(1.5 * (objects + s.memoryStats().idempotencyKeys + events.length));
    await s.stop();
    s = new StripeSimulator(opts);
    expect(await s.start(port)).toBe(base);
    expect(await a.retrieve(refs[0]!)).toMatchObject({ status: 'captured' });
    expect(s.memoryStats().objects).toBe(objects);
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
