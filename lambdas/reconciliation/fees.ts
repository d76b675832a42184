/**
 * Processor fee schedules and settlement delays: what reconciliation expects, to flag a fee that
 * differs from the contract and a capture no payout paid in time.
 */
import { currencyExponent, isSupportedCurrency } from '../domain/money.ts';
import type { SettlementType } from './types.ts';

export interface ProcessorTerms {
  /** Expected fee of a line, or null when the schedule says nothing about this type. */
  expectedFee(type: SettlementType, gross: number, currency: string): number | null;
  /** Allowed difference from the schedule, in minor units (the processor's rounding). */
  feeTolerance: number;
  /** Days after capture by which a payout must have paid it (else `missing_at_processor`). */
  settlementDelayDays: number;
}

/**
 * Stripe standard card pricing: 2.9 % of the charge + 30 minor units (no fixed part in
 * zero-decimal currencies), rounded to the minor unit; no fee on refunds. Funds become available
 * after 2 days and are paid out daily: 7 days leaves room for weekends and bank holidays.
 */
export const stripeTerms: ProcessorTerms = {
  expectedFee(type, gross, currency) {
    if (type !== 'charge') return null;
    const fixed = isSupportedCurrency(currency) && currencyExponent(currency) === 0 ? 0 : 30;
    return Math.round((gross * 29) / 1000) + fixed;
  },
  feeTolerance: 1,
  settlementDelayDays: 7,
};

/**
 * Adyen (Interchange++): a line's fee is Adyen's Commission + Markup + Scheme Fees + Interchange
 * (the Settlement details report's columns, summed by the importer and booked as the line's fee).
 * Interchange and scheme fees are passed through and differ per card (region, type, issuer), so
 * no fixed schedule predicts the total: fees are booked as Adyen states them, never flagged. A
 * batch closes daily and is paid after the contract's settlement delay (typically 2–3 business
 * days): 7 days leaves room for weekends and bank holidays.
 */
export const adyenTerms: ProcessorTerms = {
  expectedFee: () => null,
  feeTolerance: 0,
  settlementDelayDays: 7,
};

const TERMS: Record<string, ProcessorTerms> = { stripe: stripeTerms, adyen: adyenTerms };

export function processorTerms(processor: string): ProcessorTerms {
  const t = TERMS[processor];
  if (!t) throw new Error(`no fee schedule for processor ${processor}`);
  return t;
}
