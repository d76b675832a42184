/**
 * Fuzzing every route of the topology (read from lib/topology.ts, so a new route is fuzzed
 * without touching this file) on one started local runtime, with the route's key (a merchant's,
 * an ops key on /ops/ routes; now and then the other kind, none or garbage), near-valid bodies for
 * every route that takes one (billing, routing and ops included), random and near-valid bodies, deep nesting, huge and odd-unicode strings, raw bytes, card
 * numbers, odd content types and charsets, path ids of every shape and length, query strings and
 * headers. Whatever the request: never a 5xx, always JSON, an error always in the API's shape
 * (`error.type`, `error.code`), a card number never echoed, and the runtime still answers after.
 * The ops console's routes (/console…) answer HTML pages or redirects within the console instead
 * of JSON; the rest holds for them too.
 * The run count is bounded; a failure prints its seed and path: replay it with FUZZ_SEED=<seed>
 * FUZZ_PATH=<path>. FUZZ_STATS=1 prints how many answers of each status and code the run got.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { topology, type RouteDef } from '../../lib/topology.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createOpsKey } from '../../lambdas/store/ops-keys.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const PAN = '4242424242424242';
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const PREFIXES = ['pay', 're', 'dp', 'rv', 'evt', 'we', 'png', 'mch', 'cus', 'plan', 'sub', 'in', 'inc'];
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A valid-looking body for each POST route, mutated by the fuzzer into near-valid ones. */
const SEED_BODIES: Record<string, Json> = {
  '/v1/payments': {
    amount: 1050,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    order_id: 'ord_1',
    customer: { id: 'cus_1', email: 'a@example.com', country: 'US' },
    metadata: { k: 'v' },
  },
  '/v1/payments/{id}/capture': { amount: 100 },
  '/v1/payments/{id}/cancel': { reason: 'duplicate' },
  '/v1/refunds': { payment: 'pay_x', amount: 100, reason: 'duplicate', metadata: { k: 'v' } },
  // Port 9 (discard) refuses at once: deliveries to fuzzed endpoints fail fast, offline.
  '/v1/webhook_endpoints': { url: 'http://127.0.0.1:9/h', enabled_events: ['*'], description: 'd' },
  '/v1/disputes/{id}/evidence': { evidence: { uncategorized_text: 'text' }, submit: false },
  '/v1/events/{id}/redeliver': { endpoint: 'we_x' },
  '/v1/ping': { message: 'hi' },
  '/webhooks/{processor}': { id: 'evt_1', type: 'charge.succeeded', created: 1, data: { object: {} } },
  '/v1/routing': {
    rules: [{ name: 'eur', when: { currency: ['eur'] }, processors: ['adyen', 'stripe'] }],
    default: ['stripe', 'adyen'],
  },
  '/v1/routing/simulate': { amount: 5000, currency: 'usd', customer: { country: 'US' }, bin: '424242' },
  '/v1/customers': {
    email: 'a@example.com',
    name: 'A',
    country: 'US',
    payment_method: 'pm_card_visa',
    metadata: { k: 'v' },
  },
  '/v1/customers/{id}': { name: 'B', payment_method: 'pm_card_mastercard', metadata: { k: 'v' } },
  '/v1/plans': { name: 'Monthly', amount: 1900, currency: 'usd', interval: 'month', interval_count: 1 },
  // Ids that name nothing: a fuzzed subscription never starts billing workflows beside the run.
  '/v1/subscriptions': { customer: 'cus_x', plan: 'plan_x', trial_period_days: 0, metadata: { k: 'v' } },
  '/v1/subscriptions/{id}': { plan: 'plan_x', cancel_at_period_end: false, metadata: { k: 'v' } },
  '/v1/subscriptions/{id}/cancel': { at_period_end: true },
  '/v1/billing/dunning_policy': { max_attempts: 4, window_days: 14, final_action: 'cancel' },
  '/ops/v1/incidents': { processor: 'adyen', reason: 'fuzz' },
  '/ops/v1/incidents/{id}/{action}': { note: 'n' },
};

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 300,
});
const oddText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }), // includes unpaired surrogates
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('\u0000', '\u202e', '\ufeff', '\ud800', '\udfff', '𝟒𝟐𝟒𝟐', '\u00a0', 'é'.normalize('NFD')),
  fc.constantFrom(PAN, `4242 4242 4242 4242`, `card ${PAN.replace(/(\d{4})(?=\d)/g, '$1-')}`),
);
const hugeText = fc.integer({ min: 1_000, max: 300_000 }).map((n) => 'x'.repeat(n));

