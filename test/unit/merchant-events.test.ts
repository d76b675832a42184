/**
 * Merchant events without I/O: webhook signatures (sign, verify, tolerance, tampering), which
 * table changes become which events with which ids, and the delivery policy (URLs, subscriptions,
 * backoff, what an attempt means for its delivery).
 */
import { createHmac } from 'node:crypto';
import { deriveEvents, deterministicEventId, presentObject } from '../../lambdas/events/derive.ts';
import {
  afterAttempt,
  endpointUrlProblem,
  eventMatches,
  isEventPattern,
  MAX_ATTEMPTS,
  queueHop,
  retryDelaySeconds,
  RETRY_DELAYS_SECONDS,
} from '../../lambdas/events/policy.ts';
import {
  computeSignature,
  parseSignatureHeader,
  signPayload,
  verifyPaystepSignature,
} from '../../lambdas/events/signature.ts';

describe('webhook signatures', () => {
  const secret = 'whsec_test_0123456789';
  const body = '{"id":"evt_1","object":"event","type":"payment.captured"}';
  const t = 1_700_000_000;

  test('the header is t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">, as Stripe signs', () => {
    const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(signPayload(body, secret, t)).toBe(`t=${t},v1=${expected}`);
    expect(computeSignature(Buffer.from(body), secret, t)).toBe(expected);
  });

  test('a signature verifies on the exact raw body within the tolerance', () => {
    const header = signPayload(body, secret, t);
    expect(verifyPaystepSignature(body, header, secret, 300, t + 299)).toBe(true);
    expect(verifyPaystepSignature(Buffer.from(body), header, secret, 300, t - 299)).toBe(true);
  });

  test('a changed body, another secret, an old timestamp or a bad header fail', () => {
    const header = signPayload(body, secret, t);
    expect(verifyPaystepSignature(body.replace('captured', 'failed'), header, secret, 300, t)).toBe(false);
    expect(verifyPaystepSignature(`${body} `, header, secret, 300, t)).toBe(false);
    expect(verifyPaystepSignature(body, header, 'whsec_other', 300, t)).toBe(false);
    expect(verifyPaystepSignature(body, header, secret, 300, t + 301)).toBe(false);
    expect(verifyPaystepSignature(body, header, secret, 0, t + 86_400)).toBe(true); // tolerance off
    expect(verifyPaystepSignature(body, undefined, secret)).toBe(false);
    expect(verifyPaystepSignature(body, 'garbage', secret, 300, t)).toBe(false);
    expect(verifyPaystepSignature(body, `t=${t}`, secret, 300, t)).toBe(false);
    // The timestamp is signed: moving it invalidates the signature.
    const moved = header.replace(`t=${t}`, `t=${t + 10}`);
    expect(verifyPaystepSignature(body, moved, secret, 300, t + 10)).toBe(false);
  });

  test('any one of several v1 signatures may match (secret rotation)', () => {
    const good = computeSignature(body, secret, t);
    const header = `t=${t},v1=${'0'.repeat(64)},v1=${good}`;
    expect(parseSignatureHeader(header)).toEqual({ timestamp: t, signatures: ['0'.repeat(64), good] });
    expect(verifyPaystepSignature(body, header, secret, 300, t)).toBe(true);
  });
});

