/**
 * The processor adapter interface: everything paystep asks of a payment processor, in paystep's
 * own terms. Stripe is the first implementation (stripe/adapter.ts); Adyen and others implement the same
 * interface, so routing, workflows and reconciliation never see a processor's wire format.
 *
 * Errors: a *decline* is an answer (AuthorizeResult with outcome 'declined'), not an exception.
 * Exceptions mean the outcome is unknown or the request could not be made:
 * - ProcessorUnavailableError: network error, timeout, 5xx, rate limit. Safe to retry with the
 *   SAME idempotency key (the processor deduplicates), which is what the workflow's Retry does.
 * - ProcessorRequestError: the processor rejected the request itself (4xx other than a decline,
 *   e.g. invalid parameters, object not found, wrong state). Not retryable.
 */
import { PaystepError } from '../shared/errors.ts';

export type FailureCategory =
  'soft_decline' | 'hard_decline' | 'fraud' | 'authentication' | 'technical' | 'invalid_request';

/** Why an attempt failed, in words support can read to a customer (docs/api.md, the payment's `failure`). */
export interface Failure {
  category: FailureCategory;
  /** paystep's normalized code, e.g. `insufficient_funds`, `expired_card`, `processing_error`. */
  code: string;
  /** The processor's raw code, e.g. Stripe `card_declined/insufficient_funds`. */
  processor_code: string;
  /** Short message, safe to show to the payer. */
  message: string;
  /** What happened, for support. */
  explanation: string;
  /** What to do next, for support and the merchant. */
  recommended_action: string;
  /** Whether trying the same payment method again later may succeed. */
  retryable: boolean;
}

export interface CardDetails {
  brand?: string;
  last4?: string;
  country?: string;
  exp_month?: number;
  exp_year?: number;
}

export interface AuthorizeRequest {
  paymentId: string;
  merchantId: string;
  /** Minor units. */
  amount: number;
  /** Lowercase ISO 4217. */
  currency: string;
  /** Processor payment method reference (Stripe: `pm_…`, including test ids like `pm_card_visa`). */
  paymentMethod: string;
  captureMethod: 'automatic' | 'manual';
  customer?: { id?: string; email?: string; country?: string };
  description?: string;
  /** Key sent to the processor; the same key for retries of one attempt. */
  idempotencyKey: string;
}

export type AuthorizeResult =
  | {
      outcome: 'authorized' | 'captured';
      processorReference: string;
      /** Minor units captured so far (0 when only authorized). */
      amountCaptured: number;
      /** When an authorization lapses if not captured (epoch seconds), if the processor says. */
      captureBefore?: number;
      card?: CardDetails;
      /** Processor's raw status, e.g. `requires_capture`, `succeeded`. */
      rawStatus: string;
    }
  | { outcome: 'requires_action'; processorReference: string; rawStatus: string; nextActionUrl?: string }
  | { outcome: 'processing'; processorReference: string; rawStatus: string }
  | {
      outcome: 'declined';
      processorReference?: string;
      rawStatus?: string;
      failure: Failure;
      card?: CardDetails;
    };

export interface CaptureResult {
  processorReference: string;
  amountCaptured: number;
  rawStatus: string;
}

export interface CancelResult {
  processorReference: string;
  rawStatus: string;
}

export interface RefundResult {
  refundReference: string;
  status: 'pending' | 'succeeded' | 'failed' | 'canceled';
  amount: number;
  failureReason?: string;
}

export interface RetrieveResult {
  processorReference: string;
  /** paystep's view of the processor's state. */
  status:
    'requires_payment_method' | 'requires_action' | 'processing' | 'authorized' | 'captured' | 'canceled';
  amount: number;
  amountCaptured: number;
  amountRefunded: number;
  currency: string;
  rawStatus: string;
  failure?: Failure;
}

export interface ProcessorAdapter {
  readonly name: string;
  authorize(req: AuthorizeRequest): Promise<AuthorizeResult>;
  capture(reference: string, amount: number | undefined, idempotencyKey: string): Promise<CaptureResult>;
  cancel(reference: string, idempotencyKey: string): Promise<CancelResult>;
  refund(
    reference: string,
    amount: number,
    idempotencyKey: string,
    reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer',
  ): Promise<RefundResult>;
  retrieve(reference: string): Promise<RetrieveResult>;
  /** A refund's current state (the poll fallback when its webhook does not come). */
  retrieveRefund(refundReference: string): Promise<RefundResult>;
  /** Maps a processor decline code to paystep's failure taxonomy. */
  mapDecline(code: string | undefined, declineCode?: string, message?: string): Failure;
}

export class ProcessorError extends PaystepError {
  override name = 'ProcessorError';
  readonly processor: string;
  constructor(processor: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.processor = processor;
  }
}

/** Outcome unknown or request not made: retry with the same idempotency key. */
export class ProcessorUnavailableError extends ProcessorError {
  override name = 'ProcessorUnavailable';
}

/**
 * The request provably never reached the processor: the connection was refused, the processor's
 * name did not resolve, or the connection was never established (docs/routing.md "Attempts,
 * failover and cascades"). Nothing was processed, so the payment may fail over to the next
 * processor. A connector throws it only when it knows this call was the only one made with the
 * idempotency key (no SDK retry before it that might have reached the processor).
 */
export class ProcessorUnreachableError extends ProcessorUnavailableError {
  /** Always true: lets callers test the fact rather than the class. */
  readonly notProcessed = true;
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

const NEVER_SENT_WORDS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ENOTFOUND: 'the host name did not resolve',
  EAI_AGAIN: 'the host name could not be resolved',
  UND_ERR_CONNECT_TIMEOUT: 'connecting timed out',
};

/**
 * Why a network error (or an error in its `cause`/`detail` chain) proves the request was never
 * sent, in words with the code ("the connection was refused (ECONNREFUSED)"); undefined when it
 * does not. A reset, or a timeout after connecting, is no such proof: the request may have been
 * processed.
 */
export function neverSent(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT.has(code)) return `${NEVER_SENT_WORDS[code]} (${code})`;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length) {
      const each = errors.map((x) => neverSent(x));
      if (each.every(Boolean)) return each[0];
    }
    e = (e as { cause?: unknown }).cause ?? (e as { detail?: unknown }).detail;
  }
  return undefined;
}

/** The processor refused the request (not a decline): do not retry. */
export class ProcessorRequestError extends ProcessorError {
  override name = 'ProcessorRequestError';
  override readonly code?: string;
  constructor(processor: string, message: string, code?: string, options?: ErrorOptions) {
    super(processor, message, options);
    this.code = code;
  }
}