/** One path segment, percent-encoded (unpaired surrogates as U+FFFD: raw ones are in the list below). */
const encodeSegment = (s: string) => encodeURIComponent(s.toWellFormed());

/** Path ids: valid shapes of every kind, real ids, and garbage of every length and encoding. */
const pathIdArb = (realIds: string[]) =>
  fc.oneof(
    fc
      .tuple(fc.constantFrom(...PREFIXES), fc.string({ unit: fc.constantFrom(...BASE62), maxLength: 40 }))
      .map(([p, s]) => `${p}_${s}`),
    fc.constantFrom(...realIds),
    fc.string({ maxLength: 60 }).map(encodeSegment),
    oddText.map(encodeSegment),
    fc.integer({ min: 65, max: 6_000 }).map((n) => 'p'.repeat(n)),
    fc.constantFrom(
      '%ZZ',
      '%',
      '%00',
      '%ED%A0%80',
      '%F0%9F%98%80',
      '__proto__',
      'constructor',
      '-1',
      PAN,
      '%2F',
      // The words of routes with a named segment ({processor}, {action}).
      'stripe',
      'adyen',
      'confirm',
      'dismiss',
      'resolve',
      'report',
    ),
  );

/** Replaces, removes or adds one field of a seed body, at any depth. */
function mutate(seed: Json, field: number, value: unknown, mode: number): Json {
  const copy = structuredClone(seed);
  const paths: string[][] = [];
  const walk = (o: Json, at: string[]) => {
    for (const [k, v] of Object.entries(o)) {
      paths.push([...at, k]);
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Json, [...at, k]);
    }
  };
  walk(copy, []);
  if (paths.length === 0) return { fuzz: value };
  const p = paths[field % paths.length]!;
  let parent: Json = copy;
  for (const k of p.slice(0, -1)) parent = parent[k] as Json;
  const last = p[p.length - 1]!;
  if (mode === 0) delete parent[last];
  else if (mode === 1) parent[`${last}_x`] = value;
  else parent[last] = value;
  return copy;
}

type Body = { kind: 'none' } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array };

const bodyArb = (route: RouteDef): fc.Arbitrary<Body> => {
  const seed = SEED_BODIES[route.path] ?? {};
  const text = (a: fc.Arbitrary<string>) => a.map((t): Body => ({ kind: 'text', text: t }));
  const json = (a: fc.Arbitrary<unknown>) => text(a.map((v) => JSON.stringify(v) ?? 'null'));
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Body>({ kind: 'none' }) },
    { weight: 3, arbitrary: json(fc.constant(seed)) },
    {
      weight: 8,
      arbitrary: json(
        fc
          .tuple(
            fc.nat(),
            fc.oneof(fc.jsonValue({ maxDepth: 4 }), oddText, hugeText, fc.double(), fc.constant(Number(PAN))),
            fc.integer({ min: 0, max: 3 }),
          )
          .map(([f, v, m]) => mutate(seed, f, v, m)),
      ),
    },
    { weight: 4, arbitrary: json(fc.jsonValue({ maxDepth: 6 })) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.integer({ min: 15, max: 200_000 }), fc.boolean()).map(([d, arrays]): Body => ({
        kind: 'text',
        text: arrays ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d),
      })),
    },
    {
      weight: 2,
      arbitrary: text(
        fc.constantFrom(
          '{"__proto__":{"admin":true}}',
          '{"metadata":{"constructor":{"prototype":1}}}',
          '{"amount":1050,"currency":"usd","payment_method":"pm_card_visa","__proto__":null}',
          `{"amount":1050,"currency":"usd","payment_method":"${PAN}"}`,
          `{"metadata":{"${PAN}":"x"}}`,
          '{"description":"\\ud800"}',
          '{"amount":1e400}',
          '{"amount":-0}',
          '{"a":1,"a":2}',
          '\ufeff{}',
          '',
          'null',
        ),
      ),
    },
    { weight: 2, arbitrary: text(fc.string({ maxLength: 200 })) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes): Body => ({ kind: 'bytes', bytes })),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 1_000_000, max: 1_100_000 })
        .map((n) => ({ kind: 'text', text: JSON.stringify({ d: 'x'.repeat(n) }) }) as Body),
    },
  );
};

