/**
 * Finance (docs/console.md "Screens", docs/finance.md): reconciliation runs and open exceptions with
 * "resolve with a note" (lambdas/reconciliation/exceptions.ts, as `paystep reconcile
 * resolve`; audited `reconciliation.resolve`), reports from the reports bucket (listed by owner,
 * kind and day, the first rows previewed as a table, downloaded through the console), and the
 * ledger's invariant check with the balances (finance-ledger.ts, run in the background). Each part
 * shows only with its permission (reconciliation.read, reports.read, ledger.read).
 *
 * An operator limited to one merchant sees that merchant's exceptions, reports and balances; payout
 * runs (every merchant's money in one payout) and platform reports are not theirs to see.
 */
import { CsvReader } from '../../reports/csv.ts';
import { REPORT_NAMES } from '../../reports/finance.ts';
import { getStream, listObjects } from '../../reports/storage.ts';
import { reportFile } from '../downloads.ts';
import {
  EXCEPTION_ALREADY_RESOLVED,
  EXCEPTION_NOT_FOUND,
  ExceptionResolutionError,
  resolveException,
} from '../../reconciliation/exceptions.ts';
import { fileProcessors } from '../../reconciliation/sources/index.ts';
import { listRuns, PLATFORM, someOpenExceptions, type StoredException } from '../../store/reconciliation.ts';
import { html, type Html } from '../html.ts';
import { can } from '../model.ts';
import { field, merchantPicker, money } from '../ops-view.ts';
import { csrfField } from '../layout.ts';
import { exceptionReason } from './exception-text.ts';
import { ledgerRoutes } from './finance-ledger.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';

/** Runs listed per processor; exceptions shown; report files listed; rows previewed. */
export const RUNS_SHOWN = 20;
export const EXCEPTIONS_SHOWN = 500;
/** Open exceptions read for the overview (a bound whatever the backlog). */
export const EXCEPTIONS_READ = 2000;
export const REPORT_FILES_SHOWN = 500;
export const PREVIEW_ROWS = 20;
/** Without a day, the reports of the last this many days are listed. */
export const RECENT_DAYS = 31;

const REPORT_KINDS = [...REPORT_NAMES, 'reconciliation', 'exceptions'] as const;
const REPORT_KEY =
  /^([A-Za-z0-9_]{1,64})\/([a-z_]{1,40})\/(\d{4}-\d{2}-\d{2})\/([A-Za-z0-9_.-]{1,120})\.(csv|json)$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

const ageDays = (firstSeen: string, now: number) =>
  Math.max(
    0,
    Math.floor(
      (Date.parse(`${new Date(now).toISOString().slice(0, 10)}T00:00:00Z`) -
        Date.parse(`${firstSeen}T00:00:00Z`)) /
        86_400_000,
    ),
  );

function exceptionTable(req: ConsoleRequest, list: StoredException[]): Html {
  const mayResolve = can(req.operator.role, 'reconciliation.resolve');
  return html`<table>
    <caption>
      Open exceptions, oldest first (${list.length})
    </caption>
    <thead>
      <tr>
        <th scope="col">Exception</th>
        <th scope="col">Type</th>
        <th scope="col">Owner</th>
        <th scope="col">Processor</th>
        <th scope="col">Payment</th>
        <th scope="col">Expected</th>
        <th scope="col">Actual</th>
        <th scope="col">Reason</th>
        <th scope="col">First seen</th>
        <th scope="col">Age (days)</th>
        ${mayResolve ? html`<th scope="col">Resolve</th>` : ''}
      </tr>
    </thead>
    <tbody>
      ${list.map((e, i) => {
        const owner = e.merchant_id ?? PLATFORM;
        return html`<tr>
          <th scope="row">${e.id}</th>
          <td>${e.type}</td>
          <td>${owner}</td>
          <td>${e.processor}</td>
          <td>
            ${e.payment_id ? html`<a href="/console/payments/${e.payment_id}">${e.payment_id}</a>` : '—'}
          </td>
          <td>${money(e.expected, e.currency)}</td>
          <td>${money(e.actual, e.currency)}</td>
          <td>${exceptionReason(e.reason, e.currency)}</td>
          <td>${e.first_seen}</td>
          <td>${ageDays(e.first_seen, req.now)}</td>
          ${
            mayResolve
              ? html`<td>
                  <form method="post" action="/console/finance/exceptions/resolve">
                    ${csrfField(req)}
                    <input type="hidden" name="owner" value="${owner}" />
                    <input type="hidden" name="id" value="${e.id}" />
                    <label for="note-${i}">Note for ${e.id}</label>
                    <input id="note-${i}" name="note" required maxlength="1000" />
                    <button type="submit">Resolve</button>
                  </form>
                </td>`
              : ''
          }
        </tr>`;
      })}
    </tbody>
  </table>`;
}

