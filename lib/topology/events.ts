/**
 * Merchant events and webhook endpoints: the outbox consumer on the main table's stream (run by the
 * stream router, lambdas/events/stream.ts) enqueues events to `merchant-events`, whose consumer
 * signs and delivers them to the merchants' endpoints with retries; the API registers endpoints
 * and shows events with their delivery attempts.
 */
import type { TopologyFragment } from '../topology.ts';

const table = { tables: ['main'] };

/** Key secret that seals endpoint signing secrets at rest (lambdas/store/merchant-events.ts). */
export const WEBHOOK_SECRETS_KEY = 'webhook-secrets-key';

export const events: TopologyFragment = {
  functions: {
    'webhook-endpoints-create': {
      entry: 'lambdas/events/endpoints-create.ts',
      description: 'POST /v1/webhook_endpoints: registers an endpoint and returns its signing secret once',
      uses: { tables: ['main'], secrets: [WEBHOOK_SECRETS_KEY] },
    },
    'webhook-endpoints-list': {
      entry: 'lambdas/events/endpoints-list.ts',
      description: "GET /v1/webhook_endpoints: the merchant's endpoints",
      uses: table,
    },
    'webhook-endpoints-get': {
      entry: 'lambdas/events/endpoints-get.ts',
      description: 'GET /v1/webhook_endpoints/{id}',
      uses: table,
    },
    'webhook-endpoints-delete': {
      entry: 'lambdas/events/endpoints-delete.ts',
      description: 'DELETE /v1/webhook_endpoints/{id}: stops deliveries to the endpoint',
      uses: table,
    },
    'events-list': {
      entry: 'lambdas/events/list.ts',
      description: "GET /v1/events: the merchant's events, newest first",
      uses: table,
    },
    'events-get': {
      entry: 'lambdas/events/get.ts',
      description: 'GET /v1/events/{id}: one event with its deliveries and their attempts',
      uses: table,
    },
    'events-redeliver': {
      entry: 'lambdas/events/redeliver.ts',
      description: 'POST /v1/events/{id}/redeliver: delivers an event again to one or all endpoints',
      uses: { tables: ['main'], queues: ['merchant-events'] },
    },
    'events-deliver': {
      entry: 'lambdas/events/deliver.ts',
      description:
        'merchant-events consumer: signs and POSTs events to webhook endpoints, retries with backoff',
      timeoutSeconds: 30,
      uses: { tables: ['main'], queues: ['merchant-events'], secrets: [WEBHOOK_SECRETS_KEY] },
    },
  },
  routes: [
    { method: 'POST', path: '/v1/webhook_endpoints', function: 'webhook-endpoints-create', auth: 'merchant' },
    { method: 'GET', path: '/v1/webhook_endpoints', function: 'webhook-endpoints-list', auth: 'merchant' },
    {
      method: 'GET',
      path: '/v1/webhook_endpoints/{id}',
      function: 'webhook-endpoints-get',
      auth: 'merchant',
    },
    {
      method: 'DELETE',
      path: '/v1/webhook_endpoints/{id}',
      function: 'webhook-endpoints-delete',
      auth: 'merchant',
    },
    { method: 'GET', path: '/v1/events', function: 'events-list', auth: 'merchant' },
    { method: 'GET', path: '/v1/events/{id}', function: 'events-get', auth: 'merchant' },
    { method: 'POST', path: '/v1/events/{id}/redeliver', function: 'events-redeliver', auth: 'merchant' },
  ],
  queues: {
    'merchant-events': {
      description:
        'Merchant events to deliver: fan-out of new events, delivery retries (delayed messages), manual redeliveries',
      consumer: 'events-deliver',
      batchSize: 10,
      // Six times the consumer's timeout, as AWS suggests for SQS event sources.
      visibilityTimeoutSeconds: 180,
      maxReceiveCount: 5,
    },
  },
  secrets: {
    [WEBHOOK_SECRETS_KEY]: {
      description:
        'Key material that encrypts merchant webhook-endpoint signing secrets at rest (AES-256-GCM, HKDF-derived); ' +
        'several, comma-separated, while rotating (new first)',
      source: { generated: { length: 64 } },
      rotation:
        'Rotating this key means re-encrypting every stored endpoint secret: put "new,old" into the secret (new ' +
        'values are sealed with the first, old ones still open), re-seal the endpoints, then drop "old". A planned ' +
        'operation, not a scheduled Lambda.',
    },
  },
  grants: {
    // The outbox consumer (lambdas/events/stream.ts) runs inside the stream router.
    'stream-router': { queues: ['merchant-events'], tables: ['main'] },
  },
};
