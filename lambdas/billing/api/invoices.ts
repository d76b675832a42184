/**
 * GET /v1/invoices (filters subscription, customer, status), GET /v1/invoices/{id} (with its
 * timeline), POST /v1/invoices/{id}/pay (retry now with the customer's payment method), /void.
 */
import { pathId } from '../../shared/input.ts';
import { config } from '../../shared/config.ts';
import { httpHandler } from '../../shared/http.ts';
import { invoiceTimeline, listInvoices } from '../../store/invoices.ts';
import { presentInvoice } from '../model.ts';
import { getInvoiceOf, payInvoice, voidInvoice } from '../service.ts';
import { filterChecks, parseEmpty, parseListQuery } from '../validation.ts';
import { idempotentPost, listBody } from './common.ts';

export const handler = httpHandler(async (req) => {
  // The path id is checked before anything else (routes without one leave it undefined).
  const id = req.pathParams.id === undefined ? undefined : pathId(req, 'invoice');
  if (id === undefined) {
    const q = parseListQuery(req.query, {
      subscription: filterChecks.subscription,
      customer: filterChecks.customer,
      status: filterChecks.invoiceStatus,
    });
    const page = await listInvoices(req.merchantId, {
      limit: q.limit,
      startingAfter: q.startingAfter,
      ...q.filters,
    });
    return { status: 200, body: listBody('/v1/invoices', page, presentInvoice) };
  }
  if (req.method === 'GET') {
    const inv = await getInvoiceOf(req.merchantId, id);
    return { status: 200, body: { ...presentInvoice(inv), timeline: await invoiceTimeline(id) } };
  }
  const action = req.path.split('/').pop();
  if (action === 'pay')
    return idempotentPost(req, 'invoice.pay', true, async (_, progress) => {
      parseEmpty(req.body);
      const inv = await payInvoice(req.merchantId, id, config.syncWaitMs(), progress);
      return { status: 200, body: presentInvoice(inv) };
    });
  return idempotentPost(req, 'invoice.void', false, async () => {
    parseEmpty(req.body);
    return { status: 200, body: presentInvoice(await voidInvoice(req.merchantId, id)) };
  });
});
