/**
 * Card facts a connector may report beside an authorization, kept on the payment for analytics
 * (`card_analytics`, docs/states.md "Card analytics") and never shown in the API's `card` (brand,
 * last4, country only). Nothing here identifies a card: the BIN is the issuer's prefix (6 to 8
 * digits), never more of the number.
 */
export interface CardAnalytics {
  /** The card's first 6 digits. */
  bin?: string;
  /** The issuer's BIN, 6 to 8 digits, when the processor gives it. */
  issuer_bin?: string;
  /** Issuing country, ISO 3166 alpha-2. */
  issuer_country?: string;
  /** The issuing bank's name. */
  issuer_name?: string;
  /** `credit`, `debit`, `prepaid`, … */
  funding?: string;
  /** The processor's variant of the payment method (Adyen `visacorporate`, …). */
  variant?: string;
}

const BIN = /^\d{6,8}$/;
const COUNTRY = /^[A-Z]{2}$/;
const MAX_TEXT = 100;

/**
 * What may be stored of a connector's analytics: known fields only, BINs of 6 to 8 digits (so no
 * card number can slip in), a country code, short texts. Undefined when nothing is left.
 */
export function storableAnalytics(a: unknown): CardAnalytics | undefined {
  if (!a || typeof a !== 'object') return undefined;
  const r = a as Record<string, unknown>;
  const text = (v: unknown) =>
    typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT && !/\d{9,}/.test(v) ? v : undefined;
  const out: CardAnalytics = {};
  if (typeof r.bin === 'string' && BIN.test(r.bin)) out.bin = r.bin.slice(0, 6);
  if (typeof r.issuer_bin === 'string' && BIN.test(r.issuer_bin)) out.issuer_bin = r.issuer_bin;
  if (typeof r.issuer_country === 'string' && COUNTRY.test(r.issuer_country))
    out.issuer_country = r.issuer_country;
  const name = text(r.issuer_name);
  if (name) out.issuer_name = name;
  const funding = text(r.funding);
  if (funding) out.funding = funding;
  const variant = text(r.variant);
  if (variant) out.variant = variant;
  return Object.keys(out).length ? out : undefined;
}