describe('events derived from table changes', () => {
  const payment = (extra: Record<string, unknown> = {}) => ({
    pk: 'PAYMENT#pay_1',
    sk: 'PAYMENT',
    kind: 'payment',
    id: 'pay_1',
    object: 'payment',
    merchant_id: 'mch_1',
    amount: 1050,
    currency: 'usd',
    status: 'processing',
    amount_captured: 0,
    amount_refunded: 0,
    capture_method: 'automatic',
    payment_method: 'pm_card_visa',
    metadata: {},
    version: 1,
    task_token: 'secret-token',
    gsi1pk: 'MERCHANT#mch_1#PAYMENTS',
    gsi1sk: '0000000000001#pay_1',
    execution_arn: 'arn:…',
    created: 1,
    updated: 1,
    ...extra,
  });

  test('a payment inserted → payment.created with the public payment shape', () => {
    const [e, ...rest] = deriveEvents({ eventName: 'INSERT', newImage: payment(), sequenceNumber: '1' }, 42);
    expect(rest).toEqual([]);
    expect(e!.merchantId).toBe('mch_1');
    expect(e!.event).toMatchObject({ object: 'event', type: 'payment.created', created: 42 });
    expect(e!.event.id).toMatch(/^evt_[0-9A-Za-z]{22}$/);
    expect(e!.event.data.object).toMatchObject({ id: 'pay_1', object: 'payment', status: 'processing' });
    for (const k of ['pk', 'sk', 'task_token', 'gsi1pk', 'merchant_id', 'execution_arn', 'kind'])
      expect(e!.event.data.object).not.toHaveProperty(k);
  });

  test('a status change → <kind>.<status>; a change that keeps the status → nothing', () => {
    const old = payment();
    const captured = payment({ status: 'captured', version: 2, amount_captured: 1050 });
    const events = deriveEvents({
      eventName: 'MODIFY',
      oldImage: old,
      newImage: captured,
      sequenceNumber: '2',
    });
    expect(events.map((e) => e.event.type)).toEqual(['payment.captured']);
    expect(events[0]!.event.data.object).toMatchObject({ status: 'captured', amount_captured: 1050 });
    const annotated = payment({ task_token: 'other' });
    expect(
      deriveEvents({ eventName: 'MODIFY', oldImage: old, newImage: annotated, sequenceNumber: '3' }),
    ).toEqual([]);
    expect(deriveEvents({ eventName: 'REMOVE', oldImage: old, sequenceNumber: '4' })).toEqual([]);
  });

  test('refunds and disputes are handled by kind and status; other kinds are not events', () => {
    const refund = {
      pk: 'REFUND#re_1',
      sk: 'REFUND',
      kind: 'refund',
      id: 're_1',
      object: 'refund',
      merchant_id: 'mch_1',
      payment_id: 'pay_1',
      amount: 500,
      currency: 'usd',
      status: 'pending',
      reason: null,
      channel: 'api',
      processor: 'stripe',
      processor_reference: null,
      processor_status: 'pending',
      failure_reason: null,
      metadata: {},
      execution_arn: 'arn:…',
      created: 1,
      updated: 1,
      gsi1pk: 'x',
      task_token: 't',
    };
    const created = deriveEvents({ eventName: 'INSERT', newImage: refund, sequenceNumber: '5' });
    expect(created.map((e) => e.event.type)).toEqual(['refund.created']);
    // The refund as the refunds API shows it.
    expect(created[0]!.event.data.object).toEqual({
      id: 're_1',
      object: 'refund',
      payment: 'pay_1',
      amount: 500,
      currency: 'usd',
      status: 'pending',
      reason: null,
      failure_reason: null,
      processor: 'stripe',
      processor_reference: null,
      channel: 'api',
      metadata: {},
      created: 1,
      updated: 1,
    });
    const succeeded = deriveEvents({
      eventName: 'MODIFY',
      oldImage: refund,
      newImage: { ...refund, status: 'succeeded' },
      sequenceNumber: '6',
    });
    expect(succeeded.map((e) => e.event.type)).toEqual(['refund.succeeded']);
    // Created directly in an outcome status: both events.
    const direct = deriveEvents({
      eventName: 'INSERT',
      newImage: { ...refund, id: 're_2', status: 'succeeded' },
      sequenceNumber: '7',
    });
    expect(direct.map((e) => e.event.type)).toEqual(['refund.created', 'refund.succeeded']);
    expect(new Set(direct.map((e) => e.event.id)).size).toBe(2);
    const dispute = {
      kind: 'dispute',
      id: 'dp_1',
      merchant_id: 'mch_1',
      status: 'needs_response',
      reason: 'fraudulent',
    };
    const [disputeCreated, ...more] = deriveEvents({
      eventName: 'INSERT',
      newImage: { ...dispute, payment_id: 'pay_1', applied_events: ['x'], version: 1 },
      sequenceNumber: '8',
    });
    expect(more).toEqual([]);
    expect(disputeCreated!.event.type).toBe('dispute.created');
    expect(disputeCreated!.event.data.object).toMatchObject({
      id: 'dp_1',
      object: 'dispute',
      payment: 'pay_1',
    });
    expect(disputeCreated!.event.data.object).not.toHaveProperty('applied_events');
    const won = deriveEvents({
      eventName: 'MODIFY',
      oldImage: { ...dispute, status: 'under_review', version: 3 },
      newImage: { ...dispute, status: 'won', version: 4 },
      sequenceNumber: '8',
    });
    expect(won.map((e) => e.event.type)).toEqual(['dispute.won']);
    for (const kind of ['payment_event', 'merchant_event', 'webhook_delivery', 'idempotency'])
      expect(
        deriveEvents({
          eventName: 'INSERT',
          newImage: { kind, id: 'x', merchant_id: 'mch_1', status: 'a' },
          sequenceNumber: '9',
        }),
      ).toEqual([]);
    // Without a merchant there is nobody to tell.
    expect(
      deriveEvents({
        eventName: 'INSERT',
        newImage: { ...refund, merchant_id: undefined },
        sequenceNumber: '10',
      }),
    ).toEqual([]);
  });

  test('ids are deterministic: the same change (a redelivered stream record) gives the same id', () => {
    const change = {
      eventName: 'MODIFY' as const,
      oldImage: payment(),
      newImage: payment({ status: 'failed', version: 2 }),
      sequenceNumber: '11',
    };
    const a = deriveEvents(change, 1)[0]!.event.id;
    expect(deriveEvents(change, 2)[0]!.event.id).toBe(a);
    // Versioned objects: the id depends on (object, type, version), not on the stream position.
    expect(deriveEvents({ ...change, sequenceNumber: '99' })[0]!.event.id).toBe(a);
    expect(
      deriveEvents({ ...change, newImage: payment({ status: 'failed', version: 3 }) })[0]!.event.id,
    ).not.toBe(a);
    // Unversioned objects: the stream record's sequence number decides.
    const refund = { kind: 'refund', id: 're_1', merchant_id: 'm', status: 'succeeded' };
    const r1 = deriveEvents({
      eventName: 'MODIFY',
      oldImage: { ...refund, status: 'pending' },
      newImage: refund,
      sequenceNumber: '12',
    });
    const r2 = deriveEvents({
      eventName: 'MODIFY',
      oldImage: { ...refund, status: 'pending' },
      newImage: refund,
      sequenceNumber: '12',
    });
    const r3 = deriveEvents({
      eventName: 'MODIFY',
      oldImage: { ...refund, status: 'pending' },
      newImage: refund,
      sequenceNumber: '13',
    });
    expect(r1[0]!.event.id).toBe(r2[0]!.event.id);
    expect(r3[0]!.event.id).not.toBe(r1[0]!.event.id);
    expect(deterministicEventId('x')).toBe(deterministicEventId('x'));
    expect(deterministicEventId('x')).not.toBe(deterministicEventId('y'));
  });

  test('an item its presenter cannot shape falls back to the item minus internal attributes', () => {
    const odd = {
      pk: 'DISPUTE#dp_2',
      kind: 'dispute',
      id: 'dp_2',
      merchant_id: 'm',
      status: 'lost',
      task_token: 't',
    };
    expect(presentObject('dispute', odd)).toEqual({ object: 'dispute', id: 'dp_2', status: 'lost' });
  });

  test('the generic shape turns sets into lists and drops internal attributes', () => {
    expect(
      presentObject('chargeback', { id: 'cb_1', tags: new Set(['a']), gsi2pk: 'x', expires_at: 1 }),
    ).toEqual({
      object: 'chargeback',
      id: 'cb_1',
      tags: ['a'],
    });
  });
});

