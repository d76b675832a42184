/**
 * Ping workflow, "Mark the ping complete": recorded|reported → complete, with the report's key.
 * The condition keeps the move forward-only: a replayed call on a complete ping changes nothing.
 */
import { movePing } from '../store/pings.ts';
import { prefixedId, taskHandler } from '../shared/task-input.ts';
import { z } from 'zod';

const Input = z.object({
  ping_id: prefixedId('png'),
  /** What the report writer resumed the workflow with (lambdas/ping/report.ts). */
  report: z.object({ report_key: z.string().min(1) }),
});

export const handler = taskHandler('ping-complete', Input, async (input) => {
  await movePing(input.ping_id, 'complete', ['recorded', 'reported'], input.report.report_key, [
    'task_token',
  ]);
  return { ping_id: input.ping_id, status: 'complete', report_key: input.report.report_key };
});
