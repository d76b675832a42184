/**
 * Disputes at Stripe: the neutral `DisputeConnector` (../disputes.ts) on the Stripe payments
 * adapter's own SDK client (client.ts builds it; the registry configures it: the secret
 * `stripe-secret-key`, STRIPE_API_BASE for the local simulator (unset in AWS),
 * PAYSTEP_PROCESSOR_TIMEOUT_MS, the SDK's pinned API version), so there is one client per container
 * and a rotated key reaches disputes as it reaches payments.
 *
 * - retrieve = disputes.retrieve; submitEvidence = disputes.update({evidence, submit}); accept =
 *   disputes.close (Stripe reports the dispute `lost`; paystep records it `accepted`).
 * - Evidence: paystep's neutral schema is Stripe's field for field (text fields as they are, file
 *   fields as Stripe file ids), so the mapping is the identity on the fields both know.
 * - `factsFromStripe` reads a Stripe dispute object (webhook `data.object` or an API answer) into
 *   neutral `DisputeFacts`; Stripe's statuses are paystep's names, except those paystep does not
 *   model (`prevented`, `appeal_*` → null).
 * - paystepPaymentId: the PaymentIntent's `metadata.paystep_payment_id` (set by the adapter when it
 *   created it), to find the payment a dispute belongs to.
 * Errors as the adapter's: ProcessorUnavailableError (network, timeout, 5xx, 409, 429: retry with the
 * same idempotency key) or ProcessorRequestError (refused: do not retry).
 */
import Stripe from 'stripe';
import { DISPUTE_STATUSES, type DisputeStatus } from '../../disputes/model.ts';
import {
  EVIDENCE_FIELDS,
  FILE_EVIDENCE_FIELDS,
  type BalanceEffect,
  type DisputeConnector,
  type DisputeFacts,
  type Evidence,
  type EvidenceField,
  type EvidenceSupport,
} from '../disputes.ts';
import { ProcessorRequestError, ProcessorUnavailableError } from '../types.ts';
import type { StripeAdapter } from './adapter.ts';
import { type StripeClientOptions, createStripeClient } from './client.ts';

const NAME = 'stripe';

/** Text and file-id evidence fields of a Stripe dispute (docs.stripe.com/api/disputes/update). */
export const STRIPE_EVIDENCE_FIELDS = [
  'access_activity_log',
  'billing_address',
  'cancellation_policy',
  'cancellation_policy_disclosure',
  'cancellation_rebuttal',
  'customer_communication',
  'customer_email_address',
  'customer_name',
  'customer_purchase_ip',
  'customer_signature',
  'duplicate_charge_documentation',
  'duplicate_charge_explanation',
  'duplicate_charge_id',
  'product_description',
  'receipt',
  'refund_policy',
  'refund_policy_disclosure',
  'refund_refusal_explanation',
  'service_date',
  'service_documentation',
  'shipping_address',
  'shipping_carrier',
  'shipping_date',
  'shipping_documentation',
  'shipping_tracking_number',
  'uncategorized_file',
  'uncategorized_text',
] as const;

export type StripeEvidenceField = (typeof STRIPE_EVIDENCE_FIELDS)[number];

/** The client's options, for a disputes client of its own (tests); `maxNetworkRetries` defaults to 1. */
export type StripeDisputesOptions = StripeClientOptions;

export class StripeDisputes {
  private readonly stripe: Stripe;

  /** On an existing SDK client (the adapter's), or on one built from options. */
  constructor(client: Stripe | StripeDisputesOptions) {
    this.stripe =
      'secretKey' in client
        ? createStripeClient({ maxNetworkRetries: 1, ...client }, 'StripeDisputes')
        : client;
  }

  /** Sends evidence; `submit: true` hands it to the issuer (status → under_review). */
  async submitEvidence(
    reference: string,
    evidence: Partial<Record<StripeEvidenceField, string>>,
    submit: boolean,
    idempotencyKey: string,
  ): Promise<Record<string, unknown>> {
    try {
      const d = await this.stripe.disputes.update(reference, { evidence, submit }, { idempotencyKey });
      return d as unknown as Record<string, unknown>;
    } catch (err) {
      throw translate(err, 'dispute evidence');
    }
  }

  /** Accepts the dispute (Stripe: close): it is lost, irreversibly. */
  async close(reference: string, idempotencyKey: string): Promise<Record<string, unknown>> {
    try {
      const d = await this.stripe.disputes.close(reference, {}, { idempotencyKey });
      return d as unknown as Record<string, unknown>;
    } catch (err) {
      throw translate(err, 'dispute close');
    }
  }

