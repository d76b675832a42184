/**
 * Home (`/console/`, home.read): the platform at a glance and what needs a person (docs/console.md
 * "Screens"). Data from lambdas/console/home-data.ts (bounded reads).
 */
import { formatAmount } from '../../domain/money.ts';
import { html, type Html } from '../html.ts';
import { consoleHref, lineChart } from '../layout.ts';
import { homeData, type Count, type HomeData } from '../home-data.ts';
import type { ConsoleRoute } from '../types.ts';
import { count } from './parts.ts';

const shown = (c: Count) => `${count(c.count)}${c.capped ? '+' : ''}`;
const percent = (rate: number | null) => (rate === null ? '–' : `${(rate * 100).toFixed(1)} %`);
const isoMinute = (s: number) => new Date(s * 1000).toISOString().slice(11, 16);
const isoDate = (s: number) => new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ');

function attention(label: string, c: Count, href: string, hint: string): Html {
  return html`<li class="card ${c.count ? 'attention' : 'clear'}">
    <div class="figure">${shown(c)}</div>
    <div class="label"><a href="${href}">${label}</a></div>
    <div class="muted">${hint}</div>
  </li>`;
}

function needsAPerson(d: HomeData): Html {
  return html`<section aria-labelledby="attention-title">
    <h2 id="attention-title">Needs a person</h2>
    <ul class="cards">
      ${attention('Stuck or unknown-outcome payments', d.stuckPayments, consoleHref('/payments', { status: 'processing' }), 'open, and quiet for longer than the sweeper waits')}
      ${attention('Parked webhooks', d.parkedWebhooks, consoleHref('/processors'), 'processor events waiting to be replayed')}
      ${attention('Reviews waiting', d.reviewsWaiting, consoleHref('/reviews'), d.reviewsWaiting.capped ? 'held for a decision, among each merchant’s newest 1,000 payments' : 'payments held for a decision')}
      ${attention('Disputes due within 7 days', { count: d.disputesDue.length, capped: false }, consoleHref('/disputes'), 'evidence deadlines, soonest first below')}
      ${attention('Open reconciliation exceptions', d.openExceptions, consoleHref('/finance'), 'settlement lines that do not match')}
      ${attention('Failed executions (24 h)', d.failedExecutions, consoleHref('/executions', { status: 'FAILED' }), 'failed or timed-out workflows')}
    </ul>
  </section>`;
}

function disputes(d: HomeData): Html {
  if (!d.disputesDue.length) return html``;
  return html`<table>
    <caption>
      Disputes due soon
    </caption>
    <thead>
      <tr>
        <th scope="col">Evidence due (UTC)</th>
        <th scope="col">Dispute</th>
        <th scope="col">Payment</th>
        <th scope="col">Reason</th>
        <th scope="col" class="num">Amount</th>
      </tr>
    </thead>
    <tbody>
      ${[...d.disputesDue]
        .sort((a, b) => a.evidence_due_by! - b.evidence_due_by!)
        .slice(0, 20)
        .map(
          (x) =>
            html`<tr>
              <td>${isoDate(x.evidence_due_by!)}</td>
              <td>
                <a href="${consoleHref('/disputes', { id: x.id })}"><code>${x.id}</code></a>
              </td>
              <td>
                <a href="${consoleHref(`/payments/${x.payment_id}`)}"><code>${x.payment_id}</code></a>
              </td>
              <td>${x.reason}</td>
              <td class="num">${formatAmount(x.amount, x.currency)}</td>
            </tr>`,
        )}
    </tbody>
  </table>`;
}

function traffic(d: HomeData): Html {
  const h = d.lastHour;
  return html`<section aria-labelledby="traffic-title">
    <h2 id="traffic-title">Last hour</h2>
    <ul class="cards">
      <li class="card">
        <div class="figure">${count(h.payments)}${h.capped ? '+' : ''}</div>
        <div class="label">payments</div>
      </li>
      <li class="card">
        <div class="figure">${percent(h.approvalRate)}</div>
        <div class="label">approval rate</div>
        <div class="muted">${count(h.approved)} approved, ${count(h.declined)} declined</div>
      </li>
    </ul>
    ${lineChart({ label: `Payments per 5 minutes, last hour (UTC)${h.capped ? `, the newest ${h.payments}` : ''}`, x: d.perMinute.map((m) => m.minute), series: [{ label: 'payments', values: d.perMinute.map((m) => m.payments) }] })}
    <details>
      <summary>Payments per 5 minutes as a table</summary>
      <table>
        <caption class="visually-hidden">
          Payments per 5 minutes
        </caption>
        <thead>
          <tr>
            <th scope="col">From (UTC)</th>
            <th scope="col" class="num">Payments</th>
          </tr>
        </thead>
        <tbody>
          ${d.perMinute.map(
            (m) =>
              html`<tr>
                <td>${isoMinute(m.minute)}</td>
                <td class="num">${m.payments}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </details>
  </section>`;
}

function processors(d: HomeData): Html {
  return html`<section aria-labelledby="processors-title">
    <h2 id="processors-title">Processor health (last 5 minutes)</h2>
    <table>
      <thead>
        <tr>
          <th scope="col">Processor</th>
          <th scope="col">Status</th>
          <th scope="col" class="num">Attempts</th>
          <th scope="col" class="num">Approval rate</th>
          <th scope="col" class="num">Errors</th>
          <th scope="col" class="num">p95 latency</th>
          <th scope="col">Incident</th>
        </tr>
      </thead>
      <tbody>
        ${d.processors.map(
          (p) =>
            html`<tr>
              <td>${p.name}${p.enabled ? '' : html` <span class="muted">(not enabled)</span>`}</td>
              <td class="status-${p.status}">${p.status}</td>
              <td class="num">${count(p.health.attempts)}</td>
              <td class="num">${percent(p.health.approval_rate)}</td>
              <td class="num">${percent(p.health.technical_error_rate)}</td>
              <td class="num">${p.health.p95_latency_ms === null ? '–' : `${p.health.p95_latency_ms} ms`}</td>
              <td>
                ${p.incident ? html`<a href="${consoleHref('/processors')}">${p.incident.status}: ${p.incident.reason}</a>` : '–'}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

/** The home page's body for this data. */
export function homeBody(d: HomeData): Html {
  return html`<h1>Home</h1>
    ${needsAPerson(d)}${disputes(d)}${traffic(d)}${processors(d)}`;
}

export const homeRoutes: ConsoleRoute[] = [
  {
    method: 'GET',
    path: '/',
    permission: 'home.read',
    async handler(req) {
      const d = await homeData(req.operator, req.now);
      return {
        kind: 'page',
        title: 'Home',
        nav: 'home',
        body: homeBody(d),
      };
    },
  },
];
