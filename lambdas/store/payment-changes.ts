/**
 * Payment changes made in this process, for the API's short waits (lambdas/payments/wait.ts): each
 * write of lambdas/store/payments.ts that can end a wait calls `paymentChanged`, with the payment as
 * the write left it when the write returned it (a guarded transition: `ReturnValues: ALL_NEW`).
 *
 * A hint, never the truth: a waiter woken without the payment reads it (consistently), and a waiter
 * never woken polls. In the local runtime the workflow steps run in the API's process, so a wait
 * usually ends on the step's own write with no read at all; in AWS each function runs in its own
 * container, nothing here fires, and the wait polls (lambdas/payments/wait.ts).
 *
 * Process-wide (a `globalThis` registry): the same listeners whichever copy of this module a
 * handler loaded.
 */
import type { Payment } from '../domain/payment.ts';

type Listener = (p: Payment | undefined) => void;

const REGISTRY = Symbol.for('paystep.payment-changes');
const registry = (): Map<string, Set<Listener>> => {
  const g = globalThis as { [REGISTRY]?: Map<string, Set<Listener>> };
  return (g[REGISTRY] ??= new Map());
};

/** Payment `id` was written in this process; `payment`: its new state, when the write returned it. */
export function paymentChanged(id: string, payment?: Payment): void {
  const listeners = registry().get(id);
  if (!listeners) return;
  for (const l of [...listeners]) l(payment);
}

/** Calls `listener` on every change of payment `id` in this process until the returned function is called. */
export function onPaymentChange(id: string, listener: Listener): () => void {
  const all = registry();
  let set = all.get(id);
  if (!set) all.set(id, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0 && all.get(id) === set) all.delete(id);
  };
}
