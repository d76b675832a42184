/**
 * The ledger invariant check run in the background (lambdas/ledger/check-run.ts). One item (table
 * `main`):
 *   pk LEDGERCHECK   sk latest   { status, request_id, requested_at, requested_by, started_at,
 *                                  status_since, result }   kind `ledger_check`
 * `result` is the last finished run's (bounded); a new request keeps it until its own run finishes.
 * Every status change is a conditional update on the transition table of check-run.ts, so two
 * requests never both start, and a run never finishes a request that is no longer its own.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import {
  CHECK_TRANSITIONS,
  STALE_AFTER_MS,
  type CheckAction,
  type CheckResult,
  type LedgerCheckState,
} from '../ledger/check-run.ts';
import { conditionalUpdate } from './conditional.ts';
import { allOf, updateExpression, type Condition } from './expressions.ts';
import { withoutInternal } from './items.ts';

const table = () => config.tableName('main');
const KEY = { pk: 'LEDGERCHECK', sk: 'latest' } as const;

const fromItem = (item: Record<string, unknown>): LedgerCheckState =>
  withoutInternal(item, []) as unknown as LedgerCheckState;

export async function getLedgerCheck(): Promise<LedgerCheckState | undefined> {
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: KEY, ConsistentRead: true }));
  return r.Item ? fromItem(r.Item) : undefined;
}

/** The guarded transition `action` as a condition: its `from` statuses, or a stale one of `stale`. */
function transition(action: CheckAction, now: number): Condition {
  const t = CHECK_TRANSITIONS[action];
  const values: Record<string, unknown> = {};
  const list = (xs: readonly string[], p: string) =>
    xs.map((s, i) => ((values[`:${p}${i}`] = s), `:${p}${i}`)).join(', ');
  const parts = [`#check_status IN (${list(t.from, 'from')})`];
  if (t.stale.length) {
    values[':stale_before'] = now - STALE_AFTER_MS;
    parts.push(`(#check_status IN (${list(t.stale, 'stale')}) AND #since < :stale_before)`);
  }
  if (action === 'request') parts.unshift('attribute_not_exists(pk)');
  return {
    expression: parts.join(' OR '),
    names: { '#check_status': 'status', ...(t.stale.length ? { '#since': 'status_since' } : {}) },
    values,
  };
}

const ofRequest = (requestId: string): Condition => ({
  expression: '#request_id = :request_id',
  names: { '#request_id': 'request_id' },
  values: { ':request_id': requestId },
});

async function move(
  action: CheckAction,
  now: number,
  set: Record<string, unknown>,
  remove: string[],
  guard?: Condition,
): Promise<LedgerCheckState | undefined> {
  const parts = updateExpression(
    { ...set, kind: 'ledger_check', status: CHECK_TRANSITIONS[action].to, status_since: now },
    remove,
    { condition: allOf(transition(action, now), guard) },
  )!;
  const after = await conditionalUpdate(
    new UpdateCommand({ TableName: table(), Key: KEY, ...parts, ReturnValues: 'ALL_NEW' }),
  );
  return after ? fromItem(after) : undefined;
}

/**
 * Records a request for a run, unless one is requested or running (and not stale): the new state,
 * or undefined when another request is in force (read it with getLedgerCheck).
 */
export function requestCheck(
  requestId: string,
  by: string,
  now: number,
): Promise<LedgerCheckState | undefined> {
  return move('request', now, { request_id: requestId, requested_at: now, requested_by: by }, ['started_at']);
}

/** Marks request `requestId` running (requested, or running but stale): the state, or undefined. */
export function startCheck(requestId: string, now: number): Promise<LedgerCheckState | undefined> {
  return move('start', now, { started_at: now }, [], ofRequest(requestId));
}

/** Stores the result of the run of `requestId` started at `startedAt`; false if it is no longer its own. */
export async function finishCheck(
  requestId: string,
  startedAt: number,
  result: CheckResult,
  now: number,
): Promise<boolean> {
  const started: Condition = {
    expression: '#started_at = :started_at',
    names: { '#started_at': 'started_at' },
    values: { ':started_at': startedAt },
  };
  return !!(await move('finish', now, { result }, [], allOf(ofRequest(requestId), started)));
}
