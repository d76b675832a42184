/**
 * POST /v1/webhook_endpoints {url, enabled_events, description?} — registers a webhook endpoint.
 * The response carries the signing `secret` (`whsec_…`); it is never shown again, and is stored
 * only encrypted (lambdas/store/merchant-events.ts).
 */
import { ApiError } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { createEndpoint, listEndpoints } from '../store/merchant-events.ts';
import { MAX_ENDPOINTS_PER_MERCHANT } from './policy.ts';
import { presentEndpoint } from './present.ts';
import { parseCreateEndpoint } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const body = parseCreateEndpoint(req.body);
  if ((await listEndpoints(req.merchantId)).length >= MAX_ENDPOINTS_PER_MERCHANT)
    throw new ApiError(
      400,
      'invalid_request_error',
      'webhook_endpoints_limit',
      `A merchant can have at most ${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints; delete one first.`,
    );
  const { endpoint, secret } = await createEndpoint(req.merchantId, body);
  return { status: 201, body: presentEndpoint(endpoint, secret) };
});
