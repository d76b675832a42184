/**
 * What the ops screens (disputes, processors, subscriptions, finance, analytics) share: how they
 * write amounts and times, how an operator limited to one merchant is kept to it, how a service's
 * API error becomes a console refusal, and the merchant picker of screens that show one merchant
 * at a time.
 */
import { ApiError } from '../shared/errors.ts';
import { allMerchants, getMerchant } from '../store/merchants.ts';
import { html, type Html } from './html.ts';
import { seesMerchant } from './model.ts';
import { ConsoleError, type ConsoleRequest } from './types.ts';

/** `1234, 'usd'` → `12.34 USD`: the payment screens' formatter, one for every screen. */
export { money } from './pages/parts.ts';

/** Epoch milliseconds → `2026-11-29 22:21 UTC` in a `<time>` element. */
export function at(ms: number | null | undefined): Html {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return html`—`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`;
}

/** Epoch seconds → like `at`. */
export const atSeconds = (s: number | null | undefined): Html =>
  at(s === null || s === undefined ? undefined : s * 1000);

/** `in 2 days 3 hours` / `5 hours ago`, for deadlines and retries. */
export function relative(ms: number, now: number): string {
  const d = Math.abs(ms - now);
  const parts =
    d >= 86_400_000
      ? [Math.floor(d / 86_400_000), 'day', Math.floor((d % 86_400_000) / 3_600_000), 'hour']
      : d >= 3_600_000
        ? [Math.floor(d / 3_600_000), 'hour', Math.floor((d % 3_600_000) / 60_000), 'minute']
        : [Math.max(1, Math.floor(d / 60_000)), 'minute', 0, ''];
  const unit = (n: number, u: string) => (n && u ? `${n} ${u}${n === 1 ? '' : 's'}` : '');
  const text = [unit(parts[0] as number, parts[1] as string), unit(parts[2] as number, parts[3] as string)]
    .filter(Boolean)
    .join(' ');
  return ms >= now ? `in ${text}` : `${text} ago`;
}

/** A rate 0..1 → `93.4%`; null → `—`. */
export const percent = (r: number | null | undefined): string =>
  r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)}%`;

/** A 404 unless the operator sees this merchant's objects (another merchant's object does not exist). */
export function mustSee(req: ConsoleRequest, merchantId: string, what: string, id: string): void {
  if (!seesMerchant(req.operator, merchantId)) throw new ConsoleError(404, `No such ${what}: ${id}`);
}

/**
 * Runs a service shared with the API: its 4xx errors become the console's refusals (the message is
 * the API's), a processor that cannot be reached a 409 saying to retry (nothing was lost).
 */
export async function service<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const status = err.status === 404 ? 404 : err.status === 403 ? 403 : err.status >= 500 ? 409 : 400;
    throw new ConsoleError(err.status === 409 ? 409 : status, err.message, { cause: err });
  }
}

/** A form field, trimmed; a 400 naming it when it is required and missing or too long. */
export function field(
  req: ConsoleRequest,
  name: string,
  opts: { required?: boolean; max?: number } = {},
): string {
  const v = (req.form[name] ?? '').trim();
  if (opts.required && !v) throw new ConsoleError(400, `Fill in ${name.replace(/_/g, ' ')}.`);
  const max = opts.max ?? 1000;
  if (v.length > max)
    throw new ConsoleError(400, `${name.replace(/_/g, ' ')} must be at most ${max} characters.`);
  return v;
}

/** The most merchants a picker lists (an operator with more types the id). */
const PICKER_MERCHANTS = 200;

/**
 * The merchant a one-merchant-at-a-time screen shows: the operator's own (limited operator), else
 * `?merchant=` if it exists (404 if not), else none chosen yet.
 */
export async function chosenMerchant(req: ConsoleRequest): Promise<string | undefined> {
  if (req.operator.merchant_id) return req.operator.merchant_id;
  const m = req.query.merchant?.trim();
  if (!m) return undefined;
  if (!(await getMerchant(m))) throw new ConsoleError(404, `No such merchant: ${m}`);
  return m;
}

/**
 * The merchant picker (a GET form) for an operator who sees every merchant; nothing for one
 * limited to a merchant. `keep` are other query values the form carries along.
 */
export async function merchantPicker(
  req: ConsoleRequest,
  action: string,
  current: string | undefined,
  keep: Record<string, string | undefined> = {},
): Promise<Html> {
  if (req.operator.merchant_id) return html``;
  const merchants: { id: string; name: string }[] = [];
  for await (const m of allMerchants()) {
    merchants.push({ id: m.id, name: m.name });
    if (merchants.length >= PICKER_MERCHANTS) break;
  }
  const idFor = `merchant-${action.replace(/[^a-z]/gi, '')}`;
  return html`<form method="get" action="/console${action}" class="merchant-picker">
    <label for="${idFor}">Merchant</label>
    <select id="${idFor}" name="merchant">
      <option value="">Choose a merchant</option>
      ${merchants.map(
        (m) =>
          html`<option value="${m.id}" ${m.id === current ? html`selected` : ''}>
            ${m.name} (${m.id})
          </option>`,
      )}
    </select>
    ${Object.entries(keep).map(([k, v]) => (v ? html`<input type="hidden" name="${k}" value="${v}" />` : ''))}
    <button type="submit">Show</button>
  </form>`;
}
