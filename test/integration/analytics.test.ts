/**
 * Approval analytics (GET /v1/analytics/payments, `paystep analytics`) on the local runtime:
 * payments on both processors with approvals and declines, grouped by processor and card brand,
 * with the performance report's definitions; bad parameters are 400s naming them. The figures are
 * the stream's approval rollups (docs/routing.md "Approval rollups"): they equal ApprovalAnalytics
 * over the raw payments for payments of every outcome, are applied exactly once per shard when the
 * stream delivers a batch again (also after a crash between two items' writes), and `paystep
 * analytics rebuild` counts payments written before rollups existed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { marshall } from '@aws-sdk/util-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { ANALYTICS_DIMENSIONS, ApprovalAnalytics } from '../../lambdas/domain/analytics.ts';
import { listPayments } from '../../lambdas/store/payments.ts';
import { applyRollupDeltas, dayRollupAttributes } from '../../lambdas/store/rollups.ts';
import { maintainRollups, rollupDeltas } from '../../lambdas/analytics/stream.ts';
import { paymentAnalytics } from '../../lambdas/analytics/service.ts';
import { minuteAttributeNames, minuteCounts } from '../../lambdas/analytics/rollup-format.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { homeData } from '../../lambdas/console/home-data.ts';
import type { Operator } from '../../lambdas/console/model.ts';
import { config } from '../../lambdas/shared/config.ts';

let rt: Runtime;
let dir: string;
let merchantId: string;
let call: ReturnType<typeof apiClient>;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-analytics-'));
  process.env.PAYSTEP_SYNC_WAIT_MS = '5000';
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  const m = await createMerchant('Analytics');
  merchantId = m.merchant.id;
  call = apiClient(() => rt.url!, m.apiKey);
  const pay = (processor: string, payment_method: string, amount: number) =>
    call('POST', '/v1/payments', {
      amount,
      currency: 'usd',
      payment_method,
      processor,
      customer: { country: 'US' },
    });
  const made = await Promise.all([
    pay('stripe', 'pm_card_visa', 1000),
    pay('stripe', 'pm_card_visa', 2000),
    pay('stripe', 'pm_card_visa_chargeDeclinedInsufficientFunds', 500),
    pay('adyen', 'pm_card_visa', 3000),
    pay('adyen', 'pm_card_chargeDeclinedExpiredCard', 700),
  ]);
  for (const r of made) expect(r.status).toBe(201);
  // Every payment reached its outcome (approved or declined) before the figures are read.
  await until('every payment decided', async () => {
    for (const r of made) {
      const p = (await call('GET', `/v1/payments/${r.body.id}`)).body;
      if (!['captured', 'failed'].includes(p.status as string)) return false;
    }
    return true;
  });
  // The figures are the stream's rollups: read them once it has applied every change.
  await rt.settle();
});

afterAll(async () => {
  await rt?.stop();
  delete process.env.PAYSTEP_SYNC_WAIT_MS;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('approval rate, decline reasons and volume by processor and card brand', async () => {
  const r = await call(
    'GET',
    `/v1/analytics/payments?from=${today}&to=${today}&group_by=processor,card_brand`,
  );
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ object: 'payment_analytics', from: today, to: today, payments: 5 });
  const g = Object.fromEntries((r.body.groups as Json[]).map((x) => [`${x.dimension}:${x.value}`, x]));
  expect(g['all:all']).toMatchObject({
    payments: 5,
    attempts: 5,
    approved: 3,
    declined: 2,
    approval_rate: 0.6,
    volume: { usd: 6000 },
  });
  expect(g['processor:stripe']).toMatchObject({
    payments: 3,
    approved: 2,
    approval_rate: 0.6667,
    decline_reasons: { insufficient_funds: 1 },
    volume: { usd: 3000 },
  });
  expect(g['processor:adyen']).toMatchObject({
    payments: 2,
    approved: 1,
    approval_rate: 0.5,
    decline_reasons: { expired_card: 1 },
  });
  expect((r.body.groups as Json[])[0]!.dimension).toBe('all');
});

test('defaults, and bad parameters named', async () => {
  const d = await call('GET', '/v1/analytics/payments');
  expect(d.body).toMatchObject({ to: today, group_by: ['processor'], payments: 5 });
  expect((await call('GET', '/v1/analytics/payments?group_by=colour')).body.error).toMatchObject({
    param: 'group_by',
  });
  expect((await call('GET', '/v1/analytics/payments?from=2026-02-30')).body.error).toMatchObject({
    param: 'from',
  });
  expect(
    (await call('GET', '/v1/analytics/payments?from=2026-01-01&to=2026-12-31')).body.error.message,
  ).toContain('at most 92 days');
  expect((await call('GET', '/v1/analytics/payments?colour=red')).body.error).toMatchObject({
    code: 'parameter_unknown',
  });
});

test('paystep analytics prints a table', async () => {
  let stdout = '';
  await buildProgram((s) => (stdout += s)).parseAsync(
    ['--data-dir', dir, 'analytics', '--merchant', merchantId, '--group-by', 'processor'],
    {
      from: 'user',
    },
  );
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/to .*: 5 payments$/);
  expect(lines[1]).toMatch(
    /^dimension\s+value\s+payments\s+attempts\s+approved\s+declined\s+approval\s+cascades\s+volume\s+top decline$/,
  );
  expect(lines[2]).toMatch(/^all\s+all\s+5\s+5\s+3\s+2\s+60\.0%\s+0\s+60\.00 USD\s+expired_card \(1\)$/);
});

describe('approval rollups', () => {
  let other: string;
  let pay: ReturnType<typeof apiClient>;
  const all = ANALYTICS_DIMENSIONS.join(',');

  /** ApprovalAnalytics over the merchant's payments, read one by one (what the API did before rollups). */
  async function rawAnalytics(merchant: string) {
    const a = new ApprovalAnalytics([...ANALYTICS_DIMENSIONS]);
    let n = 0;
    let after: string | undefined;
    for (;;) {
      const page = await listPayments(merchant, { limit: 100, startingAfter: after });
      for (const p of page.data) a.add(p);
      n += page.data.length;
      if (!page.hasMore || !page.data.length) break;
      after = page.data.at(-1)!.id;
    }
    return { payments: n, groups: a.result() };
  }

  const status = async (id: string) => (await pay('GET', `/v1/payments/${id}`)).body.status as string;

  beforeAll(async () => {
    const m = await createMerchant('Rollups');
    other = m.merchant.id;
    pay = apiClient(() => rt.url!, m.apiKey);
    const create = (body: Json) =>
      pay('POST', '/v1/payments', { amount: 1500, currency: 'eur', customer: { country: 'GB' }, ...body });
    const made = await Promise.all([
      create({ payment_method: 'pm_card_visa', processor: 'stripe' }),
      create({ payment_method: 'pm_card_gb', processor: 'adyen', currency: 'gbp' }),
      create({ payment_method: 'pm_card_visa_chargeDeclined', processor: 'stripe' }),
      create({ payment_method: 'pm_card_chargeDeclinedExpiredCard', processor: 'adyen' }),
      create({ payment_method: 'pm_card_authenticationRequired', processor: 'stripe' }),
      create({ payment_method: 'pm_card_visa', processor: 'stripe', capture_method: 'manual', amount: 800 }),
      create({ payment_method: 'pm_card_visa', processor: 'adyen', capture_method: 'manual', amount: 900 }),
    ]);
    for (const r of made) expect(r.status).toBe(201);
    const [refundMe, , , , , captureMe, cancelMe] = made.map((r) => r.body.id as string);
    await until('payments decided', async () => {
      const s = await Promise.all(made.map((r) => status(r.body.id as string)));
      return (
        s.every((x) => !['processing'].includes(x)) &&
        [captureMe, cancelMe].every((_, i) => s[5 + i] === 'authorized')
      );
    });
    // Approved, then captured; approved, then canceled (its approval is taken back); refunded.
    expect((await pay('POST', `/v1/payments/${captureMe}/capture`, {})).status).toBeLessThan(300);
    expect((await pay('POST', `/v1/payments/${cancelMe}/cancel`, {})).status).toBeLessThan(300);
    expect((await pay('POST', '/v1/refunds', { payment: refundMe })).status).toBe(201);
    await until(
      'capture, cancel and refund done',
      async () =>
        (await status(captureMe!)) === 'captured' &&
        (await status(cancelMe!)) === 'canceled' &&
        (await status(refundMe!)) === 'refunded',
    );
    await rt.dynamo.drain(); // the stream applied every change
  });

  test('the rollup-based answer equals ApprovalAnalytics over the raw payments, by every dimension', async () => {
    const r = await pay('GET', `/v1/analytics/payments?from=${today}&to=${today}&group_by=${all}`);
    expect(r.status).toBe(200);
    const raw = await rawAnalytics(other);
    expect(raw.payments).toBe(7);
    expect(r.body).toEqual({
      object: 'payment_analytics',
      from: today,
      to: today,
      group_by: [...ANALYTICS_DIMENSIONS],
      ...raw,
    });
    // Every outcome is there: approved (the refunded one, the captured one), declined (two
    // declining cards at least), other (waiting for 3DS; approved, then canceled).
    const total = (r.body.groups as Json[])[0]!;
    expect(total.approved).toBeGreaterThanOrEqual(2);
    expect(total.declined).toBeGreaterThanOrEqual(2);
    expect(total.other).toBe(2);
  });

  test("the console home's last hour is the rollups' 5-minute buckets: every payment, approvals and declines", async () => {
    const now = Date.now();
    const raw = await rawAnalytics(other);
    const all = raw.groups[0]!;
    const { perMinute, lastHour } = await homeData(
      { id: 'op_test', name: 'test', role: 'support', merchant_id: other, created: 0 } satisfies Operator,
      now,
    );
    expect(perMinute).toHaveLength(12);
    expect(perMinute.reduce((n, m) => n + m.payments, 0)).toBe(7);
    expect(lastHour).toEqual({
      payments: 7,
      approved: all.approved,
      declined: all.declined,
      approvalRate: all.approval_rate,
      capped: false,
    });
  });

  test('paystep analytics rebuild counts payments written before rollups existed, once', async () => {
    // Payments without the mark are what a store written before rollups holds: taking the mark
    // away takes them out of the rollups (through the stream, like any change).
    const table = config.tableName('main');
    const ids = (await listPayments(other, { limit: 100 })).data.map((p) => p.id);
    for (const id of ids)
      await clients.ddb().send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: `PAYMENT#${id}`, sk: 'PAYMENT' },
          UpdateExpression: 'REMOVE #r',
          ExpressionAttributeNames: { '#r': 'rollup' },
        }),
      );
    await rt.dynamo.drain(); // the stream applied every change
    const q = { from: today, to: today, group_by: [...ANALYTICS_DIMENSIONS] };
    expect((await paymentAnalytics(other, q)).payments).toBe(0);

    const rebuild = async () => {
      let stdout = '';
      await buildProgram((s) => (stdout += s)).parseAsync(
        ['--data-dir', dir, 'analytics', 'rebuild', '--merchant', other],
        { from: 'user' },
      );
      return JSON.parse(stdout) as Json;
    };
    expect(await rebuild()).toEqual({
      merchants: [{ merchant_id: other, folded_days: 0, dropped_days: 0, unmarked: 7, marked: 7 }],
      marked: 7,
    });
    await rt.dynamo.drain(); // the stream applied every change
    const raw = await rawAnalytics(other);
    expect(await paymentAnalytics(other, q)).toMatchObject(raw);
    // Again: nothing left to mark, nothing counted twice.
    expect(await rebuild()).toMatchObject({ marked: 0 });
    await rt.dynamo.drain(); // the stream applied every change
    expect(await paymentAnalytics(other, q)).toMatchObject(raw);
  });

  test('paystep analytics rebuild folds per-minute counters of older day items into 5-minute buckets', async () => {
    const merchant = (await createMerchant('Minutes')).merchant.id;
    const day = new Date().toISOString().slice(0, 10); // today's item: the home page reads it
    const key = { pk: `ROLLUP#${merchant}`, sk: `DAY#${day}` };
    // An item as the router wrote them when the counters were per minute of the day (09:30 to
    // 09:36 are minutes 570 to 576).
    await clients.ddb().send(
      new UpdateCommand({
        TableName: config.tableName('main'),
        Key: key,
        UpdateExpression: 'SET #k = :k ADD #a :two, #b :one, #c :three, #d :one, #e :one',
        ExpressionAttributeNames: {
          '#k': 'kind',
          '#a': 'm|0570|p',
          '#b': 'm|0571|p',
          '#c': 'm|0574|p',
          '#d': 'm|0574|a',
          '#e': 'm|0576|d',
        },
        ExpressionAttributeValues: { ':k': 'approval_rollup', ':one': 1, ':two': 2, ':three': 3 },
      }),
    );
    const run = async () => {
      let stdout = '';
      await buildProgram((s) => (stdout += s)).parseAsync(
        ['--data-dir', dir, 'analytics', 'rebuild', '--merchant', merchant],
        { from: 'user' },
      );
      return (JSON.parse(stdout) as Json).merchants[0];
    };
    // And an older day's item: its time counters go, its sums stay.
    const old = { pk: `ROLLUP#${merchant}`, sk: 'DAY#2026-01-05' };
    await clients.ddb().send(
      new UpdateCommand({
        TableName: config.tableName('main'),
        Key: old,
        UpdateExpression: 'SET #k = :k ADD #m :one, #c :one',
        ExpressionAttributeNames: { '#k': 'kind', '#m': 'm|0570|p', '#c': 'c|abc|p' },
        ExpressionAttributeValues: { ':k': 'approval_rollup', ':one': 1 },
      }),
    );
    expect(await run()).toMatchObject({ folded_days: 1, dropped_days: 1 });
    const oldItem = await clients
      .ddb()
      .send(new GetCommand({ TableName: config.tableName('main'), Key: old }));
    expect(oldItem.Item).toMatchObject({ 'c|abc|p': 1 });
    expect(oldItem.Item).not.toHaveProperty(['m|0570|p']);
    const ms = (hh: number, mm: number) =>
      Date.parse(`${day}T${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}:00Z`);
    const read = async (t: number) =>
      minuteCounts((await dayRollupAttributes(merchant, [day], minuteAttributeNames(t))).get(day), t);
    expect(await read(ms(9, 32))).toEqual({ payments: 6, approved: 1, declined: 0 });
    expect(await read(ms(9, 36))).toEqual({ payments: 0, approved: 0, declined: 1 });
    const item = await clients.ddb().send(new GetCommand({ TableName: config.tableName('main'), Key: key }));
    expect(
      Object.keys(item.Item ?? {})
        .filter((n) => n.startsWith('m|'))
        .sort(),
    ).toEqual(['m|0570|a', 'm|0570|p', 'm|0575|d']);
    expect(await run()).toMatchObject({ folded_days: 0, dropped_days: 0 }); // nothing left to do
  });
});

