/**
 * Adyen notifications (lambdas/connectors/adyen/notifications.ts): HMAC verification with the
 * library's validator (Adyen's published test vector, two keys during a rotation, forged and
 * unsigned items rejected), the batch answer, the facts each event code states, and folding facts
 * into a payment's state in any order (lambdas/connectors/facts.ts).
 */
import { randomBytes } from 'node:crypto';
import { hmacValidator, type Types } from '@adyen/api-library';
import {
  ACCEPTED,
  AdyenNotificationError,
  checkHmacKeys,
  parseAdyenNotification,
  verifyItem,
} from '../../lambdas/connectors/adyen/notifications.ts';
import {
  paymentState,
  refundState,
  type ConnectorFact,
  type DisputeFact,
  type PaymentFact,
  type RefundFact,
} from '../../lambdas/connectors/facts.ts';

type Item = Types.notification.NotificationRequestItem;
/** An item's fields as Adyen sends them (plain strings; the library's typings use enums). */
type Over = Omit<Partial<Item>, 'eventCode' | 'success' | 'additionalData'> & {
  eventCode?: string;
  success?: 'true' | 'false';
  additionalData?: Record<string, string>;
};

/** Adyen's published test vector (adyen-node-api-library, hmacValidator spec): key and signature. */
const VECTOR_KEY = 'DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00';
const VECTOR_SIGNATURE = 'xhpHvYq2u2Np0rstbZ6QjLGu7JWhvf7Iwaa6EviJSX0=';

const KEY = randomBytes(32).toString('hex').toUpperCase();
const NEXT_KEY = randomBytes(32).toString('hex').toUpperCase();
const signer = new hmacValidator();

let seq = 0;
function item(over: Over = {}, key = KEY): Item {
  seq++;
  const it = {
    pspReference: `PSP${String(seq).padStart(13, '0')}`,
    merchantAccountCode: 'PaystepECOM',
    merchantReference: 'pay_test_1',
    amount: { currency: 'EUR', value: 1000 },
    eventCode: 'AUTHORISATION',
    eventDate: '2026-11-29T12:00:00+01:00',
    success: 'true',
    paymentMethod: 'visa',
    ...over,
    additionalData: { ...(over.additionalData ?? {}) },
  } as Item;
  it.additionalData!.hmacSignature = signer.calculateHmac(it, key);
  return it;
}

const batch = (...items: Item[]) =>
  JSON.stringify({ live: 'false', notificationItems: items.map((i) => ({ NotificationRequestItem: i })) });

const parse = (body: string, keys = [KEY]) => parseAdyenNotification(body, { hmacKeys: keys });

