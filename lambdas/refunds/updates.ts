/**
 * A processor's word on a refund (webhook `refund.updated`, `charge.refunded`, …), applied in any
 * order and any number of times: only a pending refund can be moved, once, to its final state,
 * by resuming its workflow (the workflow settles or releases the reservation).
 */
import { SendTaskSuccessCommand, TaskTimedOut, TaskDoesNotExist } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import {
  getRefundItem,
  refundIdForReference,
  setRefundAttributes,
  type RefundStatus,
} from '../store/refunds.ts';

const FINAL: RefundStatus[] = ['succeeded', 'failed', 'canceled'];

export function normalizeRefundStatus(s: unknown): RefundStatus {
  if (s === 'succeeded' || s === 'failed' || s === 'canceled') return s;
  return 'pending';
}

export async function applyRefundUpdate(
  processor: string,
  refund: { id: string; status?: unknown; failure_reason?: unknown },
  _eventCreated: number,
): Promise<'applied' | 'ignored' | 'unknown_object'> {
  const refundId = await refundIdForReference(processor, refund.id);
  if (!refundId) return 'unknown_object';
  const item = await getRefundItem(refundId);
  if (!item) return 'unknown_object';
  const status = normalizeRefundStatus(refund.status);
  if (item.status !== 'pending' || !FINAL.includes(status)) return 'ignored';
  const failure = typeof refund.failure_reason === 'string' ? refund.failure_reason : null;
  await setRefundAttributes(refundId, { processor_status: status, processor_failure_reason: failure });
  const token = item.task_token as string | undefined;
  if (token) {
    try {
      await clients.sfn().send(
        new SendTaskSuccessCommand({
          taskToken: token,
          output: JSON.stringify({ status, failure_reason: failure }),
        }),
      );
    } catch (err) {
      if (!(err instanceof TaskTimedOut) && !(err instanceof TaskDoesNotExist)) throw err;
    }
  }
  // Without a token the workflow has not reached its wait yet; it reads processor_status there.
  return 'applied';
}
