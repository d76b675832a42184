/**
 * Payments search (`/payments`, payments.read): one box that recognizes what it was given (a
 * payment id, an email, a processor reference, else an order id; docs/console.md "Payments"),
 * and a status and date range; newest first, a page at a time. Exact values are found through
 * lookups (lambdas/store/payment-search.ts), a status or date range by the merchants' listing
 * index, merged across merchants: every read is bounded, whatever the number of payments. An
 * operator limited to a merchant sees that merchant's payments only.
 */
import { PAYMENT_STATUSES, type Payment, type PaymentStatus } from '../../domain/payment.ts';
import { allMerchants } from '../../store/merchants.ts';
import {
  findByKey,
  findByProcessorReference,
  listAcrossMerchants,
  type SearchPage,
} from '../../store/payment-search.ts';
import { html, type Html } from '../html.ts';
import { seesMerchant, type Operator } from '../model.ts';
import type { ConsoleRequest, ConsoleResponse, ConsoleRoute } from '../types.ts';
import { ConsoleError } from '../types.ts';
import {
  classifyQuery,
  dayStart,
  money,
  paymentLink,
  queryString,
  statusBadge,
  statusParam,
  visiblePayment,
  when,
  type QueryKind,
} from './parts.ts';

const PAGE = 25;
const DAY_MS = 86_400_000;

export interface SearchInput {
  q?: string;
  kind?: QueryKind;
  status?: PaymentStatus;
  fromMs?: number;
  toMs?: number;
  merchant?: string;
  before?: string;
}

/** The search the query string asks for (unknown values are refused, naming them). */
export function searchInput(query: Record<string, string>): SearchInput {
  const q = query.q?.trim() || undefined;
  if (q && q.length > 200)
    throw new ConsoleError(400, 'The search text is too long (200 characters at most).');
  const status = statusParam(query.status);
  if (query.status && !status) throw new ConsoleError(400, `Unknown status '${query.status}'.`);
  const fromMs = dayStart(query.from);
  if (query.from && fromMs === undefined)
    throw new ConsoleError(400, `'${query.from}' is not a date (YYYY-MM-DD).`);
  const to = dayStart(query.to);
  if (query.to && to === undefined) throw new ConsoleError(400, `'${query.to}' is not a date (YYYY-MM-DD).`);
  const merchant = query.merchant?.trim() || undefined;
  if (merchant && !/^mch_[0-9A-Za-z]{4,40}$/.test(merchant))
    throw new ConsoleError(400, `'${merchant}' is not a merchant id (mch_…).`);
  const before =
    query.before && /^\d{13}#pay_[0-9A-Za-z]{10,40}$/.test(query.before) ? query.before : undefined;
  const kind = q ? (query.kind && isKind(query.kind) ? query.kind : classifyQuery(q)) : undefined;
  // `to` is inclusive: payments created that day are shown.
  return { q, kind, status, fromMs, toMs: to === undefined ? undefined : to + DAY_MS, merchant, before };
}

const KINDS: QueryKind[] = ['payment', 'email', 'reference', 'order'];
const isKind = (v: string): v is QueryKind => (KINDS as string[]).includes(v);

/** The payments a search finds for this operator (one page). */
export async function searchPayments(
  op: Operator,
  s: SearchInput,
): Promise<SearchPage & { kind?: QueryKind }> {
  const merchantId = op.merchant_id ?? s.merchant;
  const keep = (p: Payment) =>
    seesMerchant(op, p.merchant_id) &&
    (!merchantId || p.merchant_id === merchantId) &&
    (!s.status || p.status === s.status) &&
    (s.fromMs === undefined || p.created * 1000 >= s.fromMs) &&
    (s.toMs === undefined || p.created * 1000 < s.toMs);
  if (s.q && s.kind) {
    if (s.kind === 'payment') {
      const p = await visiblePayment(op, s.q).catch(() => undefined);
      return { kind: s.kind, data: p && keep(p) ? [p] : [] };
    }
    if (s.kind === 'reference') {
      const found = await findByProcessorReference(s.q, merchantId);
      return { kind: s.kind, data: found.filter(keep) };
    }
    const page = await findByKey(s.kind, s.q, { merchantId, limit: PAGE, before: s.before });
    if (s.kind === 'order' && page.data.length === 0 && !s.before) {
      // Not an order id: maybe a processor reference in a form the box does not recognize.
      const byRef = (await findByProcessorReference(s.q, merchantId)).filter(keep);
      if (byRef.length) return { kind: 'reference', data: byRef };
    }
    return { kind: s.kind, data: page.data.filter(keep), next: page.next };
  }
  const merchantIds: string[] = [];
  if (merchantId) merchantIds.push(merchantId);
  else for await (const m of allMerchants()) merchantIds.push(m.id);
  const page = await listAcrossMerchants({
    merchantIds,
    status: s.status,
    fromMs: s.fromMs,
    toMs: s.toMs,
    limit: PAGE,
    before: s.before,
  });
  return { data: page.data, next: page.next };
}

