/**
 * Analytics (docs/console.md "Screens"): approval rate and payments per day, by processor, payment
 * method, card brand, issuer country, customer country or channel, for one merchant or (an operator
 * who sees every merchant) all of them — the definitions of GET /v1/analytics/payments
 * (lambdas/analytics/series.ts), bounded like it. Each chart is drawn by uPlot from the page's
 * JSON block (`<script type="application/json">`, read by /console/assets/analytics.js: the CSP
 * allows only the console's own scripts), and the same numbers are in a table beside it.
 */
import {
  ANALYTICS_DIMENSIONS,
  type AnalyticsDimension,
  type AnalyticsGroup,
} from '../../domain/analytics.ts';
import { parseAnalyticsQuery } from '../../analytics/service.ts';
import { paymentSeries, type AnalyticsSeries } from '../../analytics/series.ts';
import { dayStartMs } from '../../shared/days.ts';
import { assetPath } from '../assets.ts';
import { count } from './parts.ts';
import { html, raw, type Html } from '../html.ts';
import { chosenMerchant, money, percent, service } from '../ops-view.ts';
import { allMerchants } from '../../store/merchants.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';

/** Series drawn and tabled (`all` and the values with the most payments); the totals list all. */
export const MAX_SERIES = 8;
/** Days shown by default (up to today). */
export const DEFAULT_DAYS = 14;

const LABELS: Record<AnalyticsDimension, string> = {
  processor: 'processor',
  payment_method: 'payment method',
  card_brand: 'card brand',
  issuer_country: 'issuer country',
  customer_country: 'customer country',
  channel: 'channel',
};

const rate = (g: AnalyticsGroup | null) => (g ? g.approval_rate : null);
const seriesLabel = (s: AnalyticsSeries['series'][number]) =>
  s.dimension === 'all' ? 'All payments' : s.value;

/** The chart data, as JSON safe inside a `<script>` element (no `<` can close it). */
export function chartJson(s: AnalyticsSeries, shown: AnalyticsSeries['series']): Html {
  const data = {
    x: s.days.map((d) => dayStartMs(d)! / 1000),
    series: shown.map((x) => ({
      label: seriesLabel(x),
      approval: x.days.map((g) => (rate(g) === null ? null : Math.round(rate(g)! * 1000) / 10)),
      payments: x.days.map((g) => g?.payments ?? 0),
    })),
  };
  return raw(
    JSON.stringify(data)
      .replace(/</g, '\\u003c')
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029'),
  );
}

