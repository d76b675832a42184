/**
 * Stripe's documented test PaymentMethod ids the simulator honours (docs.stripe.com/testing,
 * docs.stripe.com/radar/testing), and what each does.
 */
export interface Decline {
  code: string;
  decline_code: string;
  message: string;
  param?: string;
  advice_code?: string;
  /** The issuer's (ISO 8583) response code, as Stripe passes it on: `51` insufficient funds, … */
  network_decline_code?: string;
  /** Blocked by Radar (never sent to the issuer) rather than declined by the issuer. */
  blocked?: boolean;
}

export type Behavior =
  | {
      kind: 'succeed';
      risk?: 'normal' | 'elevated';
      dispute?: { reason: string; inquiry: boolean };
      refund?: 'pending' | 'fail';
    }
  | { kind: 'decline'; decline: Decline }
  | { kind: 'authenticate' };

export interface TestCard {
  brand: string;
  last4: string;
  country: string;
  funding: 'credit' | 'debit' | 'prepaid';
  description: string;
  behavior: Behavior;
}

export const DECLINES = {
  generic: {
    code: 'card_declined',
    decline_code: 'generic_decline',
    network_decline_code: '05',
    message: 'Your card was declined.',
    advice_code: 'try_again_later',
  },
  insufficientFunds: {
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    network_decline_code: '51',
    message: 'Your card has insufficient funds.',
    advice_code: 'try_again_later',
  },
  lost: {
    code: 'card_declined',
    decline_code: 'lost_card',
    network_decline_code: '41',
    message: 'Your card was declined.',
    advice_code: 'do_not_try_again',
  },
  stolen: {
    code: 'card_declined',
    decline_code: 'stolen_card',
    network_decline_code: '43',
    message: 'Your card was declined.',
    advice_code: 'do_not_try_again',
  },
  expired: {
    code: 'expired_card',
    decline_code: 'expired_card',
    network_decline_code: '54',
    message: 'Your card has expired.',
    param: 'exp_month',
    advice_code: 'confirm_card_data',
  },
  incorrectCvc: {
    code: 'incorrect_cvc',
    decline_code: 'incorrect_cvc',
    message: "Your card's security code is incorrect.",
    param: 'cvc',
    advice_code: 'confirm_card_data',
  },
  processing: {
    code: 'processing_error',
    decline_code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
    advice_code: 'try_again_later',
  },
  velocity: {
    code: 'card_declined',
    decline_code: 'card_velocity_exceeded',
    network_decline_code: '61',
    message:
      'Your card was declined for making repeated attempts too frequently or exceeding its amount limit.',
    advice_code: 'try_again_later',
  },
  fraudulent: {
    code: 'card_declined',
    decline_code: 'fraudulent',
    message: 'Your card was declined.',
    blocked: true,
  },
} satisfies Record<string, Decline>;

export const ok = (
  description: string,
  extra: Omit<Extract<Behavior, { kind: 'succeed' }>, 'kind'> = {},
) => ({
  description,
  behavior: { kind: 'succeed' as const, ...extra },
});
export const decline = (description: string, d: Decline) => ({
  description,
  behavior: { kind: 'decline' as const, decline: d },
});
export const visa = (last4: string, country = 'US') => ({
  brand: 'visa',
  last4,
  country,
  funding: 'credit' as const,
});

