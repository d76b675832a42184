/**
 * Routing: the merchant's versioned routing configuration and its simulator, processor health and
 * status (docs/routing.md). Health counts live in their own table, without a stream: one write
 * per payment attempt must not feed the main table's stream consumers.
 */
import type { TopologyFragment } from '../topology.ts';

export const routing: TopologyFragment = {
  functions: {
    'routing-config': {
      entry: 'lambdas/routing/config.ts',
      description: 'GET /v1/routing (a version with ?version=) and PUT /v1/routing (a new version)',
      uses: { tables: ['main'] },
    },
    'routing-simulate': {
      entry: 'lambdas/routing/simulate.ts',
      description: 'POST /v1/routing/simulate: the processors a payment would try, and why',
      uses: { tables: ['main'] },
    },
    'processors-list': {
      entry: 'lambdas/processors/list.ts',
      description:
        'GET /v1/processors: status, circuit breaker, running incident and recent health of each processor',
      uses: { tables: ['main', 'health'] },
    },
    'backlog-wait': {
      entry: 'lambdas/incidents/wait.ts',
      description:
        'Payment and refund workflows: waits for a processor in an open incident to return (the incident backlog)',
      // Resumes its own wait when the incident was resolved before it stored its task token.
      uses: { tables: ['main'], stateMachines: ['payment', 'refund'] },
    },
    'analytics-payments': {
      entry: 'lambdas/analytics/payments.ts',
      description:
        'GET /v1/analytics/payments: approval analytics by processor, method, brand, country, channel',
      timeoutSeconds: 30,
      uses: { tables: ['main'] },
    },
  },
  routes: [
    { method: 'GET', path: '/v1/routing', function: 'routing-config', auth: 'merchant' },
    { method: 'PUT', path: '/v1/routing', function: 'routing-config', auth: 'merchant' },
    { method: 'POST', path: '/v1/routing/simulate', function: 'routing-simulate', auth: 'merchant' },
    { method: 'GET', path: '/v1/processors', function: 'processors-list', auth: 'merchant' },
    { method: 'GET', path: '/v1/analytics/payments', function: 'analytics-payments', auth: 'merchant' },
  ],
  tables: {
    health: {
      partitionKey: { name: 'pk', type: 'S' },
      sortKey: { name: 'sk', type: 'S' },
      ttlAttribute: 'expires_at',
    },
  },
};
