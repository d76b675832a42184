/**
 * The card number detector (lambdas/domain/pan.ts): every card network's test numbers, with and
 * without separators and inside text, are found; short numbers, non-Luhn numbers, timestamps and
 * other long references are not.
 */
import fc from 'fast-check';
import {
  containsCardNumber,
  identifierHoldsCardNumber,
  isCardNumber,
  luhnValid,
} from '../../lambdas/domain/pan.ts';

/** Appends the Luhn check digit to `body`. */
function withCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

describe('card numbers are found', () => {
  test.each([
    ['Visa', '4242424242424242'],
    ['Visa, 13 digits', '4222222222222'],
    ['Visa debit', '4000056655665556'],
    ['Mastercard', '5555555555554444'],
    ['Mastercard 2-series', '2223003122003222'],
    ['American Express', '378282246310005'],
    ['Discover', '6011111111111117'],
    ['Diners Club, 14 digits', '36227206271667'],
    ['Diners Club, 16 digits', '3056930009020004'],
    ['JCB', '3566002020360505'],
    ['UnionPay', '6200000000000005'],
    ['UnionPay, 19 digits', '6205500000000000004'],
  ])('%s %s', (_, pan) => {
    expect(isCardNumber(pan)).toBe(true);
    expect(containsCardNumber(pan)).toBe(true);
  });

  test.each([
    '4242 4242 4242 4242',
    '4242-4242-4242-4242',
    '4242 - 4242 - 4242 - 4242',
    '3782 822463 10005',
    '4242\u20134242\u20134242\u20134242', // en dash
    '4242\u00a04242\u00a04242\u00a04242', // no-break space
    'card: 4242424242424242 exp 12/30 cvc 123',
    'pay with 4242 4242 4242 4242 12 30',
    'order 12 4242-4242-4242-4242',
    'x4242424242424242y',
    '\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12', // fullwidth
  ])('with separators or in text: %j', (text) => {
    expect(containsCardNumber(text)).toBe(true);
  });

  test('any Luhn-valid 13–19 digit number with a network prefix, grouped any way', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('2', '3', '4', '5', '6', '81', '82'),
        fc.integer({ min: 13, max: 19 }),
        fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 18, maxLength: 18 }),
        fc.array(fc.constantFrom('', '', ' ', '-', '  '), { minLength: 19, maxLength: 19 }),
        fc.string({ maxLength: 10 }),
        (prefix, length, fill, seps, around) => {
          const pan = withCheckDigit(((length === 13 ? '4' : prefix) + fill).slice(0, length - 1));
          const grouped = [...pan].map((d, i) => (i === 0 ? d : seps[i]! + d)).join('');
          const text = `${around.replace(/\d/g, 'x')} ${grouped} ${around.replace(/\d/g, 'y')}`;
          expect(containsCardNumber(text)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('other numbers are not', () => {
  test.each([
    ['12 digits', '424242424242'],
    ['16 digits, not Luhn-valid', '4242424242424241'],
    ['epoch seconds', '1764057600'],
    ['epoch milliseconds', '1764057600000'],
    ['epoch microseconds', '1764057600123456'],
    ['epoch nanoseconds', '1764057600123456789'],
    ['zero-padded counter', '0000000000000000'],
    ['20 digits', '42424242424242424242'],
    ['phone number', '+44 20 7946 0958'],
    ['IBAN', 'DE89 3704 0044 0532 0130 00'],
    ['UUID', '123e4567-e89b-12d3-a456-426614174000'],
    ['amount and date', '1050 usd on 2025-11-25'],
    ['decimal', '4242.4242424242424'],
    ['processor token', 'pm_card_visa'],
    ['paystep id', 'pay_4bZ7Qd1VxYyT2m9L0aKc3e'],
  ])('%s: %s', (_, text) => {
    expect(containsCardNumber(text)).toBe(false);
  });

  test('no 16-digit number failing the Luhn check is a card number', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 16, maxLength: 16 }),
        (s) => {
          fc.pre(!luhnValid(s));
          expect(containsCardNumber(s)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('epoch timestamps are not card numbers: ms until 2096, µs and ns until 2033', () => {
    const until2096 = Date.UTC(2096, 0, 1);
    const until2033 = Date.UTC(2033, 0, 1);
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2001, 9, 1), max: until2096 }),
        fc.integer({ min: Date.UTC(2001, 9, 1), max: until2033 }),
        fc.integer({ min: 0, max: 999_999 }),
        (ms, early, sub) => {
          expect(containsCardNumber(`created ${ms}`)).toBe(false);
          expect(containsCardNumber(`${early}${String(sub).padStart(3, '0').slice(0, 3)}`)).toBe(false);
          expect(containsCardNumber(`${early}${String(sub).padStart(6, '0')}`)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('identifiers (the Idempotency-Key)', () => {
  test('a card number in an unbroken run, or the whole key grouped, is found', () => {
    for (const k of [
      '4000056655665556',
      'k-4000056655665556-1',
      'order4242424242424242',
      '4242-4242-4242-4242',
      '4242 4242 4242 4242',
    ])
      expect([k, identifierHoldsCardNumber(k)]).toEqual([k, true]);
    expect(identifierHoldsCardNumber('4242424242424241')).toBe(false); // fails the Luhn check
  });

  test('random UUIDs never are, as keys or in free text (order ids, descriptions, metadata)', () => {
    // A UUID whose digit groups would read as a card number across the dashes (5887 3051 4388 86)
    // if groups glued to letters counted: about 1 in 900 random UUIDs.
    const uuid = '6e9c5887-3051-4388-86d3-5b2194a96b4c';
    expect(containsCardNumber(uuid)).toBe(false);
    expect(containsCardNumber(`order ${uuid} for 4242 4242 4242 4242`)).toBe(true);
    expect(identifierHoldsCardNumber(uuid)).toBe(false);
    fc.assert(
      fc.property(fc.uuid(), fc.constantFrom('', 'order ', 'ref:'), (u, pre) => {
        expect([u, identifierHoldsCardNumber(u), containsCardNumber(pre + u)]).toEqual([u, false, false]);
      }),
      { numRuns: 20_000 },
    );
  });
});
