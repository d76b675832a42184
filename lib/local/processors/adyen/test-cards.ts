/**
 * Adyen's published TEST card numbers and test values (docs.adyen.com/development-resources/
 * testing/test-card-numbers, …/testing/3d-secure-2-authentication, …/testing/result-codes). These
 * numbers only work on Adyen's test platform; the simulator accepts no other card number.
 *
 * Test cards need expiry 03/2030 and CVC 737 (American Express: 7373); another expiry or CVC is
 * refused with the generic `Refused` (code 2), as on Adyen's test platform.
 *
 * Outcomes are chosen as on Adyen: `paymentMethod.holderName` set to a test response name
 * (`DECLINED`, `CARD_EXPIRED`, `NOT_ENOUGH_BALANCE`, `PENDING`, …, optionally followed by
 * ` : <raw scheme response>`), or `additionalData.RequestedTestAcquirerResponseCode` set to its code
 * (or name). Failed modifications: holder name `capture failed` / `refund failed`.
 *
 * Disputes (the simulator's own values; Adyen's test platform has its own dispute scenarios):
 * holder name `CHARGEBACK` (a chargeback once the payment is captured), `CHARGEBACK:<reason code>`
 * (e.g. `CHARGEBACK:4837`), `CHARGEBACK:won` / `CHARGEBACK:lost` (the outcome after defendDispute),
 * `RFI` or `REQUEST_FOR_INFORMATION` (an inquiry).
 */
import type { CardInfo, Magic } from './model.ts';

export interface TestCard {
  number: string;
  brand: 'visa' | 'mc' | 'amex';
  variant: string;
  issuerCountry: string;
  fundingSource: CardInfo['fundingSource'];
  cvc: string;
  /** Enrolled in 3-D Secure: the payment asks the shopper to authenticate first. */
  threeDS: boolean;
}

export const TEST_EXPIRY = { month: '03', year: '2030' } as const;

export const TEST_CARDS: readonly TestCard[] = [
  {
    number: '4111111111111111',
    brand: 'visa',
    variant: 'visa',
    issuerCountry: 'NL',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '4988438843884305',
    brand: 'visa',
    variant: 'visaclassic',
    issuerCountry: 'ES',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '4166676667666746',
    brand: 'visa',
    variant: 'visaclassic',
    issuerCountry: 'NL',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '4646464646464644',
    brand: 'visa',
    variant: 'visaclassic',
    issuerCountry: 'PL',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '4444333322221111',
    brand: 'visa',
    variant: 'visacorporate',
    issuerCountry: 'GB',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '4400000000000008',
    brand: 'visa',
    variant: 'visadebit',
    issuerCountry: 'US',
    fundingSource: 'DEBIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '5555555555554444',
    brand: 'mc',
    variant: 'mccorporate',
    issuerCountry: 'GB',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '5555444433331111',
    brand: 'mc',
    variant: 'mc',
    issuerCountry: 'GB',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '5100290029002909',
    brand: 'mc',
    variant: 'mc',
    issuerCountry: 'NL',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '5500000000000004',
    brand: 'mc',
    variant: 'mcdebit',
    issuerCountry: 'US',
    fundingSource: 'DEBIT',
    cvc: '737',
    threeDS: false,
  },
  {
    number: '370000000000002',
    brand: 'amex',
    variant: 'amex',
    issuerCountry: 'US',
    fundingSource: 'CREDIT',
    cvc: '7373',
    threeDS: false,
  },
  // 3-D Secure 2 enrolled.
  {
    number: '4917610000000000',
    brand: 'visa',
    variant: 'visa',
    issuerCountry: 'GB',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: true,
  },
  {
    number: '5454545454545454',
    brand: 'mc',
    variant: 'mc',
    issuerCountry: 'PL',
    fundingSource: 'CREDIT',
    cvc: '737',
    threeDS: true,
  },
  {
    number: '371449635398431',
    brand: 'amex',
    variant: 'amex',
    issuerCountry: 'US',
    fundingSource: 'CREDIT',
    cvc: '7373',
    threeDS: true,
  },
];

