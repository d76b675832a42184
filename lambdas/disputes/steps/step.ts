/**
 * Dispute workflow tasks (statemachines/dispute.asl.json). Each returns the dispute's summary, on
 * which the workflow's Choice states route:
 * - `open`: brings the payment in line with the dispute (chargeback → disputed);
 * - `check`: re-reads the dispute (after the reminder Wait, or when a waiting step saw a change);
 * - `remind`: records the reminder (once per inquiry / chargeback) on the dispute and the payment's
 *   timeline, if the merchant still has not answered;
 * - `escalate`: records an escalation (`deadline_passed`, `no_decision`, `inquiry_open`,
 *   `unexpected_state`); all but the first end the workflow and hand the dispute to the sweeper
 *   (`markForSweep`). `unexpected_state` is the workflow's fail-safe: a Choice met a summary it does
 *   not know ("Record that the dispute state is unexpected");
 * - `close`: the dispute is closed: the payment's final move, and the workflow's last entry.
 */
import { z } from 'zod';
import { logger } from '../../shared/logger.ts';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';
import {
  addDisputeTimelineEntry,
  getDispute,
  markForSweep,
  recordEscalation,
  recordReminder,
} from '../../store/disputes.ts';
import { syncPayment } from '../apply.ts';
import { isInquiry, summarize, type DisputeSummary } from '../model.ts';

const ESCALATION_REASONS = ['deadline_passed', 'no_decision', 'inquiry_open', 'unexpected_state'] as const;
const SWEEP_REASONS: readonly string[] = ['no_decision', 'inquiry_open', 'unexpected_state'];

const Input = z
  .object({
    dispute_id: prefixedId('dp'),
    action: z.enum(['open', 'check', 'remind', 'escalate', 'close']),
    reason: z.enum(ESCALATION_REASONS).optional(),
  })
  .refine((i) => i.action !== 'escalate' || i.reason !== undefined, {
    message: 'an escalation needs its reason',
    path: ['reason'],
  });

export type StepInput = z.output<typeof Input>;

export const handler = taskHandler('dispute-step', Input, async (input): Promise<DisputeSummary> => {
  const id = input.dispute_id;
  logger.appendKeys({ disputeId: id });
  let d = await getDispute(id);
  if (!d) throw new Error(`dispute ${id} does not exist`);
  const now = Math.floor(Date.now() / 1000);
  switch (input.action) {
    case 'open':
    case 'check':
      await syncPayment(id);
      break;
    case 'remind': {
      const kind = isInquiry(d.status) ? 'inquiry' : 'chargeback';
      if (await recordReminder(id, kind, now))
        await addDisputeTimelineEntry(d.payment_id, {
          event: 'reminder',
          dispute: id,
          kind,
          status: d.status,
          evidence_due_by: d.evidence_due_by ?? undefined,
          note: 'no evidence yet; the deadline is near',
        });
      break;
    }
    case 'escalate': {
      const reason = input.reason!;
      // The workflow ends after these: the sweeper takes over (lambdas/disputes/sweep.ts).
      if (SWEEP_REASONS.includes(reason)) await markForSweep(id, reason, now);
      if (await recordEscalation(id, reason, now))
        await addDisputeTimelineEntry(d.payment_id, {
          event: 'escalated',
          dispute: id,
          reason,
          status: d.status,
          evidence_due_by: d.evidence_due_by ?? undefined,
        });
      break;
    }
    case 'close':
      await syncPayment(id);
      await addDisputeTimelineEntry(d.payment_id, {
        event: 'workflow_completed',
        dispute: id,
        status: d.status,
      });
      break;
  }
  d = (await getDispute(id))!;
  return summarize(d);
});
