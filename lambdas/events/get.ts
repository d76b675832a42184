/**
 * GET /v1/events/{id} — one event with its deliveries: per endpoint, the status and every attempt
 * (time, HTTP status, latency, error). Another merchant's event is a 404.
 */
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { eventDeliveries, getMerchantEvent } from '../store/merchant-events.ts';
import { presentDelivery, presentEvent } from './present.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'event');
  const event = await getMerchantEvent(req.merchantId, id);
  if (!event) throw notFound('event', id);
  const deliveries = await eventDeliveries(id);
  return { status: 200, body: { ...presentEvent(event), deliveries: deliveries.map(presentDelivery) } };
});
