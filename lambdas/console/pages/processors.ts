/**
 * Processors and routing (docs/console.md "Screens"): each processor's health (status, circuit
 * breaker, the last five minutes' attempts, error and timeout rates, approval rate, p95 latency:
 * lambdas/processors/health.ts, as GET /v1/processors), incidents open and past with their
 * timelines, declare / confirm / dismiss / resolve through the incident service the ops API and the
 * CLI use (lambdas/incidents/service.ts; audited as `incident.<action>`), the incident report
 * (summary, CSV and JSON download from the reports bucket), and a merchant's routing configuration
 * with a simulate form (lambdas/routing/service.ts: payment facts → the decision in words).
 *
 * Incidents are platform-wide and their reports list every merchant's payments: an operator
 * limited to one merchant sees processor health and its merchant's routing, not incidents.
 */
import { knownProcessors } from '../../connectors/capabilities.ts';
import type { Incident } from '../../domain/incidents.ts';
import type { RoutingRuleConfig } from '../../domain/routing.ts';
import { readIncidentReport } from '../../incidents/report-writer.ts';
import {
  confirmIncident,
  declareIncident,
  dismissIncident,
  IncidentError,
  incidentReport,
  INCIDENT_NOT_FOUND,
  listIncidents,
  resolveIncident,
  runningIncident,
  showIncident,
} from '../../incidents/service.ts';
import { processorStatuses } from '../../processors/health.ts';
import { reportFile } from '../downloads.ts';
import { count } from './parts.ts';
import { getRouting, SimulateBody, simulateRoute } from '../../routing/service.ts';
import { html, type Html } from '../html.ts';
import { can } from '../model.ts';
import { at, chosenMerchant, field, merchantPicker, percent, service } from '../ops-view.ts';
import { csrfField } from '../layout.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';

/** Past incidents listed (newest first). */
const PAST_INCIDENTS = 50;

const platformWide = (req: ConsoleRequest) => req.operator.merchant_id === undefined;

function mustBePlatformWide(req: ConsoleRequest): void {
  if (!platformWide(req))
    throw new ConsoleError(
      403,
      'Incidents are platform-wide: an operator limited to one merchant cannot see or act on them.',
    );
}

/** Runs an incident service call: its refusals become console refusals (404 / 409 with the reason). */
async function incidents<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof IncidentError)
      throw new ConsoleError(err.code === INCIDENT_NOT_FOUND ? 404 : err.code ? 409 : 400, err.message, {
        cause: err,
      });
    throw err;
  }
}

function incidentRows(list: Incident[]): Html {
  return html`${list.map(
    (i) =>
      html`<tr>
        <th scope="row"><a href="/console/processors/incidents/${i.id}">${i.id}</a></th>
        <td>${i.processor}</td>
        <td>${i.status}</td>
        <td>${i.reason}</td>
        <td>${at(i.opened_at)}</td>
        <td>${at(i.closed_at)}</td>
      </tr>`,
  )}`;
}

function incidentTable(caption: string, list: Incident[]): Html {
  if (!list.length) return html`<p>None.</p>`;
  return html`<table>
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        <th scope="col">Incident</th>
        <th scope="col">Processor</th>
        <th scope="col">Status</th>
        <th scope="col">Reason</th>
        <th scope="col">Opened</th>
        <th scope="col">Closed</th>
      </tr>
    </thead>
    <tbody>
      ${incidentRows(list)}
    </tbody>
  </table>`;
}

