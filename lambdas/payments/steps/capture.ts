/** Payment workflow, "Capture with processor": authorized → captured (partial capture releases the rest). */
import { processor } from '../../processors/registry.ts';
import { ProcessorUnavailableError } from '../../processors/types.ts';
import { addEvent, getPayment, transition } from '../../store/payments.ts';

export async function handler(input: { payment_id: string; amount?: number }) {
  const p = await getPayment(input.payment_id);
  if (!p) throw new Error(`payment ${input.payment_id} not found`);
  if (p.status === 'captured') return { status: 'captured', amount_captured: p.amount_captured };
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
      remove: ['task_token', 'task_token_kind'],
    });
    return { status: 'captured', amount_captured: r.amountCaptured };
  } catch (err) {
    await addEvent(p.id, {
      type: 'attempt',
      processor: p.processor,
      operation: 'capture',
      outcome: 'error',
      latency_ms: Date.now() - started,
      error: (err as Error).name,
      message: (err as Error).message,
    });
    if (err instanceof ProcessorUnavailableError) throw err;
    throw err;
  }
}
