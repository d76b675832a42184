/**
 * Reconciliation's own vocabulary. Every processor's settlement data (Stripe's payouts and
 * balance transactions, Stripe's itemized payout reconciliation CSV, and Adyen's Settlement
 * details report) is normalized into `SettlementItem`s by a source (lambdas/reconciliation/sources/);
 * the matcher (engine.ts) only ever sees these, so a new format never changes the matcher.
 * Amounts are integer minor units, signed as the processor's balance sees them (a refund's gross is
 * negative); `net = gross − fee`.
 */

export type SettlementType =
  | 'charge'
  | 'refund'
  | 'refund_failure'
  | 'dispute'
  | 'dispute_reversal'
  | 'fee'
  | 'payout'
  | 'adjustment'
  | 'other';

export interface SettlementItem {
  processor: string;
  /** The processor's id of the line (Stripe: balance transaction `txn_…`), unique per processor. */
  item_id: string;
  payout_id: string;
  /** Date the payout's funds arrive (Stripe: automatic_payout_effective_at), yyyy-mm-dd UTC. */
  payout_date: string;
  type: SettlementType;
  /** The processor's payment reference paystep stores (`processor_reference`, Stripe `pi_…`). */
  reference: string | null;
  /** The processor object behind the line (Stripe `ch_…`, `re_…`, `du_…`). */
  source_id: string | null;
  currency: string;
  gross: number;
  fee: number;
  net: number;
  /** When the line was created at the processor (ISO), if known. */
  created: string | null;
  /** Merchant the processor's metadata names (unverified: the match decides). */
  merchant_hint: string | null;
}

export interface PayoutHeader {
  processor: string;
  payout_id: string;
  payout_date: string;
  currency: string;
  /** What reached the bank; null when the source does not say (then the total is not checked). */
  amount: number | null;
  status?: string;
}

/** A settlement line seen in an earlier payout, for the same payment reference. */
export interface PriorSettlement {
  item_id: string;
  payout_id: string;
  payout_date: string;
  type: SettlementType;
  gross: number;
}

/** What paystep knows of a payment, for matching (from the payment and its reference index). */
export interface InternalRecord {
  reference: string;
  payment_id: string;
  merchant_id: string;
  processor: string;
  currency: string;
  amount_captured: number;
  amount_refunded: number;
  status: string;
  /** Day the capture happened (yyyy-mm-dd), if captured. */
  captured_on: string | null;
  /** Payout that settled it, if one did. */
  settled_payout: string | null;
  /** Lines of earlier payouts for this reference. */
  prior: PriorSettlement[];
}

export const EXCEPTION_TYPES = [
  'missing_internally',
  'missing_at_processor',
  'amount_mismatch',
  'currency_mismatch',
  'fee_mismatch',
  'duplicate',
  'refund_above_charge',
  'payout_total_mismatch',
] as const;
export type ExceptionType = (typeof EXCEPTION_TYPES)[number];

export interface ReconException {
  /** `<type>:<processor>:<subject>`: the same difference always has the same id. */
  id: string;
  type: ExceptionType;
  processor: string;
  /** Null when no merchant can be named (a line that matches nothing, a payout's total). */
  merchant_id: string | null;
  payout_id: string | null;
  item_id: string | null;
  payment_id: string | null;
  reference: string | null;
  currency: string | null;
  expected: number | null;
  actual: number | null;
  /** What is wrong, in words finance can act on. */
  reason: string;
}

export type ItemStatus = 'matched' | 'exception' | 'not_applicable';

export interface ItemResult {
  item: SettlementItem;
  merchant_id: string | null;
  payment_id: string | null;
  status: ItemStatus;
  exceptions: ReconException[];
  /** Mark the payment `settled` (a charge that matched in amount and currency, not a duplicate). */
  settle: boolean;
  expected_amount: number | null;
  expected_fee: number | null;
}

export interface PayoutCheck {
  processor: string;
  payout_id: string;
  payout_date: string;
  currency: string;
  amount: number | null;
  items: number;
  gross: number;
  fee: number;
  net: number;
  difference: number | null;
}