describe('delivery policy', () => {
  test('https endpoints anywhere; http only on loopback; nothing else', () => {
    expect(endpointUrlProblem('https://example.com/hooks')).toBeUndefined();
    expect(endpointUrlProblem('http://127.0.0.1:4242/hooks')).toBeUndefined();
    expect(endpointUrlProblem('http://localhost/hooks')).toBeUndefined();
    expect(endpointUrlProblem('http://[::1]:8080/')).toBeUndefined();
    expect(endpointUrlProblem('http://example.com/hooks')).toMatch(/https/);
    expect(endpointUrlProblem('http://10.0.0.1/hooks')).toMatch(/https/);
    expect(endpointUrlProblem('ftp://example.com')).toMatch(/https/);
    expect(endpointUrlProblem('not a url')).toMatch(/absolute/);
    expect(endpointUrlProblem(`https://example.com/${'a'.repeat(2100)}`)).toMatch(/2048/);
  });

  test('subscriptions: "*", "<kind>.*" or exact types', () => {
    expect(eventMatches(['*'], 'payment.captured')).toBe(true);
    expect(eventMatches(['payment.*'], 'payment.failed')).toBe(true);
    expect(eventMatches(['payment.*'], 'refund.succeeded')).toBe(false);
    expect(eventMatches(['refund.succeeded', 'payment.failed'], 'payment.failed')).toBe(true);
    expect(eventMatches(['payment.failed'], 'payment.captured')).toBe(false);
    expect(['*', 'payment.*', 'dispute.created'].every(isEventPattern)).toBe(true);
    expect(['', 'payment', '*.captured', 'Payment.Captured', 'a.b.c'].some(isEventPattern)).toBe(false);
  });

  test('8 attempts over about a day, with at most 10 % jitter', () => {
    expect(MAX_ATTEMPTS).toBe(8);
    expect(RETRY_DELAYS_SECONDS).toHaveLength(MAX_ATTEMPTS - 1);
    const total = RETRY_DELAYS_SECONDS.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(18 * 3600);
    expect(total).toBeLessThan(30 * 3600);
    expect(retryDelaySeconds(1, () => 0)).toBe(60);
    expect(retryDelaySeconds(1, () => 0.999)).toBe(66);
    expect(retryDelaySeconds(7, () => 0)).toBe(12 * 3600);
  });

  test('what an attempt means for its delivery', () => {
    expect(afterAttempt('pending', 1, true)).toEqual({ status: 'succeeded' });
    expect(afterAttempt('pending', 1, false, () => 0)).toEqual({ status: 'pending', retryInSeconds: 60 });
    expect(afterAttempt('pending', 7, false, () => 0)).toEqual({ status: 'pending', retryInSeconds: 43200 });
    expect(afterAttempt('pending', 8, false)).toEqual({ status: 'failed' });
    // A manual redelivery of a finished delivery is one attempt: no new retries.
    expect(afterAttempt('failed', 9, false)).toEqual({ status: 'failed' });
    expect(afterAttempt('succeeded', 2, false)).toEqual({ status: 'succeeded' });
    expect(afterAttempt('failed', 9, true)).toEqual({ status: 'succeeded' });
  });

  test('waits longer than the 15-minute SQS delay are chained', () => {
    expect(queueHop(60)).toEqual({ delaySeconds: 60, remainingSeconds: 0 });
    expect(queueHop(3600)).toEqual({ delaySeconds: 900, remainingSeconds: 2700 });
    let left = 12 * 3600;
    let hops = 0;
    while (left > 0) {
      left = queueHop(left).remainingSeconds;
      hops++;
    }
    expect(hops).toBe(48);
  });
});
