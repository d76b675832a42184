/**
 * Adyen's refusals in paystep's failure taxonomy (docs/api.md, the payment's `failure`;
 * lambdas/connectors/types.ts `Failure`).
 *
 * An Adyen `/payments` answer that is not a success carries a `resultCode` (Refused, Error,
 * Cancelled), a `refusalReasonCode` (a number as a string) and its `refusalReason` text; with raw
 * acquirer results enabled, `additionalData.refusalReasonRaw` (the issuer's own code, e.g.
 * `05 : Do not honor`) and for Mastercard `additionalData.merchantAdviceCode`. Refusal reasons:
 * docs.adyen.com/development-resources/refusal-reasons. Webhooks only carry the reason text, so the
 * table is also looked up by text.
 *
 * Normalized codes are the Stripe table's (lambdas/connectors/stripe/declines.ts) wherever the
 * meaning is the same, with the same category and `retryable` (test/unit/adyen-connector-declines
 * checks it), so a merchant, a report or a retry rule sees one vocabulary whichever processor
 * declined. Codes only Adyen has: `blocked_card`, `canceled`, `customer_canceled`,
 * `address_verification_failed`, `pin_validation_not_possible`.
 *
 * Refinement: Adyen's generic refusals (2 Refused, 27 Declined Non Generic) are refined by the
 * issuer's raw code when present (51 → insufficient_funds, 05 → do_not_honor, …). A Mastercard
 * merchant advice code overrides `retryable` (03 and 21 "do not try again": never; 02 and 24–29
 * "try again later": yes) and is kept as `merchant_advice_code` on the failure.
 *
 * Wording rules (as for Stripe): `message` is safe for the payer and never says fraud, lost or
 * stolen; `explanation` and `recommended_action` can be read out by support; fraud rows never
 * suggest retrying. The texts are paystep's own.
 */
import type { CardDetails, Failure, FailureCategory } from '../../connectors/types.ts';

/** paystep's `Failure` plus what Adyen adds (kept on the payment's `failure`; docs/connectors.md). */
export interface AdyenFailure extends Failure {
  /** Mastercard's merchant advice code as Adyen passes it (`01`, `02`, `03`, `21`, `24`…). */
  merchant_advice_code?: string;
}

interface Row {
  category: FailureCategory;
  message: string;
  explanation: string;
  recommended_action: string;
  retryable: boolean;
}

const DECLINED = 'Your card was declined.';
const OTHER_METHOD_NO_RETRY =
  'Do not try this card again. Ask the customer to pay another way; anything about the card itself is for their card issuer.';
const PIN = {
  category: 'hard_decline',
  message: DECLINED,
  explanation: 'The card issuer wants the cardholder to enter their PIN, which an online payment cannot do.',
  recommended_action: 'Ask the customer to pay with another card, or in person where they can enter the PIN.',
  retryable: false,
} satisfies Row;

