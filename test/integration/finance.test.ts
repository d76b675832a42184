/**
 * Money truth on the embedded runtime, as finance would try it: payments, a refund and a dispute
 * become balanced ledger entries (replayed stream records add nothing); the Stripe simulator pays
 * out; the payout is reconciled through the reconciliation workflow (payments settled, fees and
 * the payout in the ledger, reports in the bucket folder), and re-running it changes nothing; the
 * payout's itemized CSV with injected mismatches is imported with the CLI and every mismatch is
 * listed with its reason; the daily reports match the ledger and are byte-identical when re-run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { marshall } from '@aws-sdk/util-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { getPayment } from '../../lambdas/store/payments.ts';
import { explain } from '../../lambdas/domain/payment.ts';
import { getDispute } from '../../lambdas/store/disputes.ts';
import { ledgerCheck } from '../../lambdas/ledger/check.ts';
import { processorCheck } from '../../lambdas/ledger/processor-check.ts';
import { startReconciliation, waitForExecution } from '../../lambdas/reconciliation/start.ts';
import { runReport } from '../../lambdas/reports/daily.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { CsvReader } from '../../lambdas/reports/csv.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

describe('finance on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let keyA: string;
  let keyB: string;
  let merchantA: string;
  let merchantB: string;
  const pays: Json = {};
  let payoutId: string;
  const today = new Date().toISOString().slice(0, 10);

  const call = async (key: string, method: string, p: string, body?: unknown) => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(method === 'POST' ? { 'idempotency-key': randomUUID() } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const pay = async (key: string, amount: number, pm = 'pm_card_visa', extra: Json = {}) => {
    const r = await call(key, 'POST', '/v1/payments', {
      amount,
      currency: 'usd',
      payment_method: pm,
      ...extra,
    });
    expect(r.status).toBe(201);
    return r.body;
  };
  const reports = (...p: string[]) => path.join(dir, 'buckets', 'paystep-reports', ...p);
  const readCsv = (file: string) => {
    const r = new CsvReader();
    return [...r.push(fs.readFileSync(file, 'utf8')), ...r.end()];
  };
  const cli = async (...args: string[]) => {
    let text = '';
    await buildProgram((s) => (text += s)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
    return text;
  };
  const ledgerIds = async () => {
    const out = await clients.ddb().send(
      new ScanCommand({
        TableName: 'paystep-main',
        FilterExpression: 'kind = :k',
        ExpressionAttributeValues: { ':k': 'ledger_entry' },
      }),
    );
    return (out.Items ?? []).map((i) => String(i.id)).sort();
  };
  const until = async <T>(what: string, f: () => Promise<T | undefined>, ms = 8000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-finance-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    const a = await createMerchant('Acme');
    const b = await createMerchant('Bolt');
    [keyA, keyB, merchantA, merchantB] = [a.apiKey, b.apiKey, a.merchant.id, b.merchant.id];
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('payments, a refund and a dispute become balanced entries; replayed stream records add nothing', async () => {
    pays.a1 = await pay(keyA, 1050);
    pays.a2 = await pay(keyA, 2000);
    pays.declined = await pay(keyA, 700, 'pm_card_visa_chargeDeclinedInsufficientFunds');
    const manual = await pay(keyB, 3000, 'pm_card_mastercard', { capture_method: 'manual' });
    const captured = await call(keyB, 'POST', `/v1/payments/${manual.id}/capture`, { amount: 2500 });
    expect(captured.body.status).toBe('captured');
    pays.b1 = captured.body;
    const refund = await call(keyA, 'POST', '/v1/refunds', { payment: pays.a2.id, amount: 500 });
    expect(refund.status).toBe(201);
    pays.disputed = await pay(keyA, 4000, 'pm_card_createDispute');
    await until('the refund', async () =>
      (await getPayment(pays.a2.id))?.amount_refunded === 500 ? true : undefined,
    );
    await until('the dispute withdrawal', async () =>
      (await ledgerIds()).some((id) => id.startsWith('dsp:')) ? true : undefined,
    );
    await rt.dynamo.drain();

    const ids = await ledgerIds();
    expect(ids.filter((i) => !i.startsWith('dsp:') && !i.startsWith('rin:'))).toEqual(
      [
        `cap:${pays.a1.id}:1050`,
        `cap:${pays.a2.id}:2000`,
        `ref:${pays.a2.id}:500`,
        `cap:${pays.b1.id}:2500`,
        `cap:${pays.disputed.id}:4000`,
      ].sort(),
    );
    expect(ids.filter((i) => i.startsWith('dsp:'))).toHaveLength(1);
    const check = await ledgerCheck();
    expect(check).toMatchObject({ ok: true, unbalanced: [], receivable: [], sources: [], trial_balance: 0 });
    const a = check.balances.find((x) => x.merchant_id === merchantA)!;
    expect(a.movements).toMatchObject({ captured: 1050 + 2000 + 4000, refunded: 500, disputed: 4000 });
    expect(a.accounts.processor_receivable).toBe(1050 + 2000 + 4000 - 500 - 4000);

    // Replay every payment's capture through the real stream router, twice.
    const items = await clients.ddb().send(
      new ScanCommand({
        TableName: 'paystep-main',
        FilterExpression: 'kind = :k',
        ExpressionAttributeValues: { ':k': 'payment' },
      }),
    );
    const records = (items.Items ?? []).map((p, i) => ({
      eventID: `replay-${i}`,
      eventName: 'MODIFY',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        Keys: marshall({ pk: p.pk, sk: p.sk }),
        OldImage: marshall({ ...p, amount_captured: 0, amount_refunded: 0 }, { removeUndefinedValues: true }),
        NewImage: marshall(p, { removeUndefinedValues: true }),
        SequenceNumber: `9${String(i).padStart(20, '0')}`,
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
    }));
    for (let n = 0; n < 2; n++)
      expect(
        // The router needs its shard (docs/routing.md "Approval rollups"): these replays are one of their own.
        await rt.lambdas.invoke('stream-router', {
          Records: [...records].reverse(),
          shardId: 'shardId-replay',
        }),
      ).toEqual({ batchItemFailures: [], state: {} });
    expect(await ledgerIds()).toEqual(ids);
    expect((await ledgerCheck()).ok).toBe(true);
  });

  test('a simulator payout is reconciled: payments settled, fees and payout booked, reports written', async () => {
    const [payout] = rt.stripe!.createPayout({ includePending: true });
    expect(payout).toMatchObject({ object: 'payout', status: 'paid', automatic: true, currency: 'usd' });
    payoutId = payout!.id;
    const started = await startReconciliation(
      { processor: 'stripe', source: { kind: 'api', payout_id: payoutId }, chunk_items: 2 },
      `stripe-${payoutId}`,
    );
    const outcome = await waitForExecution(started.executionArn, 20_000);
    expect(outcome.status).toBe('SUCCEEDED');
    const run = (outcome.output as Json).payouts[0];
    expect(run).toMatchObject({ payout_id: payoutId, status: 'reconciled', amount: payout!.amount });
    await rt.dynamo.drain();

    for (const p of [pays.a1, pays.b1]) {
      const after = await getPayment(p.id);
      expect(after).toMatchObject({ status: 'settled' });
      expect((after as unknown as Json).settlement).toEqual({
        processor: 'stripe',
        payout_id: payoutId,
        date: today,
      });
    }
    // Refunded in part: the refund keeps its status (it ranks above settled); the payout is
    // recorded beside it, and the explanation tells both.
    const a2 = await getPayment(pays.a2.id);
    expect(a2?.status).toBe('partially_refunded');
    expect(a2?.settlement).toEqual({ processor: 'stripe', payout_id: payoutId, date: today });
    expect(explain(a2!)).toContain(`paid out in stripe payout ${payoutId}`);

    const check = await ledgerCheck();
    expect(check.ok).toBe(true);
    for (const b of check.balances) {
      // Everything captured was paid out: nothing is left receivable.
      expect(b.accounts.processor_receivable).toBe(0);
      expect(b.movements.paid_out).toBe(b.accounts.bank);
      expect(b.movements.fees).toBeGreaterThan(0);
    }
    const paidOut = check.balances.reduce((s, b) => s + b.movements.paid_out, 0);
    expect(paidOut).toBe(payout!.amount);

    // Reports: one per merchant, one for the platform, with every line.
    const platform = readCsv(reports('platform', 'reconciliation', today, `${payoutId}.csv`));
    expect(platform[0]!.slice(0, 2)).toEqual(['processor', 'payout_id']);
    const status = platform[0]!.indexOf('status');
    expect(platform.slice(1).map((r) => [r[0], r[status]])).toEqual(
      platform.slice(1).map(() => ['stripe', 'matched']),
    );
    const mine = readCsv(reports(merchantB, 'reconciliation', today, `${payoutId}.csv`));
    expect(mine).toHaveLength(2);
    expect(mine[1]).toEqual(
      expect.arrayContaining([payoutId, pays.b1.id, merchantB, 'charge', '2500', 'matched']),
    );
    const summary = JSON.parse(
      fs.readFileSync(reports('platform', 'reconciliation', today, `${payoutId}.json`), 'utf8'),
    );
    expect(summary).toMatchObject({
      object: 'reconciliation_report',
      payout: { amount: payout!.amount, lines_net: payout!.amount, difference: 0 },
      exceptions: {},
    });
  });

  test('re-running the payout changes nothing: same ledger, same payments, byte-identical reports', async () => {
    const files = [
      reports('platform', 'reconciliation', today, `${payoutId}.csv`),
      reports('platform', 'reconciliation', today, `${payoutId}.json`),
      reports(merchantA, 'reconciliation', today, `${payoutId}.csv`),
      reports(merchantA, 'exceptions', today, 'exceptions.csv'),
    ];
    const before = files.map((f) => fs.readFileSync(f));
    const ledger = await ledgerIds();
    const versions = await Promise.all(
      [pays.a1, pays.a2, pays.b1].map(async (p) => (await getPayment(p.id))!.version),
    );
    const again = await startReconciliation(
      { processor: 'stripe', source: { kind: 'api', payout_id: payoutId } },
      `stripe-${payoutId}-again`,
    );
    expect((await waitForExecution(again.executionArn, 20_000)).status).toBe('SUCCEEDED');
    await rt.dynamo.drain();
    expect(files.map((f) => fs.readFileSync(f))).toEqual(before);
    expect(await ledgerIds()).toEqual(ledger);
    expect(
      await Promise.all([pays.a1, pays.a2, pays.b1].map(async (p) => (await getPayment(p.id))!.version)),
    ).toEqual(versions);
  });

  test('the itemized CSV with injected mismatches, imported with the CLI, lists each with its reason', async () => {
    const late = await pay(keyA, 990); // captured after the payout: no payout paid it
    await rt.dynamo.drain();
    const csv = rt.stripe!.payoutItemizedCsv(payoutId);
    const lines = csv.trimEnd().split('\r\n');
    const header = lines[0]!.split(',');
    const col = (name: string) => header.indexOf(name);
    const rows = lines.slice(1).map((l) => l.split(','));
    const b1 = rows.find((r) => r[col('payment_intent_id')] === pays.b1.processor_reference)!;
    const a1 = rows.find((r) => r[col('payment_intent_id')] === pays.a1.processor_reference)!;
    // Injected: B's charge settled for 1.00 more; A's first charge listed twice; a charge nobody knows.
    b1[col('gross')] = '26.00';
    b1[col('net')] = (Number(b1[col('net')]) + 1).toFixed(2);
    const unknown = [...a1];
    unknown[col('balance_transaction_id')] = 'txn_injected';
    unknown[col('payment_intent_id')] = 'pi_nobody';
    const file = path.join(dir, 'itemized.csv');
    fs.writeFileSync(
      file,
      [lines[0], ...rows.map((r) => r.join(',')), a1.join(','), unknown.join(',')].join('\r\n') + '\r\n',
    );

    const asOf = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    const out = JSON.parse(
      await cli('reconcile', 'import', '--processor', 'stripe', file, '--as-of', asOf),
    ) as Json;
    expect(out.status).toBe('SUCCEEDED');
    expect(out.output.payouts[0]).toMatchObject({
      payout_id: payoutId,
      status: 'reconciled_with_exceptions',
      exceptions: { amount_mismatch: 1, duplicate: 1, missing_internally: 1, payout_total_mismatch: 1 },
    });
    expect(out.output.missing_at_processor).toBe(1);

    const platform = readCsv(reports('platform', 'reconciliation', today, `${payoutId}.csv`));
    const h = platform[0]!;
    const byTxn = (t: string) => platform.filter((r) => r[h.indexOf('item_id')] === t);
    const reason = (r: string[]) => r[h.indexOf('reasons')];
    expect(reason(byTxn(b1[col('balance_transaction_id')]!)[0]!)).toBe(
      'charge settled for 2600 but paystep captured 2500 (difference 100)',
    );
    expect(reason(byTxn(a1[col('balance_transaction_id')]!)[1]!)).toBe(
      `line ${a1[col('balance_transaction_id')]} is listed twice in payout ${payoutId}`,
    );
    expect(reason(byTxn('txn_injected')[0]!)).toBe(
      `charge ${a1[col('source_id')]} for pi_nobody is not a payment paystep knows`,
    );

    const exceptions = readCsv(reports('platform', 'exceptions', asOf, 'exceptions.csv'));
    const types = exceptions.slice(1).map((r) => r[1]);
    expect(types).toEqual(
      expect.arrayContaining([
        'amount_mismatch',
        'duplicate',
        'missing_internally',
        'payout_total_mismatch',
        'missing_at_processor',
      ]),
    );
    const missing = exceptions.find((r) => r[1] === 'missing_at_processor')!;
    // Open since this run saw it first (as of asOf), so 0 days old; the reason says when it was captured.
    expect(missing.slice(6)).toEqual([
      late.id,
      late.processor_reference,
      'usd',
      '990',
      '',
      asOf,
      '0',
      `captured 990 on ${today}; no payout paid it by ${asOf} (settlement delay 7 days)`,
    ]);
    const listed = JSON.parse(await cli('reconcile', 'exceptions', '--merchant', merchantB)) as Json;
    expect(listed.data.map((e: Json) => e.type)).toEqual(['amount_mismatch']);
  });

  test('the drop prefix and the payout sync reconcile on their own; a late payout resolves its exception', async () => {
    const drop = path.join(dir, 'buckets', 'paystep-settlements', 'incoming', 'stripe');
    fs.mkdirSync(drop, { recursive: true });
    fs.copyFileSync(path.join(dir, 'itemized.csv'), path.join(drop, 'finance-upload.csv'));
    const synced = (await rt.lambdas.invoke('reconciliation-sync', { only: 'files' })) as {
      started: string[];
    };
    expect(synced.started).toHaveLength(1);
    expect((await waitForExecution(synced.started[0]!, 20_000)).status).toBe('SUCCEEDED');
    expect(fs.existsSync(path.join(drop, 'finance-upload.csv'))).toBe(false);
    expect(
      fs.existsSync(
        path.join(dir, 'buckets', 'paystep-settlements', 'processed', 'stripe', 'finance-upload.csv'),
      ),
    ).toBe(true);

    const before = JSON.parse(await cli('reconcile', 'exceptions', '--merchant', merchantA)) as Json;
    expect(before.data.map((e: Json) => e.type)).toContain('missing_at_processor');
    const out = JSON.parse(await cli('reconcile', 'sync', '--processor', 'stripe', '--payout-now')) as Json;
    expect(out.already_reconciled).toEqual([payoutId]);
    expect(out.reconciled).toHaveLength(1);
    expect(out.reconciled[0].output.payouts[0]).toMatchObject({ status: 'reconciled', items: 1 });
    const after = JSON.parse(await cli('reconcile', 'exceptions', '--merchant', merchantA)) as Json;
    expect(after.data.map((e: Json) => e.type)).not.toContain('missing_at_processor');
    const runs = JSON.parse(await cli('reconcile', 'list', '--processor', 'stripe')) as Json;
    expect(runs.data).toHaveLength(2);
  });

  test('daily reports: one row per ledger movement, a summary with the same figures, byte-identical re-runs', async () => {
    const files = await runReport('transactions', today, { merchant: merchantA });
    expect(files[0]!.files).toEqual([
      `${merchantA}/transactions/${today}/transactions.csv`,
      `${merchantA}/transactions/${today}/transactions.json`,
    ]);
    const rows = readCsv(reports(merchantA, 'transactions', today, 'transactions.csv'));
    const entriesOfA = (await ledgerCheck()).balances.find((b) => b.merchant_id === merchantA)!.entries;
    expect(rows.length - 1).toBe(entriesOfA);
    const receivable = rows.slice(1).reduce((s, r) => s + Number(r[7]), 0);
    expect(receivable).toBe(
      (await ledgerCheck()).balances.find((b) => b.merchant_id === merchantA)!.accounts.processor_receivable,
    );

    let text = '';
    const progress: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (progress.push(String(s)), true)) as typeof process.stderr.write;
    try {
      text = await cli('report', 'run', 'summary', '--date', today);
    } finally {
      process.stderr.write = write;
    }
    expect(JSON.parse(text)).toMatchObject({ report: 'summary', date: today, merchants: 2 });
    expect(progress.join('')).toMatch(/summary \[█+\] 2\/2 merchants/);
    const summary = readCsv(reports(merchantA, 'summary', today, 'summary.csv'));
    expect(summary[0]).toEqual([
      'currency',
      'processor',
      'entries',
      'gross',
      'refunds',
      'disputes',
      'fees',
      'net',
      'paid_out',
      'capture_count',
      'refund_count',
      'dispute_count',
      'fee_count',
      'payout_count',
    ]);
    const [cur, proc, , gross, refunds, disputes] = summary[1]!;
    expect([cur, proc, gross, refunds, disputes]).toEqual([
      'usd',
      'stripe',
      String(1050 + 2000 + 4000 + 990),
      '500',
      '4000',
    ]);
    const col = (name: string) => summary[0]!.indexOf(name);
    expect(summary[1]![col('capture_count')]).toBe('4');
    // The platform's summary: both merchants' entries added up, per processor and currency.
    const mineB = readCsv(reports(merchantB, 'summary', today, 'summary.csv'));
    const platformSummary = readCsv(reports('platform', 'summary', today, 'summary.csv'));
    expect(platformSummary[0]).toEqual(summary[0]);
    expect(platformSummary.slice(1).map((r) => [r[0], r[1]])).toEqual([['usd', 'stripe']]);
    for (const c of ['entries', 'gross', 'refunds', 'disputes', 'fees', 'net', 'paid_out', 'capture_count'])
      expect([c, Number(platformSummary[1]![col(c)])]).toEqual([
        c,
        Number(summary[1]![col(c)]) + Number(mineB[1]![col(c)]),
      ]);
    const platformJson = JSON.parse(
      fs.readFileSync(reports('platform', 'summary', today, 'summary.json'), 'utf8'),
    ) as Json;
    expect(platformJson).toMatchObject({
      object: 'summary_report',
      merchant_id: 'platform',
      merchants: 2,
      by_processor: [
        {
          processor: 'stripe',
          currencies: [{ currency: 'usd', gross: Number(platformSummary[1]![col('gross')]) }],
        },
      ],
    });

    await cli('report', 'run', 'performance', '--date', today, '--merchant', merchantA);
    const perf = readCsv(reports(merchantA, 'performance', today, 'performance.csv'));
    expect(perf).toContainEqual(['all', 'all', '5', '4', '1', '0', '0.8000']);
    expect(perf).toContainEqual(['decline_reason', 'insufficient_funds', '1', '0', '1', '0', '0.0000']);

    const before = fs.readFileSync(reports(merchantA, 'transactions', today, 'transactions.csv'));
    await runReport('transactions', today, { merchant: merchantA });
    expect(fs.readFileSync(reports(merchantA, 'transactions', today, 'transactions.csv'))).toEqual(before);

    // The scheduled function (as EventBridge Scheduler calls it, for the day before its time).
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const scheduled = (await rt.lambdas.invoke('finance-reports', {
      scheduled_time: `${tomorrow}T02:15:00Z`,
    })) as Json;
    expect(scheduled).toMatchObject({
      date: today,
      reports: ['transactions', 'summary', 'performance', 'subscriptions'],
      merchants: 2,
    });
    expect(fs.readFileSync(reports(merchantA, 'transactions', today, 'transactions.csv'))).toEqual(before);
    const list = JSON.parse(await cli('report', 'list', '--merchant', merchantA)) as Json;
    expect(list.data.map((x: Json) => x.report)).toEqual(
      expect.arrayContaining([
        'transactions',
        'summary',
        'performance',
        'subscriptions',
        'reconciliation',
        'exceptions',
      ]),
    );
    const check = JSON.parse(await cli('ledger', 'check')) as Json;
    expect(check.ok).toBe(true);
  });
  test('settled, then partially refunded, then disputed, then re-imported, then won: no fact is lost at any step', async () => {
    rt.stripe!.configureDisputes({ createDelayMs: 3_600_000 }); // created below, when the test says
    const p = await pay(keyA, 5000, 'pm_card_createDispute');
    const read = async () => (await getPayment(p.id))!;

    // 1. Settled by a payout.
    const [payout] = rt.stripe!.createPayout({ includePending: true });
    const run = await startReconciliation(
      { processor: 'stripe', source: { kind: 'api', payout_id: payout!.id } },
      `stripe-${payout!.id}`,
    );
    expect((await waitForExecution(run.executionArn, 20_000)).status).toBe('SUCCEEDED');
    const settlement = { processor: 'stripe', payout_id: payout!.id, date: today };
    let now = await read();
    expect(now).toMatchObject({ status: 'settled', settlement, amount_refunded: 0 });
    expect(explain(now)).toContain(`paid out in stripe payout ${payout!.id}`);

    // 2. Partially refunded: the refund ranks above settled; the settlement stays.
    const refund = await call(keyA, 'POST', '/v1/refunds', { payment: p.id, amount: 1200 });
    expect(refund.body.status).toBe('succeeded');
    now = await read();
    expect(now).toMatchObject({ status: 'partially_refunded', settlement, amount_refunded: 1200 });
    expect(explain(now)).toMatch(/partially refunded.*paid out in stripe payout/);

    // 3. Disputed: the payment links its dispute; refund and settlement stay.
    const chargeId = rt.stripe!.paymentIntent(p.processor_reference)!.latest_charge as string;
    rt.stripe!.createDisputeNow(chargeId);
    now = await until('the dispute on the payment', async () => {
      const x = await read();
      return x.status === 'disputed' && x.dispute ? x : undefined;
    });
    expect(now).toMatchObject({ settlement, amount_refunded: 1200 });
    expect(now.dispute).toMatchObject({ status: 'needs_response', amount: 5000, currency: 'usd' });
    expect(now.dispute!.id).toMatch(/^dp_|^dsp_|^dis_/);
    expect(typeof now.dispute!.evidence_due_by).toBe('number');
    const api = await call(keyA, 'GET', `/v1/payments/${p.id}`);
    expect(api.body).toMatchObject({ status: 'disputed', settlement, dispute: { id: now.dispute!.id } });
    expect(api.body.explanation).toMatch(/disputed.*Dispute .*Evidence is due by/s);

    // 4. The same payout re-imported: nothing moves backwards.
    const again = await startReconciliation(
      { processor: 'stripe', source: { kind: 'api', payout_id: payout!.id } },
      `stripe-${payout!.id}-reimport`,
    );
    expect((await waitForExecution(again.executionArn, 20_000)).status).toBe('SUCCEEDED');
    await rt.dynamo.drain();
    now = await read();
    expect(now).toMatchObject({ status: 'disputed', settlement, amount_refunded: 1200 });

    // 5. Won: back to what the money facts say (partially refunded), not to "settled".
    const stored = await getDispute(now.dispute!.id);
    const res = await fetch(`${rt.stripe!.url}/_sim/disputes/${stored!.processor_reference}/close`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ outcome: 'won' }),
    });
    expect(res.status).toBe(200);
    now = await until('the won dispute', async () => {
      const x = await read();
      return x.status !== 'disputed' ? x : undefined;
    });
    expect(now).toMatchObject({ status: 'partially_refunded', settlement, amount_refunded: 1200 });
    expect(now.dispute).toMatchObject({ status: 'won' });
    expect(explain(now)).toMatch(/was won/);
    await rt.dynamo.drain();
    expect((await ledgerCheck()).ok).toBe(true);
  });
  test('the processor check finds a refund the processor paid that paystep never recorded', async () => {
    const p = await pay(keyB, 2600);
    const refund = await call(keyB, 'POST', '/v1/refunds', { payment: p.id, amount: 600 });
    expect(refund.body.status).toBe('succeeded');
    expect((await processorCheck({ merchantId: merchantB })).discrepancies).toEqual([]);

    // A refund made at the processor behind paystep's back (a dashboard, a script, a double send).
    const res = await fetch(`${rt.stripe!.url}/v1/refunds`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_behind_paysteps_back',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ payment_intent: p.processor_reference, amount: '600' }).toString(),
    });
    expect(res.status).toBe(200);
    const report = await processorCheck({ merchantId: merchantB });
    expect(report.ok).toBe(false);
    expect(report.discrepancies).toEqual([
      expect.objectContaining({
        kind: 'refund_not_recorded',
        payment_id: p.id,
        processor_refunded: 1200,
        recorded_refunded: 600,
        recorded_pending: 0,
      }),
    ]);
  });
});