async function overview(req: ConsoleRequest): Promise<ConsoleResponse> {
  const limited = req.operator.merchant_id;
  // A bounded read: at most EXCEPTIONS_READ open exceptions (in the listing's owner order), the
  // oldest of them shown first.
  const open = await someOpenExceptions(EXCEPTIONS_READ, limited);
  const exceptions = open.data
    .sort((a, b) =>
      a.first_seen !== b.first_seen ? (a.first_seen < b.first_seen ? -1 : 1) : a.id < b.id ? -1 : 1,
    )
    .slice(0, EXCEPTIONS_SHOWN);
  const runs = limited
    ? []
    : (await Promise.all(fileProcessors().map((p) => listRuns(p, RUNS_SHOWN)))).flat();
  runs.sort((a, b) => (a.payout_date < b.payout_date ? 1 : a.payout_date > b.payout_date ? -1 : 0));
  const body = html`<h1>Finance</h1>
    <nav aria-label="Finance">
      <ul>
        <li><a href="/console/finance">Reconciliation</a></li>
        ${can(req.operator.role, 'reports.read') ? html`<li><a href="/console/finance/reports">Reports</a></li>` : ''}
        ${can(req.operator.role, 'ledger.read') ? html`<li><a href="/console/finance/ledger">Ledger</a></li>` : ''}
      </ul>
    </nav>
    <h2>Open exceptions</h2>
    ${exceptions.length ? exceptionTable(req, exceptions) : html`<p>No open exceptions.</p>`}
    ${
      open.more
        ? html`<p>
            More than ${EXCEPTIONS_READ.toLocaleString('en-US')} exceptions are open: the oldest of the first
            ${EXCEPTIONS_READ.toLocaleString('en-US')} are shown (by owner); resolve some, or list them with
            <code>paystep reconcile exceptions</code>.
          </p>`
        : ''
    }
    ${
      limited
        ? ''
        : html`<h2>Reconciliation runs</h2>
            ${
              runs.length
                ? html`<table>
                    <caption>
                      Reconciled payouts, newest first
                    </caption>
                    <thead>
                      <tr>
                        <th scope="col">Payout</th>
                        <th scope="col">Processor</th>
                        <th scope="col">Date</th>
                        <th scope="col">Amount</th>
                        <th scope="col">Status</th>
                        <th scope="col">Lines</th>
                        <th scope="col">Matched</th>
                        <th scope="col">Exceptions</th>
                        <th scope="col">Report</th>
                      </tr>
                    </thead>
                    <tbody>
                      ${runs.map(
                        (r) =>
                          html`<tr>
                            <th scope="row">${r.payout_id}</th>
                            <td>${r.processor}</td>
                            <td>${r.payout_date}</td>
                            <td>${money(r.amount, r.currency)}</td>
                            <td>${r.status.replace(/_/g, ' ')}</td>
                            <td>${r.items}</td>
                            <td>${r.matched}</td>
                            <td>
                              ${
                                Object.entries(r.exceptions)
                                  .map(([t, n]) => `${t}: ${n}`)
                                  .join(', ') || 'none'
                              }
                            </td>
                            <td>
                              ${r.reports
                                .filter((k) => k.endsWith('.csv'))
                                .map(
                                  (k) =>
                                    html`<a
                                      href="/console/finance/reports/preview?key=${encodeURIComponent(k)}"
                                      >${k.split('/')[0]}: ${k.split('/').pop()}</a
                                    > `,
                                )}
                            </td>
                          </tr>`,
                      )}
                    </tbody>
                  </table>`
                : html`<p>No payouts reconciled yet.</p>`
            }`
    }`;
  return { kind: 'page', title: 'Finance', nav: 'finance', body };
}