/** The rows, by paystep normalized code. */
export const ADYEN_FAILURES: Readonly<Record<string, Row>> = {
  // --- Soft: the issuer said no for now ---
  generic_decline: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'The card issuer declined the payment without saying why.',
    recommended_action:
      'Ask the customer to pay another way or to call their card issuer. One later retry may work; repeated retries will not.',
    retryable: true,
  },
  do_not_honor: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and gave no reason ("do not honor").',
    recommended_action:
      'Ask the customer to call their card issuer or to pay another way. One later retry may work; repeated retries will not.',
    retryable: true,
  },
  insufficient_funds: {
    category: 'soft_decline',
    message: 'Your card has insufficient funds.',
    explanation: 'The card issuer declined the payment: there is not enough money or credit on the card.',
    recommended_action:
      'Ask the customer for another payment method; the same card is unlikely to work again today.',
    retryable: true,
  },
  card_velocity_exceeded: {
    category: 'soft_decline',
    message: DECLINED,
    explanation:
      'The card issuer declined the payment because it is above the amount the card may spend now.',
    recommended_action:
      'Ask the customer to pay another way or to ask their card issuer to raise the limit; retrying soon will be declined again.',
    retryable: true,
  },
  withdrawal_count_limit_exceeded: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'The card issuer declined the payment because the card has made too many payments for now.',
    recommended_action:
      'Ask the customer to pay another way; this card may work again once its limit resets.',
    retryable: true,
  },
  card_decline_rate_limit_exceeded: {
    category: 'soft_decline',
    message: DECLINED,
    explanation:
      'Adyen blocked this attempt because the card was declined many times recently (to avoid the card networks’ excessive-retry fees).',
    recommended_action:
      'Do not retry for now. Wait a day before trying this card again, or ask for another payment method.',
    retryable: true,
  },
  canceled: {
    category: 'soft_decline',
    message: 'Your payment was canceled. Please try again.',
    explanation: 'The payment was canceled before it completed; the card was not charged.',
    recommended_action:
      'Ask the customer to try again. If it is canceled again, ask them to pay another way.',
    retryable: true,
  },
  customer_canceled: {
    category: 'soft_decline',
    message: 'You canceled the payment.',
    explanation: 'The customer canceled the payment before completing it; the card was not charged.',
    recommended_action: 'Nothing went wrong. The customer can start the payment again when ready.',
    retryable: true,
  },

  // --- Hard: this card will not work for this payment ---
  expired_card: {
    category: 'hard_decline',
    message: 'Your card has expired.',
    explanation: 'The card has expired.',
    recommended_action: 'Ask the customer to check the expiry date they entered, or to use another card.',
    retryable: false,
  },
  incorrect_cvc: {
    category: 'hard_decline',
    message: "Your card's security code is incorrect.",
    explanation: 'The security code (CVC) entered does not match the card.',
    recommended_action:
      'Ask the customer to enter the card details again, checking the security code on the card.',
    retryable: false,
  },
  incorrect_number: {
    category: 'hard_decline',
    message: 'Your card number is incorrect.',
    explanation: 'The card number is not a valid card number.',
    recommended_action: 'Ask the customer to enter the card number again, or to use another card.',
    retryable: false,
  },
  invalid_amount: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer did not accept the amount (not valid for this card, or above a limit).',
    recommended_action:
      'Check the amount; if it is right, ask the customer to call their card issuer or to pay another way.',
    retryable: false,
  },
  card_not_supported: {
    category: 'hard_decline',
    message: 'Your card does not support this type of purchase.',
    explanation: 'The card issuer does not support, or does not allow, this type of payment on this card.',
    recommended_action:
      'Ask the customer to use another card, or to ask their card issuer what this card allows.',
    retryable: false,
  },
  transaction_not_allowed: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'This kind of payment is not permitted on this card.',
    recommended_action:
      'Ask the customer to ask their card issuer to allow it (for example online or foreign payments), or to pay another way.',
    retryable: false,
  },
  restricted_card: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card is restricted: the issuer does not let it be used for this payment.',
    recommended_action: OTHER_METHOD_NO_RETRY,
    retryable: false,
  },
  blocked_card: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card is blocked and cannot be used.',
    recommended_action: OTHER_METHOD_NO_RETRY,
    retryable: false,
  },
  revocation_of_authorization: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The cardholder withdrew their permission for this merchant to charge the card.',
    recommended_action: 'Do not retry. Ask the customer whether they still want to pay, and how.',
    retryable: false,
  },
  call_issuer: {
    category: 'hard_decline',
    message: DECLINED,
    explanation:
      'The card issuer wants the cardholder to call them before it approves this payment (a referral).',
    recommended_action:
      'Ask the customer to call their card issuer, or to pay another way. Do not retry until they have.',
    retryable: false,
  },
  invalid_account: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The account the card would pay from is not available on this card.',
    recommended_action: 'Ask the customer to use another card or to call their card issuer.',
    retryable: false,
  },
  address_verification_failed: {
    category: 'hard_decline',
    message: 'Your billing address does not match your card.',
    explanation: 'The billing address did not pass the card issuer’s address check (AVS).',
    recommended_action: 'Ask the customer to check the billing address they gave, or to use another card.',
    retryable: false,
  },
  incorrect_pin: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The PIN entered was wrong.',
    recommended_action: 'Ask the customer to try again with the right PIN, or to use another card.',
    retryable: false,
  },
  pin_try_exceeded: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'A wrong PIN was entered too many times; the issuer locked the card’s PIN.',
    recommended_action: 'Ask the customer to use another card until their card issuer unlocks this one.',
    retryable: false,
  },
  pin_validation_not_possible: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The PIN could not be checked for this payment.',
    recommended_action: 'Ask the customer to use another card or another payment method.',
    retryable: false,
  },
  online_or_offline_pin_required: PIN,

  // --- Fraud and risk: never suggest retrying, never tell the payer why ---
  fraudulent: {
    category: 'fraud',
    message: DECLINED,
    explanation:
      'The payment was stopped by risk checks: the card issuer or the processor judged it too risky.',
    recommended_action:
      'Do not retry. Ask the customer for a different payment method, and review this customer before taking further payments.',
    retryable: false,
  },
  lost_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: OTHER_METHOD_NO_RETRY,
    retryable: false,
  },
  stolen_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: OTHER_METHOD_NO_RETRY,
    retryable: false,
  },
  pickup_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: OTHER_METHOD_NO_RETRY,
    retryable: false,
  },

  // --- Authentication (3-D Secure) ---
  authentication_required: {
    category: 'authentication',
    message:
      'Your card requires authentication. Please try again and complete the verification with your bank.',
    explanation: 'The card issuer requires the customer to authenticate this payment (3-D Secure).',
    recommended_action:
      'Ask the customer to pay again while present, so they can complete the check with their bank.',
    retryable: true,
  },
  authentication_failed: {
    category: 'authentication',
    message: "We couldn't verify your card. Please try again or use another payment method.",
    explanation: 'The customer did not complete, or did not pass, the check with their bank (3-D Secure).',
    recommended_action:
      'Ask the customer to try again and complete the check with their bank, or to use another payment method.',
    retryable: true,
  },

  // --- Technical: nobody said no; something failed on the way ---
  processing_error: {
    category: 'technical',
    message: 'An error occurred while processing your card. Try again in a little bit.',
    explanation: 'An error at the acquirer or the card network stopped the payment; nobody declined it.',
    recommended_action:
      'Retry the payment. If it keeps failing, ask the customer to try again a little later or to pay another way.',
    retryable: true,
  },
  issuer_not_available: {
    category: 'technical',
    message: 'Your card issuer could not be reached. Please try again.',
    explanation: 'The card issuer could not be reached to approve the payment.',
    recommended_action:
      'Retry the payment. If it keeps failing, ask the customer to call their card issuer or to pay another way.',
    retryable: true,
  },
};

