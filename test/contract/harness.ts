/**
 * The connector contract suite's harness (docs/connectors.md, "Adding a processor"): one fixture per
 * connector, so every scenario in test/contract/*.contract.test.ts is written once, against
 * paystep's `ProcessorAdapter` (lambdas/connectors/types.ts) and its processor-neutral facts and
 * settlement items, and run for every processor.
 *
 * A fixture knows, for its processor:
 * - how to start its local simulator (lib/local/processors/…) and build the adapter against it, or
 *   the adapter against the processor's real sandbox when its credentials are set;
 * - what paystep's stores would give the connector (Adyen's `AdyenStateSource`: the payment behind a
 *   pspReference, and the verified notification facts), kept in memory here;
 * - how to get a genuine signed webhook about a payment, and forge one; the connector's own webhook
 *   receiver (lambdas/connectors/webhooks.ts) verifies and parses them, as paystep's route does;
 * - how to get a settlement file from the simulator's report output and read it with the
 *   processor's reader (lambdas/reconciliation/sources);
 * - how many money operations the simulator executed (for idempotency).
 *
 * Stable exports (other contract files import them; keep them compatible):
 * `CONNECTORS`, `ConnectorName`, `ContractFixture`, `Target`, `WebhookDelivery`, `SettlementFile`,
 * `contractTargets()`, `describeContract()`, `startFixture()`, `targetCan()`, `testIf()`,
 * `eventually()`, `referenceOf()`.
 *
 * Adding a processor: add its name to `CONNECTORS` and a `start<Name>Simulator` (and sandbox)
 * branch in `startFixture`; nothing in the scenario files changes.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdyenAdapter, type AdyenStateSource } from '../../lambdas/connectors/adyen/adapter.ts';
import {
  adyenWebhookReceiver,
  parseAdyenNotification,
} from '../../lambdas/connectors/adyen/notifications.ts';
import type { ConnectorFact } from '../../lambdas/connectors/facts.ts';
import type { WebhookReceiver } from '../../lambdas/connectors/webhooks.ts';
import { StripeAdapter } from '../../lambdas/connectors/stripe/adapter.ts';
import { stripeWebhookReceiver } from '../../lambdas/connectors/stripe/webhooks.ts';
import type { AuthorizeRequest, AuthorizeResult, ProcessorAdapter } from '../../lambdas/connectors/types.ts';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';
import { StripeSimulator, type StripeEvent } from '../../lib/local/processors/stripe-simulator.ts';
import { signStripePayload } from '../../lib/local/processors/stripe-webhook-sender.ts';

export const CONNECTORS = ['stripe', 'adyen'] as const;
export type ConnectorName = (typeof CONNECTORS)[number];

/** Where a fixture runs: the local simulator, or the processor's real sandbox (credentials set). */
export interface Target {
  connector: ConnectorName;
  kind: 'simulator' | 'sandbox';
  /** Set when the target cannot run here: the suite shows it as skipped with this reason. */
  skip?: string;
}

/** A webhook exactly as it arrives at `POST /webhooks/{processor}`. */
export interface WebhookDelivery {
  body: string;
  headers: Record<string, string>;
}

/** A settlement file from the simulator's report output, and what the simulator says it pays out. */
export interface SettlementFile {
  /** The file's name (Adyen's batch number is read from it). */
  name: string;
  body: string;
  /** The payout(s) the simulator made for it: id, currency and amount in minor units. */
  payouts: { id: string; currency: string; amount: number }[];
}

