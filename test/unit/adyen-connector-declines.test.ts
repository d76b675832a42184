/**
 * Adyen's refusals in paystep's failure taxonomy (lambdas/connectors/adyen/declines.ts): every
 * documented refusal code has a row, the same meaning gets Stripe's normalized code, category and
 * retryability, raw issuer codes refine the generic refusals, Mastercard advice overrides retries,
 * and the payer never reads "fraud", "lost" or "stolen".
 */
import {
  ADYEN_FAILURES,
  ADYEN_REFUSAL_CODES,
  cardFromAdditionalData,
  mapAdyenDecline,
  mapAdyenRefusal,
} from '../../lambdas/connectors/adyen/declines.ts';
import { STRIPE_DECLINES } from '../../lambdas/connectors/stripe/declines.ts';

const refusal = (refusalReasonCode: string, additionalData?: Record<string, string>) =>
  mapAdyenRefusal({
    resultCode: 'Refused',
    refusalReasonCode,
    ...(additionalData ? { additionalData } : {}),
  });

describe('Adyen refusal table', () => {
  test('every refusal code 0–46 Adyen documents maps to a row (never the unknown fallback)', () => {
    const documented = [0, ...Array.from({ length: 45 }, (_, i) => i + 2)].filter(
      (n) => n !== 13 && n !== 30,
    );
    for (const n of documented) {
      expect(Object.hasOwn(ADYEN_REFUSAL_CODES, String(n))).toBe(true);
      const f = refusal(String(n));
      expect(f.code).not.toBe('declined');
      expect(Object.hasOwn(ADYEN_FAILURES, f.code)).toBe(true);
    }
  });

  test.each([
    ['2', 'generic_decline', 'soft_decline', true],
    ['3', 'call_issuer', 'hard_decline', false],
    ['4', 'processing_error', 'technical', true],
    ['5', 'blocked_card', 'hard_decline', false],
    ['6', 'expired_card', 'hard_decline', false],
    ['7', 'invalid_amount', 'hard_decline', false],
    ['8', 'incorrect_number', 'hard_decline', false],
    ['9', 'issuer_not_available', 'technical', true],
    ['10', 'card_not_supported', 'hard_decline', false],
    ['11', 'authentication_failed', 'authentication', true],
    ['12', 'insufficient_funds', 'soft_decline', true],
    ['14', 'fraudulent', 'fraud', false],
    ['20', 'fraudulent', 'fraud', false],
    ['22', 'fraudulent', 'fraud', false],
    ['23', 'transaction_not_allowed', 'hard_decline', false],
    ['24', 'incorrect_cvc', 'hard_decline', false],
    ['25', 'restricted_card', 'hard_decline', false],
    ['26', 'revocation_of_authorization', 'hard_decline', false],
    ['27', 'do_not_honor', 'soft_decline', true],
    ['28', 'card_velocity_exceeded', 'soft_decline', true],
    ['29', 'withdrawal_count_limit_exceeded', 'soft_decline', true],
    ['31', 'fraudulent', 'fraud', false],
    ['38', 'authentication_required', 'authentication', true],
    ['46', 'card_decline_rate_limit_exceeded', 'soft_decline', true],
  ])('refusalReasonCode %s → %s (%s, retryable %s)', (code, normalized, category, retryable) => {
    const f = refusal(code);
    expect(f).toMatchObject({ code: normalized, category, retryable, processor_code: `Refused/${code}` });
    expect(f.message.length).toBeGreaterThan(0);
    expect(f.explanation.length).toBeGreaterThan(0);
    expect(f.recommended_action.length).toBeGreaterThan(0);
  });

  test('a normalized code shared with the Stripe table has the same category and retryability', () => {
    const stripeByCode = new Map<string, { category: string; retryable: boolean }>();
    for (const [key, row] of Object.entries(STRIPE_DECLINES)) stripeByCode.set(row.code ?? key, row);
    let shared = 0;
    for (const [code, row] of Object.entries(ADYEN_FAILURES)) {
      const s = stripeByCode.get(code);
      if (!s) continue;
      shared++;
      expect({ code, category: row.category, retryable: row.retryable }).toEqual({
        code,
        category: s.category,
        retryable: s.retryable,
      });
    }
    expect(shared).toBeGreaterThanOrEqual(20);
  });

  test('fraud, lost, stolen and blocked cards: the payer reads only "declined", never a retry', () => {
    for (const [code, row] of Object.entries(ADYEN_FAILURES)) {
      expect(row.message).not.toMatch(/fraud|stolen|lost|risk|blocked/i);
      if (row.category === 'fraud') {
        expect(row.retryable).toBe(false);
        expect(row.recommended_action).toMatch(/^Do not/);
        expect(code).toMatch(/fraud|lost|stolen|pickup/);
      }
    }
  });

  test('a generic refusal is refined by the issuer raw code', () => {
    expect(refusal('2', { refusalReasonRaw: '51 : Insufficient funds' }).code).toBe('insufficient_funds');
    expect(refusal('2', { refusalReasonRaw: '05 : Do not honor' })).toMatchObject({
      code: 'do_not_honor',
      processor_code: 'Refused/2/raw:05',
    });
    expect(refusal('27', { refusalReasonRaw: '43 : Stolen card' })).toMatchObject({
      code: 'stolen_card',
      category: 'fraud',
    });
    expect(refusal('27', { refusalReasonRaw: 'N7 : Decline for CVV2 failure' }).code).toBe('incorrect_cvc');
    // A specific refusal is not overridden by its raw code.
    expect(refusal('6', { refusalReasonRaw: '51 : Insufficient funds' }).code).toBe('expired_card');
  });

  test('Mastercard advice: 03 never retry, 02 retry later, kept on the failure; fraud stays final', () => {
    const never = refusal('12', { merchantAdviceCode: '03: Do not try again' });
    expect(never).toMatchObject({ code: 'insufficient_funds', retryable: false, merchant_advice_code: '03' });
    expect(never.recommended_action).toMatch(/must not be tried again/);
    expect(refusal('3', { merchantAdviceCode: '02' })).toMatchObject({
      retryable: true,
      merchant_advice_code: '02',
    });
    expect(refusal('20', { merchantAdviceCode: '02' }).retryable).toBe(false);
    expect(refusal('12').merchant_advice_code).toBeUndefined();
  });

  test('by reason text (webhooks carry only the text), result codes without a reason, and unknown codes', () => {
    expect(mapAdyenRefusal({ refusalReason: 'CVC Declined' }).code).toBe('incorrect_cvc');
    expect(mapAdyenRefusal({ refusalReason: 'FRAUD-CANCELLED' }).category).toBe('fraud');
    expect(mapAdyenRefusal({ refusalReason: 'not enough balance' }).code).toBe('insufficient_funds');
    expect(mapAdyenRefusal({ resultCode: 'Error' })).toMatchObject({
      code: 'processing_error',
      category: 'technical',
    });
    expect(mapAdyenRefusal({ resultCode: 'Cancelled' })).toMatchObject({ code: 'canceled', retryable: true });
    const unknown = mapAdyenRefusal({
      resultCode: 'Refused',
      refusalReasonCode: '99',
      refusalReason: 'Something new',
    });
    expect(unknown).toMatchObject({ code: 'declined', category: 'hard_decline', retryable: false });
    expect(unknown.explanation).toMatch(/Refused\/99/);
  });

  test('mapDecline: a refusal code, a reason text, or a paystep code from processor-neutral callers', () => {
    expect(mapAdyenDecline('24').code).toBe('incorrect_cvc');
    expect(mapAdyenDecline('2', '51 : Insufficient funds').code).toBe('insufficient_funds');
    expect(mapAdyenDecline('Expired Card').code).toBe('expired_card');
    expect(mapAdyenDecline('authentication_required')).toMatchObject({
      category: 'authentication',
      retryable: true,
    });
    expect(mapAdyenDecline('payment_intent_authentication_failure').code).toBe('authentication_failed');
    expect(mapAdyenDecline(undefined).code).toBe('declined');
  });
});

