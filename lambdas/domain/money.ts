/**
 * Money: integer minor units + lowercase ISO 4217 currency. Never floats.
 * Exponents follow the processors (Stripe's table, which matches ISO 4217 except MGA):
 * zero-decimal currencies such as JPY and KRW, three-decimal ones such as BHD, KWD, OMR, JOD, TND.
 */

// Stripe's zero-decimal list (MGA is zero-decimal there, unlike ISO 4217). ISK, HUF, TWD and UGX
// have processor-specific rules (e.g. ISK in two-decimal form divisible by 100) and are not
// accepted until the adapter converts them: a wrong exponent charges 100× too much or too little.
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
const THREE_DECIMAL = ['bhd', 'iqd', 'jod', 'kwd', 'lyd', 'omr', 'tnd'];
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
  'idr',
  'ils',
  'inr',
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
  'tzs',
  'uah',
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

export const isSupportedCurrency = (c: string) => EXPONENT.has(c);

export function currencyExponent(currency: string): number {
  const e = EXPONENT.get(currency);
  if (e === undefined) throw new Error(`unsupported currency ${currency}`);
  return e;
}

/**
 * Largest amount accepted in minor units: 99,999,999 (the processors' ceiling, 8 digits), far
 * inside Number.MAX_SAFE_INTEGER so sums of refunds stay exact.
 */
export function maxAmount(_currency: string): number {
  return 99_999_999;
}

/**
 * Three-decimal currencies are charged in multiples of 10 minor units (the processors reject
 * anything else), so 1.235 KWD is refused at the API rather than at authorization.
 */
export function amountGranularity(currency: string): number {
  return currencyExponent(currency) === 3 ? 10 : 1;
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
