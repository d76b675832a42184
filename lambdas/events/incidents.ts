/**
 * `processor.incident.opened` and `processor.incident.resolved` (docs/merchant-events.md
 * "Processor incidents"): a processor incident that takes effect or ends concerns every merchant,
 * since any of them may have payments at that processor (captured ones to refund, authorized ones
 * to capture, payments that name it) whatever its routing says. So each event goes to every
 * active merchant, one event per merchant, through the same outbox as the other events (stored
 * under a deterministic id, enqueued, signed, delivered and retried by lambdas/events/delivery.ts).
 *
 * When (from the main table's stream, lambdas/events/stream.ts):
 *   opened    an incident becomes `open`: declared (its processor's pointer is claimed for an open
 *             incident) or confirmed (suspected → open). A `suspected` incident, opened by the
 *             breaker and not yet confirmed, is not news for merchants; a dismissed one never is.
 *   resolved  open → resolved.
 * The id is derived from (incident, type, merchant): a stream record delivered twice, or both
 * records of one declaration (the incident and its pointer), store one event per merchant.
 */
import type { Incident } from '../domain/incidents.ts';
import { getIncident } from '../store/incidents.ts';
import { allMerchants } from '../store/merchants.ts';
import { deterministicEventId, type ChangeLike, type EventDraft } from './derive.ts';

export const INCIDENT_EVENT_TYPES = ['processor.incident.opened', 'processor.incident.resolved'] as const;
export type IncidentEventType = (typeof INCIDENT_EVENT_TYPES)[number];

/** Wildcard an endpoint may subscribe to (`processor.*`). */
export const INCIDENT_EVENT_PREFIX = 'processor';

/**
 * What a change of the main table means for incident events: an incident to announce (by id, to
 * be read: a pointer's change names it only), or nothing. Pure.
 */
export function incidentChange(
  change: ChangeLike,
): { type: IncidentEventType; incidentId: string; incident?: Incident } | undefined {
  if (change.eventName === 'REMOVE') return undefined;
  const item = change.newImage;
  if (!item) return undefined;
  if (item.kind === 'incident-pointer') {
    const id = item.incident_id;
    if (typeof id !== 'string' || change.oldImage?.incident_id === id) return undefined;
    return { type: 'processor.incident.opened', incidentId: id };
  }
  if (item.kind !== 'incident' || change.eventName !== 'MODIFY') return undefined;
  const from = change.oldImage?.status;
  const to = item.status;
  const incident = item as unknown as Incident;
  if (from === 'suspected' && to === 'open')
    return { type: 'processor.incident.opened', incidentId: incident.id, incident };
  if (from === 'open' && to === 'resolved')
    return { type: 'processor.incident.resolved', incidentId: incident.id, incident };
  return undefined;
}

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/**
 * `data.object` of an incident event: what merchants need, as of the transition (so the same
 * event has the same body whichever record announced it). Ops' reasons and timeline stay internal.
 */
export function presentIncidentEvent(type: IncidentEventType, i: Incident): Record<string, unknown> {
  const resolved = type === 'processor.incident.resolved';
  return {
    id: i.id,
    object: 'processor_incident',
    processor: i.processor,
    status: resolved ? 'resolved' : 'open',
    opened_at: seconds(i.confirmed_at ?? i.opened_at),
    resolved_at: resolved ? seconds(i.closed_at) : null,
  };
}

/** One draft per merchant. Pure. */
export function incidentEventDrafts(
  type: IncidentEventType,
  incident: Incident,
  merchantIds: readonly string[],
  createdSeconds: number,
  sequenceNumber: string,
): EventDraft[] {
  const data = presentIncidentEvent(type, incident);
  return merchantIds.map((merchantId) => ({
    event: {
      id: deterministicEventId(`${incident.id}|${type}|${merchantId}`),
      object: 'event',
      type,
      created: createdSeconds,
      data: { object: data },
    },
    merchantId,
    objectKind: 'processor_incident',
    objectId: incident.id,
    order: `${sequenceNumber.padStart(40, '0')}#0`,
  }));
}

/**
 * The drafts a change stands for: reads the incident when a pointer names it (announced only if it
 * is, or was, open: a suspected incident's pointer announces nothing) and the active merchants.
 */
export async function incidentEvents(change: ChangeLike, createdSeconds: number): Promise<EventDraft[]> {
  const c = incidentChange(change);
  if (!c) return [];
  const incident = c.incident ?? (await getIncident(c.incidentId));
  if (!incident || incident.confirmed_at === null) return [];
  if (c.type === 'processor.incident.opened' && !['open', 'resolved'].includes(incident.status)) return [];
  const merchants: string[] = [];
  for await (const m of allMerchants()) if (m.status === 'active') merchants.push(m.id);
  return incidentEventDrafts(c.type, incident, merchants, createdSeconds, change.sequenceNumber);
}
