/**
 * Stripe event type → domain action. Each action is idempotent and order-independent on its own
 * (it decides from the object's state, its own timestamps, or the processor's current state), so
 * this module only routes:
 *
 * - `payment_intent.*`, `charge.succeeded` / `failed` / `captured` → `applyPaymentEvent` (the
 *   payment named by `metadata.paystep_payment_id`);
 * - `refund.created` / `updated` / `failed`, `charge.refund.updated` → `applyRefundUpdate`;
 * - `charge.refunded` → `applyRefundUpdate` for each refund in `refunds.data`;
 * - `charge.dispute.*` → `handleDisputeEvent`;
 * - `payout.*` → stored only (finance reconciles payouts from the processor's reports);
 * - anything else → ignored (stored, marked processed).
 *
 * `unknown_object` means the event names an object paystep does not have (yet): the caller parks
 * the event and retries it later.
 */
import { handleDisputeEvent } from '../disputes/events.ts';
import { applyRefundUpdate } from '../refunds/updates.ts';
import { applyPaymentEvent, stageOfPaymentIntent, type ProcessorView } from './payments.ts';

export type EventOutcome = 'applied' | 'recorded' | 'ignored' | 'unknown_object';

export interface StripeEventLike {
  id: string;
  type: string;
  created: number;
  data: { object: Record<string, unknown> };
}

const PROCESSOR = 'stripe';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function paystepPaymentId(obj: Record<string, unknown>): string | undefined {
  const md = obj.metadata as Record<string, unknown> | undefined;
  return str(md?.paystep_payment_id);
}

/** Combines outcomes of several actions: unknown wins (retry), then applied, recorded, ignored. */
function combine(outcomes: EventOutcome[]): EventOutcome {
  for (const o of ['unknown_object', 'applied', 'recorded'] as const) if (outcomes.includes(o)) return o;
  return 'ignored';
}

async function paymentIntentEvent(event: StripeEventLike): Promise<EventOutcome> {
  const pi = event.data.object;
  const id = str(pi.id);
  const paymentId = paystepPaymentId(pi);
  if (!id || !paymentId) return 'ignored'; // not a paystep payment
  const view: ProcessorView = {
    processor: PROCESSOR,
    reference: id,
    stage: stageOfPaymentIntent(pi.status, Boolean(pi.last_payment_error)),
    raw: String(pi.status ?? 'unknown'),
  };
  return applyPaymentEvent(paymentId, view, event);
}

async function chargeEvent(event: StripeEventLike): Promise<EventOutcome> {
  const ch = event.data.object;
  const pi = str(ch.payment_intent);
  const paymentId = paystepPaymentId(ch);
  if (!pi || !paymentId) return 'ignored';
  const stage =
    ch.status === 'failed'
      ? 'failed'
      : ch.status === 'succeeded'
        ? ch.captured === true
          ? 'captured'
          : 'authorized'
        : undefined;
  return applyPaymentEvent(paymentId, { processor: PROCESSOR, reference: pi, stage, raw: event.type }, event);
}

async function refundEvent(refund: Record<string, unknown>, created: number): Promise<EventOutcome> {
  const id = str(refund.id);
  if (!id) return 'ignored';
  return applyRefundUpdate(
    PROCESSOR,
    { id, status: refund.status, failure_reason: refund.failure_reason },
    created,
  );
}

export async function handleStripeEvent(event: StripeEventLike): Promise<EventOutcome> {
  const t = event.type;
  const obj = event.data.object;
  if (t.startsWith('payment_intent.')) return paymentIntentEvent(event);
  if (t === 'charge.succeeded' || t === 'charge.failed' || t === 'charge.captured') return chargeEvent(event);
  if (
    t === 'refund.created' ||
    t === 'refund.updated' ||
    t === 'refund.failed' ||
    t === 'charge.refund.updated'
  )
    return refundEvent(obj, event.created);
  if (t === 'charge.refunded') {
    const refunds = (obj.refunds as { data?: unknown } | undefined)?.data;
    if (!Array.isArray(refunds) || refunds.length === 0) return 'ignored'; // each refund has its own refund.* events
    const outcomes: EventOutcome[] = [];
    for (const r of refunds)
      if (r && typeof r === 'object')
        outcomes.push(await refundEvent(r as Record<string, unknown>, event.created));
    return combine(outcomes);
  }
  if (t.startsWith('charge.dispute.')) return handleDisputeEvent(PROCESSOR, t, obj, event.created);
  if (t.startsWith('payout.')) return 'recorded';
  return 'ignored';
}
