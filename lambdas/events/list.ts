/** GET /v1/events?type=&limit=&starting_after= — the merchant's events, newest first. */
import { httpHandler } from '../shared/http.ts';
import { listEvents } from '../store/merchant-events.ts';
import { presentEvent } from './present.ts';
import { parseEventListQuery } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const page = await listEvents(req.merchantId, parseEventListQuery(req.query));
  return {
    status: 200,
    body: { object: 'list', url: '/v1/events', data: page.data.map(presentEvent), has_more: page.hasMore },
  };
});
