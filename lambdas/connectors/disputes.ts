/**
 * The processor-neutral dispute connector: what paystep asks of a processor about a dispute, in
 * paystep's own terms (docs/disputes.md § "One interface, every processor"). Each processor
 * implements it in its connector folder (stripe/disputes.ts, adyen/disputes.ts); the registry
 * builds them (`disputes(name)` in registry.ts). lambdas/disputes/ only ever sees this file's
 * types: paystep's dispute statuses, the neutral evidence schema below, and `DisputeFacts`.
 *
 * Errors as the payments adapter's (types.ts): ProcessorUnavailableError — the outcome is unknown,
 * retry with the same idempotency key; ProcessorRequestError — the processor refused, do not retry.
 */
import type { DisputeStatus } from '../disputes/model.ts';

// --- The neutral evidence schema ---------------------------------------------------------------

/**
 * Text evidence: plain text every connector accepts (Stripe sends each field as it is; Adyen
 * renders them into defense documents). What each field proves is in docs/disputes.md.
 */
export const TEXT_EVIDENCE_FIELDS = [
  'access_activity_log',
  'billing_address',
  'cancellation_policy_disclosure',
  'cancellation_rebuttal',
  'customer_email_address',
  'customer_name',
  'customer_purchase_ip',
  'duplicate_charge_explanation',
  'duplicate_charge_id',
  'product_description',
  'refund_policy_disclosure',
  'refund_refusal_explanation',
  'service_date',
  'shipping_address',
  'shipping_carrier',
  'shipping_date',
  'shipping_tracking_number',
  'uncategorized_text',
] as const;

/**
 * File evidence: a file the merchant already uploaded to the processor, by the processor's file
 * id (paystep does not upload files). Only connectors with a file store of their own accept them
 * (`EvidenceSupport.fileFields`); the others refuse them by name.
 */
export const FILE_EVIDENCE_FIELDS = [
  'cancellation_policy',
  'customer_communication',
  'customer_signature',
  'duplicate_charge_documentation',
  'receipt',
  'refund_policy',
  'service_documentation',
  'shipping_documentation',
  'uncategorized_file',
] as const;

export const EVIDENCE_FIELDS = [...TEXT_EVIDENCE_FIELDS, ...FILE_EVIDENCE_FIELDS].sort() as readonly (
  (typeof TEXT_EVIDENCE_FIELDS)[number] | (typeof FILE_EVIDENCE_FIELDS)[number]
)[];

export type EvidenceField = (typeof EVIDENCE_FIELDS)[number];

/** Evidence in the neutral schema: each field a non-empty string. */
export type Evidence = Partial<Record<EvidenceField, string>>;

/** What evidence a connector accepts, and its limits (the API checks them before calling it). */
export interface EvidenceSupport {
  /** Every field the connector accepts (text fields always; file fields when it has a file store). */
  fields: readonly EvidenceField[];
  /** The file fields among them. */
  fileFields: readonly EvidenceField[];
  /** Characters in one field. */
  maxFieldLength: number;
  /** Characters in all fields together. */
  maxTotalLength: number;
  /** Whether evidence can be staged (sent without handing it to the issuer: `submit: false`). */
  staging: boolean;
}

/** Which groups of fields a piece of evidence belongs to (a connector maps groups to its own documents). */
export const EVIDENCE_GROUPS: Readonly<
  Record<EvidenceField, 'customer' | 'delivery' | 'policy' | 'duplicate' | 'other'>
