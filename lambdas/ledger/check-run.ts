/**
 * The ledger invariant check run in the background (docs/finance.md "The invariant check"), pure:
 * the states of the one stored check, its guarded transitions, and the bounded result kept of a
 * finished run. No I/O (the item: lambdas/store/ledger-check.ts; the job: check-job.ts).
 *
 * One check at a time, for the whole platform:
 *
 *   (none) | finished ──request──▶ requested ──start──▶ running ──finish──▶ finished
 *   running, stale    ──request──▶ requested          running, stale ──start──▶ running (taken over)
 *
 * A request while one is requested or running starts nothing (a request still `requested` only
 * gets its message sent again: a message lost between the write and the send is healed, and the job
 * is idempotent by request id). `running` is stale once it has lasted longer than the function's
 * timeout: the job that set it is gone (timed out or crashed) and another may take it over.
 */
import type { Balances, InvariantReport } from './domain.ts';

/** The job's timeout (lib/topology/finance.ts); a `running` check older than this is stale. */
export const CHECK_TIMEOUT_SECONDS = 900;
export const STALE_AFTER_MS = CHECK_TIMEOUT_SECONDS * 1000;

/** Mismatches of each kind kept of a run (the counts are kept whole). */
export const MISMATCHES_KEPT = 200;
/** Balance rows kept of a run: with the mismatches, well under DynamoDB's 400 KB per item. */
export const BALANCES_KEPT = 400;

export const CHECK_STATUSES = ['requested', 'running', 'finished'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/**
 * The guarded transitions: the statuses each action moves from. `stale` ones only once stale
 * (`status_since` older than STALE_AFTER_MS); `request` also from no check at all.
 */
export const CHECK_TRANSITIONS = {
  request: { from: ['finished'], stale: ['running'], to: 'requested' },
  start: { from: ['requested'], stale: ['running'], to: 'running' },
  finish: { from: ['running'], stale: [], to: 'finished' },
} as const satisfies Record<
  string,
  { from: readonly CheckStatus[]; stale: readonly CheckStatus[]; to: CheckStatus }
>;
export type CheckAction = keyof typeof CHECK_TRANSITIONS;

/** What a finished run found: the report of lambdas/ledger/check.ts, bounded. */
export interface CheckResult {
  request_id: string;
  requested_at: number;
  requested_by: string;
  started_at: number;
  finished_at: number;
  ok: boolean;
  entries: number;
  trial_balance: number;
  unbalanced: number;
  receivable: InvariantReport['receivable'];
  receivable_count: number;
  sources: InvariantReport['sources'];
  sources_count: number;
  balances: Balances[];
  balances_count: number;
}

/** The one stored check: the current request and the result of the last finished run. */
export interface LedgerCheckState {
  status: CheckStatus;
  request_id: string;
  /** Epoch ms. */
  requested_at: number;
  /** `console:<operator id>` */
  requested_by: string;
  /** Epoch ms, while running and after. */
  started_at?: number;
  /** Epoch ms: when the status was last set (a `running` older than STALE_AFTER_MS is stale). */
  status_since: number;
  result?: CheckResult;
}

export const isStale = (s: Pick<LedgerCheckState, 'status_since'>, now: number): boolean =>
  now - s.status_since > STALE_AFTER_MS;

/** Whether `action` may move `state` (undefined: no check yet) at `now`. */
export function mayMove(action: CheckAction, state: LedgerCheckState | undefined, now: number): boolean {
  const t = CHECK_TRANSITIONS[action];
  if (!state) return action === 'request';
  if ((t.from as readonly CheckStatus[]).includes(state.status)) return true;
  return (t.stale as readonly CheckStatus[]).includes(state.status) && isStale(state, now);
}

/** The result kept of a run: its figures whole, its mismatch and balance lists cut to a bound. */
export function boundedResult(
  report: InvariantReport & { balances: Balances[] },
  run: Pick<CheckResult, 'request_id' | 'requested_at' | 'requested_by' | 'started_at' | 'finished_at'>,
): CheckResult {
  return {
    ...run,
    ok: report.ok,
    entries: report.entries,
    trial_balance: report.trial_balance,
    unbalanced: report.unbalanced.length,
    receivable: report.receivable.slice(0, MISMATCHES_KEPT),
    receivable_count: report.receivable.length,
    sources: report.sources.slice(0, MISMATCHES_KEPT),
    sources_count: report.sources.length,
    balances: report.balances.slice(0, BALANCES_KEPT),
    balances_count: report.balances.length,
  };
}
