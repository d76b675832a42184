/**
 * The Adyen simulator's outgoing side: standard notifications over HTTP (batch format, HMAC
 * checked with the library's hmacValidator, Basic auth), retried until `[accepted]`, kept across a
 * restart, delivery test controls; disputes (notifications and the Disputes API through the
 * library); the settlement details report, parsed by header.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CheckoutAPI, Client, DisputesAPI, EnvironmentEnum, Types, hmacValidator } from '@adyen/api-library';
import { AdyenSimulator, type AdyenSimulatorOptions } from '../../lib/local/processors/adyen/simulator.ts';
import type {
  NotificationRequest,
  NotificationRequestItem,
} from '../../lib/local/processors/adyen/notifications.ts';
import { SETTLEMENT_COLUMNS } from '../../lib/local/processors/adyen/settlement.ts';

const MERCHANT = 'PaystepTestMerchant';
const API_KEY = 'AQE_test_paystep_unit';
const HMAC_KEY = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';
const SCHEME = Types.checkout.CardDetails.TypeEnum.Scheme;

type Transport = NonNullable<ConstructorParameters<typeof Client>[1]>;
const transport = (base: () => string): Transport => ({
  async request(endpoint, json, config, _required, options = {}) {
    const res = await fetch(endpoint.replace(/^https:\/\/[^/]+/, base()), {
      method: options.method ?? 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': config.apiKey ?? '' },
      body: typeof json === 'string' ? json : new Uint8Array(json),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status} ${text}`);
    return text;
  },
});

/** The webhook endpoint: answers from a script (then `[accepted]`), records every request. */
class Receiver {
  server!: Server;
  url = '';
  requests: { headers: Record<string, string | string[] | undefined>; body: NotificationRequest }[] = [];
  script: { status: number; body: string }[] = [];
  /** While set, every delivery is answered 503. */
  refuse = false;
  /** Items of accepted deliveries. */
  readonly items: NotificationRequestItem[] = [];
  private waiters: {
    pred: (i: NotificationRequestItem) => boolean;
    resolve: (i: NotificationRequestItem) => void;
  }[] = [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(raw) as NotificationRequest;
        this.requests.push({ headers: req.headers, body });
        const answer = this.refuse
          ? { status: 503, body: '' }
          : (this.script.shift() ?? { status: 200, body: '[accepted]' });
        res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
        if (answer.status === 200 && answer.body.includes('[accepted]'))
          for (const { NotificationRequestItem: item } of body.notificationItems) {
            this.items.push(item);
            this.waiters = this.waiters.filter((w) => (w.pred(item) ? (w.resolve(item), false) : true));
          }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhooks/adyen`;
  }

  /** The first accepted item matching `pred`, already received or still to come. */
  wait(pred: (i: NotificationRequestItem) => boolean): Promise<NotificationRequestItem> {
    const found = this.items.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  event(eventCode: string, psp: string): Promise<NotificationRequestItem> {
    return this.wait(
      (i) => i.eventCode === eventCode && (i.pspReference === psp || i.originalReference === psp),
    );
  }
}

let dataDir: string;
let receiver: Receiver;
let sim: AdyenSimulator;
let checkout: CheckoutAPI;
let disputes: DisputesAPI;

function simulator(over: Partial<AdyenSimulatorOptions> = {}): AdyenSimulator {
  return new AdyenSimulator({
    hmacKeyHex: HMAC_KEY,
    merchantAccount: MERCHANT,
    apiKey: API_KEY,
    dataDir,
    notify: () => receiver.url,
    notifyBasicAuth: { username: 'adyen-webhooks', password: 'pw' },
    timeScale: 1_000_000,
    settlementEveryMs: 0,
    delays: { defensePeriod: 1e15 },
    ...over,
  });
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adyen-sim-'));
  receiver = new Receiver();
  await receiver.start();
  sim = simulator();
  await sim.start(0);
  const client = new Client(
    { apiKey: API_KEY, environment: EnvironmentEnum.TEST },
    transport(() => sim.url),
  );
  checkout = new CheckoutAPI(client);
  disputes = new DisputesAPI(client);
});

afterAll(async () => {
  await sim.stop();
  await new Promise((r) => receiver.server.close(r));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

let seq = 0;
const pay = (holderName = 'J. Smith', additionalData: Record<string, string> = {}, value = 1000) =>
  checkout.PaymentsApi.payments({
    merchantAccount: MERCHANT,
    reference: `order-${++seq}`,
    amount: { currency: 'EUR', value },
    returnUrl: 'https://shop.example/return',
    paymentMethod: {
      type: SCHEME,
      number: '5555555555554444',
      expiryMonth: '03',
      expiryYear: '2030',
      cvc: '737',
      holderName,
    },
    additionalData,
  });

describe('notifications', () => {
  test('standard format, one HMAC per item valid for the library, Basic auth', async () => {
    const res = await pay();
    const item = await receiver.event('AUTHORISATION', res.pspReference!);
    const request = receiver.requests.find((r) =>
      r.body.notificationItems.some((n) => n.NotificationRequestItem === item),
    )!;
    expect(request.body.live).toBe('false');
    expect(request.headers['content-type']).toMatch(/^application\/json/);
    expect(request.headers.authorization).toBe(
      `Basic ${Buffer.from('adyen-webhooks:pw').toString('base64')}`,
    );
    expect(item).toMatchObject({
      eventCode: 'AUTHORISATION',
      success: 'true',
      merchantAccountCode: MERCHANT,
      merchantReference: `order-${seq}`,
      amount: { currency: 'EUR', value: 1000 },
      paymentMethod: 'mc',
      operations: ['CANCEL', 'CAPTURE', 'REFUND'],
    });
    expect(item.eventDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const validator = new hmacValidator();
    expect(validator.validateHMAC(item as never, HMAC_KEY)).toBe(true);
    expect(
      validator.validateHMAC({ ...item, amount: { currency: 'EUR', value: 1 } } as never, HMAC_KEY),
    ).toBe(false);
    expect(validator.validateHMAC(item as never, HMAC_KEY.replace('4', '5'))).toBe(false);
  });

  test('retried on schedule until answered 2xx with [accepted]', async () => {
    receiver.script.push({ status: 500, body: 'oops' }, { status: 200, body: 'ok' });
    const before = receiver.requests.length;
    const res = await pay();
    const item = await receiver.event('AUTHORISATION', res.pspReference!);
    const tries = receiver.requests
      .slice(before)
      .filter((r) =>
        r.body.notificationItems.some((n) => n.NotificationRequestItem.pspReference === item.pspReference),
      );
    expect(tries).toHaveLength(3);
    await sim.notifications.idle();
    const attempts = sim.notifications.attempts().filter((a) => !a.duplicate);
    expect(attempts.slice(-3).map((a) => [a.attempt, a.status, a.accepted])).toEqual([
      [1, 500, false],
      [2, 200, false],
      [3, 200, true],
    ]);
  });

  test('a pending delivery survives a restart and is delivered after it', async () => {
    receiver.refuse = true;
    const manual = await pay('J. Smith', { manualCapture: 'true' });
    const psp = manual.pspReference!;
    await sim.stop();
    expect(sim.notifications.pending().length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dataDir, 'processors', 'adyen.jsonl'))).toBe(true);
    receiver.refuse = false;
    sim = simulator();
    const arrived = receiver.event('AUTHORISATION', psp);
    await sim.start(0);
    expect((await arrived).success).toBe('true');
    // The payment survived too: it can still be captured.
    const capture = await checkout.ModificationsApi.captureAuthorisedPayment(psp, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 1000 },
    });
    expect((await receiver.event('CAPTURE', capture.pspReference)).success).toBe('true');
  });

  test('controls: duplicate delivers twice, dropRate never delivers, reorder delivers all', async () => {
    sim.notifications.configure({ duplicate: 1 });
    const before = receiver.requests.length;
    const dup = await pay();
    await receiver.event('AUTHORISATION', dup.pspReference!);
    await sim.notifications.idle();
    const copies = receiver.requests
      .slice(before)
      .filter((r) =>
        r.body.notificationItems.some((n) => n.NotificationRequestItem.pspReference === dup.pspReference),
      );
    expect(copies).toHaveLength(2);

    sim.notifications.configure({ duplicate: 0, dropRate: 1 });
    const dropped = await pay();
    await sim.notifications.idle();
    expect(sim.notificationItems().some((i) => i.pspReference === dropped.pspReference)).toBe(true);
    expect(receiver.items.some((i) => i.pspReference === dropped.pspReference)).toBe(false);
    expect(sim.notifications.stats().dropped).toBeGreaterThan(0);

    sim.notifications.configure({ dropRate: 0, reorderWindow: 3 });
    const paid = [await pay(), await pay(), await pay()];
    await Promise.all(paid.map((p) => receiver.event('AUTHORISATION', p.pspReference!)));
    sim.notifications.reset();
  });
});

describe('disputes', () => {
  test('a chargeback: NOTIFICATION_OF_CHARGEBACK, CHARGEBACK, defended through the Disputes API, lost', async () => {
    const paid = await pay('CHARGEBACK');
    const psp = paid.pspReference!;
    const noc = await receiver.event('NOTIFICATION_OF_CHARGEBACK', psp);
    expect(noc.originalReference).toBe(psp);
    expect(noc.additionalData).toMatchObject({
      disputeStatus: 'Undefended',
      defendable: 'true',
      chargebackReasonCode: '4837',
      chargebackSchemeCode: 'mc',
    });
    expect(noc.additionalData.defensePeriodEndsAt).toMatch(/\+00:00$/);
    const cb = await receiver.event('CHARGEBACK', noc.pspReference);
    expect(cb.amount).toEqual({ currency: 'EUR', value: 1000 });

    const api = disputes.DisputesApi;
    const reasons = await api.retrieveApplicableDefenseReasons({
      disputePspReference: noc.pspReference,
      merchantAccountCode: MERCHANT,
    });
    expect(reasons.disputeServiceResult.success).toBe(true);
    expect(reasons.defenseReasons?.map((r) => r.defenseReasonCode)).toContain('SupplyDefenseMaterial');
    const supplied = await api.supplyDefenseDocument({
      disputePspReference: noc.pspReference,
      merchantAccountCode: MERCHANT,
      defenseDocuments: [
        {
          content: Buffer.from('receipt').toString('base64'),
          contentType: 'application/pdf',
          defenseDocumentTypeCode: 'DefenseMaterial',
        },
      ],
    });
    expect(supplied.disputeServiceResult.success).toBe(true);
    const defended = await api.defendDispute({
      disputePspReference: noc.pspReference,
      merchantAccountCode: MERCHANT,
      defenseReasonCode: 'SupplyDefenseMaterial',
    });
    expect(defended.disputeServiceResult.success).toBe(true);

    const closed = await fetch(`${sim.url}/_sim/disputes/${noc.pspReference}/close`, {
      method: 'POST',
      body: JSON.stringify({ outcome: 'lost' }),
    });
    expect(closed.status).toBe(200);
    expect((await receiver.event('CHARGEBACK_REVERSED', noc.pspReference)).additionalData.disputeStatus).toBe(
      'Pending',
    );
    expect((await receiver.event('SECOND_CHARGEBACK', noc.pspReference)).additionalData.disputeStatus).toBe(
      'Lost',
    );
  });

  test('won, accepted, and an inquiry', async () => {
    const won = await pay('CHARGEBACK:10.4:won');
    const noc = await receiver.event('NOTIFICATION_OF_CHARGEBACK', won.pspReference!);
    expect(noc.additionalData.chargebackReasonCode).toBe('10.4');
    await receiver.event('CHARGEBACK', noc.pspReference);
    await disputes.DisputesApi.defendDispute({
      disputePspReference: noc.pspReference,
      merchantAccountCode: MERCHANT,
      defenseReasonCode: 'GoodsOrServicesProvided',
    });
    expect((await receiver.event('CHARGEBACK_REVERSED', noc.pspReference)).additionalData.disputeStatus).toBe(
      'Won',
    );

    const accepted = await pay('CHARGEBACK');
    const noc2 = await receiver.event('NOTIFICATION_OF_CHARGEBACK', accepted.pspReference!);
    const res = await disputes.DisputesApi.acceptDispute({
      disputePspReference: noc2.pspReference,
      merchantAccountCode: MERCHANT,
    });
    expect(res.disputeServiceResult.success).toBe(true);
    const ended = await receiver.event('DISPUTE_DEFENSE_PERIOD_ENDED', noc2.pspReference);
    expect(ended.additionalData.disputeStatus).toBe('Accepted');

    const rfi = await pay('RFI');
    const inquiry = await receiver.event('REQUEST_FOR_INFORMATION', rfi.pspReference!);
    expect(inquiry.additionalData).toMatchObject({ rfiSchemeCode: 'mc' });
    expect(sim.disputes.get(inquiry.pspReference)?.stage).toBe('inquiry');
  });
});

describe('settlement details report', () => {
  test('a batch closes everything since the last one; the CSV parses by header with every record type', async () => {
    sim.settleBatch(); // close what earlier tests left
    const settled = await pay('J. Smith', {}, 2500);
    const refund = await checkout.ModificationsApi.refundCapturedPayment(settled.pspReference!, {
      merchantAccount: MERCHANT,
      amount: { currency: 'EUR', value: 500 },
      reference: 'refund-r1',
    });
    await receiver.event('REFUND', refund.pspReference);
    const lost = await pay('CHARGEBACK', {}, 4000);
    const noc = await receiver.event('NOTIFICATION_OF_CHARGEBACK', lost.pspReference!);
    await receiver.event('CHARGEBACK', noc.pspReference);
    await fetch(`${sim.url}/_sim/disputes/${noc.pspReference}/close`, {
      method: 'POST',
      body: JSON.stringify({ outcome: 'won' }),
    });
    await receiver.event('CHARGEBACK_REVERSED', noc.pspReference);

    const [batch] = sim.settleBatch();
    expect(batch!.file).toBe(`settlement_detail_report_batch_${batch!.number}.csv`);
    const report = await receiver.wait(
      (i) => i.eventCode === 'REPORT_AVAILABLE' && i.pspReference === batch!.file,
    );
    const download = await fetch(report.reason, { headers: { 'X-API-Key': API_KEY } });
    expect(download.status).toBe(200);
    const csv = await download.text();
    expect(csv).toBe(batch!.csv);

    const [head, ...lines] = csv.trim().split('\n').map(csvLine);
    expect(head).toEqual([...SETTLEMENT_COLUMNS]);
    const rows = lines.map((l) => Object.fromEntries(head!.map((h, i) => [h, l[i] ?? ''])));
    expect(rows.every((r, i) => lines[i]!.length === head!.length)).toBe(true);
    const types = rows.map((r) => r.Type);
    expect(new Set(types)).toEqual(
      new Set(['Settled', 'Refunded', 'Chargeback', 'ChargebackReversed', 'Fee', 'MerchantPayout']),
    );
    const s = rows.find((r) => r.Type === 'Settled' && r['Psp Reference'] === settled.pspReference)!;
    expect(s).toMatchObject({
      'Merchant Account': MERCHANT,
      'Gross Currency': 'EUR',
      'Gross Credit (GC)': '25.00',
      'Net Credit (NC)': '24.62',
      'Interchange (NC)': '0.20',
      'Scheme Fees (NC)': '0.05',
      'Markup (NC)': '0.13',
      'Payment Method': 'mc',
      'Batch Number': String(batch!.number),
    });
    expect(s['Creation Date']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(rows.find((r) => r.Type === 'Refunded')).toMatchObject({
      'Modification Reference': refund.pspReference,
      'Modification Merchant Reference': 'refund-r1',
      'Gross Debit (GC)': '5.00',
    });
    expect(rows.find((r) => r.Type === 'MerchantPayout')!['Modification Reference']).toContain(',');
    expect(rows.find((r) => r.Type === 'Chargeback')).toMatchObject({
      'Gross Debit (GC)': '40.00',
      'Commission (NC)': '15.00',
    });
    // The payout pays out exactly the batch's net: every row's net sums to zero.
    const cents = (v: string | undefined) => (v ? Math.round(Number(v) * 100) : 0);
    const net = rows.reduce((sum, r) => sum + cents(r['Net Credit (NC)']) - cents(r['Net Debit (NC)']), 0);
    expect(net).toBe(0);

    const again = await fetch(`${sim.url}/_sim/reports/${batch!.file}`);
    expect(await again.text()).toBe(csv);
    expect(sim.settleBatch()).toEqual([]);
  });
});

/** One CSV line (RFC 4180 quoting; the report's fields have no line breaks). */
function csvLine(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}
