/**
 * The Adyen simulator's store (framework/store.ts on framework/record-file.ts): payments,
 * modifications, idempotency records, redirects, stored cards and settlement entries on disk with
 * an index in memory. What memory holds parsed stays bounded as payments grow; payments and
 * idempotency records survive a restart, and a retried request gets the stored response.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';

const MERCHANT = 'PaystepTestMerchant';
const API_KEY = 'AQE_test_paystep_storage';
const HMAC_KEY = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';

let dir: string;
const sims: AdyenSimulator[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-adyen-storage-'));
});

afterEach(async () => {
  for (const s of sims.splice(0)) await s.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function started(): Promise<{ sim: AdyenSimulator; base: string }> {
  const sim = new AdyenSimulator({
    hmacKeyHex: HMAC_KEY,
    merchantAccount: MERCHANT,
    apiKey: API_KEY,
    dataDir: dir,
    timeScale: 1_000_000,
    settlementEveryMs: 0,
    notify: { callback: () => ({ status: 200, body: '[accepted]' }) },
  });
  sims.push(sim);
  return { sim, base: await sim.start(0) };
}

async function pay(base: string, key: string, reference: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}/v71/payments`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY, 'Idempotency-Key': key },
    body: JSON.stringify({
      merchantAccount: MERCHANT,
      reference,
      amount: { currency: 'EUR', value: 1000 },
      returnUrl: 'https://shop.example/return',
      paymentMethod: {
        type: 'scheme',
        number: '4111111111111111',
        expiryMonth: '03',
        expiryYear: '2030',
        cvc: '737',
        holderName: 'J. Smith',
      },
    }),
  });
  return { status: res.status, text: await res.text() };
}

test('payments and idempotency records leave memory; they survive a restart and replay', async () => {
  let { sim, base } = await started();
  const baseline = sim.memoryStats().resident;
  const first = await pay(base, 'key-0', 'order-0');
  expect(first.status).toBe(200);
  expect(JSON.parse(first.text)).toMatchObject({ resultCode: 'Authorised' });
  for (let i = 1; i < 40; i++) expect((await pay(base, randomUUID(), `order-${i}`)).status).toBe(200);
  await sim.settled();
  const m = sim.memoryStats();
  expect(sim.stats().payments).toBe(40);
  expect(m.indexed).toBeGreaterThanOrEqual(80); // a payment and an idempotency record each, indexed
  // Parsed in memory: neither payments nor idempotency records (resident: timers, deliveries).
  expect(m.resident - baseline).toBeLessThan(10);

  await sim.stop();
  sims.splice(0);
  ({ sim, base } = await started());
  expect(sim.stats().payments).toBe(40);
  const replay = await pay(base, 'key-0', 'order-0');
  expect(replay.text).toBe(first.text); // the stored response: no second payment
  expect(sim.stats().payments).toBe(40);
  expect(sim.paymentRecords().map((p) => p.merchantReference)).toContain('order-39');
});