/**
 * Adyen `refusalReasonCode` → [Adyen's `refusalReason`, paystep code]. Codes 0–46 as documented;
 * those that only happen at a point-of-sale terminal map to their nearest meaning.
 */
export const ADYEN_REFUSAL_CODES: Readonly<Record<string, readonly [reason: string, code: string]>> = {
  '0': ['Unknown', 'processing_error'],
  '2': ['Refused', 'generic_decline'],
  '3': ['Referral', 'call_issuer'],
  '4': ['Acquirer Error', 'processing_error'],
  '5': ['Blocked Card', 'blocked_card'],
  '6': ['Expired Card', 'expired_card'],
  '7': ['Invalid Amount', 'invalid_amount'],
  '8': ['Invalid Card Number', 'incorrect_number'],
  '9': ['Issuer Unavailable', 'issuer_not_available'],
  '10': ['Not supported', 'card_not_supported'],
  '11': ['3D Not Authenticated', 'authentication_failed'],
  '12': ['Not enough balance', 'insufficient_funds'],
  '14': ['Acquirer Fraud', 'fraudulent'],
  '15': ['Cancelled', 'canceled'],
  '16': ['Shopper Cancelled', 'customer_canceled'],
  '17': ['Invalid Pin', 'incorrect_pin'],
  '18': ['Pin tries exceeded', 'pin_try_exceeded'],
  '19': ['Pin validation not possible', 'pin_validation_not_possible'],
  '20': ['FRAUD', 'fraudulent'],
  '21': ['Not Submitted', 'processing_error'],
  '22': ['FRAUD-CANCELLED', 'fraudulent'],
  '23': ['Transaction Not Permitted', 'transaction_not_allowed'],
  '24': ['CVC Declined', 'incorrect_cvc'],
  '25': ['Restricted Card', 'restricted_card'],
  '26': ['Revocation Of Auth', 'revocation_of_authorization'],
  '27': ['Declined Non Generic', 'do_not_honor'],
  '28': ['Withdrawal amount exceeded', 'card_velocity_exceeded'],
  '29': ['Withdrawal count exceeded', 'withdrawal_count_limit_exceeded'],
  '31': ['Issuer Suspected Fraud', 'fraudulent'],
  '32': ['AVS Declined', 'address_verification_failed'],
  '33': ['Card requires online pin', 'online_or_offline_pin_required'],
  '34': ['No checking account available on Card', 'invalid_account'],
  '35': ['No savings account available on Card', 'invalid_account'],
  '36': ['Mobile pin required', 'online_or_offline_pin_required'],
  '37': ['Contactless fallback', 'card_not_supported'],
  '38': ['Authentication required', 'authentication_required'],
  '39': ['RReq not received from DS', 'authentication_failed'],
  '40': ['Current AID is in Penalty Box', 'processing_error'],
  '41': ['CVM Required Restart Payment', 'online_or_offline_pin_required'],
  '42': ['3DS Authentication Error', 'authentication_failed'],
  '43': ['Online PIN required', 'online_or_offline_pin_required'],
  '44': ['Try another interface', 'card_not_supported'],
  '45': ['Chip downgrade mode', 'processing_error'],
  '46': ['Transaction blocked by Adyen to prevent excessive retry fees', 'card_decline_rate_limit_exceeded'],
};

