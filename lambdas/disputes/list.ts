/**
 * GET /v1/disputes?payment=&limit=&starting_after= — the merchant's disputes, newest first, or the
 * disputes of one payment. Another merchant's payment reads as one without disputes.
 */
import { httpHandler } from '../shared/http.ts';
import { getMerchantPayment } from '../store/payments.ts';
import { listMerchantDisputes, listPaymentDisputes } from '../store/disputes.ts';
import { presentDispute } from './present.ts';
import { parseListQuery } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const q = parseListQuery(req.query);
  let data;
  let hasMore = false;
  if (q.payment !== undefined) {
    const p = await getMerchantPayment(req.merchantId, q.payment);
    const all = p ? (await listPaymentDisputes(p.id)).filter((d) => d.merchant_id === req.merchantId) : [];
    data = all.reverse().slice(0, q.limit);
    hasMore = all.length > q.limit;
  } else {
    const page = await listMerchantDisputes(req.merchantId, {
      limit: q.limit,
      startingAfter: q.startingAfter,
    });
    data = page.data;
    hasMore = page.hasMore;
  }
  return {
    status: 200,
    body: { object: 'list', url: '/v1/disputes', data: data.map(presentDispute), has_more: hasMore },
  };
});
