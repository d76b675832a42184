/**
 * Amounts between paystep and Adyen. paystep's minor units follow lambdas/domain/money.ts (Stripe's
 * exponents); Adyen's follow its own currency table (docs.adyen.com/development-resources/
 * currency-codes), which differs for a few currencies. Sending paystep's value unchanged would
 * charge 100 times too much (or too little) in those, so every amount crosses this module.
 *
 * Where the exponents differ (Adyen's value = paystep's × 10^(adyen − paystep)):
 * - CLP: paystep 0, Adyen 2 ("differs from standard" in Adyen's table);
 * - CVE: paystep 2, Adyen 0 ("differs from standard");
 * - IDR, UGX: paystep 2, Adyen 0 (Adyen's zero-decimal list; paystep already requires UGX in
 *   multiples of 100, IDR amounts must be too).
 * ISK is 2 decimals on both sides. BIF and MGA are zero-decimal in paystep and not confirmed in
 * Adyen's table here: they are refused (`currency_not_supported`) rather than guessed.
 */
import { currencyExponent, isSupportedCurrency } from '../../domain/money.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';

const ADYEN_EXPONENT: Readonly<Record<string, number>> = { clp: 2, cve: 0, idr: 0, ugx: 0 };
const UNCONFIRMED = new Set(['bif', 'mga']);

const NAME = 'adyen';

/** Whether this connector sends payments in `currency` (lowercase ISO 4217) to Adyen. */
export const adyenTakesCurrency = (currency: string): boolean =>
  isSupportedCurrency(currency.toLowerCase()) && !UNCONFIRMED.has(currency.toLowerCase());

function shift(currency: string): number {
  const c = currency.toLowerCase();
  if (!adyenTakesCurrency(c))
    throw new ProcessorRequestError(
      NAME,
      `Adyen: currency ${currency} is not supported by this connector`,
      'currency_not_supported',
    );
  const ours = currencyExponent(c);
  return (ADYEN_EXPONENT[c] ?? ours) - ours;
}

/** paystep minor units → Adyen's `{currency, value}`. Refuses an amount Adyen cannot express. */
export function toAdyenAmount(value: number, currency: string): { currency: string; value: number } {
  const d = shift(currency);
  let v = value;
  if (d > 0) v = value * 10 ** d;
  else if (d < 0) {
    const f = 10 ** -d;
    if (value % f !== 0)
      throw new ProcessorRequestError(
        NAME,
        `Adyen: ${currency.toUpperCase()} amounts must be whole units (a multiple of ${f} minor units), got ${value}`,
        'amount_invalid',
      );
    v = value / f;
  }
  return { currency: currency.toUpperCase(), value: v };
}

/** Adyen's `{currency, value}` → paystep minor units (lowercase currency). */
export function fromAdyenAmount(amount: { currency?: string; value?: number } | null | undefined): {
  currency: string;
  value: number;
} | null {
  if (!amount?.currency || typeof amount.value !== 'number') return null;
  const currency = amount.currency.toLowerCase();
  let d: number;
  try {
    d = shift(currency);
  } catch {
    // A currency paystep does not take: reported as Adyen sent it.
    return { currency, value: amount.value };
  }
  const value = d > 0 ? Math.round(amount.value / 10 ** d) : amount.value * 10 ** -d;
  return { currency, value };
}
