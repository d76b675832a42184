/**
 * Payment workflow, "Choose a processor": a payment that names its processor (`processor` on
 * POST /v1/payments, straight-through) goes there (`explicit`); otherwise the routing rules
 * (lambdas/domain/routing.ts) pick the processors to try, primary first, among the enabled ones:
 * the merchant's order first (`merchant default`, `paystep merchant update ID --processors …`),
 * else the platform's (`platform default`, PAYSTEP_PROCESSORS). The choice and its reason go on
 * the payment's timeline. A payment approved in review is moved back to `processing`. */
import { availableProcessors } from '../../connectors/registry.ts';
import { choose, DEFAULT_RULES } from '../../domain/routing.ts';
import { addEvent, annotate, getPayment, transition } from '../../store/payments.ts';
import { getMerchant } from '../../store/merchants.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';

const Input = z.object({ payment_id: prefixedId('pay') });

export const handler = taskHandler('payment-route', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'pending_review') {
    await transition(p.id, 'processing', {
      from: ['pending_review'],
      set: { review: { ...p.review!, status: 'approved' } },
      remove: ['task_token', 'task_token_kind'],
      note: 'approved in review',
    });
  }
  // `processor` is set before routing only by the request (validated against the enabled ones).
  const route = p.processor
    ? { processors: [p.processor], rule: 'explicit' }
    : choose(
        {
          merchantId: p.merchant_id,
          amount: p.amount,
          currency: p.currency,
          customerCountry: p.customer?.country,
        },
        DEFAULT_RULES,
        availableProcessors(),
        (await getMerchant(p.merchant_id))?.processors,
      );
  await annotate(p.id, { processor: route.processors[0]! });
  await addEvent(p.id, {
    type: 'workflow',
    event: 'routed',
    processor: route.processors[0],
    processors: route.processors,
    reason: route.rule,
  });
  return { processors: route.processors, processor: route.processors[0], rule: route.rule };
});
