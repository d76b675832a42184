/**
 * The incident report (docs/routing.md "Incidents", docs/runbooks/processor-outage.md): what an
 * incident did to traffic, built from what the writer (report-writer.ts) read. Pure: no I/O, so
 * the same inputs always give the same report.
 *
 * Windows (epoch ms, whole minutes: health is counted per minute; see `reportWindows`):
 *   before  as many minutes as the incident lasted, just before it opened
 *   during  opened_at → closed_at (a suspected incident counts from when the breaker opened it)
 *   after   closed_at → `asOf`, the time of writing (right after resolving: nothing yet; a
 *           report rebuilt later has more)
 *
 * Payments "touched" are those created during the incident (all merchants, read up to a limit the
 * writer states in `payments.limit`). A payment is **rerouted** when its `routed` timeline entry
 * says routing skipped the incident's processor because of this incident (lambdas/domain/routing.ts
 * writes "Skipped: <processor> is in incident <id> (…)") and it went to another processor (one
 * that found none failed `no_processor_available`); **failed** when it ended `failed`;
 * **held** when one of its operations is in the incident's backlog (`held`, HeldOperation).
 */
import { replayOrder, type HeldOperation } from '../domain/backlog.ts';
import type { Incident } from '../domain/incidents.ts';
import { APPROVED_STATUSES, type PaymentStatus } from '../domain/payment.ts';
import { figures, type HealthCounts, type HealthFigures } from '../domain/processor-health.ts';

/** What the report needs of a payment (a `Payment` has all of it). */
export interface ReportPayment {
  id: string;
  merchant_id: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  processor: string | null;
  failure: { code: string } | null;
  /** Epoch seconds. */
  created: number;
}

export interface ReportInput {
  incident: Incident;
  /** Payments created during the incident (the writer reads at most `paymentsLimit`). */
  payments: readonly ReportPayment[];
  /** Whether there were more payments than the writer read. */
  paymentsTruncated: boolean;
  paymentsLimit: number;
  /** Per payment id, the `explanation` of its `routed` timeline entry (read for candidates only). */
  routed: ReadonlyMap<string, string>;
  /** Per processor, its health counts in each window. */
  health: Record<string, { before: HealthCounts; during: HealthCounts; after: HealthCounts }>;
  /** The incident's backlog (lambdas/store/backlog.ts `listHeld(incident.id)`). */
  held: readonly HeldOperation[];
  /** The time of writing (epoch ms): the end of the `after` window. */
  asOf: number;
}

export interface ApprovalWindow extends HealthFigures {
  approved: number;
  declined: number;
  error: number;
  timeout: number;
  /** Epoch ms. */
  from: number;
  to: number;
}

export interface ReportPaymentLine {
  payment_id: string;
  merchant_id: string;
  processor: string | null;
  status: PaymentStatus;
  amount: number;
  currency: string;
  /** Epoch seconds. */
  created: number;
  detail: string;
}

export interface IncidentReport {
  object: 'incident_report';
  incident: Omit<Incident, 'timeline' | 'object'>;
  timeline: Incident['timeline'];
  /** Epoch ms. */
  as_of: number;
  windows: Record<'before' | 'during' | 'after', { from: number; to: number }>;
  payments: {
    /** Payments created during the incident that the report read. */
    read: number;
    limit: number;
    /** More payments were created during the incident than `limit`: counts cover the first read. */
    truncated: boolean;
    rerouted: number;
    failed: number;
    failed_by_code: Record<string, number>;
    /** Payments with at least one operation in the backlog. */
    held: number;
  };
  volume_by_currency: {
    currency: string;
    payments: number;
    amount: number;
    /** Authorized or further (captured, settled, refunded …). */
    approved_payments: number;
    approved_amount: number;
    failed_payments: number;
    failed_amount: number;
  }[];
  approval: { processor: string; before: ApprovalWindow; during: ApprovalWindow; after: ApprovalWindow }[];
  backlog: {
    held: number;
    by_kind: Record<string, number>;
    by_status: Record<string, number>;
    /** Operations replayed (done or failed), in replay order. */
    replayed: HeldOperation[];
  };
  still_open: {
    /** Operations still `held` or `released` (handed back, not finished). */
    operations: HeldOperation[];
    /** Touched payments not yet at an outcome (processing, pending_review, requires_action). */
    payments: ReportPaymentLine[];
  };
  rerouted: ReportPaymentLine[];
  failed: ReportPaymentLine[];
}

const UNDECIDED: ReadonlySet<PaymentStatus> = new Set(['processing', 'pending_review', 'requires_action']);

/** Whether a `routed` explanation says this incident made routing skip its processor. */
export const reroutedBy = (incident: Pick<Incident, 'id' | 'processor'>, explanation: string | undefined) =>
  !!explanation && explanation.includes(`${incident.processor} is in incident ${incident.id}`);

const MINUTE = 60_000;
const minuteOf = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;

/**
 * The three windows of an incident at `asOf`, in whole minutes (health is counted per minute;
 * `to` is exclusive): `during` holds the minutes it opened and closed in, `before` as many minutes
 * just before, `after` the minutes after the closing one up to the one of `asOf` (none yet when
 * written right at resolving).
 */
export function reportWindows(incident: Pick<Incident, 'opened_at' | 'closed_at'>, asOf: number) {
  const open = minuteOf(incident.opened_at);
  const close = minuteOf(Math.max(incident.closed_at ?? asOf, incident.opened_at)) + MINUTE;
  const now = Math.max(close, minuteOf(asOf) + MINUTE);
  return {
    before: { from: open - (close - open), to: open },
    during: { from: open, to: close },
    after: { from: close, to: now },
  };
}

