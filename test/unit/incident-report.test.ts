/**
 * The incident report as a pure builder (lambdas/incidents/report.ts): which payments count as
 * rerouted, failed and held, volume by currency, approval rates before / during / after in whole
 * minutes, the backlog replayed and what is still open, and the CSV (RFC 4180 escaping). And the
 * processor-incident merchant events (lambdas/events/incidents.ts): which table changes announce
 * what, with one deterministic id per incident, type and merchant.
 */
import { CsvReader, csvLine } from '../../lambdas/reports/csv.ts';
import {
  buildIncidentReport,
  INCIDENT_REPORT_COLUMNS,
  incidentReportRows,
  reportWindows,
  reroutedBy,
  type ReportInput,
  type ReportPayment,
} from '../../lambdas/incidents/report.ts';
import { emptyCounts, type HealthCounts } from '../../lambdas/domain/processor-health.ts';
import type { HeldOperation } from '../../lambdas/domain/backlog.ts';
import type { Incident } from '../../lambdas/domain/incidents.ts';
import { incidentChange, incidentEventDrafts } from '../../lambdas/events/incidents.ts';
import { isKnownEventPattern } from '../../lambdas/events/validation.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 29, 14, 0, 0); // a whole minute
const incident: Incident = {
  id: 'inc_0123456789abcdef',
  object: 'incident',
  processor: 'stripe',
  status: 'resolved',
  reason: 'timeouts',
  opened_at: T0 + 10_000, // 14:00:10
  confirmed_at: T0 + 20_000,
  closed_at: T0 + 9 * MIN + 5_000, // 14:09:05
  timeline: [
    { at: T0 + 10_000, event: 'declared', by: 'alice', text: 'timeouts' },
    { at: T0 + 9 * MIN + 5_000, event: 'resolved', by: 'alice', text: 'back' },
  ],
};

const counts = (approved: number, declined: number, error = 0, timeout = 0): HealthCounts => ({
  ...emptyCounts(),
  approved,
  declined,
  error,
  timeout,
});

let n = 0;
const pay = (p: Partial<ReportPayment>): ReportPayment => ({
  id: `pay_${String(++n).padStart(4, '0')}`,
  merchant_id: 'mch_a',
  amount: 1000,
  currency: 'usd',
  status: 'captured',
  processor: 'adyen',
  failure: null,
  created: Math.floor((T0 + MIN) / 1000),
  ...p,
});

const skipped = `no rule decided: the default stripe, adyen. Skipped: stripe is in incident ${incident.id} (timeouts).`;

function held(
  kind: HeldOperation['kind'],
  status: HeldOperation['status'],
  at: number,
  extra = {},
): HeldOperation {
  return {
    id: `${incident.id}#${kind}#pay_h${at}`,
    incident_id: incident.id,
    processor: 'stripe',
    merchant_id: 'mch_a',
    kind,
    payment_id: `pay_h${at}`,
    amount: 500,
    currency: 'eur',
    held_at: T0 + at,
    status,
    ...extra,
  };
}

