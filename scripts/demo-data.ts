/**
 * Demo data for the console: a few hundred payments of every kind, made through the HTTP API as a
 * merchant would, on a running local runtime (`npm start`), plus the operators to sign in with.
 *
 *   npm start                                  # in one terminal (PAYSTEP_DATA_DIR / PORT as usual)
 *   node scripts/demo-data.ts [--payments N] [--data-dir DIR]
 *
 * It creates one merchant and three operators (support with a 50.00 refund limit, finance, admin;
 * their one-time keys are printed), then: approved payments on Stripe and Adyen in several
 * currencies and card brands; declines with different reasons (insufficient funds, expired card,
 * incorrect CVC, fraud, lost and stolen cards, processing error); 3-D Secure payments (some
 * authenticated, some failed, some left waiting for the customer); payments held for review (above
 * the risk screen's amount limit); full and partial refunds; manual captures; disputes due in about
 * 3 days (the Stripe simulator's response window is set to 3 days first); customers with
 * subscriptions, one of them declined (incomplete); a Stripe payout imported from its itemized
 * report with one line changed, so reconciliation finds an `amount_mismatch` exception; and the
 * summary reports for yesterday and today.
 *
 * stdout: one JSON object (merchant, operators with keys, counts, ids worth looking at); progress on
 * stderr. Exit 1 when the runtime is not running or a request fails unexpectedly. Every request
 * carries its own Idempotency-Key, so a re-run adds another set of data (new merchant and operators).
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Runtime {
  url: string;
  endpoints: Record<string, string>;
}

interface Payment {
  id: string;
  status: string;
  amount: number;
  currency: string;
  processor?: string;
  processor_reference?: string | null;
  order_id?: string;
  next_action?: unknown;
  failure?: { code?: string } | null;
}

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const log = (msg: string) => process.stderr.write(`demo-data: ${msg}\n`);

const dataDir = path.resolve(arg('--data-dir') ?? process.env.PAYSTEP_DATA_DIR ?? '.paystep');
const total = Number(arg('--payments', '300'));
if (!Number.isInteger(total) || total < 40 || total > 5000) {
  process.stderr.write('demo-data: --payments must be an integer from 40 to 5000\n');
  process.exit(2);
}

function runtime(): Runtime {
  const file = path.join(dataDir, 'runtime.json');
  if (!fs.existsSync(file)) {
    process.stderr.write(`demo-data: no runtime on ${dataDir}: start one with npm start\n`);
    process.exit(1);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Runtime;
}

const rt = runtime();
const cliMain = path.resolve(import.meta.dirname, '..', 'lib', 'cli', 'main.ts');

/** `paystep …` on the same data dir (talks to the running runtime); its stdout as JSON. */
async function paystep(...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [cliMain, '--data-dir', dataDir, ...args], {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PAYSTEP_LOG_LEVEL: 'warn' },
  });
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

let apiKey = '';