describe('HMAC verification', () => {
  test("Adyen's published test vector verifies with the library's validator, and a changed field does not", () => {
    const vector = {
      pspReference: 'pspReference',
      originalReference: 'originalReference',
      merchantAccountCode: 'merchantAccount',
      merchantReference: 'reference',
      amount: { currency: 'EUR', value: 1000 },
      eventCode: 'CAPTURE',
      eventDate: new Date(0).toISOString(),
      paymentMethod: 'VISA',
      reason: 'reason',
      success: 'true',
      additionalData: { hmacSignature: VECTOR_SIGNATURE },
    } as Item;
    expect(verifyItem(vector, [VECTOR_KEY])).toBe(true);
    expect(verifyItem({ ...vector, amount: { currency: 'EUR', value: 100000 } }, [VECTOR_KEY])).toBe(false);
    expect(verifyItem(vector, [KEY])).toBe(false);
    // The signed fields only: the reason text is not covered by Adyen's signature.
    expect(verifyItem({ ...vector, reason: 'other' }, [VECTOR_KEY])).toBe(true);
  });

  test('a batch whose items all verify is answered [accepted]', () => {
    const r = parse(batch(item(), item({ eventCode: 'REPORT_AVAILABLE' })));
    expect(r.allVerified).toBe(true);
    expect(r.response).toBe(ACCEPTED);
    expect(r.live).toBe(false);
    expect(r.facts).toHaveLength(1); // REPORT_AVAILABLE verifies but states nothing paystep uses
    expect(r.items[1]).toMatchObject({ verified: true, fact: null, eventCode: 'REPORT_AVAILABLE' });
  });

  test('a forged item is rejected and the batch is not accepted; the genuine item still states its fact', () => {
    const genuine = item({ eventCode: 'CAPTURE', originalReference: 'PSPPAYMENT000001' });
    const forged = item({ eventCode: 'REFUND', originalReference: 'PSPPAYMENT000001' });
    forged.amount = { currency: 'EUR', value: 999_999 }; // changed after signing
    const unsigned = item();
    delete unsigned.additionalData!.hmacSignature;
    const r = parse(batch(genuine, forged, unsigned));
    expect(r.allVerified).toBe(false);
    expect(r.response).toBeNull();
    expect(r.items.map((i) => [i.verified, i.rejection])).toEqual([
      [true, undefined],
      [false, 'bad_signature'],
      [false, 'missing_signature'],
    ]);
    expect(r.facts).toEqual([expect.objectContaining({ kind: 'payment', event: 'captured' })]);
  });

  test('two keys during a rotation: an item signed with either verifies; a retired key does not', () => {
    const old = item({}, KEY);
    const fresh = item({}, NEXT_KEY);
    expect(parse(batch(old, fresh), [NEXT_KEY, KEY]).allVerified).toBe(true);
    const after = parse(batch(old, fresh), [NEXT_KEY]);
    expect(after.items.map((i) => i.verified)).toEqual([false, true]);
  });

  test('items for another merchant account are rejected when accounts are configured', () => {
    const other = item({ merchantAccountCode: 'SomeoneElse' });
    const r = parseAdyenNotification(batch(item(), other), {
      hmacKeys: [KEY],
      merchantAccounts: ['PaystepECOM'],
    });
    expect(r.items.map((i) => i.rejection)).toEqual([undefined, 'merchant_account']);
  });

  test('malformed bodies and items; HMAC keys are checked at start', () => {
    expect(() => parse('not json')).toThrow(AdyenNotificationError);
    expect(() => parse('{"live":"false","notificationItems":[]}')).toThrow(/no notificationItems/);
    const r = parse(
      JSON.stringify({
        live: 'false',
        notificationItems: [{ NotificationRequestItem: { eventCode: 'X' } }, {}],
      }),
    );
    expect(r.items.map((i) => i.rejection)).toEqual(['malformed', 'malformed']);
    expect(checkHmacKeys([` ${KEY} `, ''])).toEqual([KEY]);
    expect(() => checkHmacKeys(['not-hex'])).toThrow(/hex/);
    expect(() => checkHmacKeys([])).toThrow(/one HMAC key/);
    expect(() => checkHmacKeys([KEY, NEXT_KEY, KEY])).toThrow(/two while rotating/);
  });
});