function input(over: Partial<ReportInput> = {}): ReportInput {
  n = 0;
  const rerouted1 = pay({});
  const rerouted2 = pay({ currency: 'eur', amount: 2500, status: 'authorized' });
  const notRerouted = pay({ processor: 'adyen' }); // routed to adyen by its own rule
  const failed = pay({
    processor: null,
    status: 'failed',
    failure: { code: 'no_processor_available' },
    amount: 700,
  });
  const declined = pay({ status: 'failed', failure: { code: 'card_declined' }, amount: 300 });
  const open = pay({ status: 'processing', processor: 'adyen', currency: 'eur', amount: 100 });
  return {
    incident,
    payments: [rerouted1, rerouted2, notRerouted, failed, declined, open],
    paymentsTruncated: false,
    paymentsLimit: 10_000,
    routed: new Map([
      [rerouted1.id, skipped],
      [rerouted2.id, skipped],
      [notRerouted.id, 'rule "eur" matched (currency eur): adyen.'],
      [
        failed.id,
        `No processor can take this payment. Skipped: stripe is in incident ${incident.id} (timeouts).`,
      ],
      // Another incident of the same processor: not this one's doing.
      [declined.id, 'Skipped: stripe is in incident inc_other0000000000 (x).'],
    ]),
    health: {
      adyen: { before: counts(90, 10), during: counts(180, 20, 5), after: emptyCounts() },
      stripe: { before: counts(95, 5), during: counts(1, 1, 30, 20), after: counts(9, 1) },
    },
    held: [
      held('refund', 'held', 3 * MIN),
      held('capture', 'done', 2 * MIN, { outcome: 'captured' }),
      held('cancel', 'failed', 4 * MIN, { outcome: 'declined: "too late", said stripe' }),
      held('capture', 'released', 5 * MIN),
      { ...held('capture', 'done', MIN), incident_id: 'inc_another000000000' }, // not this incident's
    ],
    asOf: T0 + 9 * MIN + 30_000,
    ...over,
  };
}

