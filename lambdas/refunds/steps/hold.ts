/**
 * Refund workflow, "Wait for the final outcome" (callback): stores the task token on the refund so
 * the refund webhook can resume it. If the outcome is already known, resumes at once: recorded on
 * the refund (the webhook came first), or in a verified processor fact stored before the refund knew
 * its processor reference — a notification that arrived while paystep was between the processor's
 * answer and recording it (a crash there, then the retried request), which found no refund to
 * apply to and was parked until its retries ran out. Reading the stored facts (paystep's own
 * records, no processor call) closes that gap without waiting for the poll after a day.
 */
import { SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { refundState } from '../../connectors/facts.ts';
import { clients } from '../../shared/aws.ts';
import { listFacts } from '../../store/processor-facts.ts';
import { getRefundItem, setRefundAttributes } from '../../store/refunds.ts';
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../../shared/task-input.ts';

const Input = z.object({ refund_id: prefixedId('re'), token: taskToken });

const FINAL = ['succeeded', 'failed', 'canceled'];

/** The refund's final outcome if paystep already knows it, from its record or a stored fact. */
async function knownOutcome(
  r: Record<string, unknown> | undefined,
): Promise<{ status: string; failure_reason: string | null } | undefined> {
  if (!r) return undefined;
  if (FINAL.includes(r.processor_status as string))
    return {
      status: r.processor_status as string,
      failure_reason: (r.processor_failure_reason as string | undefined) ?? null,
    };
  const reference = r.processor_reference as string | undefined;
  const processor = r.processor as string | undefined;
  if (!reference || !processor) return undefined;
  const s = refundState(reference, await listFacts(processor, reference));
  return s && { status: s.status, failure_reason: s.status === 'failed' ? (s.reason ?? null) : null };
}

export const handler = taskHandler('refund-hold', Input, async (input) => {
  await setRefundAttributes(input.refund_id, { task_token: input.token });
  const known = await knownOutcome(await getRefundItem(input.refund_id));
  if (known)
    await clients
      .sfn()
      .send(new SendTaskSuccessCommand({ taskToken: input.token, output: JSON.stringify(known) }));
  return { waiting: true };
});