/** Refusal reason text (any case) → refusal code, for webhooks, which carry only the text. */
const BY_REASON = new Map(
  Object.entries(ADYEN_REFUSAL_CODES).map(([code, [reason]]) => [reason.toLowerCase(), code] as const),
);

/** The issuer's raw ISO 8583 response codes that refine Adyen's generic refusals (2 and 27). */
const RAW_REFINEMENT: Readonly<Record<string, string>> = {
  '04': 'pickup_card',
  '05': 'do_not_honor',
  '07': 'pickup_card',
  '14': 'incorrect_number',
  '41': 'lost_card',
  '43': 'stolen_card',
  '51': 'insufficient_funds',
  '54': 'expired_card',
  '57': 'transaction_not_allowed',
  '59': 'fraudulent',
  '61': 'card_velocity_exceeded',
  '62': 'restricted_card',
  '65': 'withdrawal_count_limit_exceeded',
  '91': 'issuer_not_available',
  '96': 'processing_error',
  N7: 'incorrect_cvc',
  '1A': 'authentication_required',
};
const GENERIC_REFUSALS = new Set(['2', '27']);

/** paystep codes other processors' callers may pass to `mapDecline` (processor-neutral callers). */
const ALIASES: Readonly<Record<string, string>> = {
  payment_intent_authentication_failure: 'authentication_failed',
  authentication_not_handled: 'authentication_required',
  card_declined: 'generic_decline',
};

export interface AdyenRefusal {
  resultCode?: string;
  refusalReasonCode?: string;
  refusalReason?: string;
  additionalData?: Readonly<Record<string, string | undefined>>;
}

/** `05 : Do not honor` → `05`; `N7` → `N7`. */
function rawCode(raw: string | undefined): string | undefined {
  const m = raw ? /^\s*([0-9A-Z]{2})\b/.exec(raw) : null;
  return m?.[1];
}

/** `01: New account information available` or `01` → `01`. */
export function merchantAdviceCode(value: string | undefined): string | undefined {
  const m = value ? /^\s*(\d{2})\b/.exec(value) : null;
  return m?.[1];
}

