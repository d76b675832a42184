/**
 * Payment workflow, "Capture with processor": authorized → captured (a partial capture releases
 * the rest). When the processor refuses, its own state decides: already captured → captured;
 * already canceled (the authorization lapsed) → canceled. Any failure is recorded on the payment
 * (`last_capture_error`) so the API can tell the merchant instead of answering "authorized".
 */
import { processor } from '../../connectors/registry.ts';
import { ProcessorRequestError } from '../../connectors/types.ts';
import { addEvent, annotate, getPayment, transition } from '../../store/payments.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';

const Input = z.object({ payment_id: prefixedId('pay'), amount: z.number().int().positive().optional() });

export const handler = taskHandler('payment-capture', Input, async (input) => {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status !== 'authorized') return { status: p.status, amount_captured: p.amount_captured };
  const adapter = await processor(p.processor!);
  const amount = Math.min(input.amount ?? p.amount, p.amount);
  const started = Date.now();
  try {
    const r = await adapter.capture(p.processor_reference!, amount, `${p.id}:capture`);
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'capture',
      outcome: 'captured',
      latency_ms: Date.now() - started,
      amount: r.amountCaptured,
      processor_status: r.rawStatus,
    });
    await transition(p.id, 'captured', {
      from: ['authorized'],
      set: { amount_captured: r.amountCaptured, refundable_remaining: r.amountCaptured },
      remove: ['task_token', 'task_token_kind', 'last_capture_error'],
    });
    return { status: 'captured', amount_captured: r.amountCaptured };
  } catch (err) {
    const e = err as Error;
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'capture',
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: e.name,
      message: e.message,
    });
    if (err instanceof ProcessorRequestError) {
      const r = await adapter.retrieve(p.processor_reference!);
      if (r.status === 'captured') {
        await transition(p.id, 'captured', {
          from: ['authorized'],
          set: { amount_captured: r.amountCaptured, refundable_remaining: r.amountCaptured },
          remove: ['task_token', 'task_token_kind'],
        });
        return { status: 'captured', amount_captured: r.amountCaptured };
      }
      if (r.status === 'canceled') {
        await transition(p.id, 'canceled', {
          from: ['authorized'],
          set: { cancellation_reason: 'authorization_expired' },
          remove: ['task_token', 'task_token_kind'],
          note: 'capture refused: the authorization had lapsed at the processor',
        });
        return { status: 'canceled', amount_captured: 0 };
      }
    }
    await annotate(p.id, {
      last_capture_error: {
        code: (err as { code?: string }).code ?? e.name,
        message: e.message,
        at: Date.now(),
      },
    });
    throw err;
  }
});