async function overview(req: ConsoleRequest): Promise<ConsoleResponse> {
  const statuses = await processorStatuses(req.now);
  const showIncidents = platformWide(req);
  const all = showIncidents ? await listIncidents({ limit: PAST_INCIDENTS + 20 }) : [];
  const running = all.filter((i) => i.status === 'suspected' || i.status === 'open');
  const past = all.filter((i) => i.status !== 'suspected' && i.status !== 'open').slice(0, PAST_INCIDENTS);
  const mayAct = showIncidents && can(req.operator.role, 'incidents.act');
  const body = html`<h1>Processors and routing</h1>
    <h2>Health</h2>
    <table>
      <caption>
        Each processor over the last
        ${statuses[0]?.health.window_seconds ? statuses[0].health.window_seconds / 60 : 5} minutes
      </caption>
      <thead>
        <tr>
          <th scope="col">Processor</th>
          <th scope="col">Enabled</th>
          <th scope="col">Status</th>
          <th scope="col">Circuit breaker</th>
          <th scope="col">Attempts</th>
          <th scope="col">Error rate</th>
          <th scope="col">Timeout rate</th>
          <th scope="col">Approval rate</th>
          <th scope="col">p95 latency</th>
          <th scope="col">Incident</th>
        </tr>
      </thead>
      <tbody>
        ${statuses.map(
          (s) =>
            html`<tr class="status-${s.status}">
              <th scope="row">${s.name}</th>
              <td>${s.enabled ? 'yes' : 'no'}</td>
              <td>${s.status}</td>
              <td>
                ${s.breaker.state}${s.breaker.since ? html` since ${at(s.breaker.since)}` : ''}${s.breaker.reason ? ` (${s.breaker.reason})` : ''}
              </td>
              <td>${count(s.health.attempts)}</td>
              <td>${percent(s.health.technical_error_rate)}</td>
              <td>${percent(s.health.timeout_rate)}</td>
              <td>${percent(s.health.approval_rate)}</td>
              <td>${s.health.p95_latency_ms === null ? '—' : `≤ ${s.health.p95_latency_ms} ms`}</td>
              <td>
                ${s.incident && showIncidents ? html`<a href="/console/processors/incidents/${s.incident.id}">${s.incident.status}</a>` : s.incident ? s.incident.status : 'none'}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${
      showIncidents
        ? html`<h2>Open incidents</h2>
            ${incidentTable('Suspected and open incidents', running)}
            ${
              mayAct
                ? html`<h3>Declare an incident</h3>
                    <form method="post" action="/console/processors/incidents">
                      ${csrfField(req)}
                      <label for="declare-processor">Processor</label>
                      <select id="declare-processor" name="processor" required>
                        ${knownProcessors().map((p) => html`<option value="${p}">${p}</option>`)}
                      </select>
                      <label for="declare-reason">Reason</label>
                      <input id="declare-reason" name="reason" required maxlength="1000" />
                      <button type="submit">Declare</button>
                    </form>`
                : ''
            }
            <h2>Past incidents</h2>
            ${incidentTable('Resolved and dismissed incidents, newest first', past)}`
        : ''
    }
    ${
      can(req.operator.role, 'routing.read')
        ? html`<h2>Routing</h2>
            <p>
              <a href="/console/processors/routing">A merchant's routing configuration and the simulator</a>
            </p>`
        : ''
    }`;
  return { kind: 'page', title: 'Processors', nav: 'processors', body };
}

async function incidentPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  mustBePlatformWide(req);
  const i = await incidents(() => showIncident(req.params.id!));
  const report = i.status === 'resolved' ? await readIncidentReport(i) : undefined;
  const mayAct = can(req.operator.role, 'incidents.act');
  const actions: { action: 'confirm' | 'dismiss' | 'resolve'; from: string[]; label: string }[] = [
    { action: 'confirm', from: ['suspected'], label: 'Confirm (routing stops using the processor)' },
    { action: 'dismiss', from: ['suspected'], label: 'Dismiss (a false alarm)' },
    { action: 'resolve', from: ['open'], label: 'Resolve (the processor is back; writes the report)' },
  ];
  const possible = mayAct ? actions.filter((a) => a.from.includes(i.status)) : [];
  const body = html`<h1>Incident ${i.id}</h1>
    <dl>
      <dt>Processor</dt>
      <dd>${i.processor}</dd>
      <dt>Status</dt>
      <dd>${i.status}</dd>
      <dt>Reason</dt>
      <dd>${i.reason}</dd>
      <dt>Opened</dt>
      <dd>${at(i.opened_at)}</dd>
      <dt>Confirmed</dt>
      <dd>${at(i.confirmed_at)}</dd>
      <dt>Closed</dt>
      <dd>${at(i.closed_at)}</dd>
    </dl>
    <h2>Timeline</h2>
    <table>
      <caption>
        What happened to this incident, and who did it
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Event</th>
          <th scope="col">By</th>
          <th scope="col">Note</th>
        </tr>
      </thead>
      <tbody>
        ${i.timeline.map(
          (e) =>
            html`<tr>
              <td>${at(e.at)}</td>
              <td>${e.event}</td>
              <td>${e.by}</td>
              <td>${e.text}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${possible.map(
      (a) =>
        html`<h2>${a.action[0]!.toUpperCase() + a.action.slice(1)}</h2>
          <form method="post" action="/console/processors/incidents/${i.id}/${a.action}">
            ${csrfField(req)}
            <label for="note-${a.action}">Note</label>
            <input id="note-${a.action}" name="note" maxlength="1000" />
            <button type="submit">${a.label}</button>
          </form>`,
    )}
    ${
      i.status === 'resolved'
        ? html`<h2>Report</h2>
            ${
              report
                ? html`<table>
                    <caption>
                      Payments created during the incident
                    </caption>
                    <thead>
                      <tr>
                        <th scope="col">Read</th>
                        <th scope="col">Rerouted</th>
                        <th scope="col">Failed</th>
                        <th scope="col">Held in the backlog</th>
                      </tr>
                    </thead>
                    <tbody>
                      <tr>
                        <td>${report.payments.read}${report.payments.truncated ? ' (truncated)' : ''}</td>
                        <td>${report.payments.rerouted}</td>
                        <td>${report.payments.failed}</td>
                        <td>${report.payments.held}</td>
                      </tr>
                    </tbody>
                  </table>`
                : html`<p>No report was written yet; downloading it writes it.</p>`
            }
            <p>
              <a href="/console/processors/incidents/${i.id}/report?format=csv" download
                >Download the report (CSV)</a
              >
              ·
              <a href="/console/processors/incidents/${i.id}/report?format=json" download
                >Download the report (JSON)</a
              >
            </p>`
        : ''
    }`;
  return { kind: 'page', title: `Incident ${i.id}`, nav: 'processors', body };
}

async function reportDownload(req: ConsoleRequest): Promise<ConsoleResponse> {
  mustBePlatformWide(req);
  const format = req.query.format ?? 'csv';
  if (format !== 'csv' && format !== 'json')
    throw new ConsoleError(400, `Unknown format: ${format} (csv or json)`);
  const report = await incidents(() => incidentReport(req.params.id!));
  const id = report.incident.id;
  if (format === 'json')
    return {
      kind: 'download',
      filename: `${id}.json`,
      contentType: 'application/json',
      body: JSON.stringify(report, null, 2),
    };
  return reportFile(report.csv, `${id}.csv`, 'text/csv; charset=utf-8');
}

/** What each audit entry records of an incident. */
const snapshot = (i: Incident) => ({ status: i.status, processor: i.processor, reason: i.reason });

async function declare(req: ConsoleRequest): Promise<ConsoleResponse> {
  mustBePlatformWide(req);
  const processor = field(req, 'processor', { required: true, max: 40 });
  const reason = field(req, 'reason', { required: true });
  const running = await runningIncident(processor);
  const r = await incidents(() =>
    declareIncident(processor, reason, `console:${req.operator.name}`, req.now),
  );
  await req.audit({
    action: 'incident.declare',
    target: { kind: 'incident', id: r.incident.id },
    before: running ? snapshot(running) : null,
    after: snapshot(r.incident),
    note: reason,
  });
  return {
    kind: 'redirect',
    to: `/processors/incidents/${r.incident.id}`,
    flash: r.created
      ? `Incident declared on ${processor}.`
      : `${processor} already had incident ${r.incident.id}; it is ${r.incident.status}.`,
  };
}

const MOVES = { confirm: confirmIncident, dismiss: dismissIncident, resolve: resolveIncident } as const;
const DONE = { confirm: 'confirmed', dismiss: 'dismissed', resolve: 'resolved' } as const;

function move(action: keyof typeof MOVES) {
  return async (req: ConsoleRequest): Promise<ConsoleResponse> => {
    mustBePlatformWide(req);
    const before = await incidents(() => showIncident(req.params.id!));
    const note = field(req, 'note') || `${DONE[action]} in the console`;
    const after = await incidents(() =>
      MOVES[action](before.id, `console:${req.operator.name}`, note, req.now),
    );
    await req.audit({
      action: `incident.${action}`,
      target: { kind: 'incident', id: after.id },
      before: snapshot(before),
      after: snapshot(after),
      note,
    });
    return {
      kind: 'redirect',
      to: `/processors/incidents/${after.id}`,
      flash: `Incident ${after.id} is ${after.status}.`,
    };
  };
}

function ruleProcessors(r: RoutingRuleConfig): string {
  const main = r.processors
    ? r.processors.join(' → ')
    : Object.entries(r.split ?? {})
        .map(([p, w]) => `${p} ${w}%`)
        .join(', ');
  return r.fallback?.length ? `${main}; then ${r.fallback.join(' → ')}` : main;
}

const conditions = (r: RoutingRuleConfig): string =>
  Object.entries(r.when)
    .map(([k, v]) =>
      Array.isArray(v)
        ? `${k.replace(/_/g, ' ')} in ${v.join(', ')}`
        : typeof v === 'object'
          ? `metadata ${JSON.stringify(v)}`
          : `${k.replace(/_/g, ' ')} ${String(v)}`,
    )
    .join(' and ') || 'every payment';

const SIM_FIELDS = [
  'amount',
  'currency',
  'capture_method',
  'customer_country',
  'card_brand',
  'bin',
  'issuer_country',
  'channel',
] as const;

async function routing(req: ConsoleRequest): Promise<ConsoleResponse> {
  const merchant = await chosenMerchant(req);
  const picker = await merchantPicker(req, '/processors/routing', merchant);
  if (!merchant)
    return {
      kind: 'page',
      title: 'Routing',
      nav: 'processors',
      body: html`<h1>Routing</h1>
        ${picker}
        <p>Choose a merchant to see its routing configuration.</p>`,
    };
  const r = await service(() => getRouting(merchant));
  const q = req.query;
  let decision: Html = html``;
  if (q.amount !== undefined) {
    const input: Record<string, unknown> = {
      amount: /^\d{1,12}$/.test(q.amount) ? Number(q.amount) : q.amount,
      currency: q.currency ?? '',
    };
    if (q.capture_method) input.capture_method = q.capture_method;
    if (q.customer_country) input.customer = { country: q.customer_country };
    for (const k of ['card_brand', 'bin', 'issuer_country', 'channel'] as const) if (q[k]) input[k] = q[k];
    const parsed = SimulateBody.safeParse(input);
    if (!parsed.success)
      throw new ConsoleError(
        400,
        `Cannot simulate: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`,
      );
    const sim = await service(() => simulateRoute(merchant, parsed.data));
    decision = html`<section aria-labelledby="decision">
      <h3 id="decision">Decision</h3>
      <p>${sim.explanation}</p>
      <dl>
        <dt>Processors, in order</dt>
        <dd>${sim.processors.length ? sim.processors.join(' → ') : 'none can take it'}</dd>
        <dt>Rule</dt>
        <dd>${sim.rule}</dd>
        ${
          sim.skipped.length
            ? html`<dt>Left out</dt>
                <dd>
                  <ul>
                    ${sim.skipped.map((s) => html`<li>${s.processor}: ${s.reason}</li>`)}
                  </ul>
                </dd>`
            : ''
        }
      </dl>
    </section>`;
  }
  const cfg = r.config;
  const body = html`<h1>Routing of ${merchant}</h1>
    ${picker}
    <p>
      Version
      ${r.version}${r.created ? html`, written ${at(r.created * 1000)} through ${r.source ?? 'unknown'}` : ' (none stored: the merchant’s processor order and the platform’s apply)'}.
    </p>
    ${
      cfg
        ? html`<table>
            <caption>
              Rules, tried in order
            </caption>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">When</th>
                <th scope="col">Processors</th>
              </tr>
            </thead>
            <tbody>
              ${cfg.rules.map(
                (x) =>
                  html`<tr>
                    <th scope="row">${x.name}</th>
                    <td>${conditions(x)}</td>
                    <td>${ruleProcessors(x)}</td>
                  </tr>`,
              )}
              <tr>
                <th scope="row">default</th>
                <td>no rule matched</td>
                <td>${cfg.default?.join(' → ') ?? 'the merchant’s processor order'}</td>
              </tr>
            </tbody>
          </table>`
        : ''
    }
    <p>
      Soft declines that cascade to the next processor: ${r.cascade.codes.join(', ')} (at most
      ${r.cascade.max_attempts} attempts).
    </p>
    <h2>Simulate</h2>
    <form method="get" action="/console/processors/routing">
      ${req.operator.merchant_id ? '' : html`<input type="hidden" name="merchant" value="${merchant}" />`}
      ${SIM_FIELDS.map(
        (f) =>
          html`<div class="field">
            <label for="sim-${f}">${f.replace(/_/g, ' ')}${f === 'amount' ? ' (minor units)' : ''}</label>
            <input
              id="sim-${f}"
              name="${f}"
              value="${q[f] ?? ''}"
              ${f === 'amount' || f === 'currency' ? html`required` : ''}
            />
          </div>`,
      )}
      <button type="submit">Simulate</button>
    </form>
    ${decision}`;
  return { kind: 'page', title: 'Routing', nav: 'processors', body };
}

export const processorRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/processors', permission: 'processors.read', handler: overview },
  { method: 'GET', path: '/processors/routing', permission: 'routing.read', handler: routing },
  { method: 'POST', path: '/processors/incidents', permission: 'incidents.act', handler: declare },
  { method: 'GET', path: '/processors/incidents/{id}', permission: 'processors.read', handler: incidentPage },
  {
    method: 'GET',
    path: '/processors/incidents/{id}/report',
    permission: 'processors.read',
    handler: reportDownload,
  },
  {
    method: 'POST',
    path: '/processors/incidents/{id}/confirm',
    permission: 'incidents.act',
    handler: move('confirm'),
  },
  {
    method: 'POST',
    path: '/processors/incidents/{id}/dismiss',
    permission: 'incidents.act',
    handler: move('dismiss'),
  },
  {
    method: 'POST',
    path: '/processors/incidents/{id}/resolve',
    permission: 'incidents.act',
    handler: move('resolve'),
  },
];
