/** GET /v1/processors — each processor's status, breaker, running incident and recent health. */
import { httpHandler } from '../shared/http.ts';
import { processorStatuses } from './health.ts';

export const handler = httpHandler(async () => ({
  status: 200,
  body: { object: 'list', url: '/v1/processors', data: await processorStatuses(), has_more: false },
}));