describe('the incident report', () => {
  test('windows are whole minutes: during holds the opening and closing minutes, before as many just before', () => {
    const w = reportWindows(incident, T0 + 12 * MIN + 1);
    expect(w.during).toEqual({ from: T0, to: T0 + 10 * MIN });
    expect(w.before).toEqual({ from: T0 - 10 * MIN, to: T0 });
    expect(w.after).toEqual({ from: T0 + 10 * MIN, to: T0 + 13 * MIN });
    // Written right at resolving: the after window is empty.
    const atResolve = reportWindows(incident, incident.closed_at!);
    expect(atResolve.after.from).toBe(atResolve.after.to);
  });

  test('rerouted, failed, held, volume by currency and what is still open', () => {
    const r = buildIncidentReport(input());
    expect(r.object).toBe('incident_report');
    expect(r.incident).toMatchObject({ id: incident.id, processor: 'stripe', status: 'resolved' });
    expect(r.incident).not.toHaveProperty('timeline');
    expect(r.timeline).toEqual(incident.timeline);
    expect(r.payments).toEqual({
      read: 6,
      limit: 10_000,
      truncated: false,
      rerouted: 2, // the one that found no other processor is counted as failed
      failed: 2,
      failed_by_code: { card_declined: 1, no_processor_available: 1 },
      held: 4,
    });
    expect(r.rerouted.map((p) => p.payment_id)).toEqual(['pay_0001', 'pay_0002']);
    expect(r.rerouted[0]!.detail).toBe(skipped);
    expect(r.failed.map((p) => [p.payment_id, p.detail])).toEqual([
      ['pay_0004', 'no_processor_available'],
      ['pay_0005', 'card_declined'],
    ]);
    expect(r.volume_by_currency).toEqual([
      {
        currency: 'eur',
        payments: 2,
        amount: 2600,
        approved_payments: 1,
        approved_amount: 2500,
        failed_payments: 0,
        failed_amount: 0,
      },
      {
        currency: 'usd',
        payments: 4,
        amount: 3000,
        approved_payments: 2,
        approved_amount: 2000,
        failed_payments: 2,
        failed_amount: 1000,
      },
    ]);
    expect(r.still_open.payments.map((p) => [p.payment_id, p.status])).toEqual([['pay_0006', 'processing']]);
  });

  test('approval rate per processor before, during and after (the incident processor first)', () => {
    const r = buildIncidentReport(input());
    expect(r.approval.map((a) => a.processor)).toEqual(['stripe', 'adyen']);
    const [stripe, adyen] = r.approval;
    expect(stripe!.before).toMatchObject({
      attempts: 100,
      approved: 95,
      approval_rate: 0.95,
      from: T0 - 10 * MIN,
    });
    expect(stripe!.during).toMatchObject({
      attempts: 52,
      approved: 1,
      approval_rate: 0.5, // of the attempts that got a decision
      technical_error_rate: 0.5769,
      timeout_rate: 0.3846,
    });
    expect(stripe!.after).toMatchObject({ attempts: 10, approval_rate: 0.9 });
    expect(adyen!.during).toMatchObject({ attempts: 205, approval_rate: 0.9 });
    // Nothing yet after: no rate rather than a made-up one.
    expect(adyen!.after).toMatchObject({ attempts: 0, approval_rate: null, p95_latency_ms: null });
  });

  test('the backlog: replayed in the order held, the rest still open; other incidents ignored', () => {
    const r = buildIncidentReport(input());
    expect(r.backlog.held).toBe(4);
    expect(r.backlog.by_kind).toEqual({ cancel: 1, capture: 2, refund: 1 });
    expect(r.backlog.by_status).toEqual({ done: 1, failed: 1, held: 1, released: 1 });
    expect(r.backlog.replayed.map((h) => [h.kind, h.status])).toEqual([
      ['capture', 'done'],
      ['cancel', 'failed'],
    ]);
    expect(r.still_open.operations.map((h) => [h.kind, h.status])).toEqual([
      ['refund', 'held'],
      ['capture', 'released'],
    ]);
  });

  test('truncated input says so; the same input gives the same report', () => {
    expect(buildIncidentReport(input({ paymentsTruncated: true })).payments.truncated).toBe(true);
    expect(JSON.stringify(buildIncidentReport(input()))).toBe(JSON.stringify(buildIncidentReport(input())));
  });

  test('rerouted means skipped because of this incident, by its processor and id', () => {
    expect(reroutedBy(incident, skipped)).toBe(true);
    expect(reroutedBy(incident, undefined)).toBe(false);
    expect(reroutedBy(incident, 'Skipped: adyen is in incident inc_0123456789abcdef (x).')).toBe(false);
    expect(reroutedBy(incident, 'Tried last: stripe: circuit breaker open.')).toBe(false);
  });

  test('CSV: one row per payment or operation, RFC 4180 escaping of commas, quotes and newlines', () => {
    const r = buildIncidentReport(input());
    const rows = incidentReportRows(r);
    expect(rows.map((row) => [row[0], row[2], row[6], row[7]])).toEqual([
      ['rerouted', 'pay_0001', 'payment', 'captured'],
      ['rerouted', 'pay_0002', 'payment', 'authorized'],
      ['failed', 'pay_0004', 'payment', 'failed'],
      ['failed', 'pay_0005', 'payment', 'failed'],
      ['held', 'pay_h120000', 'capture', 'done'],
      ['held', 'pay_h180000', 'refund', 'held'],
      ['held', 'pay_h240000', 'cancel', 'failed'],
      ['held', 'pay_h300000', 'capture', 'released'],
      ['open', 'pay_0006', 'payment', 'processing'],
    ]);
    for (const row of rows) expect(row).toHaveLength(INCIDENT_REPORT_COLUMNS.length);
    const text = [INCIDENT_REPORT_COLUMNS, ...rows].map((row) => csvLine(row)).join('');
    const reader = new CsvReader();
    const parsed = [...reader.push(text), ...reader.end()];
    expect(parsed).toHaveLength(rows.length + 1);
    // The cancel's outcome has a comma and quotes; the reroute explanation has commas.
    const cancel = parsed.find((row) => row[6] === 'cancel')!;
    expect(cancel[11]).toBe('declined: "too late", said stripe');
    expect(text).toContain('"declined: ""too late"", said stripe"');
    expect(parsed[1]![11]).toBe(skipped);
    expect(parsed[1]![10]).toBe(new Date(T0 + MIN).toISOString());
    // A newline inside a field stays inside it.
    const multiline = incidentReportRows(
      buildIncidentReport(
        input({ held: [held('refund', 'failed', MIN, { outcome: 'line one\r\nline two' })] }),
      ),
    ).find((row) => row[0] === 'held')!;
    const back = new CsvReader();
    expect([...back.push(csvLine(multiline)), ...back.end()][0]![11]).toBe('line one\r\nline two');
  });
});

