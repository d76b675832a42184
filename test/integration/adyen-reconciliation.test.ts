/**
 * Adyen reconciliation on the embedded runtime (issue #8): payments made through Adyen (written
 * straight into the store with their pspReference, as the payments wiring may not select Adyen
 * yet) against an Adyen Settlement details report with injected differences, imported with the
 * CLI. Every difference is found with its exception class (a changed gross, a duplicated line, an
 * unknown psp reference, a payment no batch paid, the payout total the file's MerchantPayout line
 * states), nothing else is, and re-importing changes nothing. The report's columns are written in
 * reverse order: the importer reads them by header name. `reconcile sync` refuses Adyen (no payouts
 * API) and a file dropped under `incoming/adyen/` starts its reconciliation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { buildProgram } from '../../lib/cli/main.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createPayment, getPayment } from '../../lambdas/store/payments.ts';
import type { Payment } from '../../lambdas/domain/payment.ts';
import { ledgerCheck } from '../../lambdas/ledger/check.ts';
import { waitForExecution } from '../../lambdas/reconciliation/start.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { CsvReader, csvField } from '../../lambdas/reports/csv.ts';
import {
  formatCreationDate,
  SETTLEMENT_COLUMNS,
  settlementAmounts,
  type SettlementRecordType,
} from '../../lib/local/processors/adyen/settlement.ts';
import { formatMinor } from '../../lib/local/processors/adyen/model.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- CLI output is checked by assertions
type Json = Record<string, any>;
type Column = (typeof SETTLEMENT_COLUMNS)[number];

const ACCOUNT = 'PaystepECOM';
const BATCH = 7;
const PAYOUT = `${ACCOUNT}-${BATCH}-EUR`;
const psp = () => randomBytes(8).toString('hex').toUpperCase();

describe('Adyen settlement details reconciliation', () => {
  let dir: string;
  let rt: Runtime;
  let merchant: string;
  const today = new Date().toISOString().slice(0, 10);
  const asOf = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
  const pays: Record<string, Payment> = {};
  const modRefs: Record<string, string> = {};
  let file: string;
  let payoutAmount: number;
  let duplicatedNet: number;

  const cli = async (...args: string[]) => {
    let text = '';
    await buildProgram((s) => (text += s)).parseAsync(['--data-dir', dir, ...args], { from: 'user' });
    return text;
  };
  const reports = (...p: string[]) => path.join(dir, 'buckets', 'paystep-reports', ...p);
  const readCsv = (f: string) => {
    const r = new CsvReader();
    return [...r.push(fs.readFileSync(f, 'utf8')), ...r.end()];
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
  const adyenPayment = async (name: string, captured: number, refunded = 0) => {
    const t = Math.floor(Date.now() / 1000);
    const p: Payment = {
      id: `pay_adyen${randomBytes(8).toString('hex')}`,
      object: 'payment',
      merchant_id: merchant,
      amount: captured,
      currency: 'eur',
      status: refunded ? 'partially_refunded' : 'captured',
      amount_captured: captured,
      amount_refunded: refunded,
      capture_method: 'automatic',
      payment_method: 'pm_card_visa',
      processor: 'adyen',
      processor_reference: psp(),
      failure: null,
      order_id: null,
      customer: null,
      channel: null,
      description: null,
      metadata: {},
      card: null,
      capture_before: null,
      cancellation_reason: null,
      review: null,
      execution_arn: null,
      created: t,
      updated: t,
      version: 1,
    };
    expect(await createPayment(p)).toBe(true);
    pays[name] = p;
    return p;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-adyen-recon-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
    merchant = (await createMerchant('Acme EU')).merchant.id;
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every injected difference is found with its class, and nothing else', async () => {
    await adyenPayment('ok', 1000);
    await adyenPayment('changed', 2500);
    await adyenPayment('duplicated', 1500);
    await adyenPayment('missing', 4000);
    await adyenPayment('refunded', 3000, 1000);
    await rt.dynamo.drain();

    // The batch as Adyen's simulator prices it (settlementAmounts), with the differences injected.
    const created = formatCreationDate(Date.now());
    const money = (v: number | undefined) => (v === undefined ? '' : formatMinor(v, 'EUR'));
    const rows: Partial<Record<Column, string>>[] = [];
    const nets: number[] = [];
    let feeRows = 0;
    const tx = (type: SettlementRecordType, reference: string, value: number, modRef = psp()) => {
      const a = settlementAmounts(type, value, 'EUR');
      const row: Partial<Record<Column, string>> = {
        'Company Account': 'Paystep',
        'Merchant Account': ACCOUNT,
        'Psp Reference': reference,
        'Payment Method': 'visa',
        'Creation Date': created,
        TimeZone: 'UTC',
        Type: type,
        'Modification Reference': modRef,
        'Gross Currency': 'EUR',
        'Gross Debit (GC)': money(a.grossDebit),
        'Gross Credit (GC)': money(a.grossCredit),
        'Exchange Rate': '1',
        'Net Currency': 'EUR',
        'Net Debit (NC)': money(a.netDebit),
        'Net Credit (NC)': money(a.netCredit),
        'Commission (NC)': money(a.commission),
        'Markup (NC)': money(a.markup),
        'Scheme Fees (NC)': money(a.schemeFees),
        'Interchange (NC)': money(a.interchange),
        'Payment Method Variant': 'visacredit',
        'Batch Number': String(BATCH),
      };
      rows.push(row);
      nets.push((a.netCredit ?? 0) - (a.netDebit ?? 0));
      feeRows++;
      modRefs[`${type}:${reference}`] = modRef;
      return row;
    };
    tx('Settled', pays.ok!.processor_reference!, 1000);
    tx('Settled', pays.changed!.processor_reference!, 2600); // injected: settled for 1.00 more
    const dup = tx('Settled', pays.duplicated!.processor_reference!, 1500);
    tx('Settled', pays.refunded!.processor_reference!, 3000);
    tx('Refunded', pays.refunded!.processor_reference!, 1000);
    tx('Settled', 'UNKNOWNPSP000001', 700); // injected: a payment paystep does not know
    // (pays.missing is in no line: no batch paid it.)
    const fee = feeRows * 10;
    rows.push({
      'Company Account': 'Paystep',
      'Merchant Account': ACCOUNT,
      'Creation Date': created,
      TimeZone: 'UTC',
      Type: 'Fee',
      'Modification Reference': 'Transaction Fees',
      'Net Currency': 'EUR',
      'Net Debit (NC)': money(fee),
      'Batch Number': String(BATCH),
    });
    payoutAmount = nets.reduce((a, b) => a + b, 0) - fee;
    rows.push({
      'Company Account': 'Paystep',
      'Merchant Account': ACCOUNT,
      'Creation Date': created,
      TimeZone: 'UTC',
      Type: 'MerchantPayout',
      'Modification Reference': `Merchant payout batch ${BATCH}, ${ACCOUNT}`,
      'Net Currency': 'EUR',
      'Net Debit (NC)': money(payoutAmount),
      'Batch Number': String(BATCH),
    });
    // Injected: a line listed twice (Adyen paid it once: the payout total does not include it).
    rows.splice(3, 0, { ...dup });
    duplicatedNet = nets[2]!;

    // Columns in reverse order: the importer finds them by name.
    const columns = [...SETTLEMENT_COLUMNS].reverse();
    file = path.join(dir, `settlement_detail_report_batch_${BATCH}.csv`);
    fs.writeFileSync(
      file,
      [columns.join(','), ...rows.map((r) => columns.map((c) => csvField(r[c] ?? '')).join(','))].join('\n') +
        '\n',
    );

    const out = JSON.parse(
      await cli('reconcile', 'import', '--processor', 'adyen', file, '--as-of', asOf),
    ) as Json;
    expect(out.status).toBe('SUCCEEDED');
    expect(out.output.payouts).toHaveLength(1);
    expect(out.output.payouts[0]).toMatchObject({
      processor: 'adyen',
      payout_id: PAYOUT,
      payout_date: today,
      currency: 'eur',
      amount: payoutAmount, // from the file's MerchantPayout line: Adyen has no payouts API
      status: 'reconciled_with_exceptions',
      exceptions: { amount_mismatch: 1, duplicate: 1, missing_internally: 1, payout_total_mismatch: 1 },
    });
    expect(Object.keys(out.output.payouts[0].exceptions).sort()).toEqual([
      'amount_mismatch',
      'duplicate',
      'missing_internally',
      'payout_total_mismatch',
    ]);
    expect(out.output.missing_at_processor).toBe(1);
    await rt.dynamo.drain();

    // The platform report: one row per line, in file order, each with its class.
    const platform = readCsv(reports('platform', 'reconciliation', today, `${PAYOUT}.csv`));
    const h = platform[0]!;
    const get = (r: string[], c: string) => r[h.indexOf(c)]!;
    const lines = platform.slice(1);
    expect(lines).toHaveLength(rows.length);
    const of = (name: string, type = 'Settled') =>
      lines.filter(
        (r) => get(r, 'item_id') === `${type}:${modRefs[`${type}:${pays[name]!.processor_reference}`]}`,
      );
    const summary = (r: string[]) => [get(r, 'status'), get(r, 'exception_types'), get(r, 'payment_id')];
    expect(of('ok').map(summary)).toEqual([['matched', '', pays.ok!.id]]);
    expect(of('refunded').map(summary)).toEqual([['matched', '', pays.refunded!.id]]);
    expect(of('refunded', 'Refunded').map(summary)).toEqual([['matched', '', pays.refunded!.id]]);
    expect(of('changed').map(summary)).toEqual([['exception', 'amount_mismatch', pays.changed!.id]]);
    expect(get(of('changed')[0]!, 'reasons')).toBe(
      'charge settled for 2600 but paystep captured 2500 (difference 100)',
    );
    expect(of('duplicated').map(summary)).toEqual([
      ['matched', '', pays.duplicated!.id],
      ['exception', 'duplicate', pays.duplicated!.id],
    ]);
    expect(get(of('duplicated')[1]!, 'reasons')).toMatch(/is listed twice in payout PaystepECOM-7-EUR$/);
    const unknown = lines.filter((r) => get(r, 'reference') === 'UNKNOWNPSP000001');
    expect(unknown.map(summary)).toEqual([['exception', 'missing_internally', '']]);
    expect(get(unknown[0]!, 'reasons')).toMatch(
      /^charge .* for UNKNOWNPSP000001 is not a payment paystep knows$/,
    );
    // Batch lines belong to no payment.
    expect(lines.filter((r) => !get(r, 'reference')).map((r) => [get(r, 'type'), get(r, 'status')])).toEqual([
      ['fee', 'not_applicable'],
      ['payout', 'not_applicable'],
    ]);
    // No false match: every line that names a payment names the payment of its psp reference.
    const byRef = new Map(Object.values(pays).map((p) => [p.processor_reference, p.id]));
    for (const r of lines)
      if (get(r, 'payment_id')) expect(get(r, 'payment_id')).toBe(byRef.get(get(r, 'reference')));
    // The fee of a line is Adyen's fee columns (interchange 0.8 %, scheme 0.2 %, markup 0.5 % here).
    expect(get(of('ok')[0]!, 'fee')).toBe(String(8 + 2 + 5));

    const json = JSON.parse(
      fs.readFileSync(reports('platform', 'reconciliation', today, `${PAYOUT}.json`), 'utf8'),
    ) as Json;
    expect(json.payout).toMatchObject({ amount: payoutAmount, difference: -duplicatedNet });

    // Payments: matched charges settled in the Adyen payout; the others untouched.
    for (const name of ['ok', 'duplicated', 'refunded']) {
      const p = (await getPayment(pays[name]!.id))!;
      expect(p.settlement).toMatchObject({ processor: 'adyen', payout_id: PAYOUT, date: today });
    }
    expect((await getPayment(pays.ok!.id))!.status).toBe('settled');
    for (const name of ['changed', 'missing']) {
      const p = (await getPayment(pays[name]!.id))!;
      expect(p.status).toBe('captured');
      expect(p.settlement ?? null).toBeNull();
    }

    // Open exceptions: one per difference, Adyen's, with the right subject.
    const listed = JSON.parse(await cli('reconcile', 'exceptions')) as Json;
    const found = listed.data
      .filter((e: Json) => e.processor === 'adyen')
      .map((e: Json) => [e.type, e.payment_id, e.reference])
      .sort();
    expect(found).toEqual(
      [
        ['amount_mismatch', pays.changed!.id, pays.changed!.processor_reference],
        ['duplicate', pays.duplicated!.id, pays.duplicated!.processor_reference],
        ['missing_at_processor', pays.missing!.id, pays.missing!.processor_reference],
        ['missing_internally', null, 'UNKNOWNPSP000001'],
        ['payout_total_mismatch', null, null],
      ].sort(),
    );

    // The ledger: Adyen's fees per line and the merchant's share of the payout; invariants hold.
    const ids = await ledgerIds();
    expect(ids).toEqual(
      expect.arrayContaining([
        `fee:adyen:Settled:${modRefs[`Settled:${pays.ok!.processor_reference}`]}`,
        `pout:adyen:${PAYOUT}:${merchant}:eur`,
      ]),
    );
    const check = await ledgerCheck();
    expect(check).toMatchObject({ ok: true, trial_balance: 0 });
  });

  test('re-importing the same file changes nothing', async () => {
    const files = [
      reports('platform', 'reconciliation', today, `${PAYOUT}.csv`),
      reports('platform', 'reconciliation', today, `${PAYOUT}.json`),
      reports(merchant, 'reconciliation', today, `${PAYOUT}.csv`),
    ];
    const before = files.map((f) => fs.readFileSync(f));
    const ledger = await ledgerIds();
    const versions = await Promise.all(
      Object.values(pays).map(async (p) => (await getPayment(p.id))!.version),
    );
    const exceptions = (JSON.parse(await cli('reconcile', 'exceptions')) as Json).data;

    const out = JSON.parse(
      await cli('reconcile', 'import', '--processor', 'adyen', file, '--as-of', asOf),
    ) as Json;
    expect(out.status).toBe('SUCCEEDED');
    await rt.dynamo.drain();
    expect(files.map((f) => fs.readFileSync(f))).toEqual(before);
    expect(await ledgerIds()).toEqual(ledger);
    expect(
      await Promise.all(Object.values(pays).map(async (p) => (await getPayment(p.id))!.version)),
    ).toEqual(versions);
    expect((JSON.parse(await cli('reconcile', 'exceptions')) as Json).data).toEqual(exceptions);
    const runs = JSON.parse(await cli('reconcile', 'list', '--processor', 'adyen')) as Json;
    expect(runs.data.map((r: Json) => r.payout_id)).toEqual([PAYOUT]);
  });

  test('reconcile sync refuses Adyen: it has no payouts API', async () => {
    await expect(cli('reconcile', 'sync', '--processor', 'adyen')).rejects.toThrow(
      /adyen has no payouts API in paystep: reconcile its Adyen Settlement details report .*'paystep reconcile import --processor adyen FILE'/,
    );
    await expect(cli('reconcile', 'import', '--processor', 'paypal', file)).rejects.toThrow(
      "unknown processor 'paypal' (expected: stripe, adyen)",
    );
  });

  test('a report dropped under incoming/adyen/ starts its reconciliation', async () => {
    const s3 = new S3Client({
      endpoint: rt.endpoints.s3,
      region: 'local',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    const smArn = rt.stepFunctions.stateMachineArn('reconciliation');
    const drops = () =>
      rt.stepFunctions
        .listExecutions({ stateMachineArn: smArn })
        .executions.filter((e) => e.name.startsWith('adyen-drop-'));
    await s3.send(
      new PutObjectCommand({
        Bucket: 'paystep-settlements',
        Key: `incoming/adyen/settlement_detail_report_batch_${BATCH}.csv`,
        Body: fs.readFileSync(file),
        ContentType: 'text/csv',
      }),
    );
    s3.destroy();
    for (let i = 0; i < 200 && drops().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(drops()).toHaveLength(1);
    expect(drops()[0]!.name).toMatch(/^adyen-drop-[0-9a-f]{20}$/);
    const outcome = await waitForExecution(drops()[0]!.executionArn, 30_000);
    expect(outcome.status).toBe('SUCCEEDED');
    expect((outcome.output as Json).payouts[0]).toMatchObject({
      payout_id: PAYOUT,
      source: `file:incoming/adyen/settlement_detail_report_batch_${BATCH}.csv`,
    });
    const processed = path.join(dir, 'buckets', 'paystep-settlements', 'processed', 'adyen');
    expect(fs.readdirSync(processed)).toEqual([`settlement_detail_report_batch_${BATCH}.csv`]);
  });
});