const sorted = <V>(o: Record<string, V>): Record<string, V> =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const line = (p: ReportPayment, detail: string): ReportPaymentLine => ({
  payment_id: p.id,
  merchant_id: p.merchant_id,
  processor: p.processor,
  status: p.status,
  amount: p.amount,
  currency: p.currency,
  created: p.created,
  detail,
});

function approvalWindow(c: HealthCounts, w: { from: number; to: number }): ApprovalWindow {
  return {
    ...w,
    approved: c.approved,
    declined: c.declined,
    error: c.error,
    timeout: c.timeout,
    ...figures(c),
  };
}

export function buildIncidentReport(input: ReportInput): IncidentReport {
  const { incident } = input;
  const windows = reportWindows(incident, input.asOf);
  const byId = (a: ReportPayment, b: ReportPayment) =>
    a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const payments = [...input.payments].sort(byId);

  const rerouted: ReportPaymentLine[] = [];
  const failed: ReportPaymentLine[] = [];
  const undecided: ReportPaymentLine[] = [];
  const failedByCode: Record<string, number> = {};
  const volume = new Map<string, IncidentReport['volume_by_currency'][number]>();
  for (const p of payments) {
    const explanation = input.routed.get(p.id);
    // Skipped, and sent elsewhere (one that found no other processor failed: it is in `failed`).
    if (p.processor && reroutedBy(incident, explanation)) rerouted.push(line(p, explanation!));
    if (p.status === 'failed') {
      const code = p.failure?.code ?? 'unknown';
      failedByCode[code] = (failedByCode[code] ?? 0) + 1;
      failed.push(line(p, code));
    }
    if (UNDECIDED.has(p.status)) undecided.push(line(p, `still ${p.status}`));
    const v = volume.get(p.currency) ?? {
      currency: p.currency,
      payments: 0,
      amount: 0,
      approved_payments: 0,
      approved_amount: 0,
      failed_payments: 0,
      failed_amount: 0,
    };
    v.payments++;
    v.amount += p.amount;
    if (APPROVED_STATUSES.has(p.status)) {
      v.approved_payments++;
      v.approved_amount += p.amount;
    }
    if (p.status === 'failed') {
      v.failed_payments++;
      v.failed_amount += p.amount;
    }
    volume.set(p.currency, v);
  }

  const held = replayOrder(input.held.filter((h) => h.incident_id === incident.id));
  const count = (key: (h: HeldOperation) => string) =>
    sorted(held.reduce<Record<string, number>>((o, h) => ((o[key(h)] = (o[key(h)] ?? 0) + 1), o), {}));

  const processors = Object.keys(input.health).sort((a, b) =>
    a === incident.processor ? -1 : b === incident.processor ? 1 : a < b ? -1 : a > b ? 1 : 0,
  );
  const { timeline, object: _object, ...facts } = incident;
  return {
    object: 'incident_report',
    incident: facts,
    timeline,
    as_of: input.asOf,
    windows,
    payments: {
      read: payments.length,
      limit: input.paymentsLimit,
      truncated: input.paymentsTruncated,
      rerouted: rerouted.length,
      failed: failed.length,
      failed_by_code: sorted(failedByCode),
      held: new Set(held.map((h) => h.payment_id)).size,
    },
    volume_by_currency: [...volume.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1)),
    approval: processors.map((name) => {
      const h = input.health[name]!;
      return {
        processor: name,
        before: approvalWindow(h.before, windows.before),
        during: approvalWindow(h.during, windows.during),
        after: approvalWindow(h.after, windows.after),
      };
    }),
    backlog: {
      held: held.length,
      by_kind: count((h) => h.kind),
      by_status: count((h) => h.status),
      replayed: held.filter((h) => h.status === 'done' || h.status === 'failed'),
    },
    still_open: {
      operations: held.filter((h) => h.status === 'held' || h.status === 'released'),
      payments: undecided,
    },
    rerouted,
    failed,
  };
}

// ---------------------------------------------------------------------------------------------
// CSV: one row per payment or operation the report names (spreadsheet filtering); the aggregates
// (approval rates, volumes) are in the JSON.

export const INCIDENT_REPORT_COLUMNS = [
  'section',
  'incident_id',
  'payment_id',
  'refund_id',
  'merchant_id',
  'processor',
  'operation',
  'status',
  'amount',
  'currency',
  'at',
  'detail',
] as const;

const iso = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());

/** The CSV rows (without the header): rerouted, failed, held (every backlog entry), open payments. */
export function incidentReportRows(r: IncidentReport): unknown[][] {
  const id = r.incident.id;
  const pay = (section: string, p: ReportPaymentLine) => [
    section,
    id,
    p.payment_id,
    '',
    p.merchant_id,
    p.processor ?? '',
    'payment',
    p.status,
    p.amount,
    p.currency,
    iso(p.created * 1000),
    p.detail,
  ];
  const op = (h: HeldOperation) => [
    'held',
    id,
    h.payment_id,
    h.refund_id ?? '',
    h.merchant_id,
    h.processor,
    h.kind,
    h.status,
    h.amount ?? '',
    h.currency ?? '',
    iso(h.held_at),
    h.outcome ?? '',
  ];
  const held = [...r.backlog.replayed, ...r.still_open.operations];
  return [
    ...r.rerouted.map((p) => pay('rerouted', p)),
    ...r.failed.map((p) => pay('failed', p)),
    ...replayOrder(held).map(op),
    ...r.still_open.payments.map((p) => pay('open', p)),
  ];
}
