/**
 * GET /v1/payments/{id}/timeline — everything that happened to a payment, in order: creation,
 * status changes, each processor attempt (processor, latency, raw and normalized codes), reviews,
 * capture and cancel requests, and its workflow execution (with a console link in AWS), plus an
 * explanation of where the payment is now, written for support.
 */
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { explain } from '../domain/payment.ts';
import { getMerchantPayment, timeline } from '../store/payments.ts';
import { presentPayment } from './present.ts';

function consoleUrl(arn: string): string | null {
  const region = arn.split(':')[3];
  if (!region || region === 'local') return null;
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${encodeURIComponent(arn)}`;
}

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'payment');
  const p = await getMerchantPayment(req.merchantId, id);
  if (!p) throw notFound('payment', id);
  const [entries, execution] = await Promise.all([
    timeline(id),
    p.execution_arn
      ? clients
          .sfn()
          .send(new DescribeExecutionCommand({ executionArn: p.execution_arn }))
          .catch(() => undefined)
      : Promise.resolve(undefined),
  ]);
  return {
    status: 200,
    body: {
      object: 'payment_timeline',
      payment: presentPayment(p),
      explanation: explain(p),
      workflow: p.execution_arn
        ? {
            execution_arn: p.execution_arn,
            status: execution?.status ?? 'UNKNOWN',
            started: execution?.startDate ? execution.startDate.toISOString() : null,
            stopped: execution?.stopDate ? execution.stopDate.toISOString() : null,
            console_url: consoleUrl(p.execution_arn),
          }
        : null,
      events: entries,
    },
  };
});
