/**
 * Stream consumer (the outbox): every status change of a payment, refund or dispute becomes a
 * merchant event (derive.ts), and a processor incident that opens or resolves one event per
 * merchant (incidents.ts), stored once under its deterministic id and then enqueued for
 * delivery. A redelivered stream record finds its event stored; it is enqueued again only if the
 * first run stopped before enqueueing it.
 */
import type { StreamChange, StreamConsumer } from '../stream/consumers.ts';
import { markEventEnqueued, putEvent } from '../store/merchant-events.ts';
import { eventCreatedMessage, sendMessage } from './delivery.ts';
import { deriveEvents } from './derive.ts';
import { incidentEvents } from './incidents.ts';

export async function handleChange(change: StreamChange): Promise<void> {
  const created = change.record?.dynamodb?.ApproximateCreationDateTime;
  const createdSeconds = typeof created === 'number' ? Math.floor(created) : Math.floor(Date.now() / 1000);
  const drafts = [...deriveEvents(change, createdSeconds), ...(await incidentEvents(change, createdSeconds))];
  for (const draft of drafts) {
    const { event } = await putEvent(draft);
    if (event.enqueued) continue;
    // The event travels in its message when small (the fan-out reads nothing for it).
    await sendMessage(eventCreatedMessage(event));
    await markEventEnqueued(event.id);
  }
}

export const merchantEventsConsumer: StreamConsumer = {
  name: 'merchant-events',
  handle: handleChange,
};
