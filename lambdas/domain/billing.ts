/**
 * Billing periods and proration (docs/billing.md). Pure: no I/O, no clock (callers pass `now`).
 *
 * Periods are computed from the subscription's anchor, never by adding to the previous period's
 * end, so they do not drift: a subscription anchored on 31 January renews on 28 (or 29)
 * February, then 31 March. Times are epoch seconds, UTC.
 */

export const INTERVALS = ['day', 'week', 'month', 'year'] as const;
export type Interval = (typeof INTERVALS)[number];

export interface Recurrence {
  interval: Interval;
  /** Intervals per period (1–365 days, 1–52 weeks, 1–12 months, 1 year). */
  interval_count: number;
}

/** The longest period each interval allows (Stripe's limit: at most one year). */
export const MAX_INTERVAL_COUNT: Record<Interval, number> = { day: 365, week: 52, month: 12, year: 1 };

const DAY = 86_400;

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** `anchor` plus `n` intervals of the recurrence, month ends clamped from the anchor's day. */
export function addIntervals(anchor: number, r: Recurrence, n: number): number {
  switch (r.interval) {
    case 'day':
      return anchor + n * r.interval_count * DAY;
    case 'week':
      return anchor + n * r.interval_count * 7 * DAY;
    case 'month':
    case 'year': {
      const months = n * r.interval_count * (r.interval === 'year' ? 12 : 1);
      const d = new Date(anchor * 1000);
      const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
      const year = Math.floor(total / 12);
      const month0 = total - year * 12;
      const day = Math.min(d.getUTCDate(), daysInMonth(year, month0));
      return Date.UTC(year, month0, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0) / 1000;
    }
  }
}

export interface Period {
  /** The period's number from the anchor (0 = the first). */
  index: number;
  start: number;
  end: number;
}

/** Period `index` of a subscription anchored at `anchor`. */
export function period(anchor: number, r: Recurrence, index: number): Period {
  return { index, start: addIntervals(anchor, r, index), end: addIntervals(anchor, r, index + 1) };
}

/** The period that holds `at` (at ≥ anchor). */
export function periodAt(anchor: number, r: Recurrence, at: number): Period {
  if (at < anchor) return period(anchor, r, 0);
  // An estimate from the average length, corrected by stepping (at most a step or two).
  const avg = (addIntervals(anchor, r, 12) - anchor) / 12;
  let i = Math.max(0, Math.floor((at - anchor) / avg));
  while (i > 0 && addIntervals(anchor, r, i) > at) i--;
  while (addIntervals(anchor, r, i + 1) <= at) i++;
  return period(anchor, r, i);
}

/** The trial's end, or undefined without a trial. */
export const trialEnd = (start: number, trialDays: number | undefined): number | undefined =>
  trialDays && trialDays > 0 ? start + trialDays * DAY : undefined;

/** `amount × part / whole`, rounded half away from zero to a whole minor unit. */
export function prorate(amount: number, part: number, whole: number): number {
  if (whole <= 0) return 0;
  const exact = (amount * Math.min(Math.max(part, 0), whole)) / whole;
  return Math.sign(exact) * Math.round(Math.abs(exact));
}

export interface PlanChange {
  /** The period in force when the change is made. */
  current: Period;
  oldAmount: number;
  newAmount: number;
  /** Whether the new plan has the same interval and count (the period is kept). */
  sameRecurrence: boolean;
  now: number;
  /** Credit the customer already holds (minor units). */
  credit: number;
}

export interface PlanChangeResult {
  /** Charge now (an invoice for the proration), minor units; 0 for none. */
  chargeNow: number;
  /** Credit carried to the next invoices. */
  credit: number;
  /** Whether a new period starts now (a different recurrence resets the anchor to now). */
  restartPeriod: boolean;
  /** The rule applied, in words, for the invoice and the timeline. */
  explanation: string;
}

/**
 * The proration rule (docs/billing.md "Changing plans"): the unused part of the current period
 * on the old plan is credited; with the same recurrence the rest of the period on the new plan is
 * charged now (an upgrade charges the difference, a downgrade leaves a credit for the next
 * invoices); with a different recurrence a new period on the new plan starts now, invoiced in
 * full less the credit. Credits never pay out as money: they reduce later invoices.
 */
export function planChange(c: PlanChange): PlanChangeResult {
  const whole = c.current.end - c.current.start;
  const remaining = c.current.end - Math.min(Math.max(c.now, c.current.start), c.current.end);
  const unused = prorate(c.oldAmount, remaining, whole);
  const owed = c.sameRecurrence ? prorate(c.newAmount, remaining, whole) : c.newAmount;
  const net = owed - unused - c.credit;
  const pct = Math.round((remaining / whole) * 1000) / 10;
  const explanation = c.sameRecurrence
    ? `${pct} % of the period was left: credited ${unused} for the old plan, charged ${owed} for the new one` +
      (c.credit ? `, less ${c.credit} of credit held` : '')
    : `a new period starts now on the new plan (${owed}); ${unused} credited for the unused ${pct} % of the old one` +
      (c.credit ? `, plus ${c.credit} of credit held` : '');
  return {
    chargeNow: Math.max(0, net),
    credit: Math.max(0, -net),
    restartPeriod: !c.sameRecurrence,
    explanation,
  };
}

/** Applies credit to an invoice amount: what is charged, and the credit left. */
export function applyCredit(
  amountDue: number,
  credit: number,
): { charge: number; creditLeft: number; used: number } {
  const used = Math.min(Math.max(credit, 0), amountDue);
  return { charge: amountDue - used, creditLeft: credit - used, used };
}
