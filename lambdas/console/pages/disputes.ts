/**
 * Disputes (docs/console.md "Screens"): the disputes that need an answer, soonest evidence deadline
 * first, those due within 3 days at the top; one dispute with its payment, explanation and
 * timeline; evidence and acceptance through the same service as POST /v1/disputes/{id}/evidence
 * and /accept (lambdas/disputes/service.ts), idempotent like the API's (a form sent twice submits
 * once), audited as `dispute.evidence` / `dispute.accept`.
 */
import { createHash } from 'node:crypto';
import { disputes as disputeConnector } from '../../connectors/registry.ts';
import { FILE_EVIDENCE_FIELDS, type Evidence, type EvidenceField } from '../../connectors/disputes.ts';
import { ANSWERABLE, explainDispute } from '../../disputes/model.ts';
import { acceptDispute, submitDisputeEvidence } from '../../disputes/service.ts';
import { answerableDisputes, getDispute, type DisputeRecord } from '../../store/disputes.ts';
import { idempotent, requestHash } from '../../store/idempotency.ts';
import { timeline } from '../../store/payments.ts';
import { html, type Html } from '../html.ts';
import { can } from '../model.ts';
import { at, atSeconds, money, mustSee, relative, service } from '../ops-view.ts';
import { csrfField } from '../layout.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';

/** A dispute due within this is listed first and marked urgent. */
export const DUE_SOON_MS = 3 * 86_400_000;
/** The most disputes the list shows. */
export const LIST_LIMIT = 200;

/** A dispute status as a person reads it (the processor's word for an inquiry is "warning"). */
export function disputeStatusText(status: string): string {
  const inquiry = status.startsWith('warning_');
  const rest = (inquiry ? status.slice('warning_'.length) : status).replace(/_/g, ' ');
  const words = rest === 'needs response' ? 'needs a response' : rest;
  return inquiry ? `inquiry, ${words}` : words;
}

