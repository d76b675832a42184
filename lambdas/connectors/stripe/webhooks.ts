/**
 * Stripe webhooks → verified, processor-neutral facts (../facts.ts), the Stripe half of
 * `WebhookReceiver` (../webhooks.ts). Everything paystep knows about Stripe's event types and its
 * PaymentIntent, charge, refund and dispute status names is here.
 *
 * - Verify: `Stripe-Signature` on the raw body (./signature.ts: the SDK's check plus a future-
 *   timestamp bound; several secrets while rotating); the body must then be a Stripe event (`evt_…`
 *   id, `type`, `created`, `data.object`). A request is one event, stored as received (the signed
 *   bytes), so a replay or `paystep webhooks replay` reads exactly what Stripe sent.
 * - Facts, each about one object, all carrying `merchantReference` = the paystep payment id from
 *   the object's `metadata.paystep_payment_id` (objects without it are not paystep's: no fact):
 *   - `payment_intent.*` → a payment fact from the PaymentIntent's `status` (kept as
 *     `processorStatus`): `succeeded` captured, `requires_capture` authorised, `requires_action`
 *     action_required, `processing` / `requires_confirmation` pending, `canceled` canceled,
 *     `requires_payment_method` refused when it carries `last_payment_error` (the decline, in
 *     paystep's taxonomy) and pending otherwise;
 *   - `charge.succeeded` / `charge.failed` / `charge.captured` → a payment fact about the charge's
 *     PaymentIntent (captured, authorised, refused, pending), with the card;
 *   - `refund.created` / `refund.updated` / `refund.failed` / `charge.refund.updated` → a refund fact
 *     once the refund is final (`succeeded`, `failed`, `canceled`); `charge.refunded` → one per
 *     final refund in `refunds.data`;
 *   - `charge.dispute.*` → a dispute fact (below);
 *   - anything else (payouts, customers, …) → stored and acknowledged, no fact.
 * - Disputes: Stripe's dispute status is kept as `processorStatus` (its vocabulary is paystep's
 *   dispute statuses, docs/disputes.md); the event: created / updated by status (an inquiry
 *   `warning_*` → request_for_information; `needs_response` → notification_of_chargeback;
 *   `under_review` → information_supplied), `funds_withdrawn` → chargeback (money withdrawn),
 *   `funds_reinstated` → chargeback_reversed (money returned), `closed` → prearbitration_won /
 *   prearbitration_lost for won / lost (the final outcome; no money moves with it: Stripe moves
 *   money by the funds_* events), defense_period_ended for a closed inquiry. A Stripe event carries
 *   the whole dispute: the fact's `dispute` is that object in paystep's terms (`factsFromStripe`,
 *   ./disputes.ts), so lambdas/disputes/facts.ts (`applyDisputeFact`) applies the dispute as this
 *   event saw it, through the same guarded transitions as Adyen's facts. An event whose object is
 *   not a readable dispute gives no fact.
 */
import type { CardDetails } from '../types.ts';
import type {
  ConnectorFact,
  DisputeEvent,
  DisputeFact,
  DisputeMoney,
  FactAmount,
  PaymentEvent,
  PaymentFact,
  RefundFact,
} from '../facts.ts';
import type { WebhookFormat, WebhookReceiver } from '../webhooks.ts';
import { mapStripeDecline } from './declines.ts';
import { factsFromStripe } from './disputes.ts';
import { verifyStripeSignature } from './signature.ts';

const NAME = 'stripe';

/** The parts of a Stripe event paystep reads. */
export interface StripeEventLike {
  id: string;
  type: string;
  created: number;
  livemode?: boolean;
  data: { object: Record<string, unknown> };
}

type Obj = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const obj = (v: unknown): Obj | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const int = (v: unknown): number | undefined => (Number.isInteger(v) ? (v as number) : undefined);

/** The body as a Stripe event, or undefined when it is not one. */
export function asStripeEvent(body: unknown): StripeEventLike | undefined {
  const e = obj(body);
  if (!e) return undefined;
  if (typeof e.id !== 'string' || !/^evt_[A-Za-z0-9_]{1,250}$/.test(e.id)) return undefined;
  if (typeof e.type !== 'string' || typeof e.created !== 'number' || !obj(obj(e.data)?.object))
    return undefined;
  return e as unknown as StripeEventLike;
}

const isoOf = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

function amountOf(value: unknown, currency: unknown): FactAmount | null {
  const v = int(value);
  const c = str(currency);
  return v !== undefined && c ? { value: v, currency: c.toLowerCase() } : null;
}

const paystepPaymentId = (o: Obj) => str(obj(o.metadata)?.paystep_payment_id);

