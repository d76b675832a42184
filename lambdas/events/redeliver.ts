/**
 * POST /v1/events/{id}/redeliver {endpoint?} — delivers the event again, now, to one endpoint of
 * the merchant or to every enabled endpoint subscribed to its type. For a delivery that finished
 * (succeeded or failed) it is one more attempt; for one still retrying, its next attempt now (it
 * keeps retrying if that fails); for an endpoint that never had the event, a new delivery.
 * → 202: the attempts are made by the delivery consumer; follow them with GET /v1/events/{id}.
 */
import { ApiError, invalidRequest, notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { parse } from '../payments/validation.ts';
import {
  ensureDelivery,
  getMerchantEndpoint,
  getMerchantEvent,
  listEndpoints,
} from '../store/merchant-events.ts';
import { sendMessage } from './delivery.ts';
import { eventMatches } from './policy.ts';
import { RedeliverBody } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'event');
  const body = parse(RedeliverBody, req.body);
  const event = await getMerchantEvent(req.merchantId, id);
  if (!event) throw notFound('event', id);
  let endpoints;
  if (body?.endpoint) {
    const one = await getMerchantEndpoint(req.merchantId, body.endpoint);
    if (!one)
      throw new ApiError(
        404,
        'not_found',
        'resource_missing',
        `No such webhook endpoint: '${body.endpoint}'`,
        'endpoint',
      );
    endpoints = [one];
  } else {
    endpoints = (await listEndpoints(req.merchantId)).filter(
      (e) => e.status === 'enabled' && eventMatches(e.enabled_events, event.type),
    );
    if (endpoints.length === 0)
      throw invalidRequest(
        'no_webhook_endpoints',
        'No enabled webhook endpoint is subscribed to this event.',
      );
  }
  for (const endpoint of endpoints) {
    await ensureDelivery(event, endpoint);
    await sendMessage({
      type: 'delivery.attempt',
      event_id: event.id,
      endpoint_id: endpoint.id,
      manual: true,
    });
  }
  return {
    status: 202,
    body: { object: 'event_redelivery', event: event.id, endpoints: endpoints.map((e) => e.id) },
  };
});
