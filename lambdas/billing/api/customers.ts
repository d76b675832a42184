/**
 * POST /v1/customers, GET /v1/customers, GET /v1/customers/{id}, POST /v1/customers/{id}: a new
 * payment method retries the customer's failed open invoices at once (docs/billing.md).
 */
import { pathId } from '../../shared/input.ts';
import { config } from '../../shared/config.ts';
import { notFound } from '../../shared/errors.ts';
import { httpHandler } from '../../shared/http.ts';
import { getMerchantCustomer, listCustomers } from '../../store/customers.ts';
import { presentCustomer } from '../model.ts';
import { createCustomerFor, updateCustomerFor } from '../service.ts';
import { parseCreateCustomer, parseListQuery, parseUpdateCustomer } from '../validation.ts';
import { idempotentPost, listBody } from './common.ts';

export const handler = httpHandler(async (req) => {
  // The path id is checked before anything else (routes without one leave it undefined).
  const id = req.pathParams.id === undefined ? undefined : pathId(req, 'customer');
  if (id === undefined && req.method === 'GET') {
    const q = parseListQuery(req.query, { email: (v) => v.length <= 512 });
    const page = await listCustomers(req.merchantId, q.limit, q.startingAfter, q.filters.email);
    return { status: 200, body: listBody('/v1/customers', page, presentCustomer) };
  }
  if (id === undefined)
    return idempotentPost(
      req,
      'customer.create',
      false,
      async (newId) => {
        const body = parseCreateCustomer(req.body);
        return { status: 200, body: presentCustomer(await createCustomerFor(req.merchantId, newId, body)) };
      },
      'cus',
    );
  if (req.method === 'GET') {
    const c = await getMerchantCustomer(req.merchantId, id);
    if (!c) throw notFound('customer', id);
    return { status: 200, body: presentCustomer(c) };
  }
  return idempotentPost(req, 'customer.update', false, async (_, progress) => {
    const body = parseUpdateCustomer(req.body);
    const customer = await updateCustomerFor(req.merchantId, id, body, config.syncWaitMs(), progress);
    return { status: 200, body: presentCustomer(customer) };
  });
});
