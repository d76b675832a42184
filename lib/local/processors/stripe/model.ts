/** The simulator's internal records: object kinds, journal records, request context, constants. */
import { createHash } from 'node:crypto';
import Stripe from 'stripe';
import type { Reader } from './form.ts';
import type { StripeEvent, StripeObject } from './types.ts';

export type Kind =
  'payment_intent' | 'charge' | 'refund' | 'payment_method' | 'balance_transaction' | 'payout' | 'dispute';

export type DisputeOutcome = 'won' | 'lost' | 'escalate';

/**
 * Stripe's dispute evidence fields (text, or the id of an uploaded file): one list, Stripe's API
 * fact, shared with the connector that sends them.
 */
export { STRIPE_EVIDENCE_FIELDS as DISPUTE_EVIDENCE_FIELDS } from '../../../../lambdas/connectors/stripe/disputes.ts';
export const DISPUTE_ANSWERABLE = ['needs_response', 'warning_needs_response'];
export const DISPUTE_CLOSED = ['won', 'lost', 'warning_closed'];
/** Stripe's dispute fee (minor units), withdrawn with the disputed amount and returned on a win. */
export const DISPUTE_FEE = 1500;

export interface SimInfo {
  /** Test PaymentMethod id the object comes from (`pm_card_visa`, …). */
  testCard?: string;
  dispute?: { reason: string; inquiry: boolean };
  /** The `return_url` a PaymentIntent was confirmed with (where the 3-D Secure page sends the customer back). */
  returnUrl?: string;
  /** Pending asynchronous refund change: the status it moves to, and when (epoch ms). */
  transition?: { to: 'succeeded' | 'failed'; at: number };
  /** Charge of a `pm_card_createDispute*` card: when its dispute is created (epoch ms), and its id once it is. */
  disputeAt?: number;
  disputeId?: string;
  /** Dispute: the decision its evidence asked for, and when it applies (epoch ms). */
  disputeDecision?: { outcome: DisputeOutcome; at: number };
  /** Balance transaction: the payout that paid it out. */
  payout?: string;
  /** Payout: its balance transactions, in the order first stored (its own last). */
  txns?: string[];
}

export interface IdempotencyRecord {
  endpoint: string;
  paramsHash: string;
  status: number;
  body: string;
  requestId: string;
  createdMs: number;
}

export type JournalRecord =
  | { t: 'obj'; kind: Kind; obj: StripeObject; sim?: SimInfo }
  | { t: 'idem'; scope: string; rec: IdempotencyRecord }
  /** `seq`: the event's sequence number (absent in journals written before it existed: file order). */
  | { t: 'evt'; event: StripeEvent; seq?: number };

export interface RequestContext {
  requestId: string;
  idempotencyKey: string | null;
  apiVersion: string;
  events: StripeEvent[];
}

export interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: (params: Reader, ctx: RequestContext, id: string) => StripeObject;
}

export const DEFAULT_API_VERSION: string = Stripe.API_VERSION;

export const PI_STATUSES_CANCELABLE = [
  'requires_payment_method',
  'requires_capture',
  'requires_confirmation',
  'requires_action',
  'processing',
];
export const PI_STATUSES_CONFIRMABLE = [
  'requires_confirmation',
  'requires_payment_method',
  'requires_action',
];

export const clone = <T>(v: T): T => structuredClone(v);
export const stableStringify = (v: unknown): string =>
  JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : val,
  );
export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const EXPANDABLE: Record<Kind, readonly string[]> = {
  payment_intent: ['latest_charge', 'payment_method'],
  charge: ['balance_transaction', 'payment_intent', 'payment_method', 'failure_balance_transaction'],
  refund: ['charge', 'payment_intent', 'balance_transaction', 'failure_balance_transaction'],
  payment_method: [],
  balance_transaction: ['source'],
  dispute: ['charge', 'payment_intent'],
  payout: ['balance_transaction'],
};
