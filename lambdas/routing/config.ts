/**
 * GET /v1/routing[?version=N] — the merchant's routing configuration in force (or one version);
 * PUT /v1/routing — a new version (200 with it; the same config again creates nothing).
 * docs/routing.md, docs/api.md "Routing".
 */
import { ApiError } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { getRouting, parseVersion, setRouting } from './service.ts';

export const handler = httpHandler(async (req) => {
  if (req.method === 'PUT') {
    if (req.body === undefined)
      throw new ApiError(
        400,
        'invalid_request_error',
        'parameter_missing',
        'Missing the routing configuration (a JSON body).',
      );
    const { routing, created } = await setRouting(req.merchantId, req.body, 'api');
    return { status: 200, body: routing, headers: { 'Paystep-Routing-Version-Created': String(created) } };
  }
  return { status: 200, body: await getRouting(req.merchantId, parseVersion(req.query.version)) };
});
