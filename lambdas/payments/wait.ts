/**
 * Short synchronous waits in API handlers: the workflow runs asynchronously, but most outcomes
 * are known within a second, so the API answers with them when it can (docs/api.md).
 * PAYSTEP_SYNC_WAIT_MS bounds the wait (default 8000, well inside API Gateway's 29 s;
 * lambdas/shared/config.ts).
 */
import type { Payment } from '../domain/payment.ts';
import { config } from '../shared/config.ts';
import { getPayment } from '../store/payments.ts';

export const syncWaitMs = () => config.syncWaitMs();

export async function waitForPayment(
  id: string,
  done: (p: Payment) => boolean,
  ms = syncWaitMs(),
): Promise<Payment> {
  const deadline = Date.now() + ms;
  let delay = 5;
  for (;;) {
    const p = await getPayment(id);
    if (!p) throw new Error(`payment ${id} disappeared`);
    if (done(p) || Date.now() >= deadline) return p;
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now()))));
    delay = Math.min(delay * 2, 100);
  }
}