function base(event: StripeEventLike, id: string, success: boolean, amount: FactAmount | null) {
  return {
    processor: NAME,
    id,
    at: isoOf(event.created),
    raw_event: event.type,
    success,
    amount,
    live: event.livemode === true,
  };
}

// --- Payments -----------------------------------------------------------------------------------

/** PaymentIntent status → payment event (`requires_payment_method`: refused only with an error). */
export function paymentEventOfIntent(status: unknown, hasError = false): PaymentEvent | undefined {
  switch (status) {
    case 'succeeded':
      return 'captured';
    case 'requires_capture':
      return 'authorised';
    case 'requires_action':
      return 'action_required';
    case 'processing':
    case 'requires_confirmation':
      return 'pending';
    case 'canceled':
      return 'canceled';
    case 'requires_payment_method':
      return hasError ? 'refused' : 'pending';
    default:
      return undefined;
  }
}

function paymentIntentFact(event: StripeEventLike): PaymentFact | undefined {
  const pi = event.data.object;
  const reference = str(pi.id);
  const paymentId = paystepPaymentId(pi);
  const error = obj(pi.last_payment_error);
  const ev = paymentEventOfIntent(pi.status, Boolean(error));
  if (!reference || !paymentId || !ev) return undefined;
  const fact: PaymentFact = {
    ...base(
      event,
      `${NAME}:${event.id}`,
      ev !== 'refused',
      amountOf(ev === 'captured' ? (pi.amount_received ?? pi.amount) : pi.amount, pi.currency),
    ),
    kind: 'payment',
    reference,
    merchantReference: paymentId,
    event: ev,
    processorStatus: String(pi.status),
  };
  if (ev === 'refused' && error)
    fact.failure = mapStripeDecline(str(error.code), str(error.decline_code), str(error.message));
  return fact;
}

function cardOf(ch: Obj): CardDetails | undefined {
  const c = obj(obj(ch.payment_method_details)?.card);
  if (!c) return undefined;
  const card: CardDetails = {};
  if (str(c.brand)) card.brand = str(c.brand);
  if (str(c.last4)) card.last4 = str(c.last4);
  if (str(c.country)) card.country = str(c.country);
  if (int(c.exp_month)) card.exp_month = int(c.exp_month);
  if (int(c.exp_year)) card.exp_year = int(c.exp_year);
  return Object.keys(card).length ? card : undefined;
}

function chargeFact(event: StripeEventLike): PaymentFact | undefined {
  const ch = event.data.object;
  const reference = str(ch.payment_intent);
  const paymentId = paystepPaymentId(ch);
  const ev: PaymentEvent | undefined =
    ch.status === 'failed'
      ? 'refused'
      : ch.status === 'succeeded'
        ? ch.captured === true
          ? 'captured'
          : 'authorised'
        : ch.status === 'pending'
          ? 'pending'
          : undefined;
  if (!reference || !paymentId || !ev) return undefined;
  const fact: PaymentFact = {
    ...base(
      event,
      `${NAME}:${event.id}`,
      ev !== 'refused',
      amountOf(ev === 'captured' ? (ch.amount_captured ?? ch.amount) : ch.amount, ch.currency),
    ),
    kind: 'payment',
    reference,
    merchantReference: paymentId,
    event: ev,
  };
  if (ev === 'refused')
    fact.failure = mapStripeDecline(
      str(ch.failure_code),
      str(obj(ch.outcome)?.reason),
      str(ch.failure_message),
    );
  const card = cardOf(ch);
  if (card) fact.card = card;
  return fact;
}

// --- Refunds ------------------------------------------------------------------------------------

const REFUND_EVENT: Readonly<Record<string, RefundFact['event']>> = {
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
};

function refundFact(event: StripeEventLike, refund: Obj, id: string, paymentIntent?: string) {
  const reference = str(refund.id);
  const ev = REFUND_EVENT[String(refund.status)];
  if (!reference || !ev) return undefined; // pending, requires_action: not an outcome yet
  const fact: RefundFact = {
    ...base(event, id, ev === 'succeeded', amountOf(refund.amount, refund.currency)),
    kind: 'refund',
    reference,
    paymentReference: str(refund.payment_intent) ?? paymentIntent ?? str(refund.charge) ?? reference,
    merchantReference: str(obj(refund.metadata)?.paystep_refund_id) ?? null,
    event: ev,
  };
  const reason = str(refund.failure_reason);
  if (reason) fact.reason = reason;
  return fact;
}

// --- Disputes -----------------------------------------------------------------------------------