describe('processor incident events', () => {
  const seq = '000000000000000000042';
  const change = (
    eventName: 'INSERT' | 'MODIFY' | 'REMOVE',
    newImage?: Record<string, unknown>,
    oldImage?: Record<string, unknown>,
  ) => ({ eventName, newImage, oldImage, sequenceNumber: seq });
  const item = (status: string) => ({ ...incident, kind: 'incident', status });
  const pointer = (id: string) => ({ kind: 'incident-pointer', incident_id: id });

  test('opened when an incident becomes open (declared: its pointer; confirmed: suspected → open)', () => {
    expect(incidentChange(change('INSERT', pointer(incident.id)))).toEqual({
      type: 'processor.incident.opened',
      incidentId: incident.id,
    });
    expect(
      incidentChange(change('MODIFY', pointer(incident.id), pointer('inc_stale00000000000'))),
    ).toMatchObject({
      type: 'processor.incident.opened',
    });
    expect(incidentChange(change('MODIFY', item('open'), item('suspected')))).toMatchObject({
      type: 'processor.incident.opened',
      incidentId: incident.id,
    });
    expect(incidentChange(change('MODIFY', item('resolved'), item('open')))).toMatchObject({
      type: 'processor.incident.resolved',
    });
  });

  test('nothing for a suspected or dismissed incident, a rewrite, a removal or other items', () => {
    expect(incidentChange(change('INSERT', item('suspected')))).toBeUndefined();
    expect(incidentChange(change('INSERT', item('open')))).toBeUndefined(); // its pointer announces it
    expect(incidentChange(change('MODIFY', item('dismissed'), item('suspected')))).toBeUndefined();
    expect(incidentChange(change('MODIFY', item('open'), item('open')))).toBeUndefined();
    expect(incidentChange(change('MODIFY', pointer(incident.id), pointer(incident.id)))).toBeUndefined();
    expect(incidentChange(change('REMOVE', undefined, pointer(incident.id)))).toBeUndefined();
    expect(incidentChange(change('INSERT', { kind: 'payment', status: 'open' }))).toBeUndefined();
  });

  test('one event per merchant, its id fixed by incident, type and merchant; merchant-facing data only', () => {
    const a = incidentEventDrafts(
      'processor.incident.opened',
      incident,
      ['mch_a', 'mch_b'],
      1_700_000_000,
      seq,
    );
    const again = incidentEventDrafts('processor.incident.opened', incident, ['mch_a'], 1_700_000_999, '7');
    expect(a.map((d) => d.merchantId)).toEqual(['mch_a', 'mch_b']);
    expect(new Set(a.map((d) => d.event.id)).size).toBe(2);
    expect(again[0]!.event.id).toBe(a[0]!.event.id);
    expect(a[0]!.event.data.object).toEqual({
      id: incident.id,
      object: 'processor_incident',
      processor: 'stripe',
      status: 'open',
      opened_at: Math.floor(incident.confirmed_at! / 1000),
      resolved_at: null,
    });
    const resolved = incidentEventDrafts('processor.incident.resolved', incident, ['mch_a'], 1, seq)[0]!;
    expect(resolved.event.id).not.toBe(a[0]!.event.id);
    expect(resolved.event.data.object).toMatchObject({
      status: 'resolved',
      resolved_at: Math.floor(incident.closed_at! / 1000),
    });
    expect(JSON.stringify(a)).not.toContain('timeouts'); // ops' reason stays internal
  });

  test('endpoints may subscribe to them', () => {
    expect(isKnownEventPattern('processor.*')).toBe(true);
    expect(isKnownEventPattern('processor.incident.opened')).toBe(true);
    expect(isKnownEventPattern('processor.incident.closed')).toBe(false);
  });
});
