/**
 * For the sweeper (lambdas/sweeper/): disputes whose workflow ended without a decision
 * (escalated `no_decision`, or an inquiry left open: `inquiry_open`) are listed by
 * `disputesToSweep()` (lambdas/store/disputes.ts); `refreshDispute` asks the dispute's processor
 * (its connector's `retrieve`) for the dispute's current state and applies it as an event would
 * (idempotent; never regresses). A closed dispute leaves the list. The sweeper's function needs
 * `disputeEventUses` (lib/topology/disputes.ts).
 */
import { disputes } from '../connectors/registry.ts';
import { getDispute, unmarkForSweep } from '../store/disputes.ts';
import { applyProcessorFacts } from './events.ts';
import { eventFingerprint, isClosed } from './model.ts';

export { disputesToSweep } from '../store/disputes.ts';

export async function refreshDispute(disputeId: string): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const d = await getDispute(disputeId);
  if (!d) return 'unknown_object';
  const connector = await disputes(d.processor);
  const current = await connector.retrieve(d.processor_reference);
  const now = Math.floor(Date.now() / 1000);
  const outcome = await applyProcessorFacts(connector, current, {
    eventType: 'sweep.refresh',
    eventCreated: now,
    fingerprint: eventFingerprint('sweep.refresh', now, current),
  });
  const after = await getDispute(disputeId);
  if (after && isClosed(after.status)) await unmarkForSweep(disputeId);
  return outcome;
}
