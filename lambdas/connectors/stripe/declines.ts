/**
 * Stripe's decline codes in paystep's failure taxonomy (docs/api.md, the payment's `failure`; types.ts `Failure`).
 *
 * A Stripe card error carries a `code` (`card_declined`, `expired_card`, `incorrect_cvc`,
 * `processing_error`, `authentication_required`, …) and, for issuer declines, a `decline_code`
 * (`insufficient_funds`, `lost_card`, …). The decline code is the more specific of the two, so it is
 * looked up first; then the code (but `card_declined` with a decline code we do not know is not
 * assumed generic); then a fallback that never suggests a retry.
 *
 * Wording rules:
 * - `message` is safe to show to the payer. For lost, stolen, "pickup" and fraud declines it is the
 *   generic "Your card was declined.", as Stripe advises: the payer is never told the card was
 *   reported lost or stolen, or that the payment looked fraudulent.
 * - `explanation` and `recommended_action` are for support and the merchant, worded so they can be
 *   read to the customer. The fraud rows explain without accusing, and never suggest retrying.
 * - `retryable` answers "may the same payment method succeed if tried again later?" (a soft decline
 *   or a technical error), not "should the customer try again with other details".
 *
 * Sources: Stripe's decline code reference (docs.stripe.com/declines/codes) and its card error codes
 * (docs.stripe.com/error-codes). Written for paystep; the texts are ours.
 */
import type { Failure, FailureCategory } from '../types.ts';

export interface DeclineRow {
  category: FailureCategory;
  /** paystep's normalized code when it differs from the Stripe code of the row (aliases). */
  code?: string;
  message: string;
  explanation: string;
  recommended_action: string;
  retryable: boolean;
}

const DECLINED = 'Your card was declined.';
const NO_RETRY_OTHER_METHOD =
  'Do not retry this card. Ask the customer for a different payment method; for anything about this card they should contact their card issuer.';

