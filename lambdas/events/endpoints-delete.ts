/**
 * DELETE /v1/webhook_endpoints/{id} — stops deliveries to the endpoint (pending retries are
 * abandoned as `failed`, "endpoint deleted"). Past deliveries and attempts stay visible.
 */
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { deleteEndpoint } from '../store/merchant-events.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'webhook endpoint');
  if (!(await deleteEndpoint(req.merchantId, id))) throw notFound('webhook endpoint', id);
  return { status: 200, body: { id, object: 'webhook_endpoint', deleted: true } };
});
