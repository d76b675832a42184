/**
 * Dispute workflow callback tasks ("Wait for evidence", "Wait for the decision", "Wait for the
 * inquiry to close"): stores the task token on the dispute. Any status change of the dispute
 * (webhook, evidence, accept) resumes it with the dispute's summary.
 *
 * A change that landed after the workflow last looked (its `seen_seq`) went to no token: this step
 * then fails with DisputeChanged, and the workflow checks the dispute again instead of waiting.
 */
import { clearTaskToken, setTaskToken } from '../../store/disputes.ts';

export class DisputeChanged extends Error {
  override name = 'DisputeChanged';
}

export async function handler(input: {
  dispute_id: string;
  wait: 'evidence' | 'decision' | 'inquiry';
  token: string;
  seen_seq: number;
}): Promise<{ waiting: string }> {
  const d = await setTaskToken(input.dispute_id, input.token, input.wait);
  if (d.status_seq !== input.seen_seq) {
    await clearTaskToken(input.dispute_id, input.token);
    throw new DisputeChanged(
      `dispute ${input.dispute_id} changed (seq ${d.status_seq}, seen ${input.seen_seq})`,
    );
  }
  return { waiting: input.wait };
}
