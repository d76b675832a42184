/**
 * The ops API's incidents (docs/api.md "Ops API"), for the ops console: one handler for
 *
 *   GET  /ops/v1/incidents                      ?processor&status&limit, newest first
 *   POST /ops/v1/incidents                      {processor, reason}: declare (201; 200 with the
 *                                               running one if the processor has one open)
 *   GET  /ops/v1/incidents/{id}                 one, with its timeline
 *   POST /ops/v1/incidents/{id}/confirm|dismiss|resolve   {note?}    (route …/{id}/{action})
 *   GET  /ops/v1/incidents/{id}/report          ?rebuild=true: the incident report (resolved only)
 *
 * Reached only with an ops key (lambdas/auth/authorizer.ts): its name is `by` on the incident's
 * timeline. The service (lambdas/incidents/service.ts) does the work, as for `paystep incident`.
 * Bad input → 400 naming the field; unknown incident → 404; a refused transition → 409 saying why.
 */
import { z } from 'zod';
import { knownProcessors } from '../connectors/capabilities.ts';
import { INCIDENT_STATUSES, type IncidentStatus } from '../domain/incidents.ts';
import {
  confirmIncident,
  declareIncident,
  dismissIncident,
  IncidentError,
  incidentReport,
  INCIDENT_NOT_FOUND,
  listIncidents,
  resolveIncident,
  showIncident,
} from '../incidents/service.ts';
import { parse } from '../payments/validation.ts';
import { ApiError, invalidRequest, unauthorized } from '../shared/errors.ts';
import { httpHandler, type ApiRequest, type ApiResult } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';

const MAX_TEXT = 1000;
const text = (what: string) =>
  z
    .string(`${what} must be a string`)
    .trim()
    .min(1, 'must not be empty')
    .max(MAX_TEXT, `must be at most ${MAX_TEXT} characters`);

const DeclareBody = z.strictObject({
  processor: z
    .string('processor must be a string')
    .refine((p) => knownProcessors().includes(p), `must be one of ${knownProcessors().join(', ')}`),
  reason: text('reason'),
});
const MoveBody = z.strictObject({ note: text('note').optional() }).optional();

function listQuery(q: Record<string, string>) {
  const unknown = Object.keys(q).find((k) => !['processor', 'status', 'limit'].includes(k));
  if (unknown) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${unknown}`, unknown);
  if (q.processor !== undefined && !knownProcessors().includes(q.processor))
    throw invalidRequest(
      'parameter_invalid',
      `Invalid processor: must be one of ${knownProcessors().join(', ')}`,
      'processor',
    );
  if (q.status !== undefined && !(INCIDENT_STATUSES as readonly string[]).includes(q.status))
    throw invalidRequest(
      'parameter_invalid',
      `Invalid status: must be one of ${INCIDENT_STATUSES.join(', ')}`,
      'status',
    );
  let limit = 100;
  if (q.limit !== undefined) {
    if (!/^\d{1,4}$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > 1000)
      throw invalidRequest('parameter_invalid', 'Invalid limit: must be an integer from 1 to 1000', 'limit');
    limit = Number(q.limit);
  }
  return { processor: q.processor, status: q.status as IncidentStatus | undefined, limit };
}

const MOVES = { confirm: confirmIncident, dismiss: dismissIncident, resolve: resolveIncident } as const;
const DONE = { confirm: 'confirmed', dismiss: 'dismissed', resolve: 'resolved' } as const;

async function route(req: ApiRequest, by: string): Promise<ApiResult> {
  // A malformed id is a 404 before any store call, as on every route with an {id}.
  const id = req.pathParams.id === undefined ? undefined : pathId(req, 'incident');
  const action = req.pathParams.action;
  if (req.method === 'GET' && id === undefined) {
    const q = listQuery(req.query);
    const data = await listIncidents({ ...q, limit: q.limit + 1 });
    return {
      status: 200,
      body: {
        object: 'list',
        url: '/ops/v1/incidents',
        data: data.slice(0, q.limit),
        has_more: data.length > q.limit,
      },
    };
  }
  if (req.method === 'POST' && id === undefined) {
    if (req.body === undefined)
      throw invalidRequest('parameter_missing', 'Missing required param: processor.', 'processor');
    const body = parse(DeclareBody, req.body);
    const r = await declareIncident(body.processor, body.reason, by);
    return { status: r.created ? 201 : 200, body: r.incident };
  }
  if (id === undefined) throw noRoute();
  if (req.method === 'GET' && action === undefined) return { status: 200, body: await showIncident(id) };
  if (req.method === 'GET' && action === 'report') {
    const unknown = Object.keys(req.query).find((k) => k !== 'rebuild');
    if (unknown) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${unknown}`, unknown);
    if (req.query.rebuild !== undefined && !['true', 'false'].includes(req.query.rebuild))
      throw invalidRequest('parameter_invalid', 'Invalid rebuild: must be true or false', 'rebuild');
    return { status: 200, body: await incidentReport(id, { rebuild: req.query.rebuild === 'true' }) };
  }
  if (req.method === 'POST' && isMove(action)) {
    const body = parse(MoveBody, req.body);
    return { status: 200, body: await MOVES[action](id, by, body?.note ?? DONE[action]) };
  }
  throw noRoute();
}

const isMove = (a: string | undefined): a is keyof typeof MOVES => a !== undefined && Object.hasOwn(MOVES, a);
const noRoute = () => new ApiError(404, 'not_found', 'route_not_found', 'No such route.');

export const handler = httpHandler(async (req) => {
  // The authorizer lets only ops keys reach /ops routes; a request without one never gets here
  // through API Gateway, and is refused if it does.
  if (!req.opsKeyName) throw unauthorized('This route needs an ops key (Authorization: Bearer ops_…).');
  try {
    return await route(req, req.opsKeyName);
  } catch (err) {
    if (err instanceof IncidentError)
      throw err.code === INCIDENT_NOT_FOUND
        ? new ApiError(404, 'not_found', 'resource_missing', err.message, 'id')
        : new ApiError(409, 'conflict', err.code ?? 'incident_conflict', err.message);
    throw err;
  }
});