describe('facts', () => {
  const only = (it: Item) => {
    const r = parse(batch(it));
    expect(r.allVerified).toBe(true);
    return r.facts[0];
  };

  test('AUTHORISATION: authorised with the card, or refused with the failure taxonomy', () => {
    const ok = only(
      item({
        pspReference: 'PSPAUTH000000001',
        additionalData: {
          cardSummary: '1111',
          expiryDate: '3/2030',
          cardIssuingCountry: 'NL',
          cardBin: '411111',
        },
      }),
    ) as PaymentFact;
    expect(ok).toMatchObject({
      kind: 'payment',
      processor: 'adyen',
      event: 'authorised',
      success: true,
      reference: 'PSPAUTH000000001',
      merchantReference: 'pay_test_1',
      amount: { value: 1000, currency: 'eur' },
      at: '2026-11-29T11:00:00.000Z',
      raw_event: 'AUTHORISATION',
      card: { brand: 'visa', last4: '1111', country: 'NL', exp_month: 3, exp_year: 2030 },
    });
    expect(JSON.stringify(ok)).not.toContain('411111'); // the BIN is not part of the fact's card
    const refused = only(item({ success: 'false', reason: 'CVC Declined' })) as PaymentFact;
    expect(refused).toMatchObject({ event: 'refused', success: false, reason: 'CVC Declined' });
    expect(refused.failure).toMatchObject({ code: 'incorrect_cvc', category: 'hard_decline' });
  });

  test('modifications name the payment as originalReference; failures are failures whatever success says', () => {
    const mod = { originalReference: 'PSPPAYMENT000002' };
    expect(only(item({ ...mod, pspReference: 'PSPCAPTURE00001', eventCode: 'CAPTURE' }))).toMatchObject({
      kind: 'payment',
      event: 'captured',
      reference: 'PSPPAYMENT000002',
      modificationReference: 'PSPCAPTURE00001',
      success: true,
    });
    expect(only(item({ ...mod, eventCode: 'CAPTURE_FAILED' }))).toMatchObject({
      event: 'capture_failed',
      success: false,
    });
    expect(only(item({ ...mod, eventCode: 'CANCELLATION' }))).toMatchObject({
      event: 'canceled',
      success: true,
    });
    expect(only(item({ ...mod, eventCode: 'CANCELLATION', success: 'false' }))).toMatchObject({
      event: 'cancel_failed',
    });
    expect(only(item({ ...mod, eventCode: 'REFUND', pspReference: 'PSPREFUND000001' }))).toMatchObject({
      kind: 'refund',
      event: 'succeeded',
      reference: 'PSPREFUND000001',
      paymentReference: 'PSPPAYMENT000002',
    });
    expect(only(item({ ...mod, eventCode: 'REFUND', success: 'false' }))).toMatchObject({
      kind: 'refund',
      event: 'failed',
    });
    expect(only(item({ ...mod, eventCode: 'REFUND_FAILED' }))).toMatchObject({
      event: 'failed',
      success: false,
    });
    expect(
      only(
        item({ ...mod, eventCode: 'CANCEL_OR_REFUND', additionalData: { 'modification.action': 'refund' } }),
      ),
    ).toMatchObject({ kind: 'refund', event: 'succeeded' });
    expect(
      only(
        item({ ...mod, eventCode: 'CANCEL_OR_REFUND', additionalData: { 'modification.action': 'cancel' } }),
      ),
    ).toMatchObject({ kind: 'payment', event: 'canceled', reference: 'PSPPAYMENT000002' });
  });

  test('dispute events: one dispute reference, the payment, the money, the reason and the deadline', () => {
    const d = {
      pspReference: 'PSPDISPUTE00001',
      originalReference: 'PSPPAYMENT000003',
      additionalData: {
        chargebackReasonCode: '10.4',
        disputeStatus: 'Undefended',
        defensePeriodEndsAt: '2026-12-20T10:00:00+01:00',
        defendable: 'true',
      },
    };
    const cases: [string, string, string][] = [
      ['NOTIFICATION_OF_CHARGEBACK', 'notification_of_chargeback', 'none'],
      ['CHARGEBACK', 'chargeback', 'withdrawn'],
      ['CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned'],
      ['SECOND_CHARGEBACK', 'second_chargeback', 'withdrawn'],
      ['REQUEST_FOR_INFORMATION', 'request_for_information', 'none'],
      ['DISPUTE_DEFENSE_PERIOD_ENDED', 'defense_period_ended', 'none'],
    ];
    for (const [eventCode, event, money] of cases) {
      const f = only(item({ ...d, eventCode })) as DisputeFact;
      expect(f).toMatchObject({
        kind: 'dispute',
        event,
        money,
        reference: 'PSPDISPUTE00001',
        paymentReference: 'PSPPAYMENT000003',
        reasonCode: '10.4',
        processorStatus: 'Undefended',
        evidenceDueBy: '2026-12-20T09:00:00.000Z',
        defendable: true,
      });
    }
  });

  test("Adyen's minor units become paystep's (CLP: 2 decimals at Adyen, 0 in paystep)", () => {
    expect(only(item({ amount: { currency: 'CLP', value: 150000 } }))!.amount).toEqual({
      value: 1500,
      currency: 'clp',
    });
    expect(only(item({ amount: { currency: 'JPY', value: 1500 } }))!.amount).toEqual({
      value: 1500,
      currency: 'jpy',
    });
  });

  test('the same notification delivered twice states the same fact id; another event another id', () => {
    const a = item({ pspReference: 'PSPSAME00000001' });
    const again = { ...a };
    const r = parse(batch(a, again));
    expect(r.facts[0]!.id).toBe(r.facts[1]!.id);
    const cancel = item({ pspReference: 'PSPSAME00000001', eventCode: 'CANCELLATION' });
    expect(parse(batch(cancel)).facts[0]!.id).not.toBe(r.facts[0]!.id);
  });
});