/** Stripe's documented test PaymentMethod ids this simulator honours. */
export const TEST_PAYMENT_METHODS: Readonly<Record<string, TestCard>> = {
  // Brands
  pm_card_visa: { ...visa('4242'), ...ok('Visa, succeeds') },
  pm_card_visa_debit: { ...visa('5556'), funding: 'debit', ...ok('Visa debit, succeeds') },
  pm_card_mastercard: { ...visa('4444'), brand: 'mastercard', ...ok('Mastercard, succeeds') },
  pm_card_mastercard_debit: {
    ...visa('8210'),
    brand: 'mastercard',
    funding: 'debit',
    ...ok('Mastercard debit, succeeds'),
  },
  pm_card_mastercard_prepaid: {
    ...visa('5100'),
    brand: 'mastercard',
    funding: 'prepaid',
    ...ok('Mastercard prepaid, succeeds'),
  },
  pm_card_amex: { ...visa('8431'), brand: 'amex', ...ok('American Express, succeeds') },
  pm_card_discover: { ...visa('1117'), brand: 'discover', ...ok('Discover, succeeds') },
  pm_card_diners: { ...visa('0004'), brand: 'diners', ...ok('Diners Club, succeeds') },
  pm_card_jcb: { ...visa('0505'), brand: 'jcb', ...ok('JCB, succeeds') },
  pm_card_unionpay: { ...visa('0005'), brand: 'unionpay', ...ok('UnionPay, succeeds') },
  pm_card_bypassPending: { ...visa('0077'), ...ok('Succeeds; funds available immediately') },
  // Card countries (Visa)
  pm_card_us: { ...visa('4242', 'US'), ...ok('United States Visa, succeeds') },
  pm_card_ca: { ...visa('0000', 'CA'), ...ok('Canada Visa, succeeds') },
  pm_card_mx: { ...visa('8001', 'MX'), ...ok('Mexico Visa, succeeds') },
  pm_card_br: { ...visa('0002', 'BR'), ...ok('Brazil Visa, succeeds') },
  pm_card_gb: { ...visa('0000', 'GB'), ...ok('United Kingdom Visa, succeeds') },
  pm_card_ie: { ...visa('0005', 'IE'), ...ok('Ireland Visa, succeeds') },
  pm_card_fr: { ...visa('0003', 'FR'), ...ok('France Visa, succeeds') },
  pm_card_de: { ...visa('0016', 'DE'), ...ok('Germany Visa, succeeds') },
  pm_card_es: { ...visa('0007', 'ES'), ...ok('Spain Visa, succeeds') },
  pm_card_it: { ...visa('0008', 'IT'), ...ok('Italy Visa, succeeds') },
  pm_card_nl: { ...visa('0002', 'NL'), ...ok('Netherlands Visa, succeeds') },
  pm_card_be: { ...visa('0004', 'BE'), ...ok('Belgium Visa, succeeds') },
  pm_card_at: { ...visa('0008', 'AT'), ...ok('Austria Visa, succeeds') },
  pm_card_au: { ...visa('0006', 'AU'), ...ok('Australia Visa, succeeds') },
  pm_card_jp: { ...visa('0003', 'JP'), ...ok('Japan Visa, succeeds') },
  pm_card_sg: { ...visa('0003', 'SG'), ...ok('Singapore Visa, succeeds') },
  pm_card_in: { ...visa('0008', 'IN'), ...ok('India Visa, succeeds') },
  // Declines
  pm_card_visa_chargeDeclined: { ...visa('0002'), ...decline('Generic decline', DECLINES.generic) },
  pm_card_visa_chargeDeclinedInsufficientFunds: {
    ...visa('9995'),
    ...decline('Insufficient funds', DECLINES.insufficientFunds),
  },
  pm_card_visa_chargeDeclinedLostCard: { ...visa('9987'), ...decline('Lost card', DECLINES.lost) },
  pm_card_visa_chargeDeclinedStolenCard: { ...visa('9979'), ...decline('Stolen card', DECLINES.stolen) },
  pm_card_chargeDeclinedExpiredCard: { ...visa('0069'), ...decline('Expired card', DECLINES.expired) },
  pm_card_visa_chargeDeclinedExpiredCard: { ...visa('0069'), ...decline('Expired card', DECLINES.expired) },
  pm_card_chargeDeclinedIncorrectCvc: {
    ...visa('0127'),
    ...decline('Incorrect CVC', DECLINES.incorrectCvc),
  },
  pm_card_visa_chargeDeclinedIncorrectCvc: {
    ...visa('0127'),
    ...decline('Incorrect CVC', DECLINES.incorrectCvc),
  },
  pm_card_chargeDeclinedProcessingError: {
    ...visa('0119'),
    ...decline('Processing error', DECLINES.processing),
  },
  pm_card_visa_chargeDeclinedProcessingError: {
    ...visa('0119'),
    ...decline('Processing error', DECLINES.processing),
  },
  pm_card_visa_chargeDeclinedVelocityLimitExceeded: {
    ...visa('6975'),
    ...decline('Velocity limit exceeded', DECLINES.velocity),
  },
  pm_card_chargeCustomerFail: {
    ...visa('0341'),
    ...decline('Attaches, then charging fails', DECLINES.generic),
  },
  // Fraud prevention (Radar)
  pm_card_chargeDeclinedFraudulent: {
    ...visa('0019'),
    ...decline('Highest risk, always blocked', DECLINES.fraudulent),
  },
  pm_card_visa_chargeDeclinedFraudulent: {
    ...visa('0019'),
    ...decline('Highest risk, always blocked', DECLINES.fraudulent),
  },
  pm_card_radarBlock: { ...visa('0019'), ...decline('Always blocked by Radar', DECLINES.fraudulent) },
  pm_card_riskLevelHighest: {
    ...visa('4954'),
    ...decline('Highest risk, blocked by the default rule', DECLINES.fraudulent),
  },
  pm_card_riskLevelElevated: { ...visa('9235'), ...ok('Elevated risk, succeeds', { risk: 'elevated' }) },
  // 3-D Secure
  pm_card_authenticationRequired: {
    ...visa('3184'),
    description: 'Requires authentication (3-D Secure) on every payment',
    behavior: { kind: 'authenticate' },
  },
  // Disputes
  pm_card_createDispute: {
    ...visa('0259'),
    ...ok('Succeeds, then is disputed as fraudulent', { dispute: { reason: 'fraudulent', inquiry: false } }),
  },
  pm_card_createDisputeProductNotReceived: {
    ...visa('2685'),
    ...ok('Succeeds, then is disputed as product not received', {
      dispute: { reason: 'product_not_received', inquiry: false },
    }),
  },
  pm_card_createDisputeInquiry: {
    ...visa('1976'),
    ...ok('Succeeds, then gets an inquiry', { dispute: { reason: 'fraudulent', inquiry: true } }),
  },
  // Refunds
  pm_card_pendingRefund: {
    ...visa('7726'),
    ...ok('Succeeds; its refunds are pending, then succeed', { refund: 'pending' }),
  },
  pm_card_refundFail: {
    ...visa('5126'),
    ...ok('Succeeds; its refunds succeed, then fail (expired_or_canceled_card)', { refund: 'fail' }),
  },
};
