/**
 * "Wait for the processor to return before capturing | before canceling" (payment workflow) and
 * "Wait for the processor to return" (refund workflow), callback tasks: the operation step found
 * the processor in an `open` incident and held the operation (lambdas/incidents/backlog.ts); this
 * stores the workflow's task token on the held entry so the release resumes it when the incident
 * is resolved. If the incident is no longer open (resolved between the step and this wait), it
 * resumes its own wait at once, as the release would have. The wait's timeout (an hour) brings
 * the workflow back here: the incident is checked again, so a lost release never strands it.
 */
import { z } from 'zod';
import { prefixedId, taskHandler, taskToken } from '../shared/task-input.ts';
import { getPayment } from '../store/payments.ts';
import { getRefundItem } from '../store/refunds.ts';
import { holdOperation } from '../store/backlog.ts';
import {
  holdingIncident,
  paymentHoldRequest,
  refundHoldRequest,
  resumeInstruction,
  resumeWaiting,
} from './backlog.ts';

const Input = z.discriminatedUnion('operation', [
  z.object({ operation: z.enum(['capture', 'cancel']), payment_id: prefixedId('pay'), token: taskToken }),
  z.object({ operation: z.literal('refund'), refund_id: prefixedId('re'), token: taskToken }),
]);

export const handler = taskHandler('backlog-wait', Input, async (input) => {
  let paymentId: string;
  if (input.operation === 'refund') {
    const r = await getRefundItem(input.refund_id);
    if (!r) throw new Error(`refund ${input.refund_id} not found`);
    paymentId = r.payment_id as string;
    const incident = r.status === 'pending' ? await holdingIncident(r.processor as string) : undefined;
    if (incident) {
      await holdOperation(refundHoldRequest(r, incident), input.token);
      // Resolved meanwhile? Its release may have listed the entry before the token was stored.
      if ((await holdingIncident(r.processor as string))?.id === incident.id) return { waiting: incident.id };
    }
  } else {
    const p = await getPayment(input.payment_id);
    if (!p) throw new Error(`payment ${input.payment_id} not found`);
    paymentId = p.id;
    const incident = p.status === 'authorized' ? await holdingIncident(p.processor) : undefined;
    if (incident) {
      await holdOperation(
        paymentHoldRequest(p, input.operation, incident, p.pending_modification?.amount),
        input.token,
      );
      if ((await holdingIncident(p.processor))?.id === incident.id) return { waiting: incident.id };
    }
  }
  await resumeWaiting(input.token, await resumeInstruction(input.operation, paymentId));
  return { waiting: 'nothing' };
});
