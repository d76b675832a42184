/**
 * Payment workflow, "Choose a processor" (docs/routing.md). A payment that names its processor
 * (`processor` on POST /v1/payments, straight-through) goes there (`explicit`). Otherwise the
 * merchant's routing configuration decides (`decideRoute`: rules, split, default), else the
 * merchant's processor order, else the platform's — among the processors that can take this
 * payment now: enabled, able to take its currency, capture method and payment method (a live
 * token pins its processor, decision 0004), breaker not open, not in an open incident. The
 * decision, its rule and its explanation in words go on the payment's timeline; the configuration
 * version that made it is kept with it. The whole route, and the merchant's cascade settings, go
 * back to the workflow: "Authorize with processor" tries the route in order (docs/routing.md).
 *
 * No processor can take the payment: it fails (`no_processor_available`, retryable), rather than
 * being sent where it cannot succeed.
 */
import { cannotTake } from '../../connectors/capabilities.ts';
import { availableProcessors } from '../../connectors/registry.ts';
import { decideRoute, DEFAULT_CASCADE } from '../../domain/routing.ts';
import { admitProcessor } from '../../processors/health.ts';
import { addEvent, annotate, getPayment, transition } from '../../store/payments.ts';
import { getMerchant } from '../../store/merchants.ts';
import { currentRouting } from '../../store/routing.ts';
import { cachedRoutingSettings } from '../../store/routing-cache.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import type { Payment } from '../../domain/payment.ts';
import { PaymentDeclined } from './outcome.ts';
import { RouteView, routeView } from './route-view.ts';

const Input = z.object({
  payment_id: prefixedId('pay'),
  /** "Screen for risk"'s result: the payment as its write left it, when it allowed it (route-view.ts). */
  risk: z.object({ result: z.object({ payment: RouteView.nullable().optional() }).optional() }).optional(),
});

/** The payment's routing fields, from the carried view or the payment. */
type Routable = RouteView & { review?: Payment['review']; failure?: Payment['failure'] };

const routable = (p: Payment): Routable => ({ ...routeView(p), review: p.review, failure: p.failure });

export const handler = taskHandler('payment-route', Input, async (input) => {
  const carried = input.risk?.result?.payment;
  // The carried payment, if it is this one and still to be routed: the routing write checks it.
  if (carried && carried.id === input.payment_id && carried.status === 'processing' && !carried.processor) {
    const routed = await route(carried, carried);
    if (routed) return routed;
  }
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  return (await route(routable(p)))!;
});

/**
 * Routes `p`. With `seen` (a carried copy), the routing write holds only if the payment is still
 * as seen (same version, `processing`, no processor): undefined when it is not (nothing written;
 * the caller reads the payment and routes again).
 */
async function route(p0: Routable, seen?: RouteView) {
  let p = p0;
  if (p.status === 'pending_review') {
    const approved = (
      await transition(p.id, 'processing', {
        from: ['pending_review'],
        set: { review: { ...p.review!, status: 'approved' } },
        remove: ['task_token', 'task_token_kind'],
        note: 'approved in review',
      })
    ).payment;
    p = routable(approved);
  }
  // A replayed step (the workflow retried after this step had finished) keeps its decision.
  if (p.status === 'failed') throw new PaymentDeclined(JSON.stringify(p.failure));
  // `processor` is set before routing only by the request (validated against the enabled ones).
  if (p.processor) {
    await addEvent(p.id, {
      type: 'workflow',
      event: 'routed',
      processor: p.processor,
      processors: [p.processor],
      reason: 'explicit',
    });
    return {
      processors: [p.processor],
      processor: p.processor,
      rule: 'explicit',
      // One processor: there is nothing to cascade to, so the merchant's settings need no read.
      cascade: DEFAULT_CASCADE,
    };
  }
  // Per container for a few seconds (lambdas/store/routing-cache.ts: staleness and invalidation).
  const merchantId = p.merchant_id;
  const [stored, merchant] = await cachedRoutingSettings(merchantId, () =>
    Promise.all([currentRouting(merchantId), getMerchant(merchantId)]),
  );
  const now = Date.now();
  const unavailable = new Map<string, string | undefined>();
  const demoted = new Map<string, string | undefined>();
  for (const name of availableProcessors()) {
    const cannot = cannotTake(name, {
      currency: p.currency,
      captureMethod: p.capture_method,
      paymentMethod: p.payment_method,
    });
    if (cannot) {
      unavailable.set(name, cannot);
      continue;
    }
    const admitted = await admitProcessor(name, now);
    (admitted.hard ? unavailable : demoted).set(name, admitted.reason);
  }
  const decision = decideRoute(
    stored?.config,
    {
      id: p.id,
      amount: p.amount,
      currency: p.currency,
      captureMethod: p.capture_method,
      ...(p.customer_country ? { customerCountry: p.customer_country } : {}),
      ...(p.card_brand ? { cardBrand: p.card_brand } : {}),
      ...(p.card_country ? { issuerCountry: p.card_country } : {}),
      paymentMethodType: 'card',
      ...(p.channel ? { channel: p.channel } : {}),
      metadata: p.metadata,
    },
    {
      enabled: availableProcessors(),
      merchantOrder: merchant?.processors ?? [],
      unavailable: (x) => unavailable.get(x),
      demoted: (x) => demoted.get(x),
    },
  );
  const routed = {
    type: 'workflow',
    event: 'routed',
    processors: decision.processors,
    reason: decision.rule,
    explanation: decision.explanation,
    ...(stored ? { routing_version: stored.version } : {}),
  };
  if (!decision.processors.length) {
    await transition(p.id, 'failed', {
      from: ['processing'],
      entries: [routed],
      set: {
        failure: {
          category: 'technical',
          code: 'no_processor_available',
          processor_code: 'no_processor_available',
          message: 'The payment could not be processed right now. Please try again later.',
          explanation: `No processor could take this payment: ${decision.explanation}`,
          recommended_action:
            'Try again later, or check the processors (paystep processors, GET /v1/processors) and the routing configuration.',
          retryable: true,
        },
      },
      note: 'no processor available',
    });
    throw new PaymentDeclined('no processor available');
  }
  const written = await annotate(
    p.id,
    { processor: decision.processors[0]! },
    [],
    [{ ...routed, processor: decision.processors[0] }],
    seen && {
      expression:
        'version = :seen_v AND #seen_s = :seen_processing AND (attribute_not_exists(processor) OR processor = :seen_null)',
      names: { '#seen_s': 'status' },
      values: { ':seen_v': seen.version, ':seen_processing': 'processing', ':seen_null': null },
    },
  );
  if (seen && !written) return undefined;
  return {
    processors: decision.processors,
    processor: decision.processors[0],
    rule: decision.rule,
    // What "Authorize with processor" cascades on (the workflow carries it from attempt to attempt).
    cascade: stored?.config.cascade ?? DEFAULT_CASCADE,
  };
}
