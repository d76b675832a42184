/**
 * The payment page (`/payments/{id}`, payments.read): the console's promise, a payment's whole
 * story on one page (docs/console.md): status and amounts, the plain-language explanation with
 * what to do (lambdas/domain/payment.ts `explain`, the same words the API's timeline gives), the
 * review decision while it is held, the business timeline, every processor attempt with why the
 * payment moved on, refunds (and the refund form), the dispute, the settlement, its ledger
 * entries, the merchant events sent about it with their delivery, and its workflow executions
 * drawn from the ASL definition with the path taken. Another merchant's payment is a 404 for an
 * operator limited to a merchant.
 */
import { explain, isRefundable, type Payment } from '../../domain/payment.ts';
import type { LedgerEntry } from '../../ledger/domain.ts';
import { entriesOfPayment } from '../../store/ledger.ts';
import { eventDeliveries, eventsOfObject, type StoredEvent } from '../../store/merchant-events.ts';
import { timeline, type TimelineEntry } from '../../store/payments.ts';
import { refundableRemaining, refundsOfPayment, type Refund } from '../../store/refunds.ts';
import { html, type Html } from '../html.ts';
import { can } from '../model.ts';
import type { ConsoleRequest, ConsoleResponse, ConsoleRoute } from '../types.ts';
import { executionView, loadExecution, type LoadedExecution } from './execution-view.ts';
import { refundForm, reviewForm } from './payment-actions.ts';
import { executionLink, money, riskReasons, statusBadge, visiblePayment, when } from './parts.ts';

/** The payment's workflow executions, oldest first: every one its timeline names, and the current one. */
export function executionArnsOf(p: Payment, entries: readonly TimelineEntry[]): string[] {
  const arns: string[] = [];
  for (const e of entries)
    if (e.type === 'workflow' && typeof e.execution_arn === 'string' && !arns.includes(e.execution_arn))
      arns.push(e.execution_arn);
  if (p.execution_arn && !arns.includes(p.execution_arn)) arns.push(p.execution_arn);
  return arns;
}