describe('exactly once although the stream delivers at least once', () => {
  const merchant = 'mch_rollups_once';
  const DAY1 = '2026-01-05';
  const DAY2 = '2026-01-06';
  const q = { from: DAY1, to: DAY2, group_by: ['processor' as const] };
  let seq = 10n ** 30n; // above anything the local stream numbers, like a later shard's records
  const at = (day: string, hour: number) => Date.parse(`${day}T${String(hour).padStart(2, '0')}:07:00Z`);

  /** A stream record of a payment created at `createdMs` (INSERT, or MODIFY from `old`). */
  function record(id: string, createdMs: number, status: string, old?: string): DynamoDBRecord {
    const image = (s: string) =>
      marshall({
        pk: `PAYMENT#${id}`,
        sk: 'PAYMENT',
        kind: 'payment',
        rollup: 1,
        id,
        merchant_id: merchant,
        status: s,
        processor: 'stripe',
        payment_method: 'pm_card_visa',
        amount: 100,
        currency: 'usd',
        ...(s === 'failed' ? { failure: { code: 'card_declined' } } : {}),
        created: createdMs / 1000,
        created_ms: createdMs,
      }) as never;
    return {
      eventName: old ? 'MODIFY' : 'INSERT',
      dynamodb: {
        SequenceNumber: String(seq++),
        NewImage: image(status),
        ...(old ? { OldImage: image(old) } : {}),
      },
    };
  }
  const counts = async () => {
    const g = (await paymentAnalytics(merchant, q)).groups[0];
    return { payments: g?.payments ?? 0, approved: g?.approved ?? 0, declined: g?.declined ?? 0 };
  };

  test('the same batch twice counts once', async () => {
    const batch = [record('pay_o1', at(DAY1, 10), 'captured'), record('pay_o2', at(DAY1, 10), 'failed')];
    expect(await maintainRollups('shardId-t', batch)).toBe(1); // one UpdateItem: the day item
    expect(await maintainRollups('shardId-t', batch)).toBe(0);
    expect(await counts()).toEqual({ payments: 2, approved: 1, declined: 1 });
  });

  test("a crash between two items' writes: the batch again writes only the item it had not", async () => {
    const batch = [record('pay_o3', at(DAY1, 11), 'captured'), record('pay_o4', at(DAY2, 12), 'processing')];
    const items = rollupDeltas(batch);
    expect(items.map((i) => i.key.sk)).toEqual([`DAY#${DAY1}`, `DAY#${DAY2}`]);
    // The first write landed, then the router died: the stream delivers the batch again.
    await applyRollupDeltas(items[0]!.key, merchant, 'shardId-t', items[0]!.deltas);
    expect(await maintainRollups('shardId-t', batch)).toBe(1);
    expect(await counts()).toEqual({ payments: 4, approved: 2, declined: 1 });
    const minutes = [at(DAY1, 10), at(DAY1, 11), at(DAY2, 12)];
    const got = await Promise.all(
      minutes.map(async (ms) => {
        const day = new Date(ms).toISOString().slice(0, 10);
        const items = await dayRollupAttributes(merchant, [day], minuteAttributeNames(ms));
        return minuteCounts(items.get(day), ms).payments;
      }),
    );
    expect(got).toEqual([2, 1, 1]);
  });

  test('a batch delivered again with more records applies only the new ones; another shard is its own', async () => {
    const first = record('pay_o4', at(DAY2, 12), 'captured', 'processing');
    expect(await maintainRollups('shardId-t', [first])).toBe(1);
    const grown = [first, record('pay_o5', at(DAY1, 10), 'failed')];
    expect(await maintainRollups('shardId-t', grown)).toBe(1); // DAY1 (its new record); DAY2 had it
    expect(await counts()).toEqual({ payments: 5, approved: 3, declined: 2 });
    // Another shard's records, numbered lower than the first shard's: counted.
    seq = 5n;
    expect(await maintainRollups('shardId-u', [record('pay_o6', at(DAY1, 10), 'captured')])).toBe(1);
    expect(await counts()).toEqual({ payments: 6, approved: 4, declined: 2 });
  });

  test("a new day's item drops the 5-minute counters of the day before yesterday's, not its sums", async () => {
    const DAY3 = '2026-01-07';
    const bucketNames = async (day: string) => {
      const out = await clients.ddb().send(
        new GetCommand({
          TableName: config.tableName('main'),
          Key: { pk: `ROLLUP#${merchant}`, sk: `DAY#${day}` },
        }),
      );
      return Object.keys(out.Item ?? {}).filter((n) => n.startsWith('m|')).length;
    };
    expect(await bucketNames(DAY1)).toBeGreaterThan(0);
    const before = await counts();
    expect(await maintainRollups('shardId-t', [record('pay_o7', at(DAY3, 9), 'captured')])).toBe(1);
    expect(await bucketNames(DAY1)).toBe(0); // the day before yesterday, seen from DAY3
    expect(await bucketNames(DAY2)).toBeGreaterThan(0); // yesterday: the last hour may span midnight
    expect(await bucketNames(DAY3)).toBeGreaterThan(0);
    expect(await counts()).toEqual(before); // DAY1 and DAY2's sums are what they were (q: DAY1 to DAY2)
  });
});
