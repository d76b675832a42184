/** Refund workflow, "Ask the processor": the poll fallback when no webhook came in time. */
import { processor } from '../../connectors/registry.ts';
import { getRefundItem } from '../../store/refunds.ts';
import { normalizeRefundStatus } from '../updates.ts';
import { z } from 'zod';
import { prefixedId, taskHandler } from '../../shared/task-input.ts';

const Input = z.object({ refund_id: prefixedId('re') });

export const handler = taskHandler('refund-poll', Input, async (input) => {
  const r = await getRefundItem(input.refund_id);
  if (!r?.processor_reference) return { status: 'pending', failure_reason: null };
  const adapter = await processor(r.processor as string);
  const out = await adapter.retrieveRefund(r.processor_reference as string);
  return { status: normalizeRefundStatus(out.status), failure_reason: out.failureReason ?? null };
});