export function findTestCard(number: string): TestCard | undefined {
  return TEST_CARDS.find((c) => c.number === number);
}

export function luhnValid(number: string): boolean {
  if (!/^\d{12,19}$/.test(number)) return false;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = number.charCodeAt(number.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export interface TestResponse {
  code: number;
  holderName: string;
  resultCode: 'Authorised' | 'Refused' | 'Error' | 'Received' | 'Cancelled';
  refusalReason: string;
}

/** Adyen's values for testing refusal reasons (code = refusalReasonCode). */
export const TEST_RESPONSES: readonly TestResponse[] = [
  { code: 0, holderName: 'UNKNOWN', resultCode: 'Error', refusalReason: 'Unknown' },
  { code: 1, holderName: 'APPROVED', resultCode: 'Authorised', refusalReason: '' },
  { code: 2, holderName: 'DECLINED', resultCode: 'Refused', refusalReason: 'Refused' },
  { code: 3, holderName: 'REFERRAL', resultCode: 'Refused', refusalReason: 'Referral' },
  { code: 4, holderName: 'ERROR', resultCode: 'Error', refusalReason: 'Acquirer Error' },
  { code: 5, holderName: 'BLOCK_CARD', resultCode: 'Refused', refusalReason: 'Blocked Card' },
  { code: 6, holderName: 'CARD_EXPIRED', resultCode: 'Refused', refusalReason: 'Expired Card' },
  { code: 7, holderName: 'INVALID_AMOUNT', resultCode: 'Refused', refusalReason: 'Invalid Amount' },
  { code: 8, holderName: 'INVALID_CARD_NUMBER', resultCode: 'Refused', refusalReason: 'Invalid Card Number' },
  { code: 9, holderName: 'ISSUER_UNAVAILABLE', resultCode: 'Refused', refusalReason: 'Issuer Unavailable' },
  { code: 10, holderName: 'NOT_SUPPORTED', resultCode: 'Refused', refusalReason: 'Not supported' },
  {
    code: 11,
    holderName: 'NOT_3D_AUTHENTICATED',
    resultCode: 'Refused',
    refusalReason: '3D Not Authenticated',
  },
  { code: 12, holderName: 'NOT_ENOUGH_BALANCE', resultCode: 'Refused', refusalReason: 'Not enough balance' },
  { code: 13, holderName: 'PENDING', resultCode: 'Received', refusalReason: '' },
  { code: 14, holderName: 'ACQUIRER_FRAUD', resultCode: 'Refused', refusalReason: 'Acquirer Fraud' },
  { code: 15, holderName: 'CANCELLED', resultCode: 'Refused', refusalReason: 'Cancelled' },
  { code: 16, holderName: 'SHOPPER_CANCELLED', resultCode: 'Refused', refusalReason: 'Shopper Cancelled' },
  { code: 17, holderName: 'PIN_INVALID', resultCode: 'Refused', refusalReason: 'Invalid Pin' },
  { code: 18, holderName: 'PIN_TRIES_EXCEEDED', resultCode: 'Refused', refusalReason: 'Pin tries exceeded' },
  {
    code: 19,
    holderName: 'PIN_VALIDATION_NOT_POSSIBLE',
    resultCode: 'Refused',
    refusalReason: 'Pin validation not possible',
  },
  { code: 20, holderName: 'FRAUD', resultCode: 'Refused', refusalReason: 'FRAUD' },
  { code: 21, holderName: 'NOT_SUBMITTED', resultCode: 'Refused', refusalReason: 'Not Submitted' },
  { code: 22, holderName: 'FRAUD_CANCELLED', resultCode: 'Refused', refusalReason: 'FRAUD-CANCELLED' },
  {
    code: 23,
    holderName: 'TRANSACTION_NOT_PERMITTED',
    resultCode: 'Refused',
    refusalReason: 'Transaction Not Permitted',
  },
  { code: 24, holderName: 'CVC_DECLINED', resultCode: 'Refused', refusalReason: 'CVC Declined' },
  { code: 25, holderName: 'RESTRICTED_CARD', resultCode: 'Refused', refusalReason: 'Restricted Card' },
  { code: 26, holderName: 'REVOCATION_OF_AUTH', resultCode: 'Refused', refusalReason: 'Revocation Of Auth' },
  {
    code: 27,
    holderName: 'DECLINED_NON_GENERIC',
    resultCode: 'Refused',
    refusalReason: 'Declined Non Generic',
  },
  {
    code: 28,
    holderName: 'WITHDRAWAL_AMOUNT_EXCEEDED',
    resultCode: 'Refused',
    refusalReason: 'Withdrawal amount exceeded',
  },
  {
    code: 29,
    holderName: 'WITHDRAWAL_COUNT_EXCEEDED',
    resultCode: 'Refused',
    refusalReason: 'Withdrawal count exceeded',
  },
  {
    code: 31,
    holderName: 'ISSUER_SUSPECTED_FRAUD',
    resultCode: 'Refused',
    refusalReason: 'Issuer Suspected Fraud',
  },
  { code: 32, holderName: 'AVS_DECLINED', resultCode: 'Refused', refusalReason: 'AVS Declined' },
];

export const GENERIC_REFUSAL = TEST_RESPONSES.find((r) => r.code === 2)!;

export function responseByCode(code: number): TestResponse | undefined {
  return TEST_RESPONSES.find((r) => r.code === code);
}

export interface TestValues {
  /** The authorisation outcome asked for (none: authorised). */
  response?: TestResponse;
  /** `refusalReasonRaw`, from `NAME : raw` in the holder name. */
  raw?: string;
  magic: Magic;
}

/** Reads the test values of a payment request. */
export function readTestValues(holderName: string | undefined, requested: unknown): TestValues {
  const magic: Magic = {};
  let response: TestResponse | undefined;
  let raw: string | undefined;
  const name = (holderName ?? '').trim();
  const upper = name.toUpperCase();
  if (upper === 'CAPTURE FAILED') magic.captureFails = true;
  else if (upper === 'REFUND FAILED') magic.refundFails = true;
  else if (upper === 'RFI' || upper === 'REQUEST_FOR_INFORMATION') magic.dispute = { kind: 'rfi' };
  else if (upper === 'CHARGEBACK' || upper.startsWith('CHARGEBACK:')) {
    const dispute: NonNullable<Magic['dispute']> = { kind: 'chargeback' };
    for (const part of name
      .split(':')
      .slice(1)
      .map((p) => p.trim())) {
      const p = part.toLowerCase();
      if (p === 'won' || p === 'lost') dispute.outcome = p;
      else if (part) dispute.reasonCode = part;
    }
    magic.dispute = dispute;
  } else if (name) {
    const [head, ...rest] = name.split(':');
    const found = TEST_RESPONSES.find((r) => r.holderName === head!.trim().toUpperCase());
    if (found) {
      response = found;
      if (rest.length) raw = rest.join(':').trim();
    }
  }
  if (requested !== undefined && requested !== null && requested !== '') {
    const s = String(requested).trim();
    const byCode = /^\d+$/.test(s) ? responseByCode(Number(s)) : undefined;
    const found = byCode ?? TEST_RESPONSES.find((r) => r.holderName === s.toUpperCase());
    if (found) response = found;
  }
  if (response?.code === 1) response = undefined;
  return { response, raw, magic };
}

/** What a payment keeps of a test card. */
export function cardInfo(
  card: TestCard,
  expiryMonth: string,
  expiryYear: string,
  holderName?: string,
): CardInfo {
  return {
    brand: card.brand,
    variant: card.variant,
    bin: card.number.slice(0, 6),
    last4: card.number.slice(-4),
    issuerCountry: card.issuerCountry,
    fundingSource: card.fundingSource,
    expiryMonth,
    expiryYear,
    ...(holderName ? { holderName } : {}),
  };
}
