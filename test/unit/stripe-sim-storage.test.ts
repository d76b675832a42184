/**
 * The Stripe simulator's storage (lib/local/processors/stripe/storage.ts on
 * framework/record-file.ts): objects, idempotency records and events on disk with an index in
 * memory. What memory holds stays bounded as objects grow; objects and idempotency records survive
 * a clean restart and a crash (a torn last line included); an event cursor sees every event once
 * however small the events cap.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StripeSimulator, type StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';

const KEY = 'sk_test_paystep_storage';
const dirs: string[] = [];
const sims: StripeSimulator[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-stripe-storage-'));
  dirs.push(d);
  return d;
}

async function started(opts: ConstructorParameters<typeof StripeSimulator>[0]): Promise<StripeSimulator> {
  const s = new StripeSimulator({ payoutEveryMs: 0, ...opts });
  sims.push(s);
  await s.start();
  return s;
}

afterEach(async () => {
  for (const s of sims.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: Record<string, any>;
}

async function post(
  s: StripeSimulator,
  p: string,
  form: Record<string, string>,
  idempotencyKey?: string,
): Promise<Reply> {
  const res = await fetch(`${s.url}${p}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${KEY}`,
      'Content-Type': 'application/x-www-form-urlencoded',
      ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
    },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Reply['body'] };
}

async function get(s: StripeSimulator, p: string): Promise<Reply> {
  const res = await fetch(`${s.url}${p}`, { headers: { Authorization: `Bearer ${KEY}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Reply['body'] };
}

/** An automatically captured card payment: 4 objects (PaymentIntent, PaymentMethod, Charge, balance transaction). */
const pay = (s: StripeSimulator, key = randomUUID(), amount = 1000) =>
  post(
    s,
    '/v1/payment_intents',
    {
      amount: String(amount),
      currency: 'usd',
      payment_method: 'pm_card_visa',
      'payment_method_types[0]': 'card',
      confirm: 'true',
    },
    key,
  );

test('memory holds an index entry per object and a bounded number of parsed records', async () => {
  const s = await started({ dataDir: tmpDir(), objectCacheSize: 16 });
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const r = await pay(s);
    expect(r.status).toBe(200);
    ids.push(r.body.id as string);
  }
  const m = s.memoryStats();
  expect(m.objects).toBe(240); // indexed: 4 objects a payment
  expect(m.idempotencyKeys).toBe(60);
  expect(m.cachedRecords).toBeLessThanOrEqual(16); // parsed and resident: bounded
  expect(m.simInfo).toBe(0); // nothing waits for anything
  // What left memory is read back from disk on demand, whole and expandable.
  const first = await get(s, `/v1/payment_intents/${ids[0]}?expand[]=latest_charge.balance_transaction`);
  expect(first.status).toBe(200);
  expect(first.body).toMatchObject({ id: ids[0], status: 'succeeded', amount_received: 1000 });
  expect(first.body.latest_charge.balance_transaction).toMatchObject({
    object: 'balance_transaction',
    amount: 1000,
  });
  expect(s.memoryStats().cachedRecords).toBeLessThanOrEqual(16);
  // A refund of the oldest payment works on the objects read back.
  const refund = await post(s, '/v1/refunds', { payment_intent: ids[0]!, amount: '400' }, randomUUID());
  expect(refund.body).toMatchObject({ status: 'succeeded', amount: 400 });
  expect((await get(s, `/v1/charges/${first.body.latest_charge.id}`)).body).toMatchObject({
    amount_refunded: 400,
  });
  const list = await get(s, `/v1/refunds?payment_intent=${ids[0]}`);
  expect(list.body.data.map((r: { id: string }) => r.id)).toEqual([refund.body.id]);
});

test('objects and idempotency records survive a clean restart; a retried request gets the same response', async () => {
  const dir = tmpDir();
  let s = await started({ dataDir: dir, objectCacheSize: 4 });
  const key = randomUUID();
  const first = await pay(s, key, 2500);
  const others = [];
  for (let i = 0; i < 5; i++) others.push((await pay(s)).body.id as string);
  await s.stop();
  // A clean stop leaves the index snapshot: the next start parses no line of the journal.
  expect(fs.existsSync(path.join(dir, 'processors', 'stripe.jsonl.idx.json'))).toBe(true);

  s = await started({ dataDir: dir, objectCacheSize: 4 });
  expect(s.memoryStats()).toMatchObject({ objects: 24, idempotencyKeys: 6, cachedRecords: 0 });
  const replay = await pay(s, key, 2500);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.text).toBe(first.text); // byte for byte: no second charge
  expect(s.stats().paymentIntentsCreated).toBe(0);
  // The same key with other parameters is still refused.
  expect((await pay(s, key, 2600)).body.error).toMatchObject({ type: 'idempotency_error' });
  for (const id of others)
    expect((await get(s, `/v1/payment_intents/${id}`)).body).toMatchObject({ id, status: 'succeeded' });
  // The same instance stopped and started again goes on with the same file.
  await s.stop();
  await s.start();
  const after = await pay(s);
  expect(after.status).toBe(200);
  expect((await get(s, `/v1/payment_intents/${others[0]}`)).body).toMatchObject({ status: 'succeeded' });
  expect((await get(s, `/v1/payment_intents/${after.body.id}`)).body).toMatchObject({ status: 'succeeded' });
});