  async retrieve(reference: string): Promise<Record<string, unknown>> {
    try {
      return (await this.stripe.disputes.retrieve(reference)) as unknown as Record<string, unknown>;
    } catch (err) {
      throw translate(err, 'dispute retrieve');
    }
  }

  /**
   * The paystep payment behind a PaymentIntent (or, without one, a charge), from the metadata the
   * adapter set. undefined: the object does not exist or is not paystep's.
   */
  async paystepPaymentId(ref: {
    paymentIntent?: string | null;
    charge?: string | null;
  }): Promise<string | undefined> {
    try {
      let pi = ref.paymentIntent ?? undefined;
      if (!pi && ref.charge) {
        const ch = await this.stripe.charges.retrieve(ref.charge);
        const fromCharge = ch.metadata?.paystep_payment_id;
        if (fromCharge) return fromCharge;
        pi = typeof ch.payment_intent === 'string' ? ch.payment_intent : ch.payment_intent?.id;
      }
      if (!pi) return undefined;
      const intent = await this.stripe.paymentIntents.retrieve(pi);
      return intent.metadata?.paystep_payment_id || undefined;
    } catch (err) {
      if (err instanceof Stripe.errors.StripeError && err.statusCode === 404) return undefined;
      throw translate(err, 'payment lookup');
    }
  }
}

/** SDK error → retryable (outcome unknown) or refused, as adapter.ts decides. */
function translate(err: unknown, operation: string): Error {
  const E = Stripe.errors;
  if (err instanceof E.StripeError) {
    const status = err.statusCode;
    if (
      err instanceof E.StripeConnectionError ||
      status === undefined ||
      status >= 500 ||
      status === 409 ||
      status === 429
    )
      return new ProcessorUnavailableError(NAME, `Stripe ${operation} failed: ${err.type}: ${err.message}`, {
        cause: err,
      });
    return new ProcessorRequestError(
      NAME,
      `Stripe ${operation} refused (${status}): ${err.message}`,
      err.code ?? err.rawType ?? err.type,
      { cause: err },
    );
  }
  return new ProcessorUnavailableError(
    NAME,
    `Stripe ${operation} failed: ${(err as Error)?.message ?? err}`,
    {
      cause: err,
    },
  );
}

// --- Stripe dispute objects in paystep's terms -------------------------------------------------

/** Stripe's dispute webhook event types. */
export const STRIPE_DISPUTE_EVENT_TYPES = [
  'charge.dispute.created',
  'charge.dispute.updated',
  'charge.dispute.closed',
  'charge.dispute.funds_withdrawn',
  'charge.dispute.funds_reinstated',
] as const;

/** Stripe's limits: 20,000 characters a field, 150,000 in all. */
export const STRIPE_EVIDENCE_SUPPORT: EvidenceSupport = {
  fields: EVIDENCE_FIELDS.filter((f) => (STRIPE_EVIDENCE_FIELDS as readonly string[]).includes(f)),
  fileFields: FILE_EVIDENCE_FIELDS,
  maxFieldLength: 20_000,
  maxTotalLength: 150_000,
  staging: true,
};

