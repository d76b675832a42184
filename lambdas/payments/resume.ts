/**
 * Resuming a payment workflow that waits on a task token (capture, cancel, review, customer
 * authentication). The token is stored on the payment by the waiting step; it may take a moment
 * to appear right after the payment reached its status, so this waits briefly for it.
 */
import { SendTaskSuccessCommand, TaskTimedOut, TaskDoesNotExist, InvalidToken } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { ApiError } from '../shared/errors.ts';
import { getTaskToken } from '../store/payments.ts';

export async function resumeWorkflow(
  paymentId: string,
  kind: string,
  output: unknown,
  waitMs = 5000,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const t = await getTaskToken(paymentId);
    if (t.token && t.kind === kind) {
      try {
        await clients
          .sfn()
          .send(new SendTaskSuccessCommand({ taskToken: t.token, output: JSON.stringify(output) }));
        return;
      } catch (err) {
        if (err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken)
          throw new ApiError(
            409,
            'conflict',
            'payment_changed',
            'The payment changed while this request was made (another request resumed it first). Fetch it and retry if still needed.',
          );
        throw err;
      }
    }
    if (Date.now() > deadline)
      throw new ApiError(
        409,
        'conflict',
        'payment_not_waiting',
        `The payment is not waiting for ${kind} right now. Fetch it to see its status.`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