> = {
  access_activity_log: 'customer',
  billing_address: 'customer',
  customer_email_address: 'customer',
  customer_name: 'customer',
  customer_purchase_ip: 'customer',
  customer_signature: 'customer',
  customer_communication: 'customer',
  receipt: 'customer',
  shipping_address: 'delivery',
  shipping_carrier: 'delivery',
  shipping_date: 'delivery',
  shipping_documentation: 'delivery',
  shipping_tracking_number: 'delivery',
  service_date: 'delivery',
  service_documentation: 'delivery',
  product_description: 'delivery',
  cancellation_policy: 'policy',
  cancellation_policy_disclosure: 'policy',
  cancellation_rebuttal: 'policy',
  refund_policy: 'policy',
  refund_policy_disclosure: 'policy',
  refund_refusal_explanation: 'policy',
  duplicate_charge_documentation: 'duplicate',
  duplicate_charge_explanation: 'duplicate',
  duplicate_charge_id: 'duplicate',
  uncategorized_file: 'other',
  uncategorized_text: 'other',
};

// --- Neutral dispute facts -----------------------------------------------------------------------

/** A dispute's effect on the merchant's balance (a withdrawal or a reinstatement). */
export interface BalanceEffect {
  id: string;
  /** Signed minor units: negative = withdrawn, positive = reinstated. */
  amount: number;
  /** Fee in minor units (positive = charged, negative = returned). */
  fee: number;
  net: number;
  currency: string;
  reporting_category: string;
  created: number;
}

/** What a processor says about a dispute, in paystep's terms. */
export interface DisputeFacts {
  processor: string;
  processor_reference: string;
  /** The disputed payment's processor reference (Stripe: its PaymentIntent; Adyen: its pspReference). */
  payment_reference: string | null;
  /** Stripe only: the disputed charge. */
  charge: string | null;
  /** The paystep payment id when the processor's object names it (metadata, merchant reference). */
  paystep_payment_id: string | null;
  /** Minor units. */
  amount: number;
  /** Lowercase ISO 4217. */
  currency: string;
  /** paystep's reason (`fraudulent`, `product_not_received`, … `general`). */
  reason: string;
  /**
   * paystep's status, or null for a state paystep does not model (Stripe `prevented`, `appeal_*`;
   * Adyen's fraud notice): the change is logged and ignored.
   */
  status: DisputeStatus | null;
  /** The processor's own status (for support; Stripe `needs_response`, Adyen `Undefended`…). */
  processor_status: string;
  /** Epoch seconds. */
  evidence_due_by: number | null;
  network_reason_code: string | null;
  evidence: Evidence;
  has_evidence: boolean;
  submission_count: number;
  balance_transactions: BalanceEffect[];
  /** Epoch seconds: when the processor last changed the dispute, as far as these facts tell. */
  processor_updated: number;
  processor_created: number;
}

/** The neutral dispute connector. */
export interface DisputeConnector {
  readonly processor: string;
  readonly evidence: EvidenceSupport;
  /** The dispute as the processor has it now. */
  retrieve(reference: string): Promise<DisputeFacts>;
  /**
   * Sends evidence; `submit: true` hands it to the issuer (→ under_review / warning_under_review),
   * `false` stages it. The same idempotency key is one submission, whatever the retries.
   */
  submitEvidence(
    reference: string,
    evidence: Evidence,
    submit: boolean,
    idempotencyKey: string,
  ): Promise<DisputeFacts>;
  /** Accepts the dispute: a chargeback is lost (`accepted`), irreversibly; an inquiry closes. */
  accept(reference: string, idempotencyKey: string): Promise<DisputeFacts>;
  /**
   * Reads a dispute event the processor's webhook delivered (verified by the caller): its facts,
   * or undefined when it is not a dispute event this connector handles.
   */
  readEvent?(eventType: string, payload: unknown): DisputeFacts | undefined;
  /**
   * The paystep payment a dispute belongs to when its facts do not name it (Stripe: the
   * PaymentIntent's metadata). undefined: not paystep's, or unknown to the processor.
   */
  paystepPaymentId(facts: DisputeFacts): Promise<string | undefined>;
}

/** Evidence fields a connector does not accept, for a clear 400. */
export function unsupportedFields(support: EvidenceSupport, evidence: Evidence): EvidenceField[] {
  return (Object.keys(evidence) as EvidenceField[]).filter((f) => !support.fields.includes(f));
}
