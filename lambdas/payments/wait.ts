/**
 * Short synchronous waits in API handlers: the workflow runs asynchronously, but most outcomes
 * are known within a second, so the API answers with them when it can (docs/api.md).
 * PAYSTEP_SYNC_WAIT_MS bounds the wait (default 8000, well inside API Gateway's 29 s;
 * lambdas/shared/config.ts).
 *
 * What a wait costs does not grow with load: a write of the payment made in this process wakes it
 * at once (lambdas/store/payment-changes.ts), with the payment the write returned (no read) or to
 * read it; and it reads the payment on a fixed schedule: after FIRST_POLL_MS (about when a checkout
 * with a real processor call is done), then every POLL_INTERVAL_MS, and once more at the deadline.
 * Once a change of the payment has been seen in this process (the steps run here) or after
 * SLOW_AFTER_MS, the polls are only a safety net: every SLOW_POLL_INTERVAL_MS. In the local runtime
 * a checkout's wait therefore usually ends on its captured transition with no read at all; in AWS
 * (each function in its own container, nothing wakes it) the polls find it: ~2–3 reads for a
 * checkout of ~1 s, where the doubling poll from 5 ms took ~9 and more the busier it was.
 */
import type { Payment } from '../domain/payment.ts';
import { config } from '../shared/config.ts';
import { onPaymentChange } from '../store/payment-changes.ts';
import { getPayment } from '../store/payments.ts';

export const syncWaitMs = () => config.syncWaitMs();

/** The first read: about when a checkout's workflow with a real processor call is done. */
export const FIRST_POLL_MS = 500;
export const POLL_INTERVAL_MS = 250;
/** After this long the outcome waits on something slow (a processor, a person): poll less. */
export const SLOW_AFTER_MS = 2000;
export const SLOW_POLL_INTERVAL_MS = 1000;

export async function waitForPayment(
  id: string,
  done: (p: Payment) => boolean,
  ms = syncWaitMs(),
): Promise<Payment> {
  const started = Date.now();
  const deadline = started + ms;
  let wake: ((p: Payment | undefined) => void) | undefined;
  let woken: { payment: Payment | undefined } | undefined;
  let local = false; // a change was seen in this process: the next ones will be too
  const stop = onPaymentChange(id, (p) => {
    local = true;
    // The latest change wins (a payment the write returned beats a bare "changed").
    woken = { payment: p ?? woken?.payment };
    wake?.(p);
  });
  try {
    let nextPoll = started + Math.min(FIRST_POLL_MS, ms);
    for (;;) {
      if (!woken) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, Math.min(nextPoll, deadline) - Date.now()));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      const now = Date.now();
      const notified = woken;
      woken = undefined;
      let p = notified?.payment;
      if (!p || (!done(p) && now >= deadline)) {
        p = await getPayment(id);
        if (!p) throw new Error(`payment ${id} disappeared`);
      }
      if (done(p) || Date.now() >= deadline) return p;
      const slow = local || Date.now() - started >= SLOW_AFTER_MS;
      if (!notified || slow)
        nextPoll = Math.max(nextPoll, Date.now() + (slow ? SLOW_POLL_INTERVAL_MS : POLL_INTERVAL_MS));
    }
  } finally {
    stop();
  }
}