describe('payment and refund state from facts, in any order', () => {
  const P = 'PSPPAYMENT000009';
  const ctx = { amount: 1000, currency: 'eur', captureMethod: 'manual' as const };
  const facts = (...items: Item[]) => parse(batch(...items)).facts;
  const auth = () => item({ pspReference: P });
  const capture = (value = 1000) =>
    item({
      pspReference: `PSPCAP${++seq}`,
      originalReference: P,
      eventCode: 'CAPTURE',
      amount: { currency: 'EUR', value },
    });
  const refund = (ref: string, over: Over = {}) =>
    item({
      pspReference: ref,
      originalReference: P,
      eventCode: 'REFUND',
      amount: { currency: 'EUR', value: 300 },
      ...over,
    });

  function shuffled<T>(xs: T[]): T[][] {
    if (xs.length <= 1) return [xs];
    return xs.flatMap((x, i) =>
      shuffled([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]),
    );
  }

  test('authorised then captured, partly refunded: the same state whatever the arrival order', () => {
    const all = facts(
      auth(),
      capture(800),
      refund('PSPREF1'),
      refund('PSPREF2', { eventCode: 'REFUND_FAILED' }),
    );
    for (const order of shuffled(all)) {
      expect(paymentState(P, order, ctx)).toMatchObject({
        status: 'captured',
        amountCaptured: 800,
        amountRefunded: 300,
        amount: 1000,
        currency: 'eur',
        rawStatus: 'CAPTURE',
      });
    }
  });

  test('manual: authorised; automatic: captured at once; canceled; refused with its failure; pending', () => {
    expect(paymentState(P, facts(auth()), ctx)).toMatchObject({ status: 'authorized', amountCaptured: 0 });
    expect(paymentState(P, facts(auth()), { ...ctx, captureMethod: 'automatic' })).toMatchObject({
      status: 'captured',
      amountCaptured: 1000,
    });
    const canceled = facts(
      item({ pspReference: `C${++seq}`, originalReference: P, eventCode: 'CANCELLATION' }),
      auth(),
    );
    expect(paymentState(P, canceled, ctx)).toMatchObject({ status: 'canceled', rawStatus: 'CANCELLATION' });
    const refused = paymentState(
      P,
      facts(item({ pspReference: P, success: 'false', reason: 'Not enough balance' })),
      ctx,
    );
    expect(refused).toMatchObject({
      status: 'requires_payment_method',
      failure: { code: 'insufficient_funds' },
    });
    expect(paymentState(P, facts(item({ pspReference: P, eventCode: 'PENDING' })), ctx)).toMatchObject({
      status: 'processing',
    });
    expect(paymentState('PSPUNKNOWN', facts(auth()), ctx)).toBeUndefined();
  });

  test('a refund: succeeded, failed, or reversed after succeeding (whatever the order)', () => {
    const ok = facts(refund('PSPR1'));
    expect(refundState('PSPR1', ok)).toMatchObject({ status: 'succeeded', amount: 300 });
    const reversed = facts(refund('PSPR2'), refund('PSPR2', { eventCode: 'REFUNDED_REVERSED' }));
    for (const order of shuffled(reversed))
      expect(refundState('PSPR2', order)).toMatchObject({ status: 'failed' });
    const failed = facts(refund('PSPR3', { success: 'false', reason: 'Refund failed' }));
    expect(refundState('PSPR3', failed)).toMatchObject({ status: 'failed', reason: 'Refund failed' });
    expect(refundState('PSPR4', ok)).toBeUndefined();
    const kinds = (fs: ConnectorFact[]) => fs.map((f) => (f as RefundFact).kind);
    expect(kinds(reversed)).toEqual(['refund', 'refund']);
  });
});