/** Keyed by Stripe `decline_code` or `code`. */
export const STRIPE_DECLINES: Readonly<Record<string, DeclineRow>> = {
  // --- Soft declines: the issuer said no for now ---
  generic_decline: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'Declined by the card issuer without a specific reason.',
    recommended_action:
      'Ask the customer to use another payment method or to contact their card issuer. One retry later may succeed; repeated retries will not.',
    retryable: true,
  },
  card_declined: {
    category: 'soft_decline',
    code: 'generic_decline',
    message: DECLINED,
    explanation: 'Declined by the card issuer without a specific reason.',
    recommended_action:
      'Ask the customer to use another payment method or to contact their card issuer. One retry later may succeed; repeated retries will not.',
    retryable: true,
  },
  do_not_honor: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'Declined by the card issuer, which did not give a reason ("do not honor").',
    recommended_action:
      'Ask the customer to contact their card issuer or to use another payment method. One retry later may succeed; repeated retries will not.',
    retryable: true,
  },
  insufficient_funds: {
    category: 'soft_decline',
    message: 'Your card has insufficient funds.',
    explanation: 'Declined by the card issuer for insufficient funds.',
    recommended_action:
      'Ask the customer for another payment method; retrying this card is unlikely to succeed today.',
    retryable: true,
  },
  card_velocity_exceeded: {
    category: 'soft_decline',
    message:
      'Your card was declined for making repeated attempts too frequently or exceeding its amount limit.',
    explanation:
      'Declined by the card issuer because the card went over its balance, credit limit or number of allowed payments.',
    recommended_action:
      'Ask the customer to use another payment method or to contact their card issuer; retrying this card soon will be declined again.',
    retryable: true,
  },
  withdrawal_count_limit_exceeded: {
    category: 'soft_decline',
    message: DECLINED,
    explanation:
      'Declined by the card issuer because the customer went over the balance or credit limit of the card.',
    recommended_action:
      'Ask the customer to use another payment method; this card may work again once its limit resets.',
    retryable: true,
  },
  try_again_later: {
    category: 'soft_decline',
    message: 'Your card was declined. Please try again later.',
    explanation:
      'Declined by the card issuer for now; the issuer asked for the payment to be tried again later.',
    recommended_action:
      'Retry the payment later. If it is declined again, ask the customer to contact their card issuer or to use another payment method.',
    retryable: true,
  },
  approve_with_id: {
    category: 'soft_decline',
    message: DECLINED,
    explanation: 'The card issuer could not authorize the payment this time.',
    recommended_action:
      'Retry the payment once. If it still fails, ask the customer to contact their card issuer.',
    retryable: true,
  },
  card_decline_rate_limit_exceeded: {
    category: 'soft_decline',
    message: DECLINED,
    explanation:
      'This card was declined too many times in the last 24 hours, so further attempts are refused.',
    recommended_action:
      'Wait 24 hours before trying this card again, or ask the customer for another payment method.',
    retryable: true,
  },

  // --- Hard declines: this card will not work for this payment ---
  expired_card: {
    category: 'hard_decline',
    message: 'Your card has expired.',
    explanation: 'Declined because the card has expired.',
    recommended_action: 'Ask the customer to check the expiry date they entered, or to use another card.',
    retryable: false,
  },
  invalid_expiry_month: {
    category: 'hard_decline',
    code: 'invalid_expiry',
    message: "Your card's expiration month is invalid.",
    explanation: 'The expiry month entered for the card is not valid.',
    recommended_action: 'Ask the customer to re-enter the card details with the correct expiry date.',
    retryable: false,
  },
  invalid_expiry_year: {
    category: 'hard_decline',
    code: 'invalid_expiry',
    message: "Your card's expiration year is invalid.",
    explanation: 'The expiry year entered for the card is not valid.',
    recommended_action: 'Ask the customer to re-enter the card details with the correct expiry date.',
    retryable: false,
  },
  incorrect_cvc: {
    category: 'hard_decline',
    message: "Your card's security code is incorrect.",
    explanation: 'Declined because the security code (CVC) did not match the card.',
    recommended_action:
      'Ask the customer to re-enter the card details, checking the security code on the back of the card.',
    retryable: false,
  },
  invalid_cvc: {
    category: 'hard_decline',
    code: 'incorrect_cvc',
    message: "Your card's security code is invalid.",
    explanation: 'The security code (CVC) entered is not valid for this card.',
    recommended_action:
      'Ask the customer to re-enter the card details, checking the security code on the back of the card.',
    retryable: false,
  },
  incorrect_number: {
    category: 'hard_decline',
    message: 'Your card number is incorrect.',
    explanation: 'Declined because the card number is not correct.',
    recommended_action: 'Ask the customer to re-enter the card number, or to use another card.',
    retryable: false,
  },
  invalid_number: {
    category: 'hard_decline',
    code: 'incorrect_number',
    message: 'Your card number is not a valid card number.',
    explanation: 'The card number entered is not a valid card number.',
    recommended_action: 'Ask the customer to re-enter the card number, or to use another card.',
    retryable: false,
  },
  incorrect_zip: {
    category: 'hard_decline',
    message: "Your card's postal code is incorrect.",
    explanation: 'Declined because the billing postal code did not match the card.',
    recommended_action: 'Ask the customer to re-enter the billing address, checking the postal code.',
    retryable: false,
  },
  card_not_supported: {
    category: 'hard_decline',
    message: 'Your card does not support this type of purchase.',
    explanation: 'The card does not support this type of purchase.',
    recommended_action:
      'Ask the customer to use another card, or to ask their card issuer whether this card can be used for this purchase.',
    retryable: false,
  },
  currency_not_supported: {
    category: 'hard_decline',
    message: 'Your card does not support this currency.',
    explanation: 'The card cannot be charged in the currency of this payment.',
    recommended_action:
      'Ask the customer to use another card, or to ask their card issuer whether this card can pay in this currency.',
    retryable: false,
  },
  transaction_not_allowed: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer does not allow this kind of payment on this card.',
    recommended_action:
      'Ask the customer to contact their card issuer (for example to allow online or international payments), or to use another payment method.',
    retryable: false,
  },
  restricted_card: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer restricts this card from being used for this payment.',
    recommended_action: NO_RETRY_OTHER_METHOD,
    retryable: false,
  },
  security_violation: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer declined the payment for a security reason it did not detail.',
    recommended_action: NO_RETRY_OTHER_METHOD,
    retryable: false,
  },
  invalid_account: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card, or the account it is connected to, is not valid.',
    recommended_action:
      'Do not retry this card. Ask the customer to contact their card issuer or to use another payment method.',
    retryable: false,
  },
  call_issuer: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'Declined by the card issuer, which asks the cardholder to call them.',
    recommended_action:
      'Ask the customer to call their card issuer, or to use another payment method. Do not retry until they have.',
    retryable: false,
  },
  new_account_information_available: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card has been replaced or its details changed; the issuer has newer card information.',
    recommended_action: 'Ask the customer for their new card details.',
    retryable: false,
  },
  duplicate_transaction: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'A payment with the same amount and card was made very recently.',
    recommended_action:
      'Check whether the earlier payment went through before asking the customer to pay again.',
    retryable: false,
  },
  invalid_amount: {
    category: 'hard_decline',
    message: DECLINED,
    explanation:
      'The card issuer did not accept the amount of this payment (invalid, or above an allowed limit).',
    recommended_action:
      'Check the amount; if it is right, ask the customer to contact their card issuer or to use another payment method.',
    retryable: false,
  },
  not_permitted: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer does not permit this payment.',
    recommended_action: 'Ask the customer to contact their card issuer or to use another payment method.',
    retryable: false,
  },
  service_not_allowed: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer does not allow this kind of service on this card.',
    recommended_action: 'Ask the customer to contact their card issuer or to use another payment method.',
    retryable: false,
  },
  no_action_taken: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'Declined by the card issuer, which did not give a reason.',
    recommended_action: 'Ask the customer to contact their card issuer or to use another payment method.',
    retryable: false,
  },
  stop_payment_order: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The cardholder asked their card issuer to stop payments to this merchant.',
    recommended_action: 'Do not retry. Ask the customer whether they still want to pay, and how.',
    retryable: false,
  },
  revocation_of_authorization: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The cardholder revoked their authorization for this merchant to charge the card.',
    recommended_action: 'Do not retry. Ask the customer whether they still want to pay, and how.',
    retryable: false,
  },
  revocation_of_all_authorizations: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The cardholder revoked every authorization to charge the card.',
    recommended_action: 'Do not retry. Ask the customer whether they still want to pay, and how.',
    retryable: false,
  },
  incorrect_pin: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The PIN entered was incorrect.',
    recommended_action: 'Ask the customer to try again with the correct PIN, or to use another card.',
    retryable: false,
  },
  pin_try_exceeded: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'Too many incorrect PIN attempts were made with this card.',
    recommended_action:
      'Ask the customer to use another card; this one is locked until their issuer resets it.',
    retryable: false,
  },
  offline_pin_required: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer requires a PIN for this payment.',
    recommended_action:
      'Ask the customer to pay with the card in person with its PIN, or to use another card.',
    retryable: false,
  },
  online_or_offline_pin_required: {
    category: 'hard_decline',
    message: DECLINED,
    explanation: 'The card issuer requires a PIN for this payment.',
    recommended_action:
      'Ask the customer to pay with the card in person with its PIN, or to use another card.',
    retryable: false,
  },
  testmode_decline: {
    category: 'invalid_request',
    message: DECLINED,
    explanation: 'A Stripe test card was used for a real (live mode) payment.',
    recommended_action: 'Ask the customer to pay with a real card.',
    retryable: false,
  },

  // --- Fraud and risk: never suggest retrying, never tell the payer why ---
  fraudulent: {
    category: 'fraud',
    message: DECLINED,
    explanation:
      'The payment was declined by risk checks (the card issuer or the processor judged it too risky).',
    recommended_action:
      'Do not retry. Ask the customer for a different payment method, and review this customer before accepting further payments.',
    retryable: false,
  },
  merchant_blacklist: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The payment matched an entry on the merchant block list.',
    recommended_action:
      'Do not retry. Review the block list entry before accepting a payment from this customer.',
    retryable: false,
  },
  lost_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: NO_RETRY_OTHER_METHOD,
    retryable: false,
  },
  stolen_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: NO_RETRY_OTHER_METHOD,
    retryable: false,
  },
  pickup_card: {
    category: 'fraud',
    message: DECLINED,
    explanation: 'The card issuer declined the payment and asked that this card not be used again.',
    recommended_action: NO_RETRY_OTHER_METHOD,
    retryable: false,
  },

  // --- Authentication (3-D Secure) ---
  authentication_required: {
    category: 'authentication',
    message:
      'Your card requires authentication. Please try again and complete the verification with your bank.',
    explanation: 'The card issuer requires the customer to authenticate this payment (3-D Secure).',
    recommended_action:
      'Ask the customer to retry while they are present, so they can complete verification with their bank.',
    retryable: true,
  },
  authentication_not_handled: {
    category: 'authentication',
    code: 'authentication_required',
    message:
      'Your card requires authentication. Please try again and complete the verification with your bank.',
    explanation:
      'The card issuer requires the customer to authenticate this payment (3-D Secure), which was not done.',
    recommended_action:
      'Ask the customer to retry while they are present, so they can complete verification with their bank.',
    retryable: true,
  },
  payment_intent_authentication_failure: {
    category: 'authentication',
    code: 'authentication_failed',
    message: "We couldn't verify your card. Please try again or use another payment method.",
    explanation: 'The customer did not complete, or did not pass, verification with their bank (3-D Secure).',
    recommended_action:
      'Ask the customer to try again and complete verification with their bank, or to use another payment method.',
    retryable: true,
  },

  // --- Technical: nobody said no; something failed on the way ---
  processing_error: {
    category: 'technical',
    message: 'An error occurred while processing your card. Try again in a little bit.',
    explanation: 'An error occurred at the processor or card network while processing the card.',
    recommended_action:
      'Retry the payment. If it keeps failing, ask the customer to try again a little later or to use another payment method.',
    retryable: true,
  },
  issuer_not_available: {
    category: 'technical',
    message: 'Your card issuer could not be reached. Please try again.',
    explanation: 'The card issuer could not be reached to authorize the payment.',
    recommended_action:
      'Retry the payment. If it keeps failing, ask the customer to contact their card issuer or to use another payment method.',
    retryable: true,
  },
  reenter_transaction: {
    category: 'technical',
    message: 'Your payment could not be processed. Please try again.',
    explanation: 'The card issuer could not process the payment this time, for a reason it did not give.',
    recommended_action:
      'Retry the payment. If it keeps failing, ask the customer to contact their card issuer.',
    retryable: true,
  },

  // --- Invalid requests that can surface as an attempt failure ---
  amount_too_small: {
    category: 'invalid_request',
    message: 'The payment amount is below the minimum allowed.',
    explanation: 'The amount is below the minimum the processor accepts for this currency.',
    recommended_action: 'Check the amount of the payment; it must be at least the minimum for its currency.',
    retryable: false,
  },
  amount_too_large: {
    category: 'invalid_request',
    message: 'The payment amount is above the maximum allowed.',
    explanation: 'The amount is above the maximum the processor accepts for one payment.',
    recommended_action: 'Check the amount of the payment, or split it into several payments.',
    retryable: false,
  },
};