/** Neutral evidence → Stripe's evidence fields (the same names: see the module comment). */
export function stripeEvidence(evidence: Evidence): Partial<Record<StripeEvidenceField, string>> {
  const out: Partial<Record<StripeEvidenceField, string>> = {};
  for (const [k, v] of Object.entries(evidence))
    if (typeof v === 'string' && v && (STRIPE_EVIDENCE_FIELDS as readonly string[]).includes(k))
      out[k as StripeEvidenceField] = v;
  return out;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/** Stripe's status in paystep's terms: the same names; those paystep does not model → null. */
export function stripeStatus(status: string): DisputeStatus | null {
  return (DISPUTE_STATUSES as readonly string[]).includes(status) && status !== 'accepted'
    ? (status as DisputeStatus)
    : null;
}

/**
 * Reads a Stripe dispute object (webhook `data.object` or an API response). Returns undefined
 * for something that is not a dispute object.
 */
export function factsFromStripe(d: Record<string, unknown>): DisputeFacts | undefined {
  const id = str(d.id);
  const amount = num(d.amount);
  const currency = str(d.currency);
  const status = str(d.status);
  if (d.object !== 'dispute' || !id || amount === null || !currency || !status) return undefined;
  const pi = d.payment_intent;
  const piObj = obj(pi);
  const charge = d.charge;
  const details = obj(d.evidence_details) ?? {};
  const evidence: Evidence = {};
  for (const [k, v] of Object.entries(obj(d.evidence) ?? {}))
    if (typeof v === 'string' && v && (EVIDENCE_FIELDS as readonly string[]).includes(k))
      evidence[k as EvidenceField] = v;
  const card = obj(obj(d.payment_method_details)?.card);
  const txns: BalanceEffect[] = [];
  for (const t of Array.isArray(d.balance_transactions) ? d.balance_transactions : []) {
    const o = obj(t);
    const tid = str(o?.id);
    const tAmount = num(o?.amount);
    if (!o || !tid || tAmount === null) continue;
    const fee = num(o.fee) ?? 0;
    txns.push({
      id: tid,
      amount: tAmount,
      fee,
      net: num(o.net) ?? tAmount - fee,
      currency: str(o.currency) ?? currency,
      reporting_category: str(o.reporting_category) ?? (tAmount < 0 ? 'dispute' : 'dispute_reversal'),
      created: num(o.created) ?? 0,
    });
  }
  const dueBy = num(details.due_by);
  const created = num(d.created) ?? 0;
  return {
    processor: NAME,
    processor_reference: id,
    payment_reference: typeof pi === 'string' ? pi : str(piObj?.id),
    charge: typeof charge === 'string' ? charge : str(obj(charge)?.id),
    paystep_payment_id: str(obj(piObj?.metadata)?.paystep_payment_id),
    amount,
    currency: currency.toLowerCase(),
    reason: str(d.reason) ?? 'general',
    status: stripeStatus(status),
    processor_status: status,
    evidence_due_by: dueBy && dueBy > 0 ? dueBy : null,
    network_reason_code: str(d.network_reason_code) ?? str(card?.network_reason_code),
    evidence,
    has_evidence: details.has_evidence === true,
    submission_count: num(details.submission_count) ?? 0,
    balance_transactions: txns,
    processor_updated: Math.max(created, ...txns.map((t) => t.created)),
    processor_created: created,
  };
}

/** The neutral dispute connector on Stripe's Disputes API. */
export class StripeDisputeConnector implements DisputeConnector {
  readonly processor = NAME;
  readonly evidence = STRIPE_EVIDENCE_SUPPORT;
  private readonly api: StripeDisputes;

  constructor(client: Stripe | StripeDisputesOptions) {
    this.api = new StripeDisputes(client);
  }

  async retrieve(reference: string): Promise<DisputeFacts> {
    return this.read(await this.api.retrieve(reference), 'retrieve');
  }

  async submitEvidence(
    reference: string,
    evidence: Evidence,
    submit: boolean,
    idempotencyKey: string,
  ): Promise<DisputeFacts> {
    const obj = await this.api.submitEvidence(reference, stripeEvidence(evidence), submit, idempotencyKey);
    return this.read(obj, 'evidence');
  }

  /** Stripe closes the dispute as `lost`; a loss the merchant chose is paystep's `accepted`. */
  async accept(reference: string, idempotencyKey: string): Promise<DisputeFacts> {
    const facts = this.read(await this.api.close(reference, idempotencyKey), 'close');
    return facts.status === 'lost' ? { ...facts, status: 'accepted' } : facts;
  }

  readEvent(eventType: string, payload: unknown): DisputeFacts | undefined {
    if (!(STRIPE_DISPUTE_EVENT_TYPES as readonly string[]).includes(eventType)) return undefined;
    const o = obj(payload);
    return o ? factsFromStripe(o) : undefined;
  }

  async paystepPaymentId(facts: DisputeFacts): Promise<string | undefined> {
    return (
      facts.paystep_payment_id ??
      this.api.paystepPaymentId({ paymentIntent: facts.payment_reference, charge: facts.charge })
    );
  }

  private read(o: Record<string, unknown>, operation: string): DisputeFacts {
    const facts = factsFromStripe(o);
    if (!facts)
      throw new ProcessorUnavailableError(
        NAME,
        `Stripe dispute ${operation} answered without a dispute object`,
      );
    return facts;
  }
}

const connectors = new WeakMap<Stripe, StripeDisputeConnector>();

/** The dispute connector on a Stripe adapter's SDK client (one per client: the registry uses it). */
export function stripeDisputeConnector(adapter: StripeAdapter): StripeDisputeConnector {
  let c = connectors.get(adapter.client);
  if (!c) {
    c = new StripeDisputeConnector(adapter.client);
    connectors.set(adapter.client, c);
  }
  return c;
}
