/**
 * A request for a run of the ledger invariant check in the background (the console's ledger page):
 * recorded as the one stored check (lambdas/store/ledger-check.ts, one at a time) and sent to the
 * `ledger-checks` queue, whose consumer (check-job.ts) runs it.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { randomBase62 } from '../shared/ids.ts';
import { getLedgerCheck, requestCheck } from '../store/ledger-check.ts';
import type { LedgerCheckState } from './check-run.ts';

export const LEDGER_CHECK_QUEUE = 'ledger-checks';

export interface LedgerCheckMessage {
  type: 'ledger.check';
  request_id: string;
}

async function send(requestId: string): Promise<void> {
  const msg: LedgerCheckMessage = { type: 'ledger.check', request_id: requestId };
  await clients.sqs().send(
    new SendMessageCommand({
      QueueUrl: config.queueUrl(LEDGER_CHECK_QUEUE),
      MessageBody: JSON.stringify(msg),
    }),
  );
}

export type RequestOutcome = 'requested' | 'already_requested' | 'already_running';

/**
 * Requests a run by `by` (`console:<operator>`): a new request and its message, unless one is
 * requested (its message is sent again: the job runs a request once) or running (nothing).
 */
export async function requestLedgerCheck(
  by: string,
  now = Date.now(),
): Promise<{ outcome: RequestOutcome; state: LedgerCheckState }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const requestId = `lchk_${randomBase62(22)}`;
    const mine = await requestCheck(requestId, by, now);
    if (mine) {
      await send(requestId);
      return { outcome: 'requested', state: mine };
    }
    const current = await getLedgerCheck();
    // Finished between the refused write and this read: request again.
    if (!current || current.status === 'finished') continue;
    if (current.status === 'requested') {
      await send(current.request_id);
      return { outcome: 'already_requested', state: current };
    }
    return { outcome: 'already_running', state: current };
  }
  throw new Error('ledger check: the request kept changing under the request (3 attempts)');
}
