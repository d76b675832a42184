/**
 * The dispute connector contract (issue #8 items 1, 6, 7; docs/disputes.md): the same scenarios,
 * written once against paystep's neutral `DisputeConnector` (lambdas/connectors/disputes.ts), run
 * for every processor — against its local simulator, and against its real sandbox when the
 * credentials are set (skipped otherwise, with the reason in the test name):
 *
 * - a disputed payment (`pm_card_createDispute`) reads as `needs_response`, with its amount,
 *   paystep's reason, the evidence deadline and the withdrawal;
 * - evidence in the neutral schema, submitted, is `under_review`; paystep's test strings decide it
 *   (`winning_evidence` → won, `losing_evidence` → lost); the same idempotency key is one
 *   submission;
 * - staged evidence (`submit: false`) leaves the dispute waiting for a response;
 * - accepting is `accepted` (a loss), and accepting again with the same key still is;
 * - every connector takes the neutral schema's text fields; an unknown dispute is refused.
 *
 * Stripe sandbox: STRIPE_SECRET_KEY=sk_test_… (Stripe's test mode has the same dispute test cards
 * and evidence strings). Adyen sandbox: ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT; Adyen has no API
 * to read a dispute and its sandbox's notifications go to the URL configured in its Customer Area,
 * not to this process, so only the scenarios that need no notification run there.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { AdyenAdapter } from '../../lambdas/connectors/adyen/adapter.ts';
import { AdyenDisputeConnector } from '../../lambdas/connectors/adyen/disputes.ts';
import { parseAdyenNotification } from '../../lambdas/connectors/adyen/notifications.ts';
import {
  TEXT_EVIDENCE_FIELDS,
  type DisputeConnector,
  type DisputeFacts,
} from '../../lambdas/connectors/disputes.ts';
import type { ConnectorFact, DisputeFact } from '../../lambdas/connectors/facts.ts';
import { StripeAdapter } from '../../lambdas/connectors/stripe/adapter.ts';
import { StripeDisputeConnector } from '../../lambdas/connectors/stripe/disputes.ts';
import {
  ProcessorRequestError,
  type AuthorizeRequest,
  type ProcessorAdapter,
} from '../../lambdas/connectors/types.ts';
import { AdyenSimulator } from '../../lib/local/processors/adyen/simulator.ts';
import { StripeSimulator } from '../../lib/local/processors/stripe-simulator.ts';

const PROCESSORS = ['stripe', 'adyen'] as const;
type ProcessorName = (typeof PROCESSORS)[number];

interface Target {
  processor: ProcessorName;
  kind: 'simulator' | 'sandbox';
  skip?: string;
}

interface DisputeFixture {
  connector: DisputeConnector;
  /** Whether the dispute's later states can be observed here (not Adyen's sandbox). */
  observesDisputes: boolean;
  /** A captured payment made with `pm_card_createDispute`, and its dispute's reference once funds are withdrawn. */
  disputedPayment(amount: number): Promise<{ paymentReference: string; disputeReference: string }>;
  stop(): Promise<void>;
}

function targets(processor: ProcessorName, env: NodeJS.ProcessEnv = process.env): Target[] {
  const sandbox: Target = { processor, kind: 'sandbox' };
  if (processor === 'stripe' && !env.STRIPE_SECRET_KEY?.startsWith('sk_test_'))
    sandbox.skip = 'set STRIPE_SECRET_KEY (sk_test_…) to run against Stripe test mode';
  if (processor === 'adyen' && !(env.ADYEN_API_KEY && env.ADYEN_MERCHANT_ACCOUNT))
    sandbox.skip = "set ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT to run against Adyen's test environment";
  return [{ processor, kind: 'simulator' }, sandbox];
}

