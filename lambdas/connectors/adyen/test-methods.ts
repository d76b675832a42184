/**
 * paystep's documented test payment method ids (README "Try it", docs/api.md) on Adyen: each id is
 * an Adyen test instrument plus the magic value that makes Adyen's test environment (and paystep's
 * Adyen simulator) behave as the id says. docs/decisions/0004-processor-neutral-payment-methods.md
 * explains the model: test ids are paystep's, every connector maps them to its processor's own
 * test instruments; no card number is ever stored by paystep.
 *
 * The card goes to Adyen the way Adyen's docs test a server without client-side encryption: the
 * `encrypted…` fields with the `test_` prefix (`test_4111111111111111`, `test_03`, `test_2030`,
 * `test_737`). Adyen only accepts those in its test environment; these are Adyen's published test
 * card numbers, not cards, and nothing logs them.
 *
 * Behaviour comes from Adyen's documented test values (docs.adyen.com/development-resources/testing/
 * result-codes; …/risk-management/disputes-api/test-applicable-dispute-reasons):
 * - `holderName` = a refusal name (`NOT_ENOUGH_BALANCE`, `CARD_EXPIRED`, `CVC_DECLINED`, `FRAUD`,
 *   `ERROR`, …), or equivalently `additionalData.RequestedTestAcquirerResponseCode` = its number
 *   (sent too, so the value survives a holder-name risk rule);
 * - `holderName` = `Chargeback:<reason code>` / `Chargeback` / `Chargeback Reversed` / `Second
 *   Chargeback`: the captured payment is then disputed;
 * - a 3-D Secure 2 test card (4917 6100 0000 0000) asks the shopper to authenticate;
 * - `holderName` = `capture failed` / `refund failed`: the capture or refund is refused by the
 *   scheme (CAPTURE_FAILED / REFUND_FAILED), per the shared reference notes on Adyen testing.
 * `RFI` is a paystep-simulator value (Adyen's test environment cannot simulate an inquiry; there it
 * is an ordinary successful payment). The simulator (lib/local/processors/adyen/test-cards.ts)
 * honours the same values.
 */

export interface AdyenTestInstrument {
  /** What the id does, in words (for docs and `paystep` help). */
  description: string;
  /** Adyen's brand of the test card (`visa`, `mc`, `amex`). */
  brand: string;
  /** Adyen's published test card number (a test number, not a card). */
  number: string;
  expiryMonth: string;
  expiryYear: string;
  cvc: string;
  holderName: string;
  /** `RequestedTestAcquirerResponseCode`, when the behaviour is a refusal or an error. */
  acquirerResponseCode?: number;
}

const EXP = { expiryMonth: '03', expiryYear: '2030' } as const;
const VISA = { brand: 'visa', number: '4111111111111111', cvc: '737', ...EXP } as const;
const MC = { brand: 'mc', number: '5555555555554444', cvc: '737', ...EXP } as const;
const AMEX = { brand: 'amex', number: '370000000000002', cvc: '7373', ...EXP } as const;
const VISA_DEBIT = { brand: 'visa', number: '4400000000000008', cvc: '737', ...EXP } as const;
const MC_DEBIT = { brand: 'mc', number: '5500000000000004', cvc: '737', ...EXP } as const;
const VISA_3DS2 = { brand: 'visa', number: '4917610000000000', cvc: '737', ...EXP } as const;
const HOLDER = 'Paystep Test';

type Base = typeof VISA | typeof MC | typeof AMEX | typeof VISA_DEBIT | typeof MC_DEBIT;
const ok = (description: string, base: Base = VISA, holderName = HOLDER) => ({
  ...base,
  description,
  holderName,
});
const refused = (description: string, holderName: string, acquirerResponseCode: number) => ({
  ...VISA,
  description,
  holderName,
  acquirerResponseCode,
});