export interface ContractFixture {
  name: ConnectorName;
  target: Target['kind'];
  adapter: ProcessorAdapter;
  /** A currency the processor's test account takes. */
  currency: string;
  /**
   * Whether the outcomes of asynchronous modifications can be observed through the adapter (Stripe:
   * always, its API is read; Adyen: only where its notifications reach this process, i.e. on the
   * simulator, since Adyen has no API to read a payment).
   */
  observesOutcomes: boolean;
  /** A request with a fresh payment id and idempotency key. */
  request(over?: Partial<AuthorizeRequest>): AuthorizeRequest;
  /** Authorizes and records the payment as paystep's stores would (what the connector may read back). */
  authorize(over?: Partial<AuthorizeRequest>): Promise<{ req: AuthorizeRequest; result: AuthorizeResult }>;
  /** The same for a request made with `request()` (e.g. to send it twice). */
  authorizeRequest(req: AuthorizeRequest): Promise<AuthorizeResult>;
  /** Simulator only: money operations executed (payments, captures, cancels, refunds), replays excluded. */
  operations?(): Promise<number>;
  /** Simulator only: a genuine delivery the simulator sent about this object (its processor reference). */
  webhookAbout?(reference: string): Promise<WebhookDelivery>;
  /** Simulator only: every delivery the simulator sent so far about this object, oldest first. */
  webhooksAbout?(reference: string): Promise<WebhookDelivery[]>;
  /** The connector's webhook receiver (lambdas/connectors/webhooks.ts) under this fixture's secrets. */
  receiver: WebhookReceiver;
  /** Verifies a delivery with the connector's receiver, as `POST /webhooks/{processor}` does. */
  verifyWebhook(d: WebhookDelivery): { ok: boolean; reason?: string };
  /** The facts of a verified delivery, from the connector's receiver (throws if it does not verify). */
  parseWebhook(d: WebhookDelivery): ConnectorFact[];
  /** The same delivery with its amount raised and its signature left as it was. */
  forgeWebhook(d: WebhookDelivery): WebhookDelivery;
  /** Simulator only: closes a settlement batch / pays out, and downloads the processor's file. */
  settlementFile?(): Promise<SettlementFile>;
  stop(): Promise<void>;
}

/** The targets of a connector: its simulator always; its sandbox when the credentials are set. */
export function contractTargets(connector: ConnectorName, env: NodeJS.ProcessEnv = process.env): Target[] {
  const sandbox: Target = { connector, kind: 'sandbox' };
  if (connector === 'stripe' && !env.STRIPE_SECRET_KEY?.startsWith('sk_test_'))
    sandbox.skip = 'set STRIPE_SECRET_KEY (sk_test_…) to run against Stripe test mode';
  if (connector === 'adyen' && !(env.ADYEN_API_KEY && env.ADYEN_MERCHANT_ACCOUNT))
    sandbox.skip = "set ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT to run against Adyen's test environment";
  return [{ connector, kind: 'simulator' }, sandbox];
}

/**
 * `describe.each` over the connectors, then over their targets; one fixture per (connector, target)
 * for the whole describe (started in beforeAll, stopped in afterAll). A target that cannot run is a
 * skipped describe whose name says why. `body` gets a getter for the fixture.
 */
export function describeContract(
  title: string,
  body: (fixture: () => ContractFixture, target: Target) => void,
): void {
  describe.each([...CONNECTORS])(`${title}: %s`, (connector) => {
    for (const target of contractTargets(connector)) {
      const name = target.skip ? `${target.kind} (skipped: ${target.skip})` : target.kind;
      (target.skip ? describe.skip : describe)(name, () => {
        let fx: ContractFixture | undefined;
        beforeAll(async () => {
          fx = await startFixture(target);
        });
        afterAll(async () => {
          await fx?.stop();
        });
        body(() => {
          if (!fx) throw new Error(`${connector} ${target.kind} fixture did not start`);
          return fx;
        }, target);
      });
    }
  });
}

/**
 * What a target can show, known when the suite is defined (so a scenario it cannot run is listed as
 * skipped, with the reason, rather than passing vacuously):
 * - `simulator`: simulator-only observations (operation counts, its webhooks, its report files);
 * - `outcomes`: asynchronous outcomes readable through the adapter (not Adyen's sandbox, whose
 *   notifications go to the URL configured in its Customer Area).
 */
export function targetCan(target: Target, what: 'simulator' | 'outcomes'): string | undefined {
  if (target.kind === 'simulator') return undefined;
  if (what === 'simulator') return 'needs the local simulator';
  if (target.connector === 'adyen')
    return "Adyen has no API to read a payment and its sandbox's notifications do not reach this process";
  return undefined;
}

/** `test`, or a visibly skipped test when `why` is set. */
export function testIf(why: string | undefined): (name: string, fn: () => Promise<void>) => void {
  return why ? (name, fn) => test.skip(`${name} (skipped: ${why})`, fn) : (name, fn) => test(name, fn);
}

/** Polls `fn` until `done` holds (returns the last value) or fails after `ms`. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await fn();
      lastError = undefined;
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > end) {
      const seen = lastError ? `error ${(lastError as Error).message}` : JSON.stringify(last);
      throw new Error(`timed out waiting for ${what}; last: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The processor reference of a result that has one (fails the test otherwise). */
