/** Routing: the merchant's versioned routing configuration and its simulator (docs/routing.md). */
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
  },
  routes: [
    { method: 'GET', path: '/v1/routing', function: 'routing-config', auth: 'merchant' },
    { method: 'PUT', path: '/v1/routing', function: 'routing-config', auth: 'merchant' },
    { method: 'POST', path: '/v1/routing/simulate', function: 'routing-simulate', auth: 'merchant' },
  ],
};
