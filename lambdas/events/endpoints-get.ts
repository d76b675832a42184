/** GET /v1/webhook_endpoints/{id} — one endpoint (without its secret); another merchant's is a 404. */
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { getMerchantEndpoint } from '../store/merchant-events.ts';
import { presentEndpoint } from './present.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'webhook endpoint');
  const endpoint = await getMerchantEndpoint(req.merchantId, id);
  if (!endpoint) throw notFound('webhook endpoint', id);
  return { status: 200, body: presentEndpoint(endpoint) };
});