function adviceOverride(mac: string | undefined): { retryable?: boolean; note?: string } {
  switch (mac) {
    case '01':
      return {
        retryable: false,
        note: 'The card network says the card details have changed: ask the customer for their updated card details.',
      };
    case '02':
      return { retryable: true, note: 'The card network says this card can be tried again later.' };
    case '03':
    case '21':
      return {
        retryable: false,
        note: 'The card network says this card must not be tried again for this merchant.',
      };
    case '24':
    case '25':
    case '26':
    case '27':
    case '28':
    case '29':
      return {
        retryable: true,
        note: 'The card network says this card can be tried again after a waiting period.',
      };
    default:
      return {};
  }
}

function build(code: string, processorCode: string, mac: string | undefined, message?: string): AdyenFailure {
  const row = ADYEN_FAILURES[code];
  if (!row) {
    return {
      category: 'hard_decline',
      code: 'declined',
      processor_code: processorCode,
      message: DECLINED,
      explanation: `Declined by Adyen with a reason paystep does not know (${processorCode}${message ? `: ${message}` : ''}).`,
      recommended_action:
        'Do not retry automatically. Ask the customer to use another payment method or to contact their card issuer.',
      retryable: false,
      ...(mac ? { merchant_advice_code: mac } : {}),
    };
  }
  const advice = adviceOverride(mac);
  // Advice never makes a fraud refusal retryable.
  const retryable = row.category === 'fraud' ? false : (advice.retryable ?? row.retryable);
  return {
    category: row.category,
    code,
    processor_code: processorCode,
    message: row.message,
    explanation: row.explanation,
    recommended_action: advice.note ? `${row.recommended_action} ${advice.note}` : row.recommended_action,
    retryable,
    ...(mac ? { merchant_advice_code: mac } : {}),
  };
}

/** Which refusal code an answer or a webhook means: the code, else the reason text. */
function refusalCodeOf(r: AdyenRefusal): string | undefined {
  if (r.refusalReasonCode && Object.hasOwn(ADYEN_REFUSAL_CODES, r.refusalReasonCode))
    return r.refusalReasonCode;
  const text = r.refusalReason?.split('|')[0]?.trim().toLowerCase();
  return text ? BY_REASON.get(text) : undefined;
}

/** An Adyen refusal (a `/payments` answer, or a refused AUTHORISATION webhook) → paystep's failure. */
export function mapAdyenRefusal(r: AdyenRefusal): AdyenFailure {
  const ad = r.additionalData ?? {};
  const mac = merchantAdviceCode(ad.merchantAdviceCode);
  const refusal = refusalCodeOf(r);
  const raw = rawCode(ad.refusalReasonRaw);
  const result = r.resultCode ?? 'Refused';
  const processorCode = `${result}/${refusal ?? r.refusalReasonCode ?? 'none'}${raw ? `/raw:${raw}` : ''}`;
  if (refusal) {
    const refined = GENERIC_REFUSALS.has(refusal) && raw ? RAW_REFINEMENT[raw] : undefined;
    return build(refined ?? ADYEN_REFUSAL_CODES[refusal]![1], processorCode, mac, r.refusalReason);
  }
  // No refusal code: the result code alone.
  if (result === 'Error') return build('processing_error', processorCode, mac, r.refusalReason);
  if (result === 'Cancelled') return build('canceled', processorCode, mac, r.refusalReason);
  return build('', processorCode, mac, r.refusalReason);
}

/**
 * `ProcessorAdapter.mapDecline` for Adyen: `code` is a `refusalReasonCode` (`"24"`), a refusal
 * reason text (`"CVC Declined"`) or a paystep code (`authentication_required`); `declineCode` the
 * raw acquirer result (`refusalReasonRaw`); `message` the refusal reason text.
 */
