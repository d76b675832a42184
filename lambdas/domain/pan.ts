/**
 * Card numbers (PANs) in free text. paystep never stores, logs or forwards a card number: card
 * data goes to the processor from the payer's device (Stripe Elements, the mobile SDKs) and
 * merchants send paystep the processor's token (`pm_…`). Any card number that reaches the API in
 * a field is refused before it is hashed, stored, journaled or sent anywhere (lambdas/shared/input.ts).
 *
 * What counts as a card number here: 13 to 19 digits that pass the Luhn check and start like the
 * card networks' numbers (first digit 2–6: Mastercard and Mir 2, Amex, JCB and Diners 3, Visa 4,
 * Mastercard and Maestro 5, Discover, UnionPay, RuPay and Maestro 6; or 81/82: UnionPay and RuPay);
 * 13 digits only from 4 (Visa's legacy length, the only network issuing 13-digit numbers).
 * The digits may be grouped by spaces or dashes (`4242 4242 4242 4242`, `4242-4242-4242-4242`),
 * in any grouping, and may sit inside other text (`card 4242424242424242 exp 12/30`); a group
 * glued to letters (`…c5887-3051-…86d3`, a UUID's) is a word's, not a card number's.
 *
 * What is deliberately not a card number, to keep false positives down:
 * - fewer than 13 or more than 19 digits in one unbroken run (ids, phone numbers, long references);
 * - numbers starting with 0, 1, 7, 9 or 80/83–89, and 13-digit ones not starting with 4: epoch
 *   timestamps in milliseconds (13 digits) until 2096, in micro- and nanoseconds (16, 19 digits)
 *   until 2033 start with 1, zero-padded counters with 0;
 * - 16 digits that fail the Luhn check (nine in ten random 16-digit numbers).
 *
 * Fullwidth and other compatibility digits (`４２４２…`) are folded to ASCII first (NFKC).
 */

/** Shortest and longest PAN (ISO/IEC 7812). */
export const PAN_MIN_DIGITS = 13;
export const PAN_MAX_DIGITS = 19;

/** Digits, optionally separated by runs of up to three spaces or dashes (any dash). */
const DIGIT_RUN = /\d(?:[ \t\u00a0\u2007\u202f\-\u2010-\u2015\u2212]{0,3}\d)*/g;
const SEPARATOR = /[ \t\u00a0\u2007\u202f\-\u2010-\u2015\u2212]+/;
const NETWORK_PREFIX = /^(?:[2-6]|8[12])/;
const LETTER = /^\p{L}$/u;
/** A UUID's 8-4-4-4-12 hex grouping is an identifier's, never a card number's (whatever its digits). */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** The Luhn (mod 10) check of a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** Whether `digits` (ASCII digits only) is shaped like a payment card number. */
export function isCardNumber(digits: string): boolean {
  return (
    digits.length >= PAN_MIN_DIGITS &&
    digits.length <= PAN_MAX_DIGITS &&
    NETWORK_PREFIX.test(digits) &&
    (digits.length > PAN_MIN_DIGITS || digits.startsWith('4')) &&
    luhnValid(digits)
  );
}

/**
 * Whether `text` contains a card number. A run of digits grouped by separators is checked group-
 * aligned: every span of whole groups holding 13–19 digits (so `4242 4242 4242 4242 12/30` and
 * `ref 12 4242-4242-4242-4242` are found); an unbroken run of digits only as a whole.
 */
export function containsCardNumber(text: string): boolean {
  if (text.length < PAN_MIN_DIGITS) return false;
  // eslint-disable-next-line no-control-regex -- the ASCII range test is the point
  const s = /[^\x00-\x7f]/.test(text) ? text.normalize('NFKC') : text;
  let digitCount = 0;
  for (let i = 0; i < s.length && digitCount < PAN_MIN_DIGITS; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) digitCount++;
  }
  if (digitCount < PAN_MIN_DIGITS) return false;
  const t = s.replace(UUID, (u) => ' '.repeat(u.length)); // same length: indexes into s hold
  for (const m of t.matchAll(DIGIT_RUN)) {
    const groups = m[0].split(SEPARATOR);
    if (groups.length > 1) {
      // A group glued to letters is part of a word, not of a grouped card number: a UUID's or
      // other hex id's dash-separated groups (`6e9c5887-3051-4388-86d3-…`) would otherwise read as
      // `5887 3051 4388 86`, a Luhn-valid number in about 1 in 900 random UUIDs.
      if (LETTER.test(t[m.index - 1] ?? '')) groups.shift();
      if (LETTER.test(t[m.index + m[0].length] ?? '')) groups.pop();
    }
    const total = groups.reduce((n, g) => n + g.length, 0);
    if (total < PAN_MIN_DIGITS) continue;
    if (groups.length === 1) {
      if (isCardNumber(groups[0]!)) return true;
      continue;
    }
    for (let start = 0; start < groups.length; start++) {
      let digits = '';
      for (let end = start; end < groups.length; end++) {
        digits += groups[end]!;
        if (digits.length > PAN_MAX_DIGITS) break;
        if (isCardNumber(digits)) return true;
      }
    }
  }
  return false;
}

/**
 * The stricter test for an identifier a client makes up (the Idempotency-Key): a card number as an
 * unbroken run of digits, or the whole identifier a card number grouped by spaces or dashes.
 * Grouped spans inside other text are not looked at, as `containsCardNumber` does: about 1 in 900
 * random UUIDs holds one (`6e9c5887-3051-4388-86d3-…`: `5887 3051 4388 86`), and a UUID is what
 * clients send as a key.
 */
export function identifierHoldsCardNumber(id: string): boolean {
  for (const run of id.match(/\d+/g) ?? []) if (isCardNumber(run)) return true;
  return /^[\d -]+$/.test(id) && isCardNumber(id.replace(/[ -]/g, ''));
}