describe('card details from additionalData', () => {
  test('brand, last 4, expiry and issuer country into CardDetails; BIN and issuer into analytics', () => {
    const { card, analytics } = cardFromAdditionalData(
      {
        cardBin: '411111',
        issuerBin: '41111111',
        cardSummary: '1111',
        expiryDate: '3/2030',
        cardIssuingCountry: 'NL',
        cardIssuingBank: 'Test Bank',
        fundingSource: 'CREDIT',
        paymentMethodVariant: 'visaclassic',
      },
      'visa',
    );
    expect(card).toEqual({ brand: 'visa', last4: '1111', country: 'NL', exp_month: 3, exp_year: 2030 });
    expect(analytics).toEqual({
      bin: '411111',
      issuer_bin: '41111111',
      issuer_country: 'NL',
      issuer_name: 'Test Bank',
      funding: 'credit',
      variant: 'visaclassic',
    });
  });

  test('Adyen brands become paystep brands; junk is dropped; nothing → nothing', () => {
    expect(cardFromAdditionalData({ paymentMethod: 'mc' }).card).toEqual({ brand: 'mastercard' });
    expect(cardFromAdditionalData({}, 'cup').card).toEqual({ brand: 'unionpay' });
    expect(cardFromAdditionalData({ cardBin: '41111', cardSummary: 'x1', cardIssuingCountry: 'nl' })).toEqual(
      {},
    );
    expect(cardFromAdditionalData(undefined)).toEqual({});
  });
});
