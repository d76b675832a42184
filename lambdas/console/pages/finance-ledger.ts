/**
 * Finance: the ledger page (docs/console.md "Screens", docs/finance.md "Balances and invariants").
 * The invariant check (lambdas/ledger/check.ts, what `paystep ledger check` runs synchronously)
 * reads the whole ledger and every payment and dispute, so the console runs it in the background
 * (lambdas/ledger/check-job.ts, the `ledger-checks` queue's consumer): "Run the check" requests a
 * run (one at a time, audited `ledger.check_requested`) and the page shows where the latest request
 * is and the last finished run's result: one merchant's rows to an operator limited to it.
 */
import { isStale, mayMove, type CheckResult, type LedgerCheckState } from '../../ledger/check-run.ts';
import { requestLedgerCheck, type RequestOutcome } from '../../ledger/check-request.ts';
import { getLedgerCheck } from '../../store/ledger-check.ts';
import { html, type Html } from '../html.ts';
import { csrfField } from '../layout.ts';
import { at, money } from '../ops-view.ts';
import type { ConsoleRequest, ConsoleResponse, ConsoleRoute } from '../types.ts';

/** The result of the last finished run, as an operator may see it (one merchant's rows if limited). */
function checkResult(req: ConsoleRequest, r: CheckResult): Html {
  const limited = req.operator.merchant_id;
  const mine = <T extends { merchant_id: string }>(xs: T[]) =>
    limited ? xs.filter((x) => x.merchant_id === limited) : xs;
  const receivable = mine(r.receivable);
  const sources = mine(r.sources);
  const balances = mine(r.balances);
  const cut = r.receivable_count > r.receivable.length || r.sources_count > r.sources.length;
  // Limited: the merchant's own mismatches decide, unless some were not kept (then it is not known).
  const verdict = !limited
    ? r.ok
      ? 'holds'
      : 'BROKEN'
    : receivable.length || sources.length
      ? 'BROKEN'
      : cut
        ? 'not known for this merchant'
        : 'holds';
  const kept = (shown: number, count: number, what: string) =>
    count > shown
      ? html`<p>
          The first ${shown.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} ${what} were kept;
          <code>paystep ledger check</code> lists them all.
        </p>`
      : '';
  return html`<section aria-labelledby="check-result">
    <h2 id="check-result">Invariant check: ${verdict}</h2>
    <p>
      Finished ${at(r.finished_at)} (requested ${at(r.requested_at)} by ${r.requested_by}, started
      ${at(r.started_at)}); ${r.entries.toLocaleString('en-US')} entries
      read${limited ? '' : html`; trial balance ${r.trial_balance} (must be 0); ${r.unbalanced} unbalanced entries`}.
    </p>
    ${
      receivable.length
        ? html`<table>
            <caption>
              Receivable ≠ captured − refunded − disputed − fees − paid out
            </caption>
            <thead>
              <tr>
                <th scope="col">Merchant</th>
                <th scope="col">Processor</th>
                <th scope="col">Receivable</th>
                <th scope="col">Expected</th>
                <th scope="col">Difference</th>
              </tr>
            </thead>
            <tbody>
              ${receivable.map(
                (x) =>
                  html`<tr>
                    <th scope="row">${x.merchant_id}</th>
                    <td>${x.processor}</td>
                    <td>${money(x.receivable, x.currency)}</td>
                    <td>${money(x.expected, x.currency)}</td>
                    <td>${money(x.difference, x.currency)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : ''
    }
    ${kept(r.receivable.length, r.receivable_count, 'receivable mismatches')}
    ${
      sources.length
        ? html`<table>
            <caption>
              Ledger movements ≠ the payments’ and disputes’ amounts
            </caption>
            <thead>
              <tr>
                <th scope="col">Merchant</th>
                <th scope="col">Processor</th>
                <th scope="col">Field</th>
                <th scope="col">Ledger</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              ${sources.map(
                (x) =>
                  html`<tr>
                    <th scope="row">${x.merchant_id}</th>
                    <td>${x.processor}</td>
                    <td>${x.field}</td>
                    <td>${money(x.ledger, x.currency)}</td>
                    <td>${money(x.source, x.currency)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : ''
    }
    ${kept(r.sources.length, r.sources_count, 'source mismatches')}
    <h2>Balances</h2>
    ${
      balances.length
        ? html`<table>
            <caption>
              Per merchant, processor and currency, at the check
            </caption>
            <thead>
              <tr>
                <th scope="col">Merchant</th>
                <th scope="col">Processor</th>
                <th scope="col">Captured</th>
                <th scope="col">Refunded</th>
                <th scope="col">Disputed</th>
                <th scope="col">Fees</th>
                <th scope="col">Paid out</th>
                <th scope="col">Processor receivable</th>
                <th scope="col">Entries</th>
              </tr>
            </thead>
            <tbody>
              ${balances.map(
                (b) =>
                  html`<tr>
                    <th scope="row">${b.merchant_id}</th>
                    <td>${b.processor}</td>
                    <td>${money(b.movements.captured, b.currency)}</td>
                    <td>${money(b.movements.refunded, b.currency)}</td>
                    <td>${money(b.movements.disputed, b.currency)}</td>
                    <td>${money(b.movements.fees, b.currency)}</td>
                    <td>${money(b.movements.paid_out, b.currency)}</td>
                    <td>${money(b.accounts.processor_receivable, b.currency)}</td>
                    <td>${b.entries}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p>No ledger entries.</p>`
    }
    ${kept(r.balances.length, r.balances_count, 'balance rows')}
  </section>`;
}

/** Where the current request is: never run, requested, running since T, or finished. */
function checkStatus(s: LedgerCheckState | undefined, now: number): Html {
  if (!s) return html`<p role="status">The check has never run.</p>`;
  if (s.status === 'requested')
    return html`<p role="status">
      A check was requested ${at(s.requested_at)} by ${s.requested_by}; it starts shortly. Reload the page for
      its result.
    </p>`;
  if (s.status === 'running')
    return isStale(s, now)
      ? html`<p role="status">
          A check started ${at(s.started_at)} and stopped without a result (it outlived its time); run it
          again.
        </p>`
      : html`<p role="status">
          A check is running since ${at(s.started_at)} (requested by ${s.requested_by}). Reload the page for
          its result.
        </p>`;
  return html`<p role="status">The last check finished ${at(s.result?.finished_at)}.</p>`;
}

/**
 * The ledger page: the latest result of the invariant check, which reads the whole ledger and every
 * payment and dispute, so it runs in the background (lambdas/ledger/check-job.ts), never in the
 * request. `?check=run` (the old synchronous check's link) runs nothing: it is the page.
 */
async function ledger(req: ConsoleRequest): Promise<ConsoleResponse> {
  const state = await getLedgerCheck();
  const busy = !mayMove('request', state, req.now);
  const body = html`<h1>Ledger</h1>
    <p><a href="/console/finance">Back to finance</a></p>
    <p>
      The invariant check reads the whole ledger and every payment and dispute, so it runs in the background:
      run it, then reload the page for its result.
    </p>
    ${checkStatus(state, req.now)}
    <form method="post" action="/console/finance/ledger/check">
      ${csrfField(req)}
      <button type="submit" ${busy ? html`disabled` : ''}>Run the check</button>
    </form>
    ${state?.result ? checkResult(req, state.result) : ''}`;
  return { kind: 'page', title: 'Ledger', nav: 'finance', body };
}

const REQUEST_FLASH: Record<RequestOutcome, string> = {
  requested: 'The ledger check was requested; reload the page for its result.',
  already_requested: 'A ledger check is already requested; reload the page for its result.',
  already_running: 'A ledger check is already running; reload the page for its result.',
};

/** Requests a run of the check in the background (one at a time), audited. */
async function requestCheck(req: ConsoleRequest): Promise<ConsoleResponse> {
  const { outcome, state } = await requestLedgerCheck(`console:${req.operator.id}`, req.now);
  await req.audit({
    action: 'ledger.check_requested',
    target: { kind: 'ledger_check', id: state.request_id },
    after: { status: state.status, outcome },
  });
  return { kind: 'redirect', to: '/finance/ledger', flash: REQUEST_FLASH[outcome] };
}

export const ledgerRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/finance/ledger', permission: 'ledger.read', handler: ledger },
  // Whoever may read the ledger may ask for a fresh check (it changes nothing but the result shown).
  { method: 'POST', path: '/finance/ledger/check', permission: 'ledger.read', handler: requestCheck },
];
