/**
 * GET /v1/payments?status=&order_id=&created_gte=&created_lt=&limit=&starting_after= — newest
 * first, cursor pagination: pass the last id of a page as `starting_after` for the next.
 */
import { httpHandler } from '../shared/http.ts';
import { listPayments } from '../store/payments.ts';
import { presentPayment } from './present.ts';
import { parseListQuery } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const filters = parseListQuery(req.query);
  const page = await listPayments(req.merchantId, filters);
  return {
    status: 200,
    body: {
      object: 'list',
      url: '/v1/payments',
      data: page.data.map(presentPayment),
      has_more: page.hasMore,
      // Set when the filters matched little within the items examined: continue from here.
      ...(page.nextStartingAfter ? { next_starting_after: page.nextStartingAfter } : {}),
    },
  };
});
