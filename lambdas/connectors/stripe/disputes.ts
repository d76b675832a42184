/**
 * Disputes at Stripe, on the Stripe payments adapter's own SDK client (client.ts builds it; the
 * registry configures it: the secret `stripe-secret-key`, STRIPE_API_BASE for the local simulator
 * (unset in AWS), PAYSTEP_PROCESSOR_TIMEOUT_MS, the SDK's pinned API version), so there is one
 * client per container and a rotated key reaches disputes as it reaches payments.
 *
 * - submitEvidence = disputes.update({evidence, submit}); close = disputes.close (accept the loss).
 * - paystepPaymentId: the PaymentIntent's `metadata.paystep_payment_id` (set by the adapter when it
 *   created it), to find the payment a dispute belongs to.
 * Errors as the adapter's: ProcessorUnavailableError (network, timeout, 5xx, 409, 429: retry with the
 * same idempotency key) or ProcessorRequestError (refused: do not retry).
 */
import Stripe from 'stripe';
import { processor } from '../registry.ts';
import { ProcessorRequestError, ProcessorUnavailableError } from '../types.ts';
import { StripeAdapter } from './adapter.ts';
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

const clients = new WeakMap<Stripe, StripeDisputes>();

/**
 * The configured client: on the Stripe adapter's SDK client (the registry rebuilds the adapter when
 * the key changes, and the local runtime resets it when the simulator moves).
 */
export async function stripeDisputes(): Promise<StripeDisputes> {
  const adapter = await processor('stripe');
  if (!(adapter instanceof StripeAdapter)) throw new Error('processor stripe is not the Stripe adapter');
  let disputes = clients.get(adapter.client);
  if (!disputes) {
    disputes = new StripeDisputes(adapter.client);
    clients.set(adapter.client, disputes);
  }
  return disputes;
}
