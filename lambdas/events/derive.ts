/**
 * Merchant events derived from changes of the main table (a transactional outbox on the table's
 * stream). Pure: no I/O.
 *
 * - An item of a source kind (`payment`, `refund`, `dispute`) inserted → `<kind>.created`; when it
 *   is inserted already in an outcome status (a refund created `succeeded`), also `<kind>.<status>`.
 * - Its `status` changed between the old and the new image → `<kind>.<new status>`
 *   (`payment.captured`, `payment.failed`, `refund.succeeded`, `dispute.won`, …).
 * - Anything else (other kinds, removals, changes that keep the status) → nothing.
 *
 * The event id is derived from (object id, event type, object version), or the stream record's
 * sequence number for objects without a version, so a redelivered stream record yields the same
 * id and the conditional put that stores it creates no duplicate.
 */
import { createHash } from 'node:crypto';
import { presentDispute } from '../disputes/present.ts';
import type { Payment } from '../domain/payment.ts';
import { presentPayment } from '../payments/present.ts';
import { presentRefund } from '../refunds/service.ts';
import { BILLING_KINDS, deriveBillingEvents } from './billing-derive.ts';
import type { DisputeRecord } from '../store/disputes.ts';
import type { Refund } from '../store/refunds.ts';

export const SOURCE_KINDS = ['payment', 'refund', 'dispute'] as const;

/** Statuses that are news in themselves when an object is created in them. */
const OUTCOME_STATUSES = new Set([
  'succeeded',
  'failed',
  'canceled',
  'captured',
  'authorized',
  'won',
  'lost',
]);

/** Attributes that never leave the API (keys, indexes, workflow plumbing). */
const INTERNAL_ATTRIBUTES = new Set([
  'pk',
  'sk',
  'kind',
  'merchant_id',
  'created_ms',
  'version',
  'expires_at',
  'execution_arn',
]);
const INTERNAL_PREFIXES = ['gsi', 'task_token'];

const NAME = /^[a-z][a-z_]{0,39}$/;

/** What a merchant receives: Stripe's event envelope. */
export interface MerchantEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  data: { object: Record<string, unknown> };
}

export interface EventDraft {
  event: MerchantEvent;
  merchantId: string;
  objectKind: string;
  objectId: string;
  /** Orders events of one merchant created in the same millisecond: stream sequence, then index. */
  order: string;
}

export interface ChangeLike {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  oldImage?: Record<string, unknown>;
  newImage?: Record<string, unknown>;
  sequenceNumber: string;
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `evt_` + 22 base62 characters of SHA-256(seed): the same seed always gives the same id. */
export function deterministicEventId(seed: string): string {
  let n = BigInt(`0x${createHash('sha256').update(seed).digest('hex').slice(0, 32)}`);
  let out = '';
  for (let i = 0; i < 22; i++) {
    out = ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  return `evt_${out}`;
}

/**
 * Each kind's API shape, so that `data.object` of an event is what GET /v1/<kind>s/{id} returns
 * (the presenters pick public fields by name). A kind without one gets its item minus internal
 * attributes (as does an item its presenter cannot shape).
 */
const PRESENTERS: Record<string, (item: Record<string, unknown>) => Record<string, unknown>> = {
  payment: (item) => presentPayment(item as unknown as Payment),
  refund: (item) => presentRefund(item as unknown as Refund),
  dispute: (item) => presentDispute(item as unknown as DisputeRecord),
};

/** The public shape of an object of a source kind, as `data.object` of its events. */
export function presentObject(kind: string, item: Record<string, unknown>): Record<string, unknown> {
  const presenter = PRESENTERS[kind];
  if (presenter) {
    try {
      return presenter(item);
    } catch {
      // An item its presenter cannot shape must not block the stream: fall back to the generic shape.
    }
  }
  const out: Record<string, unknown> = { object: kind };
  for (const [k, v] of Object.entries(item)) {
    if (INTERNAL_ATTRIBUTES.has(k) || INTERNAL_PREFIXES.some((p) => k.startsWith(p))) continue;
    out[k] = v instanceof Set ? [...(v as Set<unknown>)] : v;
  }
  return out;
}

/** The merchant events a change of the main table stands for (none for most changes). */
export function deriveEvents(
  change: ChangeLike,
  createdSeconds = Math.floor(Date.now() / 1000),
): EventDraft[] {
  if (change.eventName === 'REMOVE') return [];
  const item = change.newImage;
  const kind = item?.kind;
  if ((BILLING_KINDS as readonly unknown[]).includes(kind))
    return deriveBillingEvents(change, createdSeconds);
  if (!item || typeof kind !== 'string' || !(SOURCE_KINDS as readonly string[]).includes(kind)) return [];
  const objectId = item.id;
  const merchantId = item.merchant_id;
  if (typeof objectId !== 'string' || !objectId || typeof merchantId !== 'string' || !merchantId) return [];
  const status = typeof item.status === 'string' && NAME.test(item.status) ? item.status : undefined;

  const types: string[] = [];
  if (change.eventName === 'INSERT') {
    types.push(`${kind}.created`);
    if (status && OUTCOME_STATUSES.has(status)) types.push(`${kind}.${status}`);
  } else if (status && change.oldImage?.status !== status) {
    types.push(`${kind}.${status}`);
  }
  if (types.length === 0) return [];

  return eventDrafts(change, item, { merchantId, kind, objectId, createdSeconds }, types, () =>
    presentObject(kind, item),
  );
}

/**
 * The drafts of `types` for one changed object: ids fixed by the object, the type and the item's
 * version (else the stream record), so a redelivered record makes the same events; ordered by the
 * stream sequence, then by position. Shared by every kind of object that raises merchant events.
 */
export function eventDrafts(
  change: ChangeLike,
  item: Record<string, unknown>,
  o: { merchantId: string; kind: string; objectId: string; createdSeconds: number },
  types: readonly string[],
  present: () => Record<string, unknown>,
): EventDraft[] {
  if (types.length === 0) return [];
  const version =
    typeof item.version === 'number' || typeof item.version === 'string'
      ? `v${item.version}`
      : `seq${change.sequenceNumber}`;
  const data = present();
  return types.map((type, i) => ({
    event: {
      id: deterministicEventId(`${o.objectId}|${type}|${version}`),
      object: 'event',
      type,
      created: o.createdSeconds,
      data: { object: data },
    },
    merchantId: o.merchantId,
    objectKind: o.kind,
    objectId: o.objectId,
    order: `${change.sequenceNumber.padStart(40, '0')}#${i}`,
  }));
}