export function referenceOf(r: AuthorizeResult): string {
  if (!('processorReference' in r) || !r.processorReference)
    throw new Error(`no processor reference in ${JSON.stringify(r)}`);
  return r.processorReference;
}

export async function startFixture(target: Target): Promise<ContractFixture> {
  if (target.skip) throw new Error(`${target.connector} ${target.kind}: ${target.skip}`);
  if (target.connector === 'stripe')
    return target.kind === 'simulator' ? startStripeSimulator() : stripeSandbox();
  return target.kind === 'simulator' ? startAdyenSimulator() : adyenSandbox();
}

// --- shared ----------------------------------------------------------------------------------------

let seq = 0;
function requestMaker(currency: string): (over?: Partial<AuthorizeRequest>) => AuthorizeRequest {
  return (over = {}) => {
    seq++;
    const id = `pay_contract${seq}${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    return {
      paymentId: id,
      merchantId: 'mch_contract',
      amount: 2000,
      currency,
      paymentMethod: 'pm_card_visa',
      captureMethod: 'automatic',
      idempotencyKey: `${id}:authorize:1`,
      ...over,
    };
  };
}

async function getJson(url: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** verifyWebhook / parseWebhook of a fixture, from its connector's receiver. */
function receiverParts(
  receiver: WebhookReceiver,
): Pick<ContractFixture, 'receiver' | 'verifyWebhook' | 'parseWebhook'> {
  const request = (d: WebhookDelivery) => ({
    body: d.body,
    header: (name: string) =>
      Object.entries(d.headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
  });
  return {
    receiver,
    verifyWebhook: (d) => {
      const v = receiver.verify(request(d));
      return v.ok ? { ok: true } : { ok: false, reason: v.code };
    },
    parseWebhook: (d) => {
      const v = receiver.verify(request(d));
      if (!v.ok) throw new Error(`the delivery does not verify: ${v.code}`);
      return v.events.flatMap((e) => e.facts);
    },
  };
}

// --- Stripe ----------------------------------------------------------------------------------------

const STRIPE_SIM_KEY = 'sk_test_paystep_contract';
const STRIPE_WEBHOOK_SECRET = 'whsec_paystep_contract';

function stripeWebhookParts(): Pick<
  ContractFixture,
  'receiver' | 'verifyWebhook' | 'parseWebhook' | 'forgeWebhook'
> {
  return {
    ...receiverParts(stripeWebhookReceiver([STRIPE_WEBHOOK_SECRET])),
    forgeWebhook: (d) => {
      const event = JSON.parse(d.body) as { data: { object: { amount?: number } } };
      event.data.object.amount = (event.data.object.amount ?? 0) + 100_00;
      return { body: JSON.stringify(event, null, 2), headers: { ...d.headers } };
    },
  };
}

/** A Stripe event as the runtime's sender delivers it: pretty-printed, signed over these exact bytes. */
function signedStripe(event: StripeEvent): WebhookDelivery {
  const body = JSON.stringify(event, null, 2);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'stripe-signature': signStripePayload(body, STRIPE_WEBHOOK_SECRET),
    },
  };
}

async function startStripeSimulator(): Promise<ContractFixture> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-contract-stripe-'));
  const events: StripeEvent[] = [];
  const sim = new StripeSimulator({
    dataDir,
    payoutEveryMs: 0,
    // pm_card_refundFail's refunds fail this long after succeeding (Stripe: asynchronously).
    asyncRefundDelayMs: 100,
    onEvent: (e) => void events.push(e),
  });
  const base = await sim.start();
  const adapter = new StripeAdapter({
    secretKey: STRIPE_SIM_KEY,
    apiBase: base,
    timeoutMs: 5000,
    maxNetworkRetries: 0,
  });
  const request = requestMaker('usd');
  return {
    name: 'stripe',
    target: 'simulator',
    adapter,
    currency: 'usd',
    observesOutcomes: true,
    request,
    authorizeRequest: (req) => adapter.authorize(req),
    async authorize(over) {
      const req = request(over);
      return { req, result: await adapter.authorize(req) };
    },
    async operations() {
      const s = (await getJson(`${base}/_sim/stats`)) as Record<string, number>;
      return (s.paymentIntentsCreated ?? 0) + (s.captures ?? 0) + (s.refunds ?? 0);
    },
    async webhookAbout(reference) {
      const event = await eventually(
        `a Stripe event about ${reference}`,
        async () => events.find((e) => e.data.object.id === reference),
        (e) => e !== undefined,
      );
      return signedStripe(event!);
    },
    async webhooksAbout(reference) {
      return events.filter((e) => e.data.object.id === reference).map(signedStripe);
    },
    ...stripeWebhookParts(),
    async settlementFile() {
      const run = await getJson(`${base}/_sim/payouts/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ include_pending: true, currency: 'usd' }),
      });
      const payouts = (run.payouts as { id: string; currency: string; amount: number }[]).map((p) => ({
        id: p.id,
        currency: p.currency,
        amount: p.amount,
      }));
      const payout = payouts[0];
      if (!payout) throw new Error('the Stripe simulator made no payout');
      const res = await fetch(`${base}/_sim/payouts/${payout.id}/itemized.csv`);
      if (!res.ok) throw new Error(`itemized.csv: ${res.status}`);
      return { name: `itemized_${payout.id}.csv`, body: await res.text(), payouts };
    },
    async stop() {
      await sim.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function stripeSandbox(): Promise<ContractFixture> {
  const adapter = new StripeAdapter({
    secretKey: process.env.STRIPE_SECRET_KEY!,
    timeoutMs: 20_000,
    maxNetworkRetries: 1,
  });
  const request = requestMaker('usd');
  return {
    name: 'stripe',
    target: 'sandbox',
    adapter,
    currency: 'usd',
    observesOutcomes: true,
    request,
    authorizeRequest: (req) => adapter.authorize(req),
    async authorize(over) {
      const req = request(over);
      return { req, result: await adapter.authorize(req) };
    },
    ...stripeWebhookParts(),
    async stop() {},
  };
}

// --- Adyen -----------------------------------------------------------------------------------------

const ADYEN_SIM_MERCHANT = 'PaystepContract';
const ADYEN_SIM_KEY = 'AQE_test_paystep_contract';
/** A test HMAC key (hex), not a secret: only this suite's simulator signs with it. */
const ADYEN_SIM_HMAC = '4A6F0C2B7E1D3F5A9C8B0E2D4F6A8C0E1B3D5F7A9C0E2B4D6F8A0C2E4B6D8F0A';

/** What paystep's stores give the Adyen connector: payments by pspReference, and stored facts. */
class AdyenRecords {
  readonly facts = new Map<string, ConnectorFact>();
  readonly payments = new Map<
    string,
    { paymentId: string; amount: number; currency: string; captureMethod: 'automatic' | 'manual' }
  >();
  /** Every batch the simulator delivered, raw, with the pspReferences it names. */
  readonly deliveries: { raw: string; references: string[] }[] = [];

  readonly source: AdyenStateSource = {
    payment: async (psp) => this.payments.get(psp),
    facts: async (psp) =>
      [...this.facts.values()].filter(
        (f) => f.reference === psp || ('paymentReference' in f && f.paymentReference === psp),
      ),
  };

  remember(req: AuthorizeRequest, r: AuthorizeResult): void {
    if ('processorReference' in r && r.processorReference)
      this.payments.set(r.processorReference, {
        paymentId: req.paymentId,
        amount: req.amount,
        currency: req.currency,
        captureMethod: req.captureMethod,
      });
  }
}

function adyenWebhookParts(
  merchantAccount: string,
  hmacKeys: string[],
): Pick<ContractFixture, 'receiver' | 'verifyWebhook' | 'parseWebhook' | 'forgeWebhook'> {
  return {
    ...receiverParts(adyenWebhookReceiver({ hmacKeys, merchantAccounts: [merchantAccount] })),
    forgeWebhook: (d) => {
      const batch = JSON.parse(d.body) as {
        notificationItems: { NotificationRequestItem: { amount: { value: number } } }[];
      };
      batch.notificationItems[0]!.NotificationRequestItem.amount.value += 100_00;
      return { body: JSON.stringify(batch), headers: { ...d.headers } };
    },
  };
}

async function startAdyenSimulator(): Promise<ContractFixture> {
  const records = new AdyenRecords();
  const sim = new AdyenSimulator({
    hmacKeyHex: ADYEN_SIM_HMAC,
    merchantAccount: ADYEN_SIM_MERCHANT,
    apiKey: ADYEN_SIM_KEY,
    timeScale: 1_000_000,
    settlementEveryMs: 0,
    delays: { defensePeriod: 1e15 },
    // In-process delivery to what POST /webhooks/adyen does first: verify, then store each fact once.
    notify: {
      callback: (raw) => {
        const parsed = parseAdyenNotification(raw, {
          hmacKeys: [ADYEN_SIM_HMAC],
          merchantAccounts: [ADYEN_SIM_MERCHANT],
        });
        if (!parsed.response) return { status: 401, body: 'unauthorized' };
        for (const f of parsed.facts) if (!records.facts.has(f.id)) records.facts.set(f.id, f);
        const batch = JSON.parse(raw) as {
          notificationItems: {
            NotificationRequestItem: { pspReference: string; originalReference?: string };
          }[];
        };
        records.deliveries.push({
          raw,
          references: batch.notificationItems.flatMap((i) =>
            [i.NotificationRequestItem.pspReference, i.NotificationRequestItem.originalReference].filter(
              (x): x is string => Boolean(x),
            ),
          ),
        });
        return { status: 200, body: parsed.response };
      },
    },
  });
  const base = await sim.start(0);
  const adapter = new AdyenAdapter({
    apiKey: ADYEN_SIM_KEY,
    merchantAccount: ADYEN_SIM_MERCHANT,
    apiBase: base,
    timeoutMs: 5000,
    returnUrl: 'https://shop.example/return',
    state: records.source,
  });
  const request = requestMaker('eur');
  return {
    name: 'adyen',
    target: 'simulator',
    adapter,
    currency: 'eur',
    observesOutcomes: true,
    request,
    async authorizeRequest(req) {
      const result = await adapter.authorize(req);
      records.remember(req, result);
      return result;
    },
    async authorize(over) {
      const req = request(over);
      const result = await adapter.authorize(req);
      records.remember(req, result);
      return { req, result };
    },
    async operations() {
      const s = (await getJson(`${base}/_sim/stats`)) as Record<string, number>;
      return (s.payments ?? 0) + (s.modifications ?? 0);
    },
    async webhookAbout(reference) {
      const d = await eventually(
        `an Adyen notification about ${reference}`,
        async () => records.deliveries.find((x) => x.references.includes(reference)),
        (x) => x !== undefined,
      );
      return { body: d!.raw, headers: { 'content-type': 'application/json' } };
    },
    async webhooksAbout(reference) {
      return records.deliveries
        .filter((x) => x.references.includes(reference))
        .map((x) => ({ body: x.raw, headers: { 'content-type': 'application/json' } }));
    },
    ...adyenWebhookParts(ADYEN_SIM_MERCHANT, [ADYEN_SIM_HMAC]),
    async settlementFile() {
      await sim.settled();
      const closed = await getJson(`${base}/_sim/settlement/close`, { method: 'POST' });
      const batch = (closed.batches as { file: string; url: string; csv?: string }[])[0];
      if (!batch) throw new Error('the Adyen simulator closed no settlement batch');
      const res = await fetch(batch.url);
      if (!res.ok) throw new Error(`${batch.file}: ${res.status}`);
      // Adyen states its payouts in the file itself (MerchantPayout lines): none from an API.
      return { name: batch.file, body: await res.text(), payouts: [] };
    },
    async stop() {
      await sim.stop();
    },
  };
}

async function adyenSandbox(): Promise<ContractFixture> {
  const records = new AdyenRecords();
  const merchantAccount = process.env.ADYEN_MERCHANT_ACCOUNT!;
  const adapter = new AdyenAdapter({
    apiKey: process.env.ADYEN_API_KEY!,
    merchantAccount,
    environment: 'test',
    timeoutMs: 20_000,
    ...(process.env.ADYEN_RETURN_URL ? { returnUrl: process.env.ADYEN_RETURN_URL } : {}),
    state: records.source,
  });
  const request = requestMaker('eur');
  const hmac = process.env.ADYEN_HMAC_KEY ? process.env.ADYEN_HMAC_KEY.split(',') : [ADYEN_SIM_HMAC];
  return {
    name: 'adyen',
    target: 'sandbox',
    adapter,
    currency: 'eur',
    // Adyen's notifications go to the webhook URL configured in its Customer Area, not here.
    observesOutcomes: false,
    request,
    async authorizeRequest(req) {
      const result = await adapter.authorize(req);
      records.remember(req, result);
      return result;
    },
    async authorize(over) {
      const req = request(over);
      const result = await adapter.authorize(req);
      records.remember(req, result);
      return { req, result };
    },
    ...adyenWebhookParts(merchantAccount, hmac),
    async stop() {},
  };
}