async function resolve(req: ConsoleRequest): Promise<ConsoleResponse> {
  const id = field(req, 'id', { required: true, max: 300 });
  const owner = field(req, 'owner', { required: true, max: 100 });
  const note = field(req, 'note', { max: 1000 });
  if (!note) throw new ConsoleError(400, 'Write a note saying how the exception was resolved.');
  if (req.operator.merchant_id && owner !== req.operator.merchant_id)
    throw new ConsoleError(404, `No such reconciliation exception: ${id}`);
  let r;
  try {
    r = await resolveException(id, note, `console:${req.operator.id}`, { owner, now: req.now });
  } catch (err) {
    if (err instanceof ExceptionResolutionError)
      throw new ConsoleError(
        err.code === EXCEPTION_NOT_FOUND ? 404 : err.code === EXCEPTION_ALREADY_RESOLVED ? 409 : 400,
        err.message,
        { cause: err },
      );
    throw err;
  }
  await req.audit({
    action: 'reconciliation.resolve',
    target: { kind: 'reconciliation_exception', id },
    ...(r.before.merchant_id ? { merchant_id: r.before.merchant_id } : {}),
    before: { status: r.before.status },
    after: { status: r.after.status, resolved_on: r.after.resolved_on, resolution: r.after.resolution },
    note,
  });
  return { kind: 'redirect', to: '/finance', flash: `Exception ${id} resolved.` };
}

/** The owner whose reports are listed: the operator's merchant, else `?owner=` (default platform). */
function reportOwner(req: ConsoleRequest): string {
  if (req.operator.merchant_id) return req.operator.merchant_id;
  const o = (req.query.owner ?? req.query.merchant ?? '').trim() || PLATFORM;
  if (!/^[A-Za-z0-9_]{1,64}$/.test(o)) throw new ConsoleError(400, `Not a merchant id: ${o}`);
  return o;
}

