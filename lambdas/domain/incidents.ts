/**
 * Processor incidents (docs/routing.md "Incidents"): an explicit, audited record that a processor
 * is not to be used. Pure: states, transitions and what an incident means for routing.
 *
 *   suspected ──confirm──► open ──resolve──► resolved
 *       │                   ▲
 *       └──dismiss──► dismissed      (declare: straight to open)
 *
 * A breaker that trips opens a `suspected` incident; ops confirm it (→ open) or dismiss it. A
 * declared incident starts `open`. Only an `open` incident takes the processor out of routing
 * and holds what only it can do (captures, cancels, refunds) in the backlog.
 */

export const INCIDENT_STATUSES = ['suspected', 'open', 'resolved', 'dismissed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

export const INCIDENT_TRANSITIONS: Record<IncidentStatus, readonly IncidentStatus[]> = {
  suspected: ['open', 'dismissed'],
  open: ['resolved'],
  resolved: [],
  dismissed: [],
};

export const canIncidentTransition = (from: IncidentStatus, to: IncidentStatus) =>
  INCIDENT_TRANSITIONS[from].includes(to);

export const incidentSources = (to: IncidentStatus): IncidentStatus[] =>
  INCIDENT_STATUSES.filter((from) => INCIDENT_TRANSITIONS[from].includes(to));

/** Statuses in which the incident is still running (one per processor at a time). */
export const ACTIVE_INCIDENT_STATUSES: readonly IncidentStatus[] = ['suspected', 'open'];

/** Whether routing must avoid the processor and hold its work. */
export const holdsProcessor = (s: IncidentStatus) => s === 'open';

export interface IncidentEntry {
  /** Epoch ms. */
  at: number;
  /** What happened: opened, suspected, confirmed, dismissed, resolved, note. */
  event: 'declared' | 'suspected' | 'confirmed' | 'dismissed' | 'resolved' | 'note';
  /** Who: `cli`, `api`, `breaker`. */
  by: string;
  text: string;
}

export interface Incident {
  id: string;
  object: 'incident';
  processor: string;
  status: IncidentStatus;
  reason: string;
  /** Epoch ms. */
  opened_at: number;
  confirmed_at: number | null;
  closed_at: number | null;
  timeline: IncidentEntry[];
}

/** The action that moves an incident to `to`, for messages and the timeline. */
export const ACTION_TO: Record<Exclude<IncidentStatus, 'suspected'>, IncidentEntry['event']> = {
  open: 'confirmed',
  resolved: 'resolved',
  dismissed: 'dismissed',
};

/** Why a transition is refused, in words; undefined when it is allowed. */
export function transitionProblem(
  i: Pick<Incident, 'id' | 'status'>,
  to: IncidentStatus,
): string | undefined {
  if (canIncidentTransition(i.status, to)) return undefined;
  const allowed = INCIDENT_TRANSITIONS[i.status];
  return `incident ${i.id} is ${i.status}: it can${allowed.length ? ` only be ${allowed.map((s) => (s === 'open' ? 'confirmed' : s)).join(' or ')}` : 'not change any more'}`;
}