const queryArb = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'limit',
      'starting_after',
      'status',
      'order_id',
      'type',
      'payment',
      'created_gte',
      'created_lt',
    ),
    fc.string({ maxLength: 20 }),
    fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  ),
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom('0', '1', '100', '101', '-1', '1e3', 'NaN', PAN, 'pay_x', 'evt_x', 'payment.captured'),
    oddText,
    fc.integer({ min: 1_000, max: 3_000 }).map((n) => 'q'.repeat(n)),
  ),
  { maxKeys: 4 },
);

const contentTypeArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant<string | null>('application/json') },
  { weight: 1, arbitrary: fc.constant<string | null>(null) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<string | null>(
      'application/json; charset=utf-8',
      'application/json; charset=UTF-8',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/json; charset="iso-8859-1"',
      'APPLICATION/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json;;;',
      '',
    ),
  },
);

describe('fuzzing every route of the topology', () => {
  let dir: string;
  let rt: Runtime;
  let key: string;
  let opsKey: string;
  const realIds: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-fuzz-'));
    process.env.PAYSTEP_SYNC_WAIT_MS = '300';
    process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES = '0';
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    key = (await createMerchant('Fuzz')).apiKey;
    const paid = await fetch(`${rt.url}/v1/payments`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'idempotency-key': 'fuzz-seed',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' }),
    });
    realIds.push(((await paid.json()) as Json).id as string);
    opsKey = (await createOpsKey('fuzz')).key;
    // Billing objects to aim at (a customer and a plan: no workflow runs for them).
    for (const [p, body] of [
      ['/v1/customers', { email: 'c@example.com', payment_method: 'pm_card_visa' }],
      ['/v1/plans', { name: 'Fuzz', amount: 500, currency: 'usd', interval: 'month' }],
    ] as const) {
      const res = await fetch(`${rt.url}${p}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      realIds.push(((await res.json()) as Json).id as string);
    }
  });
  afterAll(async () => {
    await rt?.stop();
    delete process.env.PAYSTEP_SYNC_WAIT_MS;
    delete process.env.PAYSTEP_PROCESSOR_NETWORK_RETRIES;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('no request gets a 5xx, a non-JSON answer, an error outside the API shape or its card number back', async () => {
    const routes = topology.routes;
    expect(routes.length).toBeGreaterThan(20);
    const requestArb = fc.constantFrom(...routes).chain((route) =>
      fc.record({
        route: fc.constant(route),
        method: fc.oneof(
          { weight: 4, arbitrary: fc.constant(route.method) },
          { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
        ),
        ids: fc.array(pathIdArb(realIds), { minLength: 2, maxLength: 2 }),
        body: bodyArb(route),
        query: queryArb,
        contentType: contentTypeArb,
        idempotencyKey: fc.option(fc.oneof(fc.uuid(), printable, fc.constant('')), { freq: 3 }),
        auth: fc.oneof(
          { weight: 18, arbitrary: fc.constant<'valid' | 'other' | 'none' | string>('valid') },
          { weight: 1, arbitrary: fc.constant('other') }, // the other kind of key (merchant ↔ ops)
          { weight: 1, arbitrary: fc.constant('none') },
          { weight: 1, arbitrary: printable.map((s) => `Bearer ${s}`) },
        ),
        extraHeaders: fc.dictionary(
          fc.oneof(
            fc.string({
              unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'),
              minLength: 1,
              maxLength: 12,
            }),
            // Sent as is (not x-fuzz-…): names a plain object would inherit.
            fc.constantFrom('=__proto__', '=constructor', '=toString', '=prototype'),
          ),
          printable,
          { maxKeys: 3 },
        ),
      }),
    );

    const stats = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        let i = 0;
        const p = r.route.path.replace(/\{[^}]+\}/g, () => r.ids[i++ % r.ids.length]!);
        const qs = new URLSearchParams(r.query).toString();
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(r.extraHeaders))
          headers[k.startsWith('=') ? k.slice(1) : `x-fuzz-${k}`] = v;
        // The route's own kind of key (an ops key on /ops/ routes), or the other kind.
        const ops = (r.route.auth === 'ops') === (r.auth === 'valid');
        if (r.auth === 'valid' || r.auth === 'other') headers.authorization = `Bearer ${ops ? opsKey : key}`;
        else if (r.auth !== 'none') headers.authorization = r.auth;
        if (r.contentType !== null) headers['content-type'] = r.contentType;
        if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey;
        const canHaveBody = r.method !== 'GET';
        const body =
          !canHaveBody || r.body.kind === 'none'
            ? undefined
            : r.body.kind === 'text'
              ? r.body.text
              : Buffer.from(r.body.bytes);
        // The ops console's routes answer people with HTML pages and see-other redirects
        // (docs/console.md), not the API's JSON: unless the gateway refused the request itself.
        const consoleRoute = r.route.path.startsWith('/console');
        const res = await fetch(`${rt.url}${p}${qs ? `?${qs}` : ''}`, {
          method: r.method,
          headers,
          body,
          redirect: consoleRoute ? 'manual' : 'follow',
        });
        const text = await res.text();
        const where = `${r.method} ${p.slice(0, 120)}${p.length > 120 ? '…' : ''} (body ${r.body.kind}) → ${res.status} ${text.slice(0, 300)}`;
        if (res.status >= 500) throw new Error(`server error: ${where}`);
        if (consoleRoute && (res.headers.get('content-type') ?? '').startsWith('text/html')) {
          if (text.includes(PAN)) throw new Error(`card number echoed: ${where}`);
          if (res.status >= 300 && res.status < 400 && !res.headers.get('location')?.startsWith('/console/'))
            throw new Error(`redirect outside the console: ${where}`);
          return;
        }
        let parsed: Json;
        try {
          parsed = JSON.parse(text) as Json;
        } catch {
          throw new Error(`not JSON: ${where}`);
        }
        if (res.status >= 400) {
          const e = parsed.error as Json | undefined;
          if (typeof e?.type !== 'string' || !e.type || typeof e.code !== 'string' || !e.code)
            throw new Error(`not the API's error shape: ${where}`);
        }
        if (text.includes(PAN)) throw new Error(`card number echoed: ${where}`);
        if (process.env.FUZZ_STATS) {
          const k = `${res.status} ${(parsed.error as Json | undefined)?.code ?? ''}`;
          stats.set(k, (stats.get(k) ?? 0) + 1);
        }
      }),
      {
        numRuns: 400,
        endOnFailure: true,
        // Replay a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> (both printed below).
        ...(process.env.FUZZ_SEED
          ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH }
          : {}),
        // Counterexamples hold megabyte strings: report the seed and the failure, not the values.
        asyncReporter: async (out) => {
          if (out.failed)
            throw new Error(
              `fuzz failed (seed ${out.seed}, path "${out.counterexamplePath}"): ${String((out.errorInstance as Error | undefined)?.message ?? out.errorInstance).slice(0, 2000)}`,
            );
        },
      },
    );

    if (process.env.FUZZ_STATS) console.log([...stats].sort((a, b) => b[1] - a[1]));
    // Still answering, and still right.
    const after = await fetch(`${rt.url}/v1/payments?limit=1`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(after.status).toBe(200);
    expect(((await after.json()) as Json).object).toBe('list');
    const ping = await fetch(`${rt.url}/v1/ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(ping.status).toBe(202);
  });
});
