/**
 * POST /v1/reviews/{id}/approve and /reject — an operator's decision on a payment held by the
 * risk screen. Resumes the payment's workflow (task token): approve → it is authorized as usual;
 * reject → canceled. Idempotency-Key optional (a decision can only be taken once anyway).
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { ApiError, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { addEvent, getPayment } from '../store/payments.ts';
import { presentPayment } from '../payments/present.ts';
import { resumeWorkflow } from '../payments/resume.ts';
import { waitForPayment } from '../payments/wait.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'review');
  const decision = req.path.endsWith('/approve') ? 'approve' : 'reject';
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: config.tableName('main'),
      Key: { pk: `REVIEW#${id}`, sk: 'REVIEW' },
      ConsistentRead: true,
    }),
  );
  const review = out.Item;
  if (!review || review.merchant_id !== req.merchantId) throw notFound('review', id);
  const p = await getPayment(review.payment_id as string);
  if (!p) throw notFound('review', id);
  if (p.status !== 'pending_review' || p.review?.status !== 'open')
    throw new ApiError(
      400,
      'invalid_request_error',
      'review_closed',
      `This review is already ${p.review?.status ?? 'closed'} (payment ${p.status}).`,
    );
  await addEvent(p.id, { type: 'review', decision, review_id: id });
  await resumeWorkflow(p.id, 'review', { decision });
  const after = await waitForPayment(p.id, (x) => x.status !== 'pending_review' && x.status !== 'processing');
  return { status: 200, body: { id, object: 'review', decision, payment: presentPayment(after) } };
});
