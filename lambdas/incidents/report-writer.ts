/**
 * Writes the incident report (report.ts builds it) to the reports bucket:
 *
 *   incidents/<processor>/<incident id>.json   the report (IncidentReport)
 *   incidents/<processor>/<incident id>.csv    one row per payment or operation it names
 *
 * Written when the incident is resolved (resolveIncident, lambdas/incidents/service.ts), and again
 * on demand (`paystep incident report ID --rebuild`): the same keys, overwritten, so the latest
 * build is the one read (`paystep incident report ID`, GET /ops/v1/incidents/{id}/report).
 *
 * Bounded, because an incident can last hours on a busy platform and the report is written within
 * an API request: it reads at most MAX_REPORT_PAYMENTS payments created during the incident (every
 * merchant, oldest merchant first) and the timelines of at most MAX_ROUTED_CHECKS of them (only
 * payments that could have been rerouted: created while the incident was open, not at its
 * processor). Beyond either, the report says `payments.truncated: true` and its counts cover what
 * was read.
 */
import type { HeldOperation } from '../domain/backlog.ts';
import type { Incident } from '../domain/incidents.ts';
import type { HealthCounts } from '../domain/processor-health.ts';
import { knownProcessors } from '../connectors/capabilities.ts';
import { CsvReport, publishJson } from '../reports/output.ts';
import { getText } from '../reports/storage.ts';
import { allMerchants } from '../store/merchants.ts';
import { listPayments, timeline } from '../store/payments.ts';
import { healthBetween } from '../store/processor-health.ts';
import {
  buildIncidentReport,
  INCIDENT_REPORT_COLUMNS,
  incidentReportRows,
  reportWindows,
  type IncidentReport,
  type ReportPayment,
} from './report.ts';

export const MAX_REPORT_PAYMENTS = 10_000;
export const MAX_ROUTED_CHECKS = 2_000;
const TIMELINE_READS_AT_ONCE = 8;

export const incidentReportKey = (i: Pick<Incident, 'id' | 'processor'>, ext: 'json' | 'csv') =>
  `incidents/${i.processor}/${i.id}.${ext}`;

export interface WrittenIncidentReport {
  report: IncidentReport;
  json: string;
  csv: string;
  rows: number;
}

/** Payments created during the incident, all merchants, up to `limit`. */
async function paymentsDuring(
  incident: Incident,
  to: number,
  limit: number,
): Promise<{ payments: ReportPayment[]; truncated: boolean }> {
  const gte = Math.floor(incident.opened_at / 1000);
  const lt = Math.floor(to / 1000) + 1;
  const out: ReportPayment[] = [];
  for await (const m of allMerchants()) {
    let after: string | undefined;
    for (;;) {
      const page = await listPayments(m.id, {
        createdGte: gte,
        createdLt: lt,
        limit: 100,
        startingAfter: after,
      });
      for (const p of page.data) {
        if (out.length >= limit) return { payments: out, truncated: true };
        out.push(p);
      }
      if (!page.hasMore || !page.data.length) break;
      after = page.nextStartingAfter ?? page.data.at(-1)!.id;
    }
  }
  return { payments: out, truncated: false };
}

/** The `routed` explanation of each payment that could have been rerouted (at most `limit`). */
async function routedExplanations(
  incident: Incident,
  payments: ReportPayment[],
  limit: number,
): Promise<{ routed: Map<string, string>; truncated: boolean }> {
  const since = Math.floor((incident.confirmed_at ?? incident.opened_at) / 1000);
  const candidates = payments.filter((p) => p.created >= since && p.processor !== incident.processor);
  const routed = new Map<string, string>();
  const chosen = candidates.slice(0, limit);
  for (let i = 0; i < chosen.length; i += TIMELINE_READS_AT_ONCE)
    await Promise.all(
      chosen.slice(i, i + TIMELINE_READS_AT_ONCE).map(async (p) => {
        const entry = (await timeline(p.id)).find((e) => e.event === 'routed');
        if (typeof entry?.explanation === 'string') routed.set(p.id, entry.explanation);
      }),
    );
  return { routed, truncated: candidates.length > limit };
}

/** Reads what the report needs and builds it (nothing written). */
export async function collectIncidentReport(
  incident: Incident,
  held: readonly HeldOperation[],
  asOf = Date.now(),
  limits = { payments: MAX_REPORT_PAYMENTS, routedChecks: MAX_ROUTED_CHECKS },
): Promise<IncidentReport> {
  const w = reportWindows(incident, asOf);
  const read = await paymentsDuring(incident, incident.closed_at ?? asOf, limits.payments);
  const checked = await routedExplanations(incident, read.payments, limits.routedChecks);
  const health: Record<string, { before: HealthCounts; during: HealthCounts; after: HealthCounts }> = {};
  for (const name of knownProcessors()) {
    const [before, during, after] = await Promise.all(
      (['before', 'during', 'after'] as const).map((k) => healthBetween(name, w[k].from, w[k].to)),
    );
    health[name] = { before: before!, during: during!, after: after! };
  }
  return buildIncidentReport({
    incident,
    payments: read.payments,
    paymentsTruncated: read.truncated || checked.truncated,
    paymentsLimit: limits.payments,
    routed: checked.routed,
    health,
    held,
    asOf,
  });
}

/**
 * Builds the report of `incident` and writes it (JSON and CSV) to the reports bucket.
 *
 * `held` is the incident's backlog (HeldOperation, lambdas/domain/backlog.ts): the caller reads
 * it with `listHeld(incident.id)` from lambdas/store/backlog.ts, whose store is built on another
 * branch; until it is wired in, callers pass what they have (resolveIncident passes []).
 */
export async function writeIncidentReport(
  incident: Incident,
  held: readonly HeldOperation[],
  asOf = Date.now(),
): Promise<WrittenIncidentReport> {
  const report = await collectIncidentReport(incident, held, asOf);
  const csv = new CsvReport(incidentReportKey(incident, 'csv'), INCIDENT_REPORT_COLUMNS);
  let out;
  try {
    for (const row of incidentReportRows(report)) await csv.row(row);
    out = await csv.publish();
  } catch (err) {
    csv.discard();
    throw err;
  }
  const json = await publishJson(incidentReportKey(incident, 'json'), {
    ...report,
    csv: out.key,
    csv_sha256: out.sha256,
  });
  return { report, json, csv: out.key, rows: out.rows };
}

/** The report last written for the incident, or undefined when none was. */
export async function readIncidentReport(
  incident: Pick<Incident, 'id' | 'processor'>,
): Promise<(IncidentReport & { csv: string; csv_sha256: string }) | undefined> {
  try {
    return JSON.parse(await getText('reports', incidentReportKey(incident, 'json'))) as IncidentReport & {
      csv: string;
      csv_sha256: string;
    };
  } catch (err) {
    const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.Code === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404)
      return undefined;
    throw err;
  }
}
