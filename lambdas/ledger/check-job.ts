/**
 * The ledger invariant check in the background (docs/finance.md "The invariant check"): the
 * console records a request and sends its id to the `ledger-checks` queue (check-request.ts);
 * this function, the queue's consumer, runs `ledgerCheck()` (check.ts, what
 * `paystep ledger check` runs synchronously) and stores the bounded result as the latest one.
 *
 * Idempotent by request id: a message whose request is finished, superseded or running elsewhere
 * does nothing; one whose run was left `running` by a crash or timeout takes it over once stale
 * (the queue's visibility timeout is longer than that, so a redelivery after a crash finds it stale).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../shared/logger.ts';
import { finishCheck, getLedgerCheck, startCheck } from '../store/ledger-check.ts';
import { ledgerCheck } from './check.ts';
import { boundedResult, mayMove, type LedgerCheckState } from './check-run.ts';
import type { LedgerCheckMessage } from './check-request.ts';

export type RunOutcome = 'finished' | 'already_finished' | 'superseded' | 'running_elsewhere';

/** Runs the check of request `requestId` unless it is no longer to run (see the module comment). */
export async function runLedgerCheck(requestId: string, now = () => Date.now()): Promise<RunOutcome> {
  const before = await getLedgerCheck();
  // Nothing to do unless this request may start (the transition table): another's, finished, or
  // running (not stale) elsewhere.
  const skip = (s: LedgerCheckState | undefined): RunOutcome | undefined =>
    !s || s.request_id !== requestId
      ? 'superseded'
      : mayMove('start', s, now())
        ? undefined
        : s.status === 'finished'
          ? 'already_finished'
          : 'running_elsewhere';
  const early = skip(before);
  if (early) return early;
  const started = await startCheck(requestId, now());
  if (!started) return skip(await getLedgerCheck()) ?? 'running_elsewhere';
  const report = await ledgerCheck();
  const result = boundedResult(report, {
    request_id: requestId,
    requested_at: started.requested_at,
    requested_by: started.requested_by,
    started_at: started.started_at!,
    finished_at: now(),
  });
  if (!(await finishCheck(requestId, started.started_at!, result, result.finished_at))) {
    // Taken over (this run outlived its timeout): the run that took it over stores its own result.
    logger.warn('ledger check: the request is no longer this run’s; result not stored', { requestId });
    return 'superseded';
  }
  logger.info('ledger check finished', { requestId, ok: result.ok, entries: result.entries });
  return 'finished';
}

const processor = new BatchProcessor(EventType.SQS);

async function processRecord(record: SQSRecord): Promise<void> {
  let msg: Partial<LedgerCheckMessage>;
  try {
    msg = JSON.parse(record.body) as Partial<LedgerCheckMessage>;
  } catch {
    logger.error('dropping a malformed ledger-checks message', { messageId: record.messageId });
    return;
  }
  if (msg.type !== 'ledger.check' || typeof msg.request_id !== 'string') {
    logger.warn('ignoring an unknown ledger-checks message', { messageId: record.messageId });
    return;
  }
  const outcome = await runLedgerCheck(msg.request_id);
  logger.info('ledger-checks message', { requestId: msg.request_id, outcome });
}

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context });
}
