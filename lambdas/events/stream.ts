/**
 * Stream consumer (the outbox): every status change of a payment, refund or dispute becomes a
 * merchant event (derive.ts), and a processor incident that opens or resolves one event per
 * merchant (incidents.ts), stored once under its deterministic id and then enqueued for
 * delivery. A redelivered stream record finds its event stored and enqueues it again (the first
 * run may have stopped before enqueueing it): the fan-out delivers it once all the same, since
 * the run that opens a delivery owns its first attempt (delivery.ts). No mark of what was
 * enqueued, so one write less per event.
 */
import type { StreamChange, StreamConsumer } from '../stream/consumers.ts';
import { putEvent } from '../store/merchant-events.ts';
import { eventCreatedMessage, sendMessage } from './delivery.ts';
import { deriveEvents } from './derive.ts';
import { incidentEvents } from './incidents.ts';

export async function handleChange(change: StreamChange): Promise<void> {
  const created = change.record?.dynamodb?.ApproximateCreationDateTime;
  const createdSeconds = typeof created === 'number' ? Math.floor(created) : Math.floor(Date.now() / 1000);
  const drafts = [...deriveEvents(change, createdSeconds), ...(await incidentEvents(change, createdSeconds))];
  for (const draft of drafts) {
    const { event } = await putEvent(draft);
    // The event travels in its message when small (the fan-out reads nothing for it).
    await sendMessage(eventCreatedMessage(event));
  }
}

export const merchantEventsConsumer: StreamConsumer = {
  name: 'merchant-events',
  handle: handleChange,
};