const KIND_LABEL: Record<QueryKind, string> = {
  payment: 'payment id',
  email: 'customer email',
  reference: 'processor reference',
  order: 'order id',
};

function dayText(ms: number | undefined, minusDay = false): string {
  if (ms === undefined) return '';
  return new Date(minusDay ? ms - DAY_MS : ms).toISOString().slice(0, 10);
}

export function searchForm(req: ConsoleRequest, s: SearchInput): Html {
  const limited = req.operator.merchant_id !== undefined;
  return html`<form method="get" action="/console/payments" class="search" role="search">
    <div>
      <label for="q">Payment id, order id, customer email or processor reference</label>
      <input id="q" name="q" type="search" value="${s.q ?? ''}" maxlength="200" autocomplete="off" />
    </div>
    <div>
      <label for="status">Status</label>
      <select id="status" name="status">
        <option value="">Any</option>
        ${PAYMENT_STATUSES.map(
          (st) =>
            html`<option value="${st}" ${s.status === st ? html`selected` : ''}>
              ${st.replace(/_/g, ' ')}
            </option>`,
        )}
      </select>
    </div>
    <div>
      <label for="from">Created from</label>
      <input id="from" name="from" type="date" value="${dayText(s.fromMs)}" />
    </div>
    <div>
      <label for="to">Created to</label>
      <input id="to" name="to" type="date" value="${dayText(s.toMs, true)}" />
    </div>
    ${
      limited
        ? ''
        : html`<div>
            <label for="merchant">Merchant id</label>
            <input id="merchant" name="merchant" value="${s.merchant ?? ''}" placeholder="all merchants" />
          </div>`
    }
    <div><button type="submit">Search</button></div>
  </form>`;
}

export function resultsTable(rows: Payment[], caption: string): Html {
  if (!rows.length) return html`<p class="empty">No payments found.</p>`;
  return html`<table class="payments">
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        <th scope="col">Created</th>
        <th scope="col">Payment</th>
        <th scope="col">Merchant</th>
        <th scope="col">Amount</th>
        <th scope="col">Status</th>
        <th scope="col">Order</th>
        <th scope="col">Customer</th>
        <th scope="col">Processor</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (p) =>
          html`<tr>
            <td>${when(p.created)}</td>
            <th scope="row">${paymentLink(p.id)}</th>
            <td>${p.merchant_id}</td>
            <td class="num">${money(p.amount, p.currency)}</td>
            <td>${statusBadge(p.status)}</td>
            <td>${p.order_id ?? '—'}</td>
            <td>${p.customer?.email ?? '—'}</td>
            <td>${p.processor ?? '—'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

async function searchPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  const s = searchInput(req.query);
  const found = await searchPayments(req.operator, s);
  const caption = s.q
    ? `Payments by ${KIND_LABEL[found.kind ?? s.kind!]} “${s.q}”, newest first`
    : 'Payments, newest first';
  const nextLink = found.next
    ? html`<p>
        <a
          rel="next"
          href="/console/payments${queryString({
            q: s.q,
            kind: s.q ? found.kind : undefined,
            status: s.status,
            from: dayText(s.fromMs),
            to: dayText(s.toMs, true),
            merchant: s.merchant,
            before: found.next,
          })}"
          >Older payments</a
        >
      </p>`
    : '';
  const results = html`<section aria-labelledby="results-heading">
    <h2 id="results-heading">Results</h2>
    ${resultsTable(found.data, caption)} ${nextLink}
  </section>`;
  if (req.htmx) return { kind: 'fragment', body: results };
  return {
    kind: 'page',
    title: 'Payments',
    nav: 'payments',
    body: html`<h1>Payments</h1>
      ${searchForm(req, s)} ${results}`,
  };
}

export const paymentsSearchRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/payments', permission: 'payments.read', handler: searchPage },
];
