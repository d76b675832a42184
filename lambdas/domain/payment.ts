/**
 * The payment state machine (docs/states.md): statuses, the allowed transitions, and the
 * plain-language explanation of where a payment is. Pure: no I/O.
 */
import type { Failure } from '../processors/types.ts';
import { formatAmount } from './money.ts';

export const PAYMENT_STATUSES = [
  'processing',
  'pending_review',
  'requires_action',
  'authorized',
  'captured',
  'settled',
  'partially_refunded',
  'refunded',
  'disputed',
  'charged_back',
  'failed',
  'canceled',
] as const;

export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const TRANSITIONS: Record<PaymentStatus, readonly PaymentStatus[]> = {
  processing: ['pending_review', 'requires_action', 'authorized', 'captured', 'failed', 'canceled'],
  pending_review: ['processing', 'canceled'],
  requires_action: ['processing', 'authorized', 'captured', 'failed', 'canceled'],
  authorized: ['captured', 'canceled'],
  captured: ['settled', 'partially_refunded', 'refunded', 'disputed'],
  settled: ['partially_refunded', 'refunded', 'disputed'],
  partially_refunded: ['partially_refunded', 'refunded', 'disputed', 'settled'],
  disputed: ['captured', 'settled', 'partially_refunded', 'charged_back'],
  refunded: [],
  charged_back: [],
  failed: [],
  canceled: [],
};

export const TERMINAL_STATUSES: PaymentStatus[] = PAYMENT_STATUSES.filter((s) => TRANSITIONS[s].length === 0);

export const canTransition = (from: PaymentStatus, to: PaymentStatus) => TRANSITIONS[from].includes(to);

/** Statuses from which `to` may be reached: the condition of the guarded write. */
export const allowedSources = (to: PaymentStatus): PaymentStatus[] =>
  PAYMENT_STATUSES.filter((from) => TRANSITIONS[from].includes(to));

export const isPaymentStatus = (s: unknown): s is PaymentStatus =>
  typeof s === 'string' && (PAYMENT_STATUSES as readonly string[]).includes(s);

export interface Customer {
  id?: string;
  email?: string;
  country?: string;
}

export interface Payment {
  id: string;
  object: 'payment';
  merchant_id: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  amount_captured: number;
  amount_refunded: number;
  capture_method: 'automatic' | 'manual';
  payment_method: string;
  processor: string | null;
  processor_reference: string | null;
  failure: Failure | null;
  order_id: string | null;
  customer: Customer | null;
  channel: string | null;
  description: string | null;
  metadata: Record<string, string>;
  card: { brand?: string; last4?: string; country?: string } | null;
  capture_before: number | null;
  cancellation_reason: string | null;
  review: { id: string; reasons: string[]; status: 'open' | 'approved' | 'rejected' | 'expired' } | null;
  execution_arn: string | null;
  created: number;
  updated: number;
  version: number;
}

/** Where the payment is and what to do about it, in words support can read to a customer. */
export function explain(p: Payment): string {
  const amount = formatAmount(p.amount, p.currency);
  const captured = formatAmount(p.amount_captured, p.currency);
  switch (p.status) {
    case 'processing':
      return `Payment of ${amount} is being processed: paystep is screening and authorizing it with the processor. No action needed; it usually completes within seconds.`;
    case 'pending_review':
      return `Payment of ${amount} is held for a manual risk review${p.review?.reasons.length ? ` (${p.review.reasons.join('; ')})` : ''}. No money has moved. An operator approves or rejects it; if nobody decides within the review window it is canceled.`;
    case 'requires_action':
      return `Payment of ${amount} is waiting for the customer to authenticate with their bank (3-D Secure). Ask the customer to complete the authentication step.`;
    case 'authorized':
      return `Payment of ${amount} is authorized: the customer's bank holds the funds. Capture it to collect the money${p.capture_before ? ` before ${new Date(p.capture_before * 1000).toISOString()}` : ''}, or cancel it to release the hold.`;
    case 'captured':
      return p.amount_captured < p.amount
        ? `Payment captured for ${captured} of ${amount}; the rest of the hold was released. Funds will be paid out by the processor.`
        : `Payment of ${amount} is captured. Funds will be paid out by the processor.`;
    case 'settled':
      return `Payment of ${captured} is settled: it was included in a processor payout.`;
    case 'partially_refunded':
      return `Payment of ${captured} was partially refunded (${formatAmount(p.amount_refunded, p.currency)}).`;
    case 'refunded':
      return `Payment of ${captured} was fully refunded to the customer.`;
    case 'disputed':
      return `The customer disputed this payment of ${captured} with their bank. Funds are withheld until the dispute is resolved; submit evidence before the deadline.`;
    case 'charged_back':
      return `The dispute was lost: the bank returned ${captured} to the customer.`;
    case 'canceled':
      return `Payment of ${amount} was canceled${p.cancellation_reason ? ` (${p.cancellation_reason.replace(/_/g, ' ')})` : ''}. No money was collected.`;
    case 'failed':
      return p.failure
        ? `${p.failure.explanation} ${p.failure.recommended_action}`
        : `Payment of ${amount} failed.`;
  }
}
