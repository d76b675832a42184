/**
 * Incident mode's operations (docs/routing.md "Incidents"), shared by the CLI (`paystep incident
 * …`), the breaker (suspect) and the ops API (lambdas/ops/incidents.ts): declare, suspect, confirm,
 * dismiss, resolve (which writes the incident report), list, show. Each change is checked against the transition table and recorded on the incident's
 * timeline with who did it.
 */
import { knownProcessors } from '../connectors/capabilities.ts';
import { transitionProblem, type Incident, type IncidentStatus } from '../domain/incidents.ts';
import { PaystepError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { logger } from '../shared/logger.ts';
import { readIncidentReport, writeIncidentReport } from './report-writer.ts';
import type { HeldOperation } from '../domain/backlog.ts';
import {
  getIncident,
  listIncidents,
  moveIncident,
  openIncident,
  runningIncident,
} from '../store/incidents.ts';
import { drainResolvedIncident } from './release.ts';
import { listHeld } from '../store/backlog.ts';

/** A request that cannot be done as asked (unknown processor or incident, a refused transition). */
export class IncidentError extends PaystepError {
  override name = 'IncidentError';
}

/** The codes callers branch on (the ops API: 404 for `incident_not_found`, 409 for the others). */
export const INCIDENT_NOT_FOUND = 'incident_not_found';
export const TRANSITION_REFUSED = 'transition_refused';
export const REPORT_UNAVAILABLE = 'report_unavailable';

const MAX_REASON = 1000;

function checkProcessor(processor: string): void {
  if (!knownProcessors().includes(processor))
    throw new IncidentError(`unknown processor '${processor}' (expected: ${knownProcessors().join(', ')})`);
}

function checkText(what: string, text: string): string {
  const t = text.trim();
  if (!t) throw new IncidentError(`${what} must not be empty`);
  if (t.length > MAX_REASON) throw new IncidentError(`${what} must be at most ${MAX_REASON} characters`);
  return t;
}

export interface Opened {
  incident: Incident;
  /** false: the processor already had a running incident, which is returned (and confirmed by a declare). */
  created: boolean;
}

/**
 * Ops declare an incident: it starts `open`. If the processor has a suspected one, that one is
 * confirmed instead (one incident per outage); an open one is returned as it is.
 */
export async function declareIncident(
  processor: string,
  reason: string,
  by: string,
  now = Date.now(),
): Promise<Opened> {
  checkProcessor(processor);
  const text = checkText('the reason', reason);
  const opened = await openIncident({
    id: newId('inc'),
    object: 'incident',
    processor,
    status: 'open',
    reason: text,
    opened_at: now,
    confirmed_at: now,
    closed_at: null,
    timeline: [{ at: now, event: 'declared', by, text }],
  });
  if (opened.created || opened.incident.status !== 'suspected') return opened;
  return { incident: await confirmIncident(opened.incident.id, by, text, now), created: false };
}

/** The breaker tripped: a `suspected` incident, unless one is running already. */
export async function suspectIncident(processor: string, reason: string, now = Date.now()): Promise<Opened> {
  checkProcessor(processor);
  return openIncident({
    id: newId('inc'),
    object: 'incident',
    processor,
    status: 'suspected',
    reason,
    opened_at: now,
    confirmed_at: null,
    closed_at: null,
    timeline: [{ at: now, event: 'suspected', by: 'breaker', text: reason }],
  });
}

async function move(
  id: string,
  to: Exclude<IncidentStatus, 'suspected'>,
  by: string,
  text: string,
  now: number,
) {
  const current = await showIncident(id);
  const problem = transitionProblem(current, to);
  if (problem) throw new IncidentError(problem, { code: TRANSITION_REFUSED });
  const moved = await moveIncident(id, current.processor, to, { at: now, by, text });
  if (moved) return moved;
  // Someone else moved it in between: say where it is now.
  throw new IncidentError(
    transitionProblem(await showIncident(id), to) ?? `incident ${id} changed meanwhile; try again`,
    { code: TRANSITION_REFUSED },
  );
}

export const confirmIncident = (id: string, by: string, note = 'confirmed', now = Date.now()) =>
  move(id, 'open', by, note, now);
export const dismissIncident = (id: string, by: string, note = 'dismissed', now = Date.now()) =>
  move(id, 'dismissed', by, note, now);
export async function resolveIncident(id: string, by: string, note = 'resolved', now = Date.now()) {
  let resolved: Incident;
  try {
    resolved = await move(id, 'resolved', by, note, now);
  } finally {
    // The backlog (docs/routing.md "The backlog"): unknown outcomes checked, held operations
    // replayed — also when a resolve is retried after a crash (refused: resolved already).
    await drainResolvedIncident(id);
  }

  // ---- Incident report (lambdas/incidents/report-writer.ts): JSON + CSV to the reports bucket,
  // with the incident's backlog as the release above left it. A failed write does not undo the
  // resolution: the report is written on demand (incidentReport below, `paystep incident report
  // ID`, GET /ops/v1/incidents/{id}/report).
  try {
    await writeIncidentReport(resolved, await heldFor(resolved.id), now);
  } catch (err) {
    logger.error('incident report not written', { incidentId: id, error: err as Error });
  }
  // ---- end of the incident report

  return resolved;
}

/** The incident's backlog (lambdas/store/backlog.ts), in the order it was held, for its report. */
const heldFor = (incidentId: string): Promise<HeldOperation[]> => listHeld(incidentId);

/**
 * The report of a resolved incident: the one written when it was resolved, or built and written
 * now if there is none yet (its writing failed) or `rebuild` is asked (the `after` window grows,
 * replayed operations finish). A running or dismissed incident has no report.
 */
export async function incidentReport(id: string, opts: { rebuild?: boolean } = {}) {
  const incident = await showIncident(id);
  if (incident.status !== 'resolved')
    throw new IncidentError(
      `incident ${id} is ${incident.status}: a report is written when an open incident is resolved`,
      { code: REPORT_UNAVAILABLE },
    );
  const stored = opts.rebuild ? undefined : await readIncidentReport(incident);
  if (stored) return stored;
  await writeIncidentReport(incident, await heldFor(incident.id));
  return (await readIncidentReport(incident))!;
}

export async function showIncident(id: string): Promise<Incident> {
  if (!/^inc_[0-9A-Za-z]{10,40}$/.test(id))
    throw new IncidentError(`'${id}' is not an incident id (inc_…)`, { code: INCIDENT_NOT_FOUND });
  const i = await getIncident(id);
  if (!i) throw new IncidentError(`no incident '${id}'`, { code: INCIDENT_NOT_FOUND });
  return i;
}

export { listIncidents, runningIncident };