async function api<T>(method: string, route: string, body?: unknown, idempotent = true): Promise<T> {
  const res = await fetch(rt.url + route, {
    method,
    headers: {
      authorization: `Bearer ${apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(idempotent && method === 'POST' ? { 'idempotency-key': crypto.randomUUID() } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json()) as T & { error?: { message?: string } };
  if (res.status >= 300) throw new Error(`${method} ${route} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function sim(processor: 'stripe' | 'adyen', method: string, route: string, body?: unknown) {
  const res = await fetch(rt.endpoints[processor] + route, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${processor} simulator ${method} ${route} → ${res.status} ${text}`);
  return text;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

const FIRST = ['ana', 'ben', 'chloe', 'dev', 'emma', 'farid', 'grace', 'hugo', 'ines', 'jon', 'kim', 'lea'];
const COUNTRIES = ['US', 'GB', 'FR', 'DE', 'NL', 'ES', 'CA', 'AU'];
const CHANNELS = ['web', 'mobile', 'pos', 'moto', 'api'] as const;

const APPROVED = [
  'pm_card_visa',
  'pm_card_mastercard',
  'pm_card_amex',
  'pm_card_visa_debit',
  'pm_card_gb',
  'pm_card_fr',
];
/** The Adyen connector maps these test ids (docs/connectors.md); the country cards are Stripe's only. */
const APPROVED_ADYEN = [
  'pm_card_visa',
  'pm_card_mastercard',
  'pm_card_amex',
  'pm_card_visa_debit',
  'pm_card_us',
];
const DECLINED = [
  'pm_card_visa_chargeDeclinedInsufficientFunds',
  'pm_card_chargeDeclinedExpiredCard',
  'pm_card_chargeDeclinedIncorrectCvc',
  'pm_card_chargeDeclinedFraudulent',
  'pm_card_visa_chargeDeclinedLostCard',
  'pm_card_visa_chargeDeclinedStolenCard',
  'pm_card_chargeDeclinedProcessingError',
  'pm_card_visa_chargeDeclined',
];

type Kind =
  | 'approved'
  | 'declined'
  | 'three_ds'
  | 'review'
  | 'refund_full'
  | 'refund_partial'
  | 'manual'
  | 'dispute'
  | 'inquiry';

/** The mix of a run of `n` payments (the rest approved). */
function plan(n: number): Kind[] {
  const fixed: [Kind, number][] = [
    ['declined', Math.round(n * 0.2)],
    ['three_ds', Math.max(6, Math.round(n * 0.04))],
    ['review', Math.max(4, Math.round(n * 0.02))],
    ['refund_full', Math.max(4, Math.round(n * 0.04))],
    ['refund_partial', Math.max(4, Math.round(n * 0.04))],
    ['manual', Math.max(3, Math.round(n * 0.02))],
    ['dispute', Math.max(3, Math.round(n * 0.015))],
    ['inquiry', 1],
  ];
  const kinds: Kind[] = [];
  for (const [k, c] of fixed) for (let i = 0; i < c; i++) kinds.push(k);
  while (kinds.length < n) kinds.push('approved');
  return kinds;
}

const counts: Record<string, number> = {};
const bump = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
const examples: Record<string, string> = {};

async function payment(kind: Kind, i: number, runTag: string): Promise<Payment> {
  const adyen = i % 3 === 1 && kind !== 'dispute' && kind !== 'inquiry' && kind !== 'three_ds';
  const currency = adyen ? (i % 2 ? 'eur' : 'usd') : i % 5 === 0 ? 'gbp' : 'usd';
  const name = FIRST[i % FIRST.length] as string;
  const pm =
    kind === 'declined'
      ? (DECLINED[i % DECLINED.length] as string)
      : kind === 'three_ds'
        ? 'pm_card_authenticationRequired'
        : kind === 'dispute'
          ? 'pm_card_createDispute'
          : kind === 'inquiry'
            ? 'pm_card_createDisputeInquiry'
            : adyen
              ? (APPROVED_ADYEN[i % APPROVED_ADYEN.length] as string)
              : (APPROVED[i % APPROVED.length] as string);
  const amount = kind === 'review' ? 1_200_000 + i * 100 : 500 + ((i * 7919) % 24_000);
  const p = await api<Payment>('POST', '/v1/payments', {
    amount,
    currency,
    payment_method: pm,
    ...(adyen
      ? { processor: 'adyen' }
      : kind === 'approved' || kind === 'declined'
        ? {}
        : { processor: 'stripe' }),
    ...(kind === 'manual' ? { capture_method: 'manual' } : {}),
    order_id: `ord-${runTag}-${String(i).padStart(4, '0')}`,
    customer: {
      id: `cust-${name}-${i % 40}`,
      email: `${name}.${i % 40}@example.com`,
      country: COUNTRIES[i % COUNTRIES.length],
    },
    channel: CHANNELS[i % CHANNELS.length],
    description: `Demo order ${i}`,
  });
  bump(`${kind}:${p.status}`);
  if (!examples[`${kind}:${p.status}`]) examples[`${kind}:${p.status}`] = `${p.id} (order ${p.order_id})`;
  return p;
}

async function followUp(kind: Kind, p: Payment, i: number): Promise<void> {
  if (kind === 'three_ds' && p.status === 'requires_action' && p.processor_reference) {
    // Two in three authenticate (one of those fails the challenge); the rest wait for the customer.
    if (i % 3 === 2) return;
    const outcome = i % 3 === 0 ? 'succeed' : 'fail';
    await sim('stripe', 'POST', `/_sim/payment_intents/${p.processor_reference}/authenticate`, { outcome });
  }
  if ((kind === 'refund_full' || kind === 'refund_partial') && p.status === 'captured') {
    const amount = kind === 'refund_partial' ? Math.max(1, Math.floor(p.amount / 3)) : undefined;
    await api('POST', '/v1/refunds', {
      payment: p.id,
      ...(amount ? { amount } : {}),
      reason: 'requested_by_customer',
    });
  }
  if (kind === 'manual' && p.status === 'authorized' && i % 2 === 0)
    await api('POST', `/v1/payments/${p.id}/capture`, { amount: Math.floor(p.amount / 2) });
}

async function subscriptions(runTag: string): Promise<Record<string, string>> {
  const planObj = await api<{ id: string }>(
    'POST',
    '/v1/plans',
    { name: 'Demo monthly', amount: 1900, currency: 'usd', interval: 'month' },
    false,
  );
  const out: Record<string, string> = {};
  const cards = [
    'pm_card_visa',
    'pm_card_mastercard',
    'pm_card_visa',
    'pm_card_visa_chargeDeclinedInsufficientFunds',
  ];
  await pool(cards, 2, async (pm, i) => {
    const cus = await api<{ id: string }>(
      'POST',
      '/v1/customers',
      { email: `subscriber${i}.${runTag}@example.com`, name: `Subscriber ${i}`, payment_method: pm },
      false,
    );
    const sub = await api<{ id: string; status: string }>('POST', '/v1/subscriptions', {
      customer: cus.id,
      plan: planObj.id,
    });
    out[sub.id] = sub.status;
    bump(`subscription:${sub.status}`);
  });
  return out;
}

/** A Stripe payout of everything so far, imported from its itemized report with one line's gross changed. */
async function payoutWithException(): Promise<{ payout?: string; changed_line?: string }> {
  const { payouts } = JSON.parse(
    await sim('stripe', 'POST', '/_sim/payouts/run', { include_pending: true }),
  ) as {
    payouts: { id: string; currency: string }[];
  };
  const po = payouts.find((p) => p.currency === 'usd') ?? payouts[0];
  if (!po) return {};
  const csv = await sim('stripe', 'GET', `/_sim/payouts/${po.id}/itemized.csv`);
  const lines = csv.trimEnd().split('\n');
  const header = (lines[0] as string).split(',');
  const col = (n: string) => header.indexOf(n);
  const [gross, net, category, txn] = [
    col('gross'),
    col('net'),
    col('reporting_category'),
    col('balance_transaction_id'),
  ];
  let changed: string | undefined;
  for (let i = 1; i < lines.length && !changed; i++) {
    const cells = (lines[i] as string).split(',');
    if (cells[category] !== 'charge') continue;
    // The processor settled one cent more than was captured: an amount_mismatch for finance.
    cells[gross] = (Number(cells[gross]) + 0.01).toFixed(2);
    cells[net] = (Number(cells[net]) + 0.01).toFixed(2);
    changed = cells[txn];
    lines[i] = cells.join(',');
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-demo-')), `${po.id}.csv`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  await paystep('reconcile', 'import', '--processor', 'stripe', file);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return { payout: po.id, ...(changed ? { changed_line: changed } : {}) };
}

async function main(): Promise<void> {
  const runTag = crypto.randomBytes(2).toString('hex');
  const merchant = (await paystep('merchant', 'create', '--name', `Demo shop ${runTag}`)) as {
    id: string;
    api_key: string;
  };
  apiKey = merchant.api_key;
  log(`merchant ${merchant.id}`);

  const operators: Record<string, { id: string; name: string; key: string }> = {};
  for (const [role, extra] of [
    ['support', ['--refund-limit', '5000']],
    ['finance', []],
    ['admin', []],
  ] as const) {
    const op = (await paystep(
      'operator',
      'create',
      '--name',
      `${role}-${runTag}`,
      '--role',
      role,
      ...extra,
    )) as {
      id: string;
      name: string;
      key: string;
    };
    operators[role] = { id: op.id, name: op.name, key: op.key };
  }

  // Disputes answered within 3 days, so the console's "due soon" has one at the top.
  await sim('stripe', 'POST', '/_sim/disputes/settings', { responseWindowSeconds: 3 * 24 * 3600 });

  const kinds = plan(total);
  let done = 0;
  await pool(kinds, 4, async (kind, i) => {
    const p = await payment(kind, i, runTag);
    await followUp(kind, p, i);
    if (++done % 50 === 0) log(`${done}/${kinds.length} payments`);
  });
  log('subscriptions');
  const subs = await subscriptions(runTag);
  log('payout and reconciliation');
  const recon = await payoutWithException();
  log('reports');
  const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
  for (const date of [day(-1), day(0)]) await paystep('report', 'run', 'summary', '--date', date);

  process.stdout.write(
    JSON.stringify(
      {
        merchant: { id: merchant.id, api_key: merchant.api_key },
        operators,
        console: `${rt.url}/console`,
        payments: kinds.length,
        counts,
        examples,
        subscriptions: subs,
        reconciliation: recon,
        reports: [day(-1), day(0)].map((d) => `summary ${d}`),
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`demo-data: ${(err as Error).message}\n`);
  process.exit(1);
});