/** Raw processor code: `code/decline_code` when both say something different, else whichever is set. */
export function stripeProcessorCode(code?: string, declineCode?: string): string {
  if (code && declineCode && code !== declineCode) return `${code}/${declineCode}`;
  return code || declineCode || 'unknown';
}

/**
 * Maps a Stripe error `code` and `decline_code` (and its message) to paystep's `Failure`.
 * An unknown code gets a conservative fallback: hard decline, not retryable, the payer sees Stripe's
 * message (Stripe writes card error messages for payers) or the generic decline.
 */
export function mapStripeDecline(code?: string, declineCode?: string, message?: string): Failure {
  const processor_code = stripeProcessorCode(code, declineCode);
  const known = (k: string | undefined): k is string => !!k && Object.hasOwn(STRIPE_DECLINES, k);
  // An issuer decline code we do not know is not a generic decline: it falls back (never retried).
  const key = known(declineCode)
    ? declineCode
    : known(code) && !(declineCode && code === 'card_declined')
      ? code
      : undefined;
  if (key) {
    const row = STRIPE_DECLINES[key] as DeclineRow;
    return {
      category: row.category,
      code: row.code ?? key,
      processor_code,
      message: row.message,
      explanation: row.explanation,
      recommended_action: row.recommended_action,
      retryable: row.retryable,
    };
  }
  return {
    category: 'hard_decline',
    code: 'declined',
    processor_code,
    message: message || DECLINED,
    explanation: `Declined by the processor with a code paystep does not know (${processor_code}).`,
    recommended_action:
      'Do not retry automatically. Ask the customer to use another payment method or to contact their card issuer.',
    retryable: false,
  };
}