function dayTable(
  caption: string,
  s: AnalyticsSeries,
  shown: AnalyticsSeries['series'],
  cell: (g: AnalyticsGroup | null) => string,
): Html {
  return html`<table>
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        <th scope="col">Day</th>
        ${shown.map((x) => html`<th scope="col">${seriesLabel(x)}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${s.days.map(
        (d, i) =>
          html`<tr>
            <th scope="row">${d}</th>
            ${shown.map((x) => html`<td>${cell(x.days[i] ?? null)}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

async function page(req: ConsoleRequest): Promise<ConsoleResponse> {
  const limited = req.operator.merchant_id;
  const merchant = await chosenMerchant(req);
  const dimension = (req.query.dimension || 'processor') as AnalyticsDimension;
  if (!(ANALYTICS_DIMENSIONS as readonly string[]).includes(dimension))
    throw new ConsoleError(400, `Unknown dimension: ${dimension} (${ANALYTICS_DIMENSIONS.join(', ')})`);
  const to = req.query.to || new Date(req.now).toISOString().slice(0, 10);
  const from =
    req.query.from ||
    (dayStartMs(to) === undefined
      ? to
      : new Date(dayStartMs(to)! - (DEFAULT_DAYS - 1) * 86_400_000).toISOString().slice(0, 10));
  const q = await service(async () => parseAnalyticsQuery({ from, to, group_by: dimension }, req.now));
  const s = await service(() => paymentSeries(merchant, { from: q.from, to: q.to, dimension }));
  const shown = s.series.slice(0, MAX_SERIES);
  const merchants: { id: string; name: string }[] = [];
  if (!limited)
    for await (const m of allMerchants()) if (merchants.push({ id: m.id, name: m.name }) >= 200) break;
  const whose = merchant ? merchant : 'all merchants';
  const body = html`<h1>Analytics</h1>
    <form method="get" action="/console/analytics">
      ${
        limited
          ? ''
          : html`<label for="an-merchant">Merchant</label>
              <select id="an-merchant" name="merchant">
                <option value="">All merchants</option>
                ${merchants.map((m) => html`<option value="${m.id}" ${m.id === merchant ? html`selected` : ''}>${m.name} (${m.id})</option>`)}
              </select>`
      }
      <label for="an-dimension">By</label>
      <select id="an-dimension" name="dimension">
        ${ANALYTICS_DIMENSIONS.map((d) => html`<option value="${d}" ${d === dimension ? html`selected` : ''}>${LABELS[d]}</option>`)}
      </select>
      <label for="an-from">From</label>
      <input id="an-from" name="from" type="date" value="${q.from}" />
      <label for="an-to">To</label>
      <input id="an-to" name="to" type="date" value="${q.to}" />
      <button type="submit">Show</button>
    </form>
    <p>
      ${count(s.payments)} payments of ${whose} created ${q.from} to ${q.to} (UTC days), by
      ${LABELS[dimension]}. The approval rate is approved ÷ (approved + declined); payments still undecided
      count in neither.
    </p>
    <script type="application/json" id="analytics-data">
      ${chartJson(s, shown)}
    </script>
    <section aria-labelledby="approval-title">
      <h2 id="approval-title">Approval rate per day</h2>
      <div
        class="chart"
        data-chart="approval"
        role="img"
        aria-label="Chart of the approval rate per day by ${LABELS[dimension]}; the table below has the same numbers"
      ></div>
      ${dayTable(`Approval rate per day by ${LABELS[dimension]}`, s, shown, (g) => percent(rate(g)))}
    </section>
    <section aria-labelledby="volume-title">
      <h2 id="volume-title">Payments per day</h2>
      <div
        class="chart"
        data-chart="payments"
        role="img"
        aria-label="Chart of payments per day by ${LABELS[dimension]}; the table below has the same numbers"
      ></div>
      ${dayTable(`Payments per day by ${LABELS[dimension]}`, s, shown, (g) => String(g?.payments ?? 0))}
    </section>
    <section aria-labelledby="totals-title">
      <h2 id="totals-title">Totals</h2>
      <table>
        <caption>
          ${q.from} to ${q.to} by ${LABELS[dimension]}
        </caption>
        <thead>
          <tr>
            <th scope="col">${LABELS[dimension]}</th>
            <th scope="col">Payments</th>
            <th scope="col">Attempts</th>
            <th scope="col">Approved</th>
            <th scope="col">Declined</th>
            <th scope="col">Approval rate</th>
            <th scope="col">Recovered by a cascade</th>
            <th scope="col">Approved volume</th>
            <th scope="col">Top decline reasons</th>
          </tr>
        </thead>
        <tbody>
          ${s.series.map(
            (x) =>
              html`<tr>
                <th scope="row">${seriesLabel(x)}</th>
                <td>${count(x.total.payments)}</td>
                <td>${count(x.total.attempts)}</td>
                <td>${count(x.total.approved)}</td>
                <td>${count(x.total.declined)}</td>
                <td>${percent(x.total.approval_rate)}</td>
                <td>${count(x.total.cascades_recovered)}</td>
                <td>
                  ${
                    Object.entries(x.total.volume)
                      .map(([c, a]) => money(a, c))
                      .join(', ') || '—'
                  }
                </td>
                <td>
                  ${
                    Object.entries(x.total.decline_reasons)
                      .sort((a, b) => b[1] - a[1])
                      .slice(0, 3)
                      .map(([c, n]) => `${c} (${n})`)
                      .join(', ') || '—'
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>
    <script src="/console${assetPath('analytics.js')}" defer></script>`;
  return { kind: 'page', title: 'Analytics', nav: 'analytics', body };
}

export const analyticsRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/analytics', permission: 'analytics.read', handler: page },
];