function disputeEventOf(type: string, status: string): [DisputeEvent, DisputeMoney] | undefined {
  switch (type) {
    case 'charge.dispute.funds_withdrawn':
      return ['chargeback', 'withdrawn'];
    case 'charge.dispute.funds_reinstated':
      return ['chargeback_reversed', 'returned'];
    case 'charge.dispute.closed':
      if (status === 'won') return ['prearbitration_won', 'none'];
      if (status === 'lost') return ['prearbitration_lost', 'none'];
      return ['defense_period_ended', 'none']; // warning_closed: an inquiry that ended
    case 'charge.dispute.created':
    case 'charge.dispute.updated':
      if (status === 'under_review' || status === 'warning_under_review')
        return ['information_supplied', 'none'];
      if (status.startsWith('warning_')) return ['request_for_information', 'none'];
      return ['notification_of_chargeback', 'none'];
    default:
      return undefined;
  }
}

function disputeFact(event: StripeEventLike): DisputeFact | undefined {
  const d = event.data.object;
  const reference = str(d.id);
  const status = str(d.status) ?? '';
  const ev = disputeEventOf(event.type, status);
  const paymentReference = str(d.payment_intent) ?? str(d.charge);
  const dispute = factsFromStripe(d);
  if (!reference || !ev || !paymentReference || !dispute) return undefined;
  const fact: DisputeFact = {
    ...base(event, `${NAME}:${event.id}`, true, amountOf(d.amount, d.currency)),
    kind: 'dispute',
    reference,
    paymentReference,
    merchantReference: paystepPaymentId(d) ?? null,
    event: ev[0],
    money: ev[1],
    dispute,
  };
  if (status) fact.processorStatus = status;
  const reason = str(d.network_reason_code) ?? str(d.reason);
  if (reason) fact.reasonCode = reason;
  const due = int(obj(d.evidence_details)?.due_by);
  if (due) fact.evidenceDueBy = isoOf(due);
  if (status) fact.defendable = status === 'needs_response' || status === 'warning_needs_response';
  return fact;
}

// --- One event → its facts ----------------------------------------------------------------------

const present = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x]);

/** The facts a Stripe event states (see the module comment); none for events paystep does not use. */
export function stripeFacts(event: StripeEventLike): ConnectorFact[] {
  const t = event.type;
  const o = event.data.object;
  if (t.startsWith('payment_intent.')) return present(paymentIntentFact(event));
  if (t === 'charge.succeeded' || t === 'charge.failed' || t === 'charge.captured')
    return present(chargeFact(event));
  if (
    t === 'refund.created' ||
    t === 'refund.updated' ||
    t === 'refund.failed' ||
    t === 'charge.refund.updated'
  )
    return present(refundFact(event, o, `${NAME}:${event.id}`));
  if (t === 'charge.refunded') {
    const refunds = obj(o.refunds)?.data;
    if (!Array.isArray(refunds)) return []; // each refund has its own refund.* events
    return refunds.flatMap((r) => {
      const refund = obj(r);
      const id = refund && str(refund.id);
      return refund && id
        ? present(refundFact(event, refund, `${NAME}:${event.id}:${id}`, str(o.payment_intent)))
        : [];
    });
  }
  if (t.startsWith('charge.dispute.')) return present(disputeFact(event));
  return [];
}

function storedEvent(stored: string): StripeEventLike {
  const e = asStripeEvent(JSON.parse(stored));
  if (!e) throw new Error('stored Stripe webhook is not a Stripe event');
  return e;
}

export const stripeWebhookFormat: WebhookFormat = {
  processor: NAME,
  storesSettledFacts: false,
  facts: (stored) => stripeFacts(storedEvent(stored)),
};

/** Stripe's webhook receiver under the endpoint's signing secrets (the new one first while rotating). */
export function stripeWebhookReceiver(secrets: readonly string[]): WebhookReceiver {
  return {
    ...stripeWebhookFormat,
    verify(request, options = {}) {
      const raw = request.body;
      const check = verifyStripeSignature(raw, request.header('stripe-signature'), [...secrets], {
        nowMs: options.nowMs,
      });
      if (!check.ok) return { ok: false, status: 400, code: check.code, message: check.message };
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return {
          ok: false,
          status: 400,
          code: 'invalid_json',
          message: 'The signed body is not valid JSON.',
        };
      }
      const event = asStripeEvent(body);
      if (!event)
        return {
          ok: false,
          status: 400,
          code: 'invalid_event',
          message: 'The body is not a Stripe event (id evt_…, type, created, data.object).',
        };
      return {
        ok: true,
        events: [
          {
            id: event.id,
            type: event.type,
            created: event.created,
            live: event.livemode === true,
            stored: raw,
            facts: stripeFacts(event),
          },
        ],
      };
    },
    acknowledge: (stored) => ({
      contentType: 'application/json',
      body: JSON.stringify({ received: true, id: stored[0]?.id, duplicate: stored[0]?.duplicate ?? false }),
    }),
  };
}
