/** GET /v1/payments/{id} — one payment; another merchant's payment is a 404. */
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { getMerchantPayment } from '../store/payments.ts';
import { presentPayment } from './present.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'payment');
  const p = await getMerchantPayment(req.merchantId, id);
  if (!p) throw notFound('payment', id);
  return { status: 200, body: presentPayment(p) };
});
