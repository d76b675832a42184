/** Merchant events of subscriptions and invoices (lambdas/events/billing-derive.ts via deriveEvents). */
import { deriveEvents } from '../../lambdas/events/derive.ts';
import { EVENT_TYPES, parseCreateEndpoint } from '../../lambdas/events/validation.ts';

const sub = (over: Record<string, unknown> = {}) => ({
  kind: 'subscription',
  object: 'subscription',
  id: 'sub_1234567890abcdef',
  merchant_id: 'mch_1',
  status: 'active',
  plan: 'plan_a',
  current_period: { index: 0, start: 0, end: 86_400 },
  cancel_at_period_end: false,
  version: 1,
  ...over,
});
const inv = (over: Record<string, unknown> = {}) => ({
  kind: 'invoice',
  id: 'in_1234567890abcdef',
  merchant_id: 'mch_1',
  status: 'open',
  failed_attempts: 0,
  payment_method_required: false,
  attempts: [],
  version: 1,
  ...over,
});
const types = (
  eventName: 'INSERT' | 'MODIFY',
  newImage: Record<string, unknown>,
  oldImage?: Record<string, unknown>,
) => deriveEvents({ eventName, newImage, oldImage, sequenceNumber: '1' }, 1).map((d) => d.event.type);

describe('billing merchant events', () => {
  test('subscriptions: created, updated on a status, plan or period change, deleted when it ends', () => {
    expect(types('INSERT', sub())).toEqual(['customer.subscription.created']);
    expect(types('MODIFY', sub({ status: 'past_due', version: 2 }), sub())).toEqual([
      'customer.subscription.updated',
    ]);
    expect(types('MODIFY', sub({ plan: 'plan_b', version: 2 }), sub())).toEqual([
      'customer.subscription.updated',
    ]);
    expect(
      types('MODIFY', sub({ current_period: { index: 1, start: 86_400, end: 172_800 }, version: 2 }), sub()),
    ).toEqual(['customer.subscription.updated']);
    expect(types('MODIFY', sub({ status: 'canceled', version: 2 }), sub())).toEqual([
      'customer.subscription.deleted',
    ]);
    expect(types('MODIFY', sub({ credit: 5, version: 2 }), sub())).toEqual([]);
    expect(types('MODIFY', sub({ status: 'past_due' }), sub())).toEqual([]); // same version: plumbing only
  });

  test('invoices: created, payment_failed per declined attempt, payment_method_required after a hard decline, paid', () => {
    expect(types('INSERT', inv())).toEqual(['invoice.created']);
    expect(types('INSERT', inv({ status: 'paid' }))).toEqual(['invoice.created', 'invoice.paid']);
    expect(types('MODIFY', inv({ failed_attempts: 1, version: 2 }), inv())).toEqual([
      'invoice.payment_failed',
    ]);
    expect(
      types('MODIFY', inv({ failed_attempts: 1, payment_method_required: true, version: 2 }), inv()),
    ).toEqual(['invoice.payment_failed', 'customer.payment_method_required']);
    expect(types('MODIFY', inv({ status: 'paid', version: 3 }), inv({ version: 2 }))).toEqual([
      'invoice.paid',
    ]);
    expect(types('MODIFY', inv({ status: 'uncollectible', version: 3 }), inv({ version: 2 }))).toEqual([
      'invoice.uncollectible',
    ]);
  });

  test('ids are deterministic, and the object is the API shape (no internal attributes)', () => {
    const change = {
      eventName: 'INSERT' as const,
      newImage: { ...sub(), pk: 'x', gsi1pk: 'y' },
      sequenceNumber: '7',
    };
    const [a] = deriveEvents(change, 1);
    const [b] = deriveEvents(change, 2);
    expect(a!.event.id).toBe(b!.event.id);
    expect(a!.event.data.object).toMatchObject({ id: 'sub_1234567890abcdef', object: 'subscription' });
    expect(Object.keys(a!.event.data.object)).not.toContain('pk');
    expect(Object.keys(a!.event.data.object)).not.toContain('merchant_id');
  });

  test('endpoints may subscribe to the billing events', () => {
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['invoice.paid', 'customer.payment_method_required']));
    const ok = parseCreateEndpoint({
      url: 'https://example.com/h',
      enabled_events: ['invoice.*', 'customer.*', 'customer.subscription.deleted'],
    });
    expect(ok.enabled_events).toHaveLength(3);
  });
});