/** paystep test id → Adyen test instrument. Ids not listed are refused on Adyen (`test_method_unknown`). */
export const ADYEN_TEST_METHODS: Readonly<Record<string, AdyenTestInstrument>> = {
  // Brands
  pm_card_visa: ok('Visa, succeeds'),
  pm_card_visa_debit: ok('Visa debit, succeeds', VISA_DEBIT),
  pm_card_mastercard: ok('Mastercard, succeeds', MC),
  pm_card_mastercard_debit: ok('Mastercard debit, succeeds', MC_DEBIT),
  pm_card_amex: ok('American Express, succeeds', AMEX),
  pm_card_us: ok('Visa, succeeds'),
  // Declines
  pm_card_visa_chargeDeclined: refused('Generic decline (Refused)', 'DECLINED', 2),
  pm_card_visa_chargeDeclinedInsufficientFunds: refused(
    'Insufficient funds (Not enough balance)',
    'NOT_ENOUGH_BALANCE',
    12,
  ),
  pm_card_visa_chargeDeclinedLostCard: refused(
    'Blocked card (Adyen has no lost-card test value)',
    'BLOCK_CARD',
    5,
  ),
  pm_card_visa_chargeDeclinedStolenCard: refused(
    'Blocked card (Adyen has no stolen-card test value)',
    'BLOCK_CARD',
    5,
  ),
  pm_card_chargeDeclinedExpiredCard: refused('Expired card', 'CARD_EXPIRED', 6),
  pm_card_visa_chargeDeclinedExpiredCard: refused('Expired card', 'CARD_EXPIRED', 6),
  pm_card_chargeDeclinedIncorrectCvc: refused('Incorrect CVC (CVC Declined)', 'CVC_DECLINED', 24),
  pm_card_visa_chargeDeclinedIncorrectCvc: refused('Incorrect CVC (CVC Declined)', 'CVC_DECLINED', 24),
  pm_card_chargeDeclinedProcessingError: refused('Processing error (Acquirer Error)', 'ERROR', 4),
  pm_card_visa_chargeDeclinedProcessingError: refused('Processing error (Acquirer Error)', 'ERROR', 4),
  pm_card_visa_chargeDeclinedVelocityLimitExceeded: refused(
    'Velocity limit (Withdrawal count exceeded)',
    'WITHDRAWAL_COUNT_EXCEEDED',
    29,
  ),
  // Fraud
  pm_card_chargeDeclinedFraudulent: refused('Fraudulent (FRAUD)', 'FRAUD', 20),
  pm_card_visa_chargeDeclinedFraudulent: refused('Fraudulent (FRAUD)', 'FRAUD', 20),
  pm_card_radarBlock: refused('Blocked by risk checks (FRAUD)', 'FRAUD', 20),
  pm_card_riskLevelHighest: refused('Blocked by risk checks (FRAUD)', 'FRAUD', 20),
  // 3-D Secure
  pm_card_authenticationRequired: {
    ...VISA_3DS2,
    description: '3-D Secure 2 challenge on every payment',
    holderName: HOLDER,
  },
  // Disputes (after capture)
  pm_card_createDispute: ok('Succeeds, then is disputed as fraud (Visa 10.4)', VISA, 'Chargeback:10.4'),
  pm_card_createDisputeProductNotReceived: ok(
    'Succeeds, then is disputed as not received (Visa 13.1)',
    VISA,
    'Chargeback:13.1',
  ),
  pm_card_createDisputeInquiry: ok(
    'Succeeds, then gets a request for information (paystep simulator only)',
    VISA,
    'RFI',
  ),
  // Modifications that fail at the scheme
  pm_card_refundFail: ok('Succeeds; its refunds fail (REFUND_FAILED)', VISA, 'refund failed'),
  pm_card_captureFail: ok('Authorizes; its capture fails (CAPTURE_FAILED)', VISA, 'capture failed'),
};

export const isTestMethodId = (id: string): boolean => id.startsWith('pm_card_');

/** The Checkout API `paymentMethod` and `additionalData` for a test instrument. */
export function adyenTestPaymentMethod(m: AdyenTestInstrument): {
  paymentMethod: {
    type: 'scheme';
    encryptedCardNumber: string;
    encryptedExpiryMonth: string;
    encryptedExpiryYear: string;
    encryptedSecurityCode: string;
    holderName: string;
  };
  additionalData: Record<string, string>;
} {
  return {
    paymentMethod: {
      type: 'scheme',
      encryptedCardNumber: `test_${m.number}`,
      encryptedExpiryMonth: `test_${m.expiryMonth}`,
      encryptedExpiryYear: `test_${m.expiryYear}`,
      encryptedSecurityCode: `test_${m.cvc}`,
      holderName: m.holderName,
    },
    additionalData:
      m.acquirerResponseCode !== undefined
        ? { RequestedTestAcquirerResponseCode: String(m.acquirerResponseCode) }
        : {},
  };
}
