/**
 * Small pieces the payment, search, reviews and executions screens share: amounts, times,
 * statuses, links, the visible-payment check and what a search box was given. Pure except
 * `visiblePayment` (one read).
 */
import { currencyExponent, formatAmount } from '../../domain/money.ts';
import { isPaymentStatus, type Payment } from '../../domain/payment.ts';
import { getPayment } from '../../store/payments.ts';
import { html, type Html } from '../html.ts';
import { seesMerchant, type Operator } from '../model.ts';
import { ConsoleError } from '../types.ts';
import { machineOf } from '../workflows.ts';

/** A count as people read it: 100,000 rather than 100000. */
export const count = (n: number): string => n.toLocaleString('en-US');

export const PAYMENT_ID = /^pay_[0-9A-Za-z]{10,40}$/;

export function money(amount: number | null | undefined, currency: string | null | undefined): string {
  if (typeof amount !== 'number' || !currency) return '—';
  try {
    return formatAmount(amount, currency);
  } catch {
    return `${amount} ${currency.toUpperCase()}`;
  }
}

const AMOUNT_REASON = /^amount (\d+) ([a-z]{3}) is above the review limit (\d+)$/;

/**
 * A risk screen's reason as a person reads it: its amounts (minor units in the stored reason,
 * lambdas/domain/risk.ts) in the currency, e.g. "amount 12072.00 USD is above the review limit
 * 10000.00 USD". Other reasons are already words.
 */
export function riskReason(reason: string): string {
  const m = AMOUNT_REASON.exec(reason);
  if (!m) return reason;
  const [, amount, currency, limit] = m as unknown as [string, string, string, string];
  return `amount ${money(Number(amount), currency)} is above the review limit ${money(Number(limit), currency)}`;
}

export const riskReasons = (reasons: readonly string[]): string => reasons.map(riskReason).join('; ');

/** An instant (epoch seconds, epoch ms ≥ 1e12, a Date or ISO text) as a `<time>` in UTC. */
export function when(t: number | string | Date | null | undefined): Html {
  if (t === null || t === undefined || t === '') return html`—`;
  const d = t instanceof Date ? t : typeof t === 'number' ? new Date(t < 1e12 ? t * 1000 : t) : new Date(t);
  if (Number.isNaN(d.getTime())) return html`${String(t)}`;
  const iso = d.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

export function statusBadge(status: string | null | undefined): Html {
  const s = status ?? 'unknown';
  return html`<span class="status status-${s.toLowerCase().replace(/[^a-z_]/g, '')}"
    >${s.replace(/_/g, ' ')}</span
  >`;
}

export const paymentLink = (id: string): Html => html`<a href="/console/payments/${id}">${id}</a>`;

/** The console path of an execution: its name, with its state machine (names are plain ids; ARNs are not). */
export function executionPath(arn: string): string {
  const name = arn.split(':').pop() ?? arn;
  const machine = machineOf(arn);
  return `/executions/${encodeURIComponent(name)}${machine ? `?machine=${machine}` : ''}`;
}

export const executionLink = (arn: string, text: string = arn.split(':').pop() ?? arn): Html =>
  html`<a href="/console${executionPath(arn)}">${text}</a>`;

/** Pretty JSON of a history input/output (text as stored), folded. */
export function jsonDetails(summary: string, text: string | null | undefined): Html {
  if (text === null || text === undefined) return html`—`;
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: shown as it is
  }
  return html`<details>
    <summary>${summary}</summary>
    <pre>${pretty}</pre>
  </details>`;
}

/** A payment this operator may see, or a 404 (another merchant's payment reads as missing). */
export async function visiblePayment(op: Operator, id: string | undefined): Promise<Payment> {
  const p = id && PAYMENT_ID.test(id) ? await getPayment(id) : undefined;
  if (!p || !seesMerchant(op, p.merchant_id)) throw new ConsoleError(404, `No payment ${id ?? ''}.`);
  return p;
}

/**
 * An amount typed by a person in the currency's major units (`12.34`, `12`, `1,000.50`) → minor
 * units; undefined when it is not a positive amount with at most the currency's decimals.
 */
export function parseMajorAmount(text: string, currency: string): number | undefined {
  const t = text.trim().replace(/,/g, '');
  const e = currencyExponent(currency);
  const m = /^(\d{1,9})(?:\.(\d+))?$/.exec(t);
  if (!m) return undefined;
  const frac = m[2] ?? '';
  if (frac.length > e) return undefined;
  const minor = Number(m[1]) * 10 ** e + Number(frac.padEnd(e, '0') || '0');
  return minor > 0 && Number.isSafeInteger(minor) ? minor : undefined;
}

/** Minor units → the major-unit text a form shows (`1234, usd` → `12.34`). */
export function majorText(amount: number, currency: string): string {
  const e = currencyExponent(currency);
  if (e === 0) return String(amount);
  const s = String(amount).padStart(e + 1, '0');
  return `${s.slice(0, -e)}.${s.slice(-e)}`;
}

export type QueryKind = 'payment' | 'email' | 'reference' | 'order';

/**
 * What a free search box was given: a payment id (`pay_…`), an email, a processor reference
 * (Stripe `pi_…`/`ch_…`/`py_…`, an Adyen pspReference: 16 letters and digits), else an order id.
 */
export function classifyQuery(q: string): QueryKind {
  const t = q.trim();
  if (/^pay_[0-9A-Za-z]+$/.test(t)) return 'payment';
  if (/^[^\s@]+@[^\s@]+$/.test(t)) return 'email';
  if (/^(pi|ch|py|psp)_[0-9A-Za-z_]+$/.test(t) || /^[0-9A-Z]{16}$/.test(t)) return 'reference';
  return 'order';
}

/** `YYYY-MM-DD` → epoch ms at 00:00 UTC, or undefined. */
export function dayStart(text: string | undefined): number | undefined {
  if (!text || !/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export const statusParam = (v: string | undefined) => (v && isPaymentStatus(v) ? v : undefined);

/** A query string of the non-empty values (for next-page links). */
export function queryString(params: Record<string, string | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}
