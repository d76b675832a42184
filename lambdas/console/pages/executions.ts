/**
 * Executions (`/executions`, executions.read): a state machine's executions by status (running,
 * waiting on a task token, failed, timed out, aborted, succeeded), newest first, each linked to its
 * payment where it has one; `/executions/{arn or name}`: the graph with the path taken and every
 * state's input, output and timing. Acting (executions.act, audited):
 *
 * - **stop** a running execution (StopExecution; the payment keeps its status, and the sweeper
 *   gives an authorized or waiting payment a new workflow, as for any workflow that died);
 * - **re-drive** a payment workflow that has ended while its payment still needs one (processing,
 *   authorized, waiting for the customer) through the sweeper's own re-drive
 *   (lambdas/sweeper/run.ts `redrivePayment`): a new execution `<payment>-r<n>` whose steps are
 *   idempotent. Step Functions' RedriveExecution is not offered: the local runtime does not
 *   implement it, and the sweeper's path is the one whose safety the tests prove.
 *
 * An operator limited to a merchant sees the executions of that merchant's payments and refunds
 * only.
 */
import type { Payment } from '../../domain/payment.ts';
import { getPayment } from '../../store/payments.ts';
import { getRefund } from '../../store/refunds.ts';
import { getPayments } from '../../store/payment-search.ts';
import { REDRIVABLE_STATUSES, redrivePayment } from '../../sweeper/run.ts';
import { html, type Html } from '../html.ts';
import { csrfField } from '../layout.ts';
import { can, seesMerchant, type Operator } from '../model.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';
import {
  describeExecution,
  EXECUTION_FILTERS,
  executionArnOf,
  isMachine,
  listExecutionsPage,
  machineOf,
  MACHINES,
  paymentIdOfExecution,
  stopExecution,
  type ExecutionFilter,
  type ExecutionRow,
  type Machine,
} from '../workflows.ts';
import { executionView, loadExecution, shownStatus, type LoadedExecution } from './execution-view.ts';
import { executionLink, executionPath, paymentLink, queryString, statusBadge, when } from './parts.ts';

const PAGE = 25;

/** The payment an execution works on (its own name, or its refund's payment), if any. */
async function paymentIdOf(machine: Machine | undefined, name: string): Promise<string | undefined> {
  const direct = paymentIdOfExecution(machine, name);
  if (direct) return direct;
  if (machine === 'refund' && /^re_[0-9A-Za-z]{10,40}$/.test(name))
    return (await getRefund(name))?.payment_id;
  return undefined;
}