export function mapAdyenDecline(code?: string, declineCode?: string, message?: string): AdyenFailure {
  if (code && !Object.hasOwn(ADYEN_REFUSAL_CODES, code) && !BY_REASON.has(code.toLowerCase())) {
    const normalized = ALIASES[code] ?? code;
    if (Object.hasOwn(ADYEN_FAILURES, normalized)) return build(normalized, code, undefined);
  }
  const isNumber = !!code && /^\d+$/.test(code);
  return mapAdyenRefusal({
    ...(isNumber ? { refusalReasonCode: code } : {}),
    refusalReason: isNumber ? message : (code ?? message),
    ...(declineCode ? { additionalData: { refusalReasonRaw: declineCode } } : {}),
  });
}

// --- Card details -------------------------------------------------------------------------------

/**
 * What paystep keeps of a card for analytics beyond `CardDetails` (types.ts is not extended): the
 * BIN and the issuer, from Adyen's `additionalData` (enable "Card bin details" and "Issuer
 * country" in the Customer Area's additional data settings). Never the card number.
 */
export interface AdyenCardAnalytics {
  /** First 6 digits (`cardBin`). */
  bin?: string;
  /** Issuer BIN, up to 8 digits (`issuerBin`), when Adyen gives it. */
  issuer_bin?: string;
  /** Issuing country, ISO 3166 alpha-2 (`cardIssuingCountry`). */
  issuer_country?: string;
  /** Issuing bank's name (`cardIssuingBank`). */
  issuer_name?: string;
  /** `credit`, `debit`, `prepaid` (`fundingSource`, lowercased). */
  funding?: string;
  /** Adyen's payment method variant (`paymentMethodVariant`, e.g. `visacorporate`). */
  variant?: string;
}

const BRANDS: Readonly<Record<string, string>> = {
  visa: 'visa',
  mc: 'mastercard',
  mastercard: 'mastercard',
  amex: 'amex',
  discover: 'discover',
  diners: 'diners',
  jcb: 'jcb',
  cup: 'unionpay',
  maestro: 'maestro',
  cartebancaire: 'cartes_bancaires',
};

/** Adyen brand or variant (`mc`, `visastandarddebit`, `amex`) → paystep's lowercase brand. */
export function brandOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.toLowerCase();
  if (BRANDS[v]) return BRANDS[v];
  for (const [prefix, brand] of Object.entries(BRANDS)) if (v.startsWith(prefix)) return brand;
  return v;
}

const compact = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;

/**
 * `CardDetails` and analytics from Adyen's `additionalData` (and the response's payment method
 * brand). `expiryDate` is `M/YYYY`; `cardSummary` the last four digits.
 */
export function cardFromAdditionalData(
  ad: Readonly<Record<string, string | undefined>> | undefined,
  brand?: string,
): { card?: CardDetails; analytics?: AdyenCardAnalytics } {
  if (!ad && !brand) return {};
  const a = ad ?? {};
  const exp = /^(\d{1,2})\/(\d{4})$/.exec(a.expiryDate ?? '');
  const last4 = /^\d{4}$/.test(a.cardSummary ?? '') ? a.cardSummary : undefined;
  const country = /^[A-Z]{2}$/.test(a.cardIssuingCountry ?? '') ? a.cardIssuingCountry : undefined;
  const card = compact<CardDetails>({
    brand: brandOf(brand ?? a.paymentMethod ?? a.cardPaymentMethod),
    last4,
    country,
    exp_month: exp ? Number(exp[1]) : undefined,
    exp_year: exp ? Number(exp[2]) : undefined,
  });
  const bin = /^\d{6}$/.test(a.cardBin ?? '') ? a.cardBin : undefined;
  const issuerBin = /^\d{6,8}$/.test(a.issuerBin ?? '') ? a.issuerBin : undefined;
  const analytics = compact<AdyenCardAnalytics>({
    bin,
    issuer_bin: issuerBin,
    issuer_country: country,
    issuer_name: a.cardIssuingBank,
    funding: a.fundingSource?.toLowerCase(),
    variant: a.paymentMethodVariant,
  });
  return {
    ...(Object.keys(card).length ? { card } : {}),
    ...(Object.keys(analytics).length ? { analytics } : {}),
  };
}