test('after a crash (no snapshot of the last lines, a torn last line) the journal is replayed', async () => {
  const dir = tmpDir();
  const s = await started({ dataDir: dir, journalCompactMinLines: 10, eventLogLimit: 3 });
  const key = randomUUID();
  const first = await pay(s, key);
  for (let i = 0; i < 6; i++) await pay(s); // compacts while running: a snapshot, then more lines
  await new Promise((r) => setImmediate(r));
  const last = await pay(s);
  // What a crash now leaves: the files as they are, without the snapshot a stop writes.
  const crashed = tmpDir();
  fs.cpSync(path.join(dir, 'processors'), path.join(crashed, 'processors'), { recursive: true });
  const journal = path.join(crashed, 'processors', 'stripe.jsonl');
  fs.appendFileSync(journal, '{"t":"obj","kind":"payment_intent","obj":{"id":"pi_torn"'); // torn write
  // The compaction's snapshot is there (it does not cover the last payment); a second copy has none
  // (as a journal written before snapshots existed): both are replayed.
  expect(fs.existsSync(`${journal}.idx.json`)).toBe(true);
  const unindexed = tmpDir();
  fs.cpSync(path.join(crashed, 'processors'), path.join(unindexed, 'processors'), { recursive: true });
  fs.rmSync(path.join(unindexed, 'processors', 'stripe.jsonl.idx.json'));
  await s.stop();
  const u = await started({ dataDir: unindexed });
  expect((await get(u, `/v1/payment_intents/${last.body.id}`)).body).toMatchObject({ status: 'succeeded' });
  expect(u.memoryStats()).toMatchObject({ objects: 32, idempotencyKeys: 8 });

  const r = await started({ dataDir: crashed });
  expect((await get(r, `/v1/payment_intents/${last.body.id}`)).body).toMatchObject({ status: 'succeeded' });
  expect((await get(r, '/v1/payment_intents/pi_torn')).status).toBe(404);
  const replay = await pay(r, key);
  expect(replay.text).toBe(first.text);
  expect(r.stats().paymentIntentsCreated).toBe(0);
  expect(r.memoryStats()).toMatchObject({ objects: 32, idempotencyKeys: 8 });
  // The torn line was cut: what is appended after it is read back at the next start.
  const next = await pay(r);
  await r.stop();
  const again = await started({ dataDir: crashed });
  expect((await get(again, `/v1/payment_intents/${next.body.id}`)).body).toMatchObject({
    status: 'succeeded',
  });
});

test('an event cursor sees every event once, past the events cap', async () => {
  const emitted: StripeEvent[] = [];
  const s = await started({ dataDir: tmpDir(), eventLogLimit: 5, onEvent: (e) => void emitted.push(e) });
  const seen: string[] = [];
  let cursor = 0;
  for (let i = 0; i < 8; i++) {
    await pay(s); // 3 events a payment (created, succeeded, charge.succeeded): more than the cap in all
    const page = s.eventsAfter(cursor);
    seen.push(...page.events.map((e) => e.id));
    cursor = page.cursor;
  }
  await new Promise((r) => setImmediate(r)); // onEvent runs after the response
  expect(emitted.length).toBeGreaterThan(20);
  expect(seen).toEqual(emitted.map((e) => e.id));
  expect(s.events().length).toBeLessThanOrEqual(6); // the cap, up to a tenth more
  expect(s.eventsAfter(cursor)).toEqual({ events: [], cursor });
  // A reader left behind by more than the cap gets the latest kept events, then goes on from them.
  const late = s.eventsAfter(0, 2);
  expect(late.events.map((e) => e.id)).toEqual(
    s
      .events()
      .slice(0, 2)
      .map((e) => e.id),
  );
  expect(s.eventsAfter(late.cursor).events.map((e) => e.id)).toEqual(
    s
      .events()
      .slice(2)
      .map((e) => e.id),
  );
});

test('events keep their sequence across a restart', async () => {
  const dir = tmpDir();
  let s = await started({ dataDir: dir, eventLogLimit: 50 });
  await pay(s);
  const { cursor } = s.eventsAfter(0);
  await s.stop();
  s = await started({ dataDir: dir, eventLogLimit: 50 });
  expect(s.eventsAfter(cursor).events).toEqual([]);
  await pay(s);
  expect(s.eventsAfter(cursor).events.map((e) => e.type)).toContain('payment_intent.succeeded');
});