/** An ARN (URL-decoded) or an execution name → the execution's ARN, if Step Functions has it. */
async function resolveExecution(idOrArn: string, hint?: Machine): Promise<string | undefined> {
  const id = idOrArn.includes('%') ? safeDecode(idOrArn) : idOrArn;
  if (id.startsWith('arn:')) return (await describeExecution(id)) ? id : undefined;
  if (!/^[0-9A-Za-z_-]{1,80}$/.test(id)) return undefined;
  for (const m of hint ? [hint, ...MACHINES.filter((x) => x !== hint)] : MACHINES) {
    const arn = executionArnOf(m, id);
    if (arn && (await describeExecution(arn))) return arn;
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The execution this operator may see: its ARN, machine and payment; a 404 otherwise. */
async function visibleExecution(
  op: Operator,
  idOrArn: string | undefined,
  hint?: Machine,
): Promise<{ arn: string; machine: Machine | undefined; payment?: Payment }> {
  const arn = idOrArn ? await resolveExecution(idOrArn, hint) : undefined;
  if (!arn) throw new ConsoleError(404, `No execution ${idOrArn ?? ''}.`);
  const machine = machineOf(arn);
  const paymentId = await paymentIdOf(machine, arn.split(':').pop() ?? '');
  const payment = paymentId ? await getPayment(paymentId) : undefined;
  if (op.merchant_id !== undefined && (!payment || !seesMerchant(op, payment.merchant_id)))
    throw new ConsoleError(404, `No execution ${idOrArn}.`);
  return { arn, machine, payment };
}

// ---------------------------------------------------------------- list

async function listPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  const machine = req.query.machine || 'payment';
  if (!isMachine(machine)) throw new ConsoleError(400, `Unknown state machine '${machine}'.`);
  const status = (req.query.status || undefined)?.toUpperCase();
  if (status && !(EXECUTION_FILTERS as readonly string[]).includes(status))
    throw new ConsoleError(400, `Unknown execution status '${req.query.status}'.`);
  const nextToken = req.query.next && req.query.next.length <= 2000 ? req.query.next : undefined;
  const op = req.operator;
  // Only payment and refund executions belong to a merchant.
  const hidden = op.merchant_id !== undefined && machine !== 'payment' && machine !== 'refund';
  const page = hidden
    ? { rows: [] as ExecutionRow[], nextToken: undefined }
    : await listExecutionsPage({
        machine,
        status: status as ExecutionFilter | undefined,
        limit: PAGE,
        nextToken,
      });
  const paymentIds = await Promise.all(page.rows.map((r) => paymentIdOf(machine, r.name ?? '')));
  const payments = new Map(
    (await getPayments(paymentIds.filter((x): x is string => !!x))).map((p) => [p.id, p]),
  );
  const rows = page.rows
    .map((r, i) => ({ r, payment: paymentIds[i] ? payments.get(paymentIds[i]!) : undefined }))
    .filter((x) => op.merchant_id === undefined || (x.payment && seesMerchant(op, x.payment.merchant_id)));
  const table = rows.length
    ? html`<table class="executions">
        <caption>
          ${machine} executions${status ? html` (${status.toLowerCase().replace(/_/g, ' ')})` : ''}, newest
          first
        </caption>
        <thead>
          <tr>
            <th scope="col">Execution</th>
            <th scope="col">Status</th>
            <th scope="col">Started</th>
            <th scope="col">Stopped</th>
            <th scope="col">Payment</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            ({ r, payment }) =>
              html`<tr>
                <th scope="row">${executionLink(r.executionArn ?? '', r.name)}</th>
                <td>${statusBadge(shownStatus(r.status, r.waiting))}</td>
                <td>${when(r.startDate)}</td>
                <td>${when(r.stopDate)}</td>
                <td>${payment ? paymentLink(payment.id) : '—'}</td>
              </tr>`,
          )}
        </tbody>
      </table>`
    : html`<p class="empty">No executions.</p>`;
  const next = page.nextToken
    ? html`<p>
        <a rel="next" href="/console/executions${queryString({ machine, status, next: page.nextToken })}"
          >Older executions</a
        >
      </p>`
    : '';
  const body = html`${filterForm(machine, status)} ${table} ${next}`;
  if (req.htmx) return { kind: 'fragment', body: table };
  return {
    kind: 'page',
    title: 'Executions',
    nav: 'executions',
    body: html`<h1>Executions</h1>
      ${body}`,
  };
}

const STATUS_LABELS: Record<ExecutionFilter, string> = {
  RUNNING: 'running',
  WAITING: 'waiting on a task token',
  FAILED: 'failed',
  TIMED_OUT: 'timed out',
  ABORTED: 'aborted (stopped)',
  SUCCEEDED: 'succeeded',
};

function filterForm(machine: string, status: string | undefined): Html {
  return html`<form method="get" action="/console/executions" class="filters">
    <div>
      <label for="machine">State machine</label>
      <select id="machine" name="machine">
        ${MACHINES.map((m) => html`<option value="${m}" ${m === machine ? html`selected` : ''}>${m}</option>`)}
      </select>
    </div>
    <div>
      <label for="exec-status">Status</label>
      <select id="exec-status" name="status">
        <option value="">Any</option>
        ${EXECUTION_FILTERS.map(
          (s) =>
            html`<option value="${s}" ${s === status ? html`selected` : ''}>${STATUS_LABELS[s]}</option>`,
        )}
      </select>
    </div>
    <div><button type="submit">Show</button></div>
  </form>`;
}

// ---------------------------------------------------------------- detail

const hintOf = (req: ConsoleRequest) => (isMachine(req.query.machine) ? req.query.machine : undefined);

/** Why this execution cannot be re-driven, or undefined when it can (a payment workflow that has ended). */
export function redriveRefusal(
  x: { arn: string; machine: Machine | undefined; status: string | undefined },
  payment: Payment | undefined,
): string | undefined {
  if (x.machine !== 'payment' || !payment)
    return 'Only payment workflows are re-driven from the console (through the sweeper).';
  if (x.status === 'RUNNING') return 'The execution is still running.';
  if (x.status === 'SUCCEEDED') return 'The execution succeeded: nothing to re-drive.';
  if (payment.execution_arn && payment.execution_arn !== x.arn)
    return `The payment has a newer workflow execution (${payment.execution_arn.split(':').pop()}).`;
  if (!REDRIVABLE_STATUSES.includes(payment.status))
    return `The payment is ${payment.status.replace(/_/g, ' ')}: it needs no workflow any more.`;
  return undefined;
}

function actions(req: ConsoleRequest, x: LoadedExecution, payment: Payment | undefined): Html {
  if (!can(req.operator.role, 'executions.act')) return html``;
  const status = x.described.status;
  const [path, query] = executionPath(x.arn).split('?');
  const action = (verb: string) => `/console${path}/${verb}${query ? `?${query}` : ''}`;
  const stop =
    status === 'RUNNING'
      ? html`<form method="post" action="${action('stop')}" class="stop">
          ${csrfField(req)}
          <div>
            <label for="stop-reason">Why stop it</label>
            <input id="stop-reason" name="reason" required maxlength="500" />
          </div>
          <div><button type="submit">Stop execution</button></div>
        </form>`
      : '';
  const refusal = redriveRefusal({ arn: x.arn, machine: x.machine, status }, payment);
  const redrive = refusal
    ? status !== 'RUNNING' && status !== 'SUCCEEDED'
      ? html`<p>Re-drive: ${refusal}</p>`
      : ''
    : html`<form method="post" action="${action('redrive')}" class="redrive">
        ${csrfField(req)}
        <p>
          The payment is ${payment!.status.replace(/_/g, ' ')} and its workflow has ended: the sweeper's
          re-drive checks it with the processor if needed and gives it a new execution.
        </p>
        <div><button type="submit">Re-drive through the sweeper</button></div>
      </form>`;
  if (!stop && !redrive) return html``;
  return html`<section aria-labelledby="actions-h">
    <h2 id="actions-h">Actions</h2>
    ${stop} ${redrive}
  </section>`;
}

async function detailPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { arn, payment } = await visibleExecution(req.operator, req.params.id, hintOf(req));
  const x = await loadExecution(arn);
  if (!x) throw new ConsoleError(404, `No execution ${req.params.id}.`);
  const name = x.described.name ?? arn;
  return {
    kind: 'page',
    title: `Execution ${name}`,
    nav: 'executions',
    body: html`<h1>Execution ${name}</h1>
      ${payment ? html`<p>Payment: ${paymentLink(payment.id)} (${statusBadge(payment.status)})</p>` : ''}
      ${actions(req, x, payment)} ${executionView(x, 2, false)}`,
  };
}

