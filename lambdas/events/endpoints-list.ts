/** GET /v1/webhook_endpoints — the merchant's endpoints, oldest first (secrets are not shown). */
import { httpHandler } from '../shared/http.ts';
import { listEndpoints } from '../store/merchant-events.ts';
import { presentEndpoint } from './present.ts';

export const handler = httpHandler(async (req) => {
  const data = (await listEndpoints(req.merchantId)).map((e) => presentEndpoint(e));
  return {
    status: 200,
    body: { object: 'list', url: '/v1/webhook_endpoints', data, has_more: false },
  };
});
