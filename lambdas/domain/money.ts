/**
 * Money: integer minor units + lowercase ISO 4217 currency. Never floats.
 * Exponents follow the processor (Stripe's API, which matches ISO 4217 except MGA, ISK and UGX):
 * zero-decimal currencies such as JPY and KRW, three-decimal ones such as BHD, KWD, OMR, JOD, TND.
 * Limits per exponent (docs/api.md, "Amounts"): see `minAmount`, `maxChargeAmount`.
 */

// Stripe's card presentment currencies (docs.stripe.com/currencies), 139 codes, with the exponent
// Stripe's API uses for each. That exponent is paystep's: amounts go to the processor unchanged.
// - zero-decimal: Stripe's list (MGA is zero-decimal there, unlike ISO 4217);
// - three-decimal: BHD, JOD, KWD, OMR, TND, in multiples of 10 (the last digit must be 0);
// - ISK and UGX are whole units in practice but two-decimal in Stripe's API for backwards
//   compatibility: amounts in hundredths, multiples of 100 (500 = 5 ISK). HUF and TWD are
//   two-decimal for charges (only payouts are whole units).
// Codes not listed here (IQD, LYD, …) are not accepted: the processor would refuse them.
const ZERO_DECIMAL = [
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
];
const THREE_DECIMAL = ['bhd', 'jod', 'kwd', 'omr', 'tnd'];
/** Two-decimal in the API, whole units only: amounts must be multiples of 100. */
const WHOLE_UNITS_IN_HUNDREDTHS = ['isk', 'ugx'];
const TWO_DECIMAL = [
  'aed',
  'afn',
  'all',
  'amd',
  'ang',
  'aoa',
  'ars',
  'aud',
  'awg',
  'azn',
  'bam',
  'bbd',
  'bdt',
  'bgn',
  'bmd',
  'bnd',
  'bob',
  'brl',
  'bsd',
  'bwp',
  'byn',
  'bzd',
  'cad',
  'cdf',
  'chf',
  'cny',
  'cop',
  'crc',
  'cve',
  'czk',
  'dkk',
  'dop',
  'dzd',
  'egp',
  'etb',
  'eur',
  'fjd',
  'fkp',
  'gbp',
  'gel',
  'gip',
  'gmd',
  'gtq',
  'gyd',
  'hkd',
  'hnl',
  'htg',
  'huf',
  'idr',
  'ils',
  'inr',
  'isk',
  'jmd',
  'kes',
  'kgs',
  'khr',
  'kyd',
  'kzt',
  'lak',
  'lbp',
  'lkr',
  'lrd',
  'lsl',
  'mad',
  'mdl',
  'mkd',
  'mmk',
  'mnt',
  'mop',
  'mur',
  'mvr',
  'mwk',
  'mxn',
  'myr',
  'mzn',
  'nad',
  'ngn',
  'nio',
  'nok',
  'npr',
  'nzd',
  'pab',
  'pen',
  'pgk',
  'php',
  'pkr',
  'pln',
  'qar',
  'ron',
  'rsd',
  'rub',
  'sar',
  'sbd',
  'scr',
  'sek',
  'sgd',
  'shp',
  'sle',
  'sos',
  'srd',
  'std',
  'szl',
  'thb',
  'tjs',
  'top',
  'try',
  'ttd',
  'twd',
  'tzs',
  'uah',
  'ugx',
  'usd',
  'uyu',
  'uzs',
  'wst',
  'xcd',
  'yer',
  'zar',
  'zmw',
];

const EXPONENT = new Map<string, number>([
  ...ZERO_DECIMAL.map((c) => [c, 0] as const),
  ...TWO_DECIMAL.map((c) => [c, 2] as const),
  ...THREE_DECIMAL.map((c) => [c, 3] as const),
]);

/** Every currency accepted, lowercase (the processor's list). */
export const SUPPORTED_CURRENCIES: readonly string[] = [...EXPONENT.keys()].sort();

export const isSupportedCurrency = (c: string) => EXPONENT.has(c);

export function currencyExponent(currency: string): number {
  const e = EXPONENT.get(currency);
  if (e === undefined) throw new Error(`unsupported currency ${currency}`);
  return e;
}

/**
 * The processors' ceiling: eight digits of minor units (99,999,999 = 999,999.99 USD, ¥99,999,999,
 * 99,999.999 KWD), far inside Number.MAX_SAFE_INTEGER so sums of refunds stay exact. The largest
 * amount accepted is the largest multiple of `amountGranularity` not above it (`maxChargeAmount`).
 */
export function maxAmount(_currency: string): number {
  return 99_999_999;
}

/**
 * Amounts must be multiples of this many minor units: 10 for three-decimal currencies (the
 * processors reject anything else, so 1.235 KWD is refused at the API rather than at
 * authorization), 100 for ISK and UGX (whole units in two-decimal form), else 1.
 */
export function amountGranularity(currency: string): number {
  if (WHOLE_UNITS_IN_HUNDREDTHS.includes(currency)) return 100;
  return currencyExponent(currency) === 3 ? 10 : 1;
}

/** Smallest amount accepted: one step of the granularity (1 cent, ¥1, 0.010 KWD, 1 ISK). */
export const minAmount = (currency: string) => amountGranularity(currency);

/** Largest amount accepted: 99,999,999 (99,999,990 for three-decimal, 99,999,900 for ISK/UGX). */
export function maxChargeAmount(currency: string): number {
  const g = amountGranularity(currency);
  return maxAmount(currency) - (maxAmount(currency) % g);
}

/**
 * Why `amount` (already an integer) cannot be charged in `currency`, or undefined if it can:
 * below the minimum, above the maximum, or not a multiple of the granularity.
 */
export function amountProblem(amount: number, currency: string): string | undefined {
  const g = amountGranularity(currency);
  const code = currency.toUpperCase();
  if (amount < minAmount(currency))
    return `must be at least ${minAmount(currency)} (${formatAmount(minAmount(currency), currency)})`;
  if (amount % g !== 0)
    return `${code} amounts must be a multiple of ${g} minor units (e.g. ${Math.floor(amount / g) * g || g})`;
  if (amount > maxChargeAmount(currency))
    return `must be at most ${maxChargeAmount(currency)} (${formatAmount(maxChargeAmount(currency), currency)}) for ${code}`;
  return undefined;
}

/** `1234, 'usd'` → `12.34 USD`; for people (explanations, reports), never for arithmetic. */
export function formatAmount(amount: number, currency: string): string {
  const e = currencyExponent(currency);
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  if (e === 0) return `${sign}${abs} ${currency.toUpperCase()}`;
  const s = String(abs).padStart(e + 1, '0');
  return `${sign}${s.slice(0, -e)}.${s.slice(-e)} ${currency.toUpperCase()}`;
}
