/**
 * The audit log (`/console/audit`, audit.read: admin): every operator action, newest first,
 * filtered by operator name or by the object acted on, a page at a time (docs/console.md). An
 * operator limited to one merchant sees that merchant's entries only.
 */
import { AUDIT_CURSOR, listAudit } from '../../store/audit.ts';
import { getOperatorByName, OPERATOR_NAME } from '../../store/operators.ts';
import { html, type Html } from '../html.ts';
import { consoleHref } from '../layout.ts';
import { ConsoleError, type ConsoleRoute } from '../types.ts';
import type { AuditEntry } from '../types.ts';

export const AUDIT_PAGE_SIZE = 50;

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function snapshot(label: string, v: unknown): Html {
  if (v === undefined) return html``;
  return html`<details>
    <summary>${label}</summary>
    <pre class="mono">${JSON.stringify(v, null, 2)}</pre>
  </details>`;
}

function row(e: AuditEntry): Html {
  return html`<tr>
    <td>${when(e.at)}</td>
    <td>
      <a href="${consoleHref('/audit', { operator: e.operator.name })}">${e.operator.name}</a>
      <span class="muted">(${e.operator.role})</span>
    </td>
    <td><code>${e.action}</code></td>
    <td>
      <a href="${consoleHref('/audit', { target_kind: e.target.kind, target_id: e.target.id })}"
        >${e.target.kind} <code>${e.target.id}</code></a
      >
    </td>
    <td>${e.merchant_id ? html`<code>${e.merchant_id}</code>` : '–'}</td>
    <td>${e.note ?? ''}${snapshot('Before', e.before)}${snapshot('After', e.after)}</td>
  </tr>`;
}

export const auditRoutes: ConsoleRoute[] = [
  {
    method: 'GET',
    path: '/audit',
    permission: 'audit.read',
    async handler(req) {
      const q = req.query;
      const operatorName = q.operator?.trim() || undefined;
      const targetKind = q.target_kind?.trim() || undefined;
      const targetId = q.target_id?.trim() || undefined;
      if (operatorName !== undefined && !OPERATOR_NAME.test(operatorName))
        throw new ConsoleError(400, 'The operator filter is not an operator name (a-z 0-9 . _ @ -).');
      if ((targetKind === undefined) !== (targetId === undefined))
        throw new ConsoleError(400, 'Filter by an object with both its kind and its id.');
      if (q.after !== undefined && !AUDIT_CURSOR.test(q.after))
        throw new ConsoleError(400, 'The page cursor is malformed: start again from the first page.');
      let operatorId: string | undefined;
      let entries: AuditEntry[] = [];
      let next: string | undefined;
      const known = operatorName === undefined ? undefined : await getOperatorByName(operatorName);
      if (operatorName === undefined || known) {
        operatorId = known?.id;
        const page = await listAudit({
          limit: AUDIT_PAGE_SIZE,
          ...(operatorId ? { operatorId } : {}),
          ...(targetKind && targetId ? { target: { kind: targetKind, id: targetId } } : {}),
          ...(q.after ? { after: q.after } : {}),
        });
        // An operator limited to one merchant sees the entries about that merchant's objects only.
        const mine = req.operator.merchant_id;
        entries = mine === undefined ? page.data : page.data.filter((e) => e.merchant_id === mine);
        next = page.next;
      }
      const filters = { operator: operatorName, target_kind: targetKind, target_id: targetId };
      const body = html`<h1>Audit log</h1>
        <form
          method="get"
          action="/console/audit"
          class="filters"
          role="search"
          aria-label="Filter the audit log"
        >
          <div>
            <label for="f-operator">Operator name</label
            ><input id="f-operator" name="operator" value="${operatorName ?? ''}" />
          </div>
          <div>
            <label for="f-kind">Object kind</label
            ><input id="f-kind" name="target_kind" value="${targetKind ?? ''}" placeholder="payment" />
          </div>
          <div>
            <label for="f-id">Object id</label
            ><input id="f-id" name="target_id" value="${targetId ?? ''}" placeholder="pay_…" />
          </div>
          <div><button type="submit">Filter</button></div>
          ${operatorName || targetKind ? html`<div><a href="/console/audit">Clear filters</a></div>` : ''}
        </form>
        ${
          entries.length
            ? html`<table>
                <caption>
                  Operator actions, newest first
                </caption>
                <thead>
                  <tr>
                    <th scope="col">When (UTC)</th>
                    <th scope="col">Operator</th>
                    <th scope="col">Action</th>
                    <th scope="col">Object</th>
                    <th scope="col">Merchant</th>
                    <th scope="col">Note, before and after</th>
                  </tr>
                </thead>
                <tbody>
                  ${entries.map(row)}
                </tbody>
              </table>`
            : html`<p>No entries${operatorName || targetKind ? ' match these filters' : ' yet'}.</p>`
        }
        <nav class="pager" aria-label="Pages">
          ${q.after ? html`<a href="${consoleHref('/audit', filters)}">First page</a>` : ''}
          ${next ? html`<a href="${consoleHref('/audit', { ...filters, after: next })}" rel="next">Older entries</a>` : ''}
        </nav>`;
      return { kind: 'page', title: 'Audit log', nav: 'audit', body };
    },
  },
];