const SKIP = new Set(['type', 'at']);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** One detail's value as a person reads it: money in the currency, times in UTC, lists as lists. */
function detailValue(key: string, v: unknown, currency: string | undefined): string {
  if (typeof v === 'number' && currency && /(^|_)amount(_|$)/.test(key)) return money(v, currency);
  if (typeof v === 'number' && key.endsWith('_ms')) return `${v} ms`;
  if (typeof v === 'string' && ISO_TIME.test(v)) {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  }
  if (key === 'reasons' && Array.isArray(v)) return v.length ? riskReasons(v.map(String)) : 'none';
  if (Array.isArray(v))
    return v.length
      ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')
      : 'none';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * A timeline entry's details as `key: value` text: amounts in the entry's currency (else the
 * payment's), `…_ms` durations in ms, ISO times in UTC like every other time on the page.
 */
export function entryDetails(e: TimelineEntry, paymentCurrency?: string): string {
  const currency = typeof e.currency === 'string' && e.currency ? e.currency : paymentCurrency;
  return Object.entries(e)
    .filter(([k, v]) => !SKIP.has(k) && v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k.replace(/_ms$/, '').replace(/_/g, ' ')}: ${detailValue(k, v, currency)}`)
    .join(' · ');
}

function summary(p: Payment): Html {
  const row = (label: string, value: Html | string | number | null | undefined) =>
    html`<dt>${label}</dt>
      <dd>${value === null || value === undefined || value === '' ? '—' : value}</dd>`;
  return html`<dl class="facts">
    ${row('Status', statusBadge(p.status))} ${row('Amount', money(p.amount, p.currency))}
    ${row('Amount captured', money(p.amount_captured, p.currency))}
    ${row('Amount refunded', money(p.amount_refunded, p.currency))} ${row('Merchant', p.merchant_id)}
    ${row('Order', p.order_id)} ${row('Customer', p.customer?.email ?? p.customer?.id)}
    ${row('Customer country', p.customer?.country)}
    ${row('Payment method', `${p.payment_method}${p.card?.brand ? ` (${p.card.brand}${p.card.last4 ? ` •••• ${p.card.last4}` : ''})` : ''}`)}
    ${row('Capture', p.capture_method)} ${row('Channel', p.channel)} ${row('Processor', p.processor)}
    ${row('Processor reference', p.processor_reference)} ${row('Created', when(p.created))}
    ${row('Updated', when(p.updated))} ${row('Description', p.description)}
  </dl>`;
}

/** The explanation without the recommended action at its end when the page lists that action below it. */
export function withoutAction(text: string, action: string | null | undefined): string {
  if (!action || !text.endsWith(action) || text.length === action.length) return text;
  return text.slice(0, -action.length).trimEnd();
}

function explanation(p: Payment & { needs_attention?: { reason?: string } }): Html {
  const f = p.failure;
  return html`<section aria-labelledby="explain-h">
    <h2 id="explain-h">What happened</h2>
    <p class="explanation">${withoutAction(explain(p), f?.recommended_action)}</p>
    ${
      f
        ? html`<dl class="facts">
            <dt>Recommended action</dt>
            <dd>${f.recommended_action}</dd>
            <dt>Decline category</dt>
            <dd>${f.category.replace(/_/g, ' ')}</dd>
            <dt>Code</dt>
            <dd>${f.code} (processor: ${f.processor_code})</dd>
            <dt>Retryable</dt>
            <dd>${f.retryable ? 'yes' : 'no'}</dd>
          </dl>`
        : ''
    }
    ${
      p.needs_attention
        ? html`<p class="attention"><strong>Needs attention:</strong> ${p.needs_attention.reason ?? ''}</p>`
        : ''
    }
  </section>`;
}

function timelineTable(entries: TimelineEntry[], currency: string): Html {
  if (!entries.length) return html`<p class="empty">Nothing recorded yet.</p>`;
  return html`<table class="timeline">
    <caption>
      Everything that happened to the payment, oldest first
    </caption>
    <thead>
      <tr>
        <th scope="col">When</th>
        <th scope="col">What</th>
        <th scope="col">Details</th>
      </tr>
    </thead>
    <tbody>
      ${entries.map(
        (e) =>
          html`<tr>
            <td>${when(e.at)}</td>
            <th scope="row">${e.type.replace(/_/g, ' ')}</th>
            <td>${entryDetails(e, currency)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function attemptsTable(p: Payment): Html {
  const attempts = p.attempts ?? [];
  if (!attempts.length) return html`<p class="empty">No processor was asked yet.</p>`;
  return html`<table class="attempts">
    <caption>
      Authorization attempts in route order, and why the payment moved on
    </caption>
    <thead>
      <tr>
        <th scope="col">#</th>
        <th scope="col">Processor</th>
        <th scope="col">Started</th>
        <th scope="col">Latency</th>
        <th scope="col">Outcome</th>
        <th scope="col">Failure</th>
        <th scope="col">Reference</th>
        <th scope="col">Next</th>
      </tr>
    </thead>
    <tbody>
      ${attempts.map(
        (a) =>
          html`<tr>
            <td class="num">${a.attempt}</td>
            <th scope="row">${a.processor}</th>
            <td>${when(a.started)}</td>
            <td class="num">${a.latency_ms} ms</td>
            <td>${a.outcome.replace(/_/g, ' ')}</td>
            <td>
              ${a.failure ? `${a.failure.category}: ${a.failure.code} (${a.failure.processor_code})` : '—'}
            </td>
            <td>${a.processor_reference ?? '—'}</td>
            <td>
              ${
                a.next
                  ? `${a.next.cascade ? 'cascade' : 'failover'} to ${a.next.processor}: ${a.next.reason.replace(/_/g, ' ')}`
                  : '—'
              }
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function refundsTable(refunds: Refund[]): Html {
  if (!refunds.length) return html`<p class="empty">No refunds.</p>`;
  return html`<table class="refunds">
    <caption>
      Refunds of this payment, oldest first
    </caption>
    <thead>
      <tr>
        <th scope="col">Refund</th>
        <th scope="col">Created</th>
        <th scope="col">Amount</th>
        <th scope="col">Status</th>
        <th scope="col">Reason</th>
        <th scope="col">Channel</th>
        <th scope="col">Reference</th>
        <th scope="col">Workflow</th>
      </tr>
    </thead>
    <tbody>
      ${refunds.map(
        (r) =>
          html`<tr>
            <th scope="row">${r.id}</th>
            <td>${when(r.created)}</td>
            <td class="num">${money(r.amount, r.currency)}</td>
            <td>
              ${statusBadge(r.status)}${r.failure_reason ? ` (${r.failure_reason})` : ''}${
                r.held ? ` — held in incident ${r.held.incident_id}` : ''
              }
            </td>
            <td>${r.reason?.replace(/_/g, ' ') ?? '—'}</td>
            <td>${r.channel}</td>
            <td>${r.processor_reference ?? '—'}</td>
            <td>${r.execution_arn ? executionLink(r.execution_arn, 'execution') : '—'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function disputeAndSettlement(p: Payment): Html {
  const d = p.dispute;
  const s = p.settlement;
  return html`<dl class="facts">
    <dt>Dispute</dt>
    <dd>
      ${
        d
          ? html`${d.id}: ${d.reason.replace(/_/g, ' ')}, ${statusBadge(d.status)},
            ${money(d.amount, d.currency)}, evidence due ${when(d.evidence_due_by)}`
          : 'none'
      }
    </dd>
    <dt>Settlement</dt>
    <dd>${s ? `paid out in ${s.processor} payout ${s.payout_id} on ${s.date}` : 'not paid out yet'}</dd>
  </dl>`;
}

function ledgerTable(entries: LedgerEntry[]): Html {
  if (!entries.length) return html`<p class="empty">No ledger entries for this payment.</p>`;
  return html`<table class="ledger">
    <caption>
      Ledger entries for this payment, in time order
    </caption>
    <thead>
      <tr>
        <th scope="col">Entry</th>
        <th scope="col">Occurred</th>
        <th scope="col">Type</th>
        <th scope="col">Amount</th>
        <th scope="col">Postings</th>
      </tr>
    </thead>
    <tbody>
      ${entries.map(
        (e) =>
          html`<tr>
            <th scope="row"><code>${e.id}</code></th>
            <td>${when(e.occurred_at)}</td>
            <td>${e.type.replace(/_/g, ' ')}</td>
            <td class="num">${money(e.amount, e.currency)}</td>
            <td>
              ${e.postings
                .map(
                  (x) =>
                    `${x.account} ${x.debit ? `Dr ${money(x.debit, e.currency)}` : `Cr ${money(x.credit, e.currency)}`}`,
                )
                .join('; ')}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

type EventRow = StoredEvent & { delivery: string };

function eventsTable(events: EventRow[]): Html {
  if (!events.length) return html`<p class="empty">No merchant events about this payment.</p>`;
  return html`<table class="events">
    <caption>
      Merchant events about this payment and its refunds and dispute, oldest first
    </caption>
    <thead>
      <tr>
        <th scope="col">Event</th>
        <th scope="col">Created</th>
        <th scope="col">Type</th>
        <th scope="col">Delivery</th>
      </tr>
    </thead>
    <tbody>
      ${events.map(
        (e) =>
          html`<tr>
            <th scope="row"><code>${e.id}</code></th>
            <td>${when(e.created)}</td>
            <td>${e.type}</td>
            <td>${e.delivery}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** How an event's deliveries went, in words: `delivered to 1 endpoint`, `failed at https://… (HTTP 500, 3 attempts)`. */
export function deliverySummary(
  deliveries: {
    url: string;
    status: string;
    attempt_count: number;
    last_http_status: number | null;
    last_error: string | null;
  }[],
): string {
  if (!deliveries.length) return 'no endpoint subscribed';
  return deliveries
    .map((d) => {
      const detail = [
        d.last_http_status !== null ? `HTTP ${d.last_http_status}` : d.last_error,
        `${d.attempt_count} attempt${d.attempt_count === 1 ? '' : 's'}`,
      ]
        .filter(Boolean)
        .join(', ');
      return `${d.status} — ${d.url} (${detail})`;
    })
    .join('; ');
}

async function merchantEvents(p: Payment, refunds: Refund[]): Promise<EventRow[]> {
  const ids = [p.id, ...refunds.map((r) => r.id), ...(p.dispute?.id ? [p.dispute.id] : [])];
  const events = (await Promise.all(ids.map((id) => eventsOfObject(id)))).flat();
  events.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  return Promise.all(
    events.map(async (e) => ({ ...e, delivery: deliverySummary(await eventDeliveries(e.id)) })),
  );
}

async function paymentPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  const p = await visiblePayment(req.operator, req.params.id);
  const [entries, refunds, ledger] = await Promise.all([
    timeline(p.id),
    refundsOfPayment(p.id),
    entriesOfPayment(p.id),
  ]);
  const arns = executionArnsOf(p, entries);
  const [events, executions, remaining] = await Promise.all([
    merchantEvents(p, refunds),
    Promise.all(arns.map((arn) => loadExecution(arn).catch(() => undefined))),
    isRefundable(p.status) ? refundableRemaining(p) : Promise.resolve(0),
  ]);
  const loaded = executions.filter((x): x is LoadedExecution => x !== undefined);
  const missing = arns.filter((_, i) => !executions[i]);
  const held = p.status === 'pending_review' && p.review?.status === 'open';
  const mayRefund = can(req.operator.role, 'refunds.create') && isRefundable(p.status) && remaining > 0;
  const section = (id: string, title: string, body: Html) =>
    html`<section aria-labelledby="${id}">
      <h2 id="${id}">${title}</h2>
      ${body}
    </section>`;
  return {
    kind: 'page',
    title: `Payment ${p.id}`,
    nav: 'payments',
    body: html`<h1>Payment ${p.id}</h1>
      ${summary(p)} ${explanation(p)}
      ${
        held
          ? section(
              'review-h',
              'Review decision',
              html`<p>Held for review: ${riskReasons(p.review!.reasons)}.</p>
                ${
                  can(req.operator.role, 'reviews.decide')
                    ? reviewForm(req, p)
                    : html`<p>Your role cannot decide reviews.</p>`
                }`,
            )
          : ''
      }
      ${section('timeline-h', 'Timeline', timelineTable(entries, p.currency))}
      ${section('attempts-h', 'Processor attempts', attemptsTable(p))}
      ${section(
        'refunds-h',
        'Refunds',
        html`${refundsTable(refunds)} ${mayRefund ? refundForm(req, p, remaining) : ''}`,
      )}
      ${section('dispute-h', 'Dispute and settlement', disputeAndSettlement(p))}
      ${section('ledger-h', 'Ledger entries', ledgerTable(ledger))}
      ${section('events-h', 'Merchant events', eventsTable(events))}
      ${section(
        'workflow-h',
        'Workflow executions',
        html`${loaded.length ? loaded.map((x) => executionView(x, 3)) : html`<p class="empty">No workflow execution.</p>`}
        ${missing.length ? html`<p>Not found in Step Functions: ${missing.join(', ')}.</p>` : ''}`,
      )}`,
  };
}

export const paymentPageRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/payments/{id}', permission: 'payments.read', handler: paymentPage },
];
