/**
 * Amounts as settlement files write them: major units with a `.` decimal separator (Stripe writes
 * `-10.50`, Adyen `5.00`) ↔ paystep's integer minor units, exactly (no floating point). Shared by
 * the connectors' settlement readers (lambdas/connectors/<processor>/settlement.ts).
 */
import { CsvError } from '../reports/csv.ts';

/** `"-10.50"`, 2 → -1050, exactly (no floats). */
export function parseMajor(text: string, exponent: number): number {
  const s = text.trim();
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (!m[2] && !m[3])) throw new CsvError(`not an amount: "${text}"`);
  let frac = m[3] ?? '';
  if (frac.length > exponent) {
    if (/[^0]/.test(frac.slice(exponent)))
      throw new CsvError(`"${text}" has more decimals than the currency`);
    frac = frac.slice(0, exponent);
  }
  const v = Number((m[2] || '0') + frac.padEnd(exponent, '0'));
  return m[1] ? -v : v;
}

/** -1050, 2 → `"-10.50"` */
export function formatMajor(minor: number, exponent: number): string {
  const sign = minor < 0 ? '-' : '';
  const abs = String(Math.abs(minor));
  if (exponent === 0) return `${sign}${abs}`;
  const p = abs.padStart(exponent + 1, '0');
  return `${sign}${p.slice(0, -exponent)}.${p.slice(-exponent)}`;
}
