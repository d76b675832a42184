/** GET /v1/refunds/{id} — one refund; GET /v1/refunds?payment=pay_… — the refunds of a payment. */
import { invalidRequest, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { isIdOf, pathId } from '../shared/input.ts';
import { getMerchantPayment } from '../store/payments.ts';
import { getMerchantRefund, refundsOfPayment } from '../store/refunds.ts';
import { presentRefund } from './service.ts';

export const handler = httpHandler(async (req) => {
  if (req.pathParams.id !== undefined) {
    const id = pathId(req, 'refund');
    const r = await getMerchantRefund(req.merchantId, id);
    if (!r) throw notFound('refund', id);
    return { status: 200, body: presentRefund(r) };
  }
  const paymentId = req.query.payment;
  if (!paymentId) throw invalidRequest('parameter_missing', 'Missing required param: payment.', 'payment');
  if (!isIdOf('payment', paymentId))
    throw invalidRequest('parameter_invalid', 'Invalid payment: must be a payment id (pay_…)', 'payment');
  const p = await getMerchantPayment(req.merchantId, paymentId);
  if (!p) throw notFound('payment', paymentId);
  const refunds = await refundsOfPayment(p.id);
  return {
    status: 200,
    body: { object: 'list', url: '/v1/refunds', data: refunds.map(presentRefund), has_more: false },
  };
});
