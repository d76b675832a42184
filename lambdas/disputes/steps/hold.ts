/**
 * Dispute workflow callback tasks ("Wait for evidence", "Wait for the decision", "Wait for the
 * inquiry to close"): stores the task token on the dispute. Any status change of the dispute
 * (webhook, evidence, accept) resumes it with the dispute's summary.
 *
 * A change that landed after the workflow last looked (its `seen_seq`) went to no token: this step
 * then fails with DisputeChanged, and the workflow checks the dispute again instead of waiting.
 */
import { clearTaskToken, setTaskToken } from '../../store/disputes.ts';
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../../shared/task-input.ts';
import { PaystepError } from '../../shared/errors.ts';

export class DisputeChanged extends PaystepError {
  override name = 'DisputeChanged';
}

const Input = z.object({
  dispute_id: prefixedId('dp'),
  wait: z.enum(['evidence', 'decision', 'inquiry']),
  token: taskToken,
  seen_seq: z.number().int().nonnegative(),
});

export const handler = taskHandler('dispute-hold', Input, async (input) => {
  const d = await setTaskToken(input.dispute_id, input.token, input.wait);
  if (d.status_seq !== input.seen_seq) {
    await clearTaskToken(input.dispute_id, input.token);
    throw new DisputeChanged(
      `dispute ${input.dispute_id} changed (seq ${d.status_seq}, seen ${input.seen_seq})`,
    );
  }
  return { waiting: input.wait };
});