async function eventually<T>(what: string, fn: () => Promise<T>, done: (v: T) => boolean, ms = 15_000) {
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
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; last: ${lastError ? (lastError as Error).message : JSON.stringify(last)}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

let seq = 0;
const request = (currency: string, amount: number): AuthorizeRequest => {
  seq++;
  const id = `pay_dcontract${seq}${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  return {
    paymentId: id,
    merchantId: 'mch_contract',
    amount,
    currency,
    paymentMethod: 'pm_card_createDispute',
    captureMethod: 'automatic',
    idempotencyKey: `${id}:authorize:1`,
  };
};

async function capturedReference(adapter: ProcessorAdapter, req: AuthorizeRequest): Promise<string> {
  const r = await adapter.authorize(req);
  if (r.outcome !== 'captured') throw new Error(`expected captured, got ${JSON.stringify(r)}`);
  return r.processorReference;
}

// --- Stripe -------------------------------------------------------------------------------------------

const STRIPE_SIM_KEY = 'sk_test_paystep_dispute_contract';

async function stripeFixture(kind: Target['kind']): Promise<DisputeFixture> {
  if (kind === 'sandbox') {
    const secretKey = process.env.STRIPE_SECRET_KEY!;
    const adapter = new StripeAdapter({ secretKey, timeoutMs: 20_000, maxNetworkRetries: 1 });
    const sdk = new Stripe(secretKey);
    return {
      connector: new StripeDisputeConnector({ secretKey, timeoutMs: 20_000, maxNetworkRetries: 1 }),
      observesDisputes: true,
      async disputedPayment(amount) {
        const pi = await capturedReference(adapter, request('usd', amount));
        const list = await eventually(
          `Stripe's dispute of ${pi}`,
          () => sdk.disputes.list({ payment_intent: pi, limit: 1 }),
          (l) => l.data.length > 0,
          60_000,
        );
        return { paymentReference: pi, disputeReference: list.data[0]!.id };
      },
      async stop() {},
    };
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-dispute-contract-stripe-'));
  const sim = new StripeSimulator({
    dataDir,
    payoutEveryMs: 0,
    disputes: { createDelayMs: 20, decisionDelayMs: 400 },
  });
  const apiBase = await sim.start();
  const adapter = new StripeAdapter({
    secretKey: STRIPE_SIM_KEY,
    apiBase,
    timeoutMs: 5000,
    maxNetworkRetries: 0,
  });
  return {
    connector: new StripeDisputeConnector({
      secretKey: STRIPE_SIM_KEY,
      apiBase,
      timeoutMs: 5000,
      maxNetworkRetries: 0,
    }),
    observesDisputes: true,
    async disputedPayment(amount) {
      const pi = await capturedReference(adapter, request('usd', amount));
      const d = await eventually(
        `the simulator's dispute of ${pi}`,
        async () => sim.disputes({ payment_intent: pi })[0],
        (x) => x !== undefined,
      );
      return { paymentReference: pi, disputeReference: d!.id as string };
    },
    async stop() {
      await sim.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// --- Adyen --------------------------------------------------------------------------------------------

const ADYEN_SIM_MERCHANT = 'PaystepDisputeContract';
const ADYEN_SIM_KEY = 'AQE_test_paystep_dispute_contract';
/** A test HMAC key (hex), not a secret: only this suite's simulator signs with it. */
const ADYEN_SIM_HMAC = '0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C';

/** What paystep's stores give the Adyen connectors: stored facts and the payments behind pspReferences. */
class AdyenRecords {
  readonly facts = new Map<string, ConnectorFact>();
  readonly payments = new Map<string, string>();
  factsOf = async (reference: string) =>
    [...this.facts.values()].filter(
      (f) => f.reference === reference || ('paymentReference' in f && f.paymentReference === reference),
    );
}

async function adyenFixture(kind: Target['kind']): Promise<DisputeFixture> {
  const records = new AdyenRecords();
  const state = {
    facts: records.factsOf,
    paymentId: async (psp: string) => records.payments.get(psp),
  };
  if (kind === 'sandbox') {
    const merchantAccount = process.env.ADYEN_MERCHANT_ACCOUNT!;
    return {
      connector: new AdyenDisputeConnector({
        apiKey: process.env.ADYEN_API_KEY!,
        merchantAccount,
        environment: 'test',
        timeoutMs: 20_000,
        state,
      }),
      observesDisputes: false,
      disputedPayment: () => {
        throw new Error("Adyen's sandbox notifications do not reach this process");
      },
      async stop() {},
    };
  }
  const sim = new AdyenSimulator({
    hmacKeyHex: ADYEN_SIM_HMAC,
    merchantAccount: ADYEN_SIM_MERCHANT,
    apiKey: ADYEN_SIM_KEY,
    settlementEveryMs: 0,
    delays: { dispute: 20, chargeback: 20, disputeDecision: 400 },
    // In-process delivery to what POST /webhooks/adyen does first: verify, then store each fact once.
    notify: {
      callback: (raw) => {
        const parsed = parseAdyenNotification(raw, {
          hmacKeys: [ADYEN_SIM_HMAC],
          merchantAccounts: [ADYEN_SIM_MERCHANT],
        });
        if (!parsed.response) return { status: 401, body: 'unauthorized' };
        for (const f of parsed.facts) if (!records.facts.has(f.id)) records.facts.set(f.id, f);
        return { status: 200, body: parsed.response };
      },
    },
  });
  const apiBase = await sim.start(0);
  const adapter = new AdyenAdapter({
    apiKey: ADYEN_SIM_KEY,
    merchantAccount: ADYEN_SIM_MERCHANT,
    apiBase,
    timeoutMs: 5000,
    returnUrl: 'https://shop.example/return',
  });
  return {
    connector: new AdyenDisputeConnector({
      apiKey: ADYEN_SIM_KEY,
      merchantAccount: ADYEN_SIM_MERCHANT,
      apiBase,
      timeoutMs: 5000,
      state,
    }),
    observesDisputes: true,
    async disputedPayment(amount) {
      const req = request('eur', amount);
      const psp = await capturedReference(adapter, req);
      records.payments.set(psp, req.paymentId);
      const fact = await eventually(
        `the CHARGEBACK notification of ${psp}`,
        async () =>
          [...records.facts.values()].find(
            (f): f is DisputeFact =>
              f.kind === 'dispute' && f.paymentReference === psp && f.event === 'chargeback',
          ),
        (f) => f !== undefined,
      );
      return { paymentReference: psp, disputeReference: fact!.reference };
    },
    async stop() {
      await sim.stop();
    },
  };
}

// --- The scenarios ------------------------------------------------------------------------------------

const WINNING = { product_description: 'A desk lamp', uncategorized_text: 'winning_evidence' };
const LOSING = { customer_name: 'Jane Doe', uncategorized_text: 'losing_evidence' };

describe.each([...PROCESSORS])('dispute connector contract: %s', (processor) => {
  for (const target of targets(processor)) {
    const name = target.skip ? `${target.kind} (skipped: ${target.skip})` : target.kind;
    (target.skip ? describe.skip : describe)(name, () => {
      let fx: DisputeFixture;
      const connector = () => fx.connector;
      beforeAll(async () => {
        fx = await (processor === 'stripe' ? stripeFixture(target.kind) : adyenFixture(target.kind));
      });
      afterAll(async () => {
        await fx?.stop();
      });
      const notificationsMissing =
        processor === 'adyen' && target.kind === 'sandbox'
          ? "Adyen has no API to read a dispute and its sandbox's notifications do not reach this process"
          : undefined;
      const needsDisputes = notificationsMissing
        ? (title: string, fn: () => Promise<void>) =>
            test.skip(`${title} (skipped: ${notificationsMissing})`, fn)
        : (title: string, fn: () => Promise<void>) => test(title, fn, 60_000);
      const settles = (reference: string, status: DisputeFacts['status']) =>
        eventually(
          `dispute ${reference} ${status}`,
          () => connector().retrieve(reference),
          (d) => d.status === status,
          target.kind === 'sandbox' ? 120_000 : 15_000,
        );

      test('names its processor and takes every text field of the neutral schema', () => {
        expect(connector().processor).toBe(processor);
        expect(connector().evidence.fields).toEqual(expect.arrayContaining([...TEXT_EVIDENCE_FIELDS]));
        for (const f of connector().evidence.fileFields) expect(connector().evidence.fields).toContain(f);
        expect(connector().evidence.maxFieldLength).toBeGreaterThanOrEqual(1000);
        expect(connector().evidence.maxTotalLength).toBeGreaterThanOrEqual(
          connector().evidence.maxFieldLength,
        );
      });

      test('an unknown dispute is refused, not an outage', async () => {
        const unknown = processor === 'stripe' ? 'dp_unknown_contract' : '9999999999999999';
        await expect(connector().retrieve(unknown)).rejects.toBeInstanceOf(ProcessorRequestError);
      });

      needsDisputes(
        'a disputed payment reads as needs_response, with its amount, reason, deadline and withdrawal',
        async () => {
          const { paymentReference, disputeReference } = await fx.disputedPayment(2100);
          const d = await settles(disputeReference, 'needs_response');
          expect(d).toMatchObject({
            processor,
            processor_reference: disputeReference,
            payment_reference: paymentReference,
            amount: 2100,
            reason: 'fraudulent',
            status: 'needs_response',
            has_evidence: false,
            submission_count: 0,
          });
          expect(d.evidence_due_by).toBeGreaterThan(Math.floor(Date.now() / 1000));
          const withdrawn = d.balance_transactions
            .filter((t) => t.amount < 0)
            .reduce((s, t) => s - t.amount, 0);
          expect(withdrawn).toBe(2100);
          expect(await connector().paystepPaymentId(d)).toMatch(/^pay_dcontract/);
        },
      );

      needsDisputes('winning evidence: under_review, then won; the same key is one submission', async () => {
        const { disputeReference } = await fx.disputedPayment(2200);
        const key = `contract:${randomUUID()}`;
        const first = await connector().submitEvidence(disputeReference, WINNING, true, key);
        expect(first).toMatchObject({ status: 'under_review', has_evidence: true, submission_count: 1 });
        expect(first.evidence).toMatchObject(WINNING);
        const retry = await connector().submitEvidence(disputeReference, WINNING, true, key);
        expect(['under_review', 'won']).toContain(retry.status);
        expect(retry.submission_count).toBe(1);
        const won = await settles(disputeReference, 'won');
        const reinstated = won.balance_transactions
          .filter((t) => t.amount > 0)
          .reduce((s, t) => s + t.amount, 0);
        expect(reinstated).toBe(2200);
      });

      needsDisputes('losing evidence: lost', async () => {
        const { disputeReference } = await fx.disputedPayment(2300);
        const r = await connector().submitEvidence(
          disputeReference,
          LOSING,
          true,
          `contract:${randomUUID()}`,
        );
        expect(r.status).toBe('under_review');
        await settles(disputeReference, 'lost');
      });

      needsDisputes('staged evidence leaves the dispute waiting for a response', async () => {
        const { disputeReference } = await fx.disputedPayment(2400);
        const staged = await connector().submitEvidence(
          disputeReference,
          { product_description: 'A lamp' },
          false,
          `contract:${randomUUID()}`,
        );
        expect(staged).toMatchObject({ status: 'needs_response', has_evidence: true, submission_count: 0 });
      });

      needsDisputes(
        'accepting is accepted (a loss); accepting again with the same key still is',
        async () => {
          const { disputeReference } = await fx.disputedPayment(2500);
          const key = `contract:${randomUUID()}`;
          expect((await connector().accept(disputeReference, key)).status).toBe('accepted');
          expect((await connector().accept(disputeReference, key)).status).toBe('accepted');
          await expect(
            connector().submitEvidence(disputeReference, WINNING, true, `contract:${randomUUID()}`),
          ).rejects.toBeInstanceOf(ProcessorRequestError);
        },
      );
    });
  }
});
