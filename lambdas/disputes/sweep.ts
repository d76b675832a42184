/**
 * For the sweeper (lambdas/sweeper/): disputes whose workflow ended without a decision
 * (escalated `no_decision`, or an inquiry left open: `inquiry_open`) are listed by
 * `disputesToSweep()` (lambdas/store/disputes.ts); `refreshDispute` asks the processor for the
 * dispute's current state and applies it as an event would (idempotent; never regresses). A closed
 * dispute leaves the list. The sweeper's function needs `disputeEventUses` (lib/topology/disputes.ts).
 */
import { getDispute, unmarkForSweep } from '../store/disputes.ts';
import { handleDisputeEvent } from './events.ts';
import { isClosed } from './model.ts';
import { stripeDisputes } from '../connectors/stripe/disputes.ts';

export { disputesToSweep } from '../store/disputes.ts';

export async function refreshDispute(disputeId: string): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const d = await getDispute(disputeId);
  if (!d) return 'unknown_object';
  const current = await (await stripeDisputes()).retrieve(d.processor_reference);
  const outcome = await handleDisputeEvent('charge.dispute.updated', current, Math.floor(Date.now() / 1000));
  const after = await getDispute(disputeId);
  if (after && isClosed(after.status)) await unmarkForSweep(disputeId);
  return outcome;
}