async function reports(req: ConsoleRequest): Promise<ConsoleResponse> {
  const owner = reportOwner(req);
  const kind = req.query.kind || undefined;
  const date = req.query.date || undefined;
  if (kind && !(REPORT_KINDS as readonly string[]).includes(kind))
    throw new ConsoleError(400, `Unknown report kind: ${kind} (${REPORT_KINDS.join(', ')})`);
  if (date && !DAY.test(date)) throw new ConsoleError(400, `Not a day: ${date} (yyyy-mm-dd)`);
  // One owner's reports of one day, or of the last RECENT_DAYS days (S3 lists keys in order, so
  // each kind's listing starts after the day before them): bounded listings, never the whole bucket.
  const since = new Date(req.now - RECENT_DAYS * 86_400_000).toISOString().slice(0, 10);
  const files: { key: string; kind: string; date: string; file: string; bytes: number }[] = [];
  let more = false;
  listing: for (const k of kind ? [kind] : REPORT_KINDS) {
    const prefix = date ? `${owner}/${k}/${date}/` : `${owner}/${k}/`;
    for await (const o of listObjects('reports', prefix, date ? undefined : `${owner}/${k}/${since}`)) {
      const m = REPORT_KEY.exec(o.key);
      if (!m) continue;
      if (files.length >= REPORT_FILES_SHOWN) {
        more = true;
        break listing;
      }
      files.push({ key: o.key, kind: m[2]!, date: m[3]!, file: `${m[4]}.${m[5]}`, bytes: o.size });
    }
  }
  files.sort((a, b) => (a.date !== b.date ? (a.date < b.date ? 1 : -1) : a.key < b.key ? -1 : 1));
  const picker = req.operator.merchant_id
    ? html``
    : await merchantPicker(req, '/finance/reports', owner === PLATFORM ? undefined : owner, { kind, date });
  const body = html`<h1>Reports</h1>
    <p><a href="/console/finance">Back to finance</a></p>
    ${picker}
    <form method="get" action="/console/finance/reports">
      ${req.operator.merchant_id ? '' : html`<input type="hidden" name="owner" value="${owner}" />`}
      <label for="report-kind">Report</label>
      <select id="report-kind" name="kind">
        <option value="">Every report</option>
        ${REPORT_KINDS.map((k) => html`<option value="${k}" ${k === kind ? html`selected` : ''}>${k}</option>`)}
      </select>
      <label for="report-date">Day</label>
      <input id="report-date" name="date" type="date" value="${date ?? ''}" />
      <button type="submit">List</button>
    </form>
    <p>
      Reports of
      ${owner === PLATFORM ? 'the platform (every merchant)' : owner}${kind ? `, ${kind}` : ''}${
        date ? `, ${date}` : `, the last ${RECENT_DAYS} days (choose a day for older ones)`
      }.
    </p>
    ${
      files.length
        ? html`<table>
              <caption>
                Report files, newest day first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Day</th>
                  <th scope="col">Report</th>
                  <th scope="col">File</th>
                  <th scope="col">Size</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                ${files.map(
                  (f) =>
                    html`<tr>
                      <td>${f.date}</td>
                      <td>${f.kind}</td>
                      <th scope="row">${f.file}</th>
                      <td>${f.bytes.toLocaleString('en-US')} bytes</td>
                      <td>
                        ${f.file.endsWith('.csv') ? html`<a href="/console/finance/reports/preview?key=${encodeURIComponent(f.key)}">Preview</a> · ` : ''}<a
                          href="/console/finance/reports/download?key=${encodeURIComponent(f.key)}"
                          >Download</a
                        >
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${more ? html`<p>Only the first ${REPORT_FILES_SHOWN} files are listed: choose a report and a day.</p>` : ''}`
        : html`<p>No reports.</p>`
    }`;
  return { kind: 'page', title: 'Reports', nav: 'finance', body };
}

/** A report's key from `?key=`, checked to be a report file this operator may read. */
function reportKey(req: ConsoleRequest): { key: string; file: string } {
  const key = req.query.key ?? '';
  const m = REPORT_KEY.exec(key);
  if (!m || m[1] === 'system') throw new ConsoleError(400, `Not a report file: ${key || '(empty)'}`);
  if (req.operator.merchant_id && m[1] !== req.operator.merchant_id)
    throw new ConsoleError(404, `No such report: ${key}`);
  return { key, file: `${m[1]}-${m[2]}-${m[3]}-${m[4]}.${m[5]}` };
}

const missing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
};

async function preview(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { key } = reportKey(req);
  if (!key.endsWith('.csv'))
    throw new ConsoleError(400, 'Only CSV reports have a preview; download the JSON.');
  const rows: string[][] = [];
  const reader = new CsvReader();
  const decoder = new TextDecoder('utf-8');
  let stream;
  try {
    stream = await getStream('reports', key);
  } catch (err) {
    if (missing(err)) throw new ConsoleError(404, `No such report: ${key}`);
    throw err;
  }
  try {
    for await (const chunk of stream) {
      rows.push(...reader.push(decoder.decode(chunk as Buffer, { stream: true })));
      if (rows.length > PREVIEW_ROWS) break;
    }
    if (rows.length <= PREVIEW_ROWS) rows.push(...reader.push(`${decoder.decode()}\n`));
  } finally {
    stream.destroy();
  }
  const [header = [], ...data] = rows;
  const shown = data.slice(0, PREVIEW_ROWS);
  const body = html`<h1>Report ${key}</h1>
    <p>
      <a href="/console/finance/reports">Back to reports</a> ·
      <a href="/console/finance/reports/download?key=${encodeURIComponent(key)}">Download the whole file</a>
    </p>
    <div class="scroll">
      <table>
        <caption>
          The first ${shown.length} rows${data.length > PREVIEW_ROWS ? ' (the file has more)' : ''}
        </caption>
        <thead>
          <tr>
            ${header.map((h) => html`<th scope="col">${h}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${shown.map(
            (r) =>
              html`<tr>
                ${r.map((v) => html`<td>${v}</td>`)}
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  return { kind: 'page', title: 'Report preview', nav: 'finance', body };
}

async function download(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { key, file } = reportKey(req);
  const contentType = key.endsWith('.csv') ? 'text/csv; charset=utf-8' : 'application/json';
  try {
    return await reportFile(key, file, contentType);
  } catch (err) {
    if (missing(err)) throw new ConsoleError(404, `No such report: ${key}`);
    throw err;
  }
}

export const financeRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/finance', permission: 'reconciliation.read', handler: overview },
  {
    method: 'POST',
    path: '/finance/exceptions/resolve',
    permission: 'reconciliation.resolve',
    handler: resolve,
  },
  { method: 'GET', path: '/finance/reports', permission: 'reports.read', handler: reports },
  { method: 'GET', path: '/finance/reports/preview', permission: 'reports.read', handler: preview },
  { method: 'GET', path: '/finance/reports/download', permission: 'reports.read', handler: download },
  ...ledgerRoutes,
];
