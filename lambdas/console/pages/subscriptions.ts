/**
 * Subscriptions (docs/console.md "Screens", docs/billing.md): one merchant at a time (an operator
 * limited to a merchant sees its own; another picks one), its subscriptions (status filter), its
 * past-due invoices with where each is in its dunning schedule — attempt n of the policy's most,
 * the next retry and why then (the plan lambdas/domain/dunning.ts wrote on the latest attempt),
 * when retrying stops — then its invoices and customers. Read-only: the same stores as GET
 * /v1/subscriptions, /v1/invoices and /v1/customers, newest first, one page each.
 */
import { SUBSCRIPTION_STATUSES } from '../../domain/subscription.ts';
import type { Invoice } from '../../billing/model.ts';
import { dunningPolicyFor } from '../../billing/dunning-policy.ts';
import { listCustomers } from '../../store/customers.ts';
import { listInvoices } from '../../store/invoices.ts';
import { listSubscriptions } from '../../store/subscriptions.ts';
import { html, type Html } from '../html.ts';
import { at, atSeconds, chosenMerchant, merchantPicker, money, relative } from '../ops-view.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';

/** Rows per table (the newest). */
export const PAGE = 50;
const DAY_S = 86_400;

/** Where a past-due invoice is in its dunning schedule, in words. */
export function dunningPosition(
  inv: Invoice,
  policy: { max_attempts: number; window_days: number; final_action: string },
  now: number,
): { attempt: string; next: string; why: string; stops: string } {
  const last = inv.attempts.at(-1);
  const why = last?.next ?? (last?.code ? `declined (${last.code})` : 'no attempt has failed yet');
  const next = inv.payment_method_required
    ? 'when the customer updates their payment method'
    : inv.next_attempt_at
      ? `${new Date(inv.next_attempt_at * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC (${relative(inv.next_attempt_at * 1000, now)})`
      : last?.outcome === 'processing'
        ? 'an attempt is in progress'
        : 'none scheduled';
  const stops = inv.first_failed_at
    ? `${new Date((inv.first_failed_at + policy.window_days * DAY_S) * 1000).toISOString().slice(0, 10)} (${policy.window_days}-day window), then the subscription is ${policy.final_action === 'cancel' ? 'canceled' : 'kept as unpaid'}`
    : '—';
  return { attempt: `${inv.attempt_count} of ${policy.max_attempts}`, next, why, stops };
}

const paymentLink = (id: string | null | undefined): Html =>
  id ? html`<a href="/console/payments/${id}">${id}</a>` : html`—`;