async function stop(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { arn, payment } = await visibleExecution(req.operator, req.params.id, hintOf(req));
  const reason = (req.form.reason ?? '').trim();
  if (!reason) throw new ConsoleError(400, 'Say why the execution is stopped.');
  if (reason.length > 500) throw new ConsoleError(400, 'The reason is too long (500 characters at most).');
  const before = await describeExecution(arn);
  if (before?.status !== 'RUNNING')
    throw new ConsoleError(
      409,
      `The execution is ${before?.status?.toLowerCase() ?? 'gone'}: only a running one can be stopped.`,
    );
  await stopExecution(
    arn,
    `stopped from the console by ${req.operator.name} (${req.operator.id}): ${reason}`,
  );
  const after = await describeExecution(arn);
  await req.audit({
    action: 'execution.stop',
    target: { kind: 'execution', id: arn },
    merchant_id: payment?.merchant_id,
    before: { status: before.status },
    after: { status: after?.status },
    note: reason,
  });
  return { kind: 'redirect', to: executionPath(arn), flash: `Execution stopped (${after?.status}).` };
}

async function redrive(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { arn, machine, payment } = await visibleExecution(req.operator, req.params.id, hintOf(req));
  const described = await describeExecution(arn);
  const refusal = redriveRefusal({ arn, machine, status: described?.status }, payment);
  if (refusal) throw new ConsoleError(409, refusal);
  const result = await redrivePayment(payment!, `re-driven from the console by ${req.operator.name}`);
  const after = await getPayment(payment!.id);
  const outcome =
    result.resolved.map((r) => r.action).join('; ') ||
    result.escalated.map((r) => `escalated: ${r.reason}`).join('; ') ||
    'nothing to do (its workflow is running again)';
  await req.audit({
    action: 'execution.redrive',
    target: { kind: 'execution', id: arn },
    merchant_id: payment!.merchant_id,
    before: {
      status: described?.status,
      payment_status: payment!.status,
      execution_arn: payment!.execution_arn,
    },
    after: { payment_status: after?.status, execution_arn: after?.execution_arn },
    note: outcome,
  });
  const to = after?.execution_arn && after.execution_arn !== arn ? after.execution_arn : arn;
  return { kind: 'redirect', to: executionPath(to), flash: `Re-drive: ${outcome}.` };
}

export const executionsRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/executions', permission: 'executions.read', handler: listPage },
  { method: 'GET', path: '/executions/{id}', permission: 'executions.read', handler: detailPage },
  { method: 'POST', path: '/executions/{id}/stop', permission: 'executions.act', handler: stop },
  { method: 'POST', path: '/executions/{id}/redrive', permission: 'executions.act', handler: redrive },
];