/** A deadline in the explanation: the same UTC minute as the rest of the page, never ISO text. */
export const dueText = (s: number): string =>
  `${new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

const dueMs = (d: DisputeRecord) => (d.evidence_due_by === null ? Infinity : d.evidence_due_by * 1000);

function disputeRows(list: DisputeRecord[], now: number): Html {
  return html`${list.map(
    (d) =>
      html`<tr>
        <td>${d.evidence_due_by === null ? 'no deadline' : atSeconds(d.evidence_due_by)}</td>
        <td>${d.evidence_due_by === null ? '—' : relative(dueMs(d), now)}</td>
        <th scope="row"><a href="/console/disputes/${d.id}">${d.id}</a></th>
        <td>${d.merchant_id}</td>
        <td><a href="/console/payments/${d.payment_id}">${d.payment_id}</a></td>
        <td>${money(d.amount, d.currency)}</td>
        <td>${d.reason.replace(/_/g, ' ')}</td>
        <td>${disputeStatusText(d.status)}</td>
      </tr>`,
  )}`;
}

function disputeTable(caption: string, list: DisputeRecord[], now: number, cls = ''): Html {
  return html`<table class="${cls}">
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        <th scope="col">Evidence due</th>
        <th scope="col">Due</th>
        <th scope="col">Dispute</th>
        <th scope="col">Merchant</th>
        <th scope="col">Payment</th>
        <th scope="col">Amount</th>
        <th scope="col">Reason</th>
        <th scope="col">Status</th>
      </tr>
    </thead>
    <tbody>
      ${disputeRows(list, now)}
    </tbody>
  </table>`;
}

async function list(req: ConsoleRequest): Promise<ConsoleResponse> {
  if (req.query.id !== undefined) return find(req);
  const { data, hasMore } = await answerableDisputes({
    limit: LIST_LIMIT,
    merchantId: req.operator.merchant_id,
  });
  const soon = data.filter((d) => dueMs(d) - req.now <= DUE_SOON_MS);
  const later = data.filter((d) => dueMs(d) - req.now > DUE_SOON_MS);
  const body = html`<h1>Disputes</h1>
    <p>Disputes that need an answer (evidence or acceptance), soonest evidence deadline first.</p>
    <section aria-labelledby="due-soon">
      <h2 id="due-soon">Due within 3 days (${soon.length})</h2>
      ${
        soon.length ? disputeTable('Disputes due within 3 days', soon, req.now, 'urgent') : html`<p>None.</p>`
      }
    </section>
    <section aria-labelledby="due-later">
      <h2 id="due-later">Due later (${later.length})</h2>
      ${later.length ? disputeTable('Disputes due later', later, req.now) : html`<p>None.</p>`}
    </section>
    ${hasMore ? html`<p>Showing the ${LIST_LIMIT} soonest; answer these first.</p>` : ''}
    <form method="get" action="/console/disputes">
      <label for="dispute-id">Open a dispute by id</label>
      <input id="dispute-id" name="id" placeholder="dp_…" required />
      <button type="submit">Open</button>
    </form>`;
  return { kind: 'page', title: 'Disputes', nav: 'disputes', body };
}

async function visibleDispute(req: ConsoleRequest, id: string): Promise<DisputeRecord> {
  const d = await getDispute(id);
  if (!d) throw new ConsoleError(404, `No such dispute: ${id}`);
  mustSee(req, d.merchant_id, 'dispute', id);
  return d;
}

/** The dispute's story: from the dispute itself and its entries on the payment's timeline. */
async function disputeTimeline(d: DisputeRecord): Promise<{ at: number; what: string }[]> {
  const out: { at: number; what: string }[] = [
    { at: d.created * 1000, what: `opened: ${d.reason.replace(/_/g, ' ')}` },
  ];
  for (const e of await timeline(d.payment_id)) {
    if (e.type !== 'dispute' || e.dispute !== d.id) continue;
    const when = typeof e.at === 'string' ? Date.parse(e.at) : NaN;
    const fields = Array.isArray(e.fields)
      ? ` (${(e.fields as string[]).map((f) => label(f as EvidenceField).toLowerCase()).join(', ')})`
      : '';
    const status = typeof e.status === 'string' ? ` → ${disputeStatusText(e.status)}` : '';
    out.push({
      at: Number.isFinite(when) ? when : d.updated * 1000,
      what: `${String(e.event ?? 'update').replace(/_/g, ' ')}${status}${fields}`,
    });
  }
  for (const r of d.reminders ?? []) out.push({ at: r.at * 1000, what: `merchant reminded (${r.kind})` });
  for (const x of d.escalations ?? []) out.push({ at: x.at * 1000, what: `escalated: ${x.reason}` });
  if (d.closed_at) out.push({ at: d.closed_at * 1000, what: `closed: ${disputeStatusText(d.status)}` });
  return out.sort((a, b) => a.at - b.at);
}

const TEXT_FIELD_LABELS: Partial<Record<EvidenceField, string>> = {
  uncategorized_text: 'Other evidence (text)',
};
const label = (f: EvidenceField) =>
  TEXT_FIELD_LABELS[f] ?? f.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

async function textFields(d: DisputeRecord): Promise<EvidenceField[]> {
  const c = await disputeConnector(d.processor);
  const files = new Set<string>(FILE_EVIDENCE_FIELDS);
  return c.evidence.fields.filter((f) => !files.has(f));
}

async function show(req: ConsoleRequest): Promise<ConsoleResponse> {
  const d = await visibleDispute(req, req.params.id!);
  const answerable = ANSWERABLE.includes(d.status);
  const mayRespond = can(req.operator.role, 'disputes.respond') && answerable;
  const events = await disputeTimeline(d);
  const fields = mayRespond ? await textFields(d) : [];
  const due = d.evidence_due_by === null ? null : d.evidence_due_by * 1000;
  const body = html`<h1>Dispute ${d.id}</h1>
    <p>${explainDispute(d, dueText)}</p>
    <dl>
      <dt>Status</dt>
      <dd>${disputeStatusText(d.status)}</dd>
      <dt>Payment</dt>
      <dd><a href="/console/payments/${d.payment_id}">${d.payment_id}</a></dd>
      <dt>Merchant</dt>
      <dd>${d.merchant_id}</dd>
      <dt>Amount</dt>
      <dd>${money(d.amount, d.currency)}</dd>
      <dt>Reason</dt>
      <dd>
        ${d.reason.replace(/_/g, ' ')}${d.network_reason_code ? ` (network code ${d.network_reason_code})` : ''}
      </dd>
      <dt>Evidence due</dt>
      <dd>${due === null ? 'no deadline' : html`${at(due)} (${relative(due, req.now)})`}</dd>
      <dt>Processor</dt>
      <dd>${d.processor} ${d.processor_reference}</dd>
      <dt>Evidence</dt>
      <dd>
        ${d.has_evidence ? `submitted ${d.submission_count === 1 ? 'once' : `${d.submission_count} times`}` : 'none yet'}
      </dd>
      <dt>Funds withdrawn / reinstated</dt>
      <dd>
        ${money(d.funds_withdrawn_amount, d.currency)} / ${money(d.funds_reinstated_amount, d.currency)}
      </dd>
      <dt>Dispute fee</dt>
      <dd>${money(d.dispute_fee, d.currency)}</dd>
    </dl>
    <h2>Timeline</h2>
    <table>
      <caption>
        What happened to this dispute
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">What</th>
        </tr>
      </thead>
      <tbody>
        ${events.map(
          (e) =>
            html`<tr>
              <td>${at(e.at)}</td>
              <td>${e.what}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${
      mayRespond
        ? html`<h2>Submit evidence</h2>
            <form method="post" action="/console/disputes/${d.id}/evidence">
              ${csrfField(req)}
              <p>
                Fill in what applies; empty fields are not sent. It goes to ${d.processor} and then to the
                cardholder's bank.
              </p>
              ${fields.map(
                (f) =>
                  html`<div class="field">
                    <label for="ev-${f}">${label(f)}</label>
                    <textarea
                      id="ev-${f}"
                      name="${f}"
                      rows="${f === 'uncategorized_text' ? 4 : 1}"
                    ></textarea>
                  </div>`,
              )}
              <button type="submit">Submit evidence</button>
            </form>
            <h2>Accept the dispute</h2>
            <form method="post" action="/console/disputes/${d.id}/accept">
              ${csrfField(req)}
              <p>
                ${
                  d.funds_withdrawn_amount > 0
                    ? html`Accepting cannot be undone: the withdrawn
                      ${money(d.funds_withdrawn_amount, d.currency)} goes back to the cardholder.`
                    : html`Accepting cannot be undone: the merchant does not answer the inquiry and closes it.
                      No funds were withdrawn.`
                }
              </p>
              <input type="checkbox" id="accept-confirm" name="confirm" value="yes" required />
              <label for="accept-confirm">I understand that accepting loses the dispute</label>
              <button type="submit">Accept dispute</button>
            </form>`
        : ''
    }`;
  return { kind: 'page', title: `Dispute ${d.id}`, nav: 'disputes', body };
}

/** What an audit entry records of a dispute before and after an answer. */
const snapshot = (d: DisputeRecord) => ({
  status: d.status,
  has_evidence: d.has_evidence,
  submission_count: d.submission_count,
  accepted_by_merchant: d.accepted_by_merchant,
});

/** Runs an answer once: a form sent again replays the first answer (the API's idempotency store). */
async function once(
  d: DisputeRecord,
  idemKey: string,
  hash: string,
  operation: string,
  fn: Parameters<typeof idempotent>[3],
): Promise<{ replayed: boolean }> {
  const { response, replayed } = await service(() =>
    idempotent(d.merchant_id, idemKey, hash, fn, { operation }),
  );
  if (response.status >= 400) {
    const message = (response.body as { error?: { message?: string } }).error?.message ?? 'refused';
    throw new ConsoleError(response.status === 404 ? 404 : response.status === 409 ? 409 : 400, message);
  }
  return { replayed };
}

async function evidence(req: ConsoleRequest): Promise<ConsoleResponse> {
  const d = await visibleDispute(req, req.params.id!);
  const allowed = new Set(await textFields(d));
  const ev: Evidence = {};
  for (const [k, v] of Object.entries(req.form)) {
    if (k === 'csrf') continue;
    if (!allowed.has(k as EvidenceField)) throw new ConsoleError(400, `Unknown evidence field: ${k}`);
    if (v.trim()) ev[k as EvidenceField] = v.trim();
  }
  if (!Object.keys(ev).length) throw new ConsoleError(400, 'Fill in at least one evidence field.');
  const body = { evidence: ev, submit: true };
  const hash = requestHash('POST', `/v1/disputes/${d.id}/evidence`, body);
  const key = `console-evidence-${createHash('sha256').update(hash).digest('hex').slice(0, 40)}`;
  const { replayed } = await once(d, key, hash, 'dispute.evidence', async (_id, progress) => {
    const after = await submitDisputeEvidence(d.merchant_id, d.id, body, hash, progress);
    return { status: 200, body: { status: after.status } };
  });
  if (replayed)
    return { kind: 'redirect', to: `/disputes/${d.id}`, flash: 'This evidence was submitted already.' };
  const after = (await getDispute(d.id))!;
  await req.audit({
    action: 'dispute.evidence',
    target: { kind: 'dispute', id: d.id },
    merchant_id: d.merchant_id,
    before: snapshot(d),
    after: { ...snapshot(after), fields: Object.keys(ev).sort() },
  });
  return {
    kind: 'redirect',
    to: `/disputes/${d.id}`,
    flash: `Evidence submitted; the dispute is ${disputeStatusText(after.status)}.`,
  };
}

async function accept(req: ConsoleRequest): Promise<ConsoleResponse> {
  const d = await visibleDispute(req, req.params.id!);
  if (req.form.confirm !== 'yes')
    throw new ConsoleError(400, 'Tick the box to confirm that accepting loses the dispute.');
  const hash = requestHash('POST', `/v1/disputes/${d.id}/accept`, null);
  const { replayed } = await once(
    d,
    `console-accept-${d.id}`,
    hash,
    'dispute.accept',
    async (_id, progress) => {
      const after = await acceptDispute(d.merchant_id, d.id, progress);
      return { status: 200, body: { status: after.status } };
    },
  );
  if (replayed)
    return { kind: 'redirect', to: `/disputes/${d.id}`, flash: 'This dispute was accepted already.' };
  const after = (await getDispute(d.id))!;
  await req.audit({
    action: 'dispute.accept',
    target: { kind: 'dispute', id: d.id },
    merchant_id: d.merchant_id,
    before: snapshot(d),
    after: snapshot(after),
  });
  return {
    kind: 'redirect',
    to: `/disputes/${d.id}`,
    flash: `Dispute accepted; it is ${disputeStatusText(after.status)}.`,
  };
}

async function find(req: ConsoleRequest): Promise<ConsoleResponse> {
  const id = (req.query.id ?? '').trim();
  if (!/^d[pu]_[0-9A-Za-z]{6,60}$/.test(id))
    throw new ConsoleError(400, `Not a dispute id: ${id || '(empty)'}`);
  await visibleDispute(req, id);
  return { kind: 'redirect', to: `/disputes/${id}` };
}

export const disputeRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/disputes', permission: 'disputes.read', handler: list },
  { method: 'GET', path: '/disputes/{id}', permission: 'disputes.read', handler: show },
  { method: 'POST', path: '/disputes/{id}/evidence', permission: 'disputes.respond', handler: evidence },
  { method: 'POST', path: '/disputes/{id}/accept', permission: 'disputes.respond', handler: accept },
];