async function page(req: ConsoleRequest): Promise<ConsoleResponse> {
  const merchant = await chosenMerchant(req);
  const status = req.query.status || undefined;
  if (status && !(SUBSCRIPTION_STATUSES as readonly string[]).includes(status))
    throw new ConsoleError(
      400,
      `Unknown subscription status: ${status} (${SUBSCRIPTION_STATUSES.join(', ')})`,
    );
  const picker = await merchantPicker(req, '/subscriptions', merchant, { status });
  if (!merchant)
    return {
      kind: 'page',
      title: 'Subscriptions',
      nav: 'subscriptions',
      body: html`<h1>Subscriptions</h1>
        ${picker}
        <p>Choose a merchant to see its customers, subscriptions and invoices.</p>`,
    };
  const [subs, open, invoices, customers, policy] = await Promise.all([
    listSubscriptions(merchant, { limit: PAGE, status }),
    listInvoices(merchant, { limit: PAGE, status: 'open' }),
    listInvoices(merchant, { limit: PAGE }),
    listCustomers(merchant, PAGE),
    dunningPolicyFor(merchant),
  ]);
  const pastDue = open.data.filter((i) => i.failed_attempts > 0);
  const body = html`<h1>Subscriptions of ${merchant}</h1>
    ${picker}
    <h2>Past-due invoices in dunning</h2>
    <p>
      Policy: at most ${policy.max_attempts} attempts within ${policy.window_days} days of the first failure,
      then ${policy.final_action === 'cancel' ? 'cancel' : 'keep as unpaid'}.
    </p>
    ${
      pastDue.length
        ? html`<table class="urgent">
            <caption>
              Invoices whose payment failed, and what dunning does next
            </caption>
            <thead>
              <tr>
                <th scope="col">Invoice</th>
                <th scope="col">Subscription</th>
                <th scope="col">Amount due</th>
                <th scope="col">Attempt</th>
                <th scope="col">Next retry</th>
                <th scope="col">Why then</th>
                <th scope="col">Retrying stops</th>
                <th scope="col">Latest payment</th>
              </tr>
            </thead>
            <tbody>
              ${pastDue.map((i) => {
                const d = dunningPosition(i, policy, req.now);
                return html`<tr>
                  <th scope="row">${i.id}</th>
                  <td>${i.subscription}</td>
                  <td>${money(i.amount_due, i.currency)}</td>
                  <td>${d.attempt}</td>
                  <td>${d.next}</td>
                  <td>${d.why}</td>
                  <td>${d.stops}</td>
                  <td>${paymentLink(i.payment)}</td>
                </tr>`;
              })}
            </tbody>
          </table>`
        : html`<p>No invoice is in dunning.</p>`
    }
    <h2>Subscriptions</h2>
    <form method="get" action="/console/subscriptions">
      ${req.operator.merchant_id ? '' : html`<input type="hidden" name="merchant" value="${merchant}" />`}
      <label for="sub-status">Status</label>
      <select id="sub-status" name="status">
        <option value="">Any status</option>
        ${SUBSCRIPTION_STATUSES.map((s) => html`<option value="${s}" ${s === status ? html`selected` : ''}>${s.replace(/_/g, ' ')}</option>`)}
      </select>
      <button type="submit">Filter</button>
    </form>
    ${
      subs.data.length
        ? html`<table>
              <caption>
                Subscriptions${status ? ` (${status.replace(/_/g, ' ')})` : ''}, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Subscription</th>
                  <th scope="col">Customer</th>
                  <th scope="col">Plan</th>
                  <th scope="col">Status</th>
                  <th scope="col">Current period</th>
                  <th scope="col">Latest invoice</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                ${subs.data.map(
                  (s) =>
                    html`<tr>
                      <th scope="row">${s.id}</th>
                      <td>${s.customer}</td>
                      <td>${s.plan}</td>
                      <td>
                        ${s.status.replace(/_/g, ' ')}${s.cancel_at_period_end ? ' (cancels at period end)' : ''}
                      </td>
                      <td>${atSeconds(s.current_period.start)} – ${atSeconds(s.current_period.end)}</td>
                      <td>${s.latest_invoice ?? '—'}</td>
                      <td>${atSeconds(s.created)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${subs.hasMore ? html`<p>Showing the newest ${PAGE}.</p>` : ''}`
        : html`<p>No subscriptions${status ? ` with status ${status}` : ''}.</p>`
    }
    <h2>Invoices</h2>
    ${
      invoices.data.length
        ? html`<table>
              <caption>
                Invoices, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Invoice</th>
                  <th scope="col">Subscription</th>
                  <th scope="col">Period</th>
                  <th scope="col">Status</th>
                  <th scope="col">Amount due</th>
                  <th scope="col">Paid</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Payment</th>
                </tr>
              </thead>
              <tbody>
                ${invoices.data.map(
                  (i) =>
                    html`<tr>
                      <th scope="row">${i.id}</th>
                      <td>${i.subscription}</td>
                      <td>${i.period}</td>
                      <td>${i.status}</td>
                      <td>${money(i.amount_due, i.currency)}</td>
                      <td>${i.paid_at ? atSeconds(i.paid_at) : '—'}</td>
                      <td>${i.attempt_count}</td>
                      <td>${paymentLink(i.payment)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${invoices.hasMore ? html`<p>Showing the newest ${PAGE}.</p>` : ''}`
        : html`<p>No invoices.</p>`
    }
    <h2>Customers</h2>
    ${
      customers.data.length
        ? html`<table>
              <caption>
                Customers, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Customer</th>
                  <th scope="col">Name</th>
                  <th scope="col">Email</th>
                  <th scope="col">Country</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                ${customers.data.map(
                  (c) =>
                    html`<tr>
                      <th scope="row">${c.id}</th>
                      <td>${c.name ?? '—'}</td>
                      <td>${c.email ?? '—'}</td>
                      <td>${c.country ?? '—'}</td>
                      <td>${at(c.created * 1000)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${customers.hasMore ? html`<p>Showing the newest ${PAGE}.</p>` : ''}`
        : html`<p>No customers.</p>`
    }`;
  return { kind: 'page', title: 'Subscriptions', nav: 'subscriptions', body };
}

export const subscriptionRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/subscriptions', permission: 'subscriptions.read', handler: page },
];
