/**
 * The ops API (docs/api.md "Ops API"): routes under /ops/, reached with an ops key, never a
 * merchant's (lambdas/auth/authorizer.ts, docs/decisions/0005-ops-keys.md). Incidents today; the
 * ops console to come builds on it.
 */
import type { TopologyFragment } from '../topology.ts';

const incidents = 'ops-incidents';

export const ops: TopologyFragment = {
  functions: {
    [incidents]: {
      entry: 'lambdas/ops/incidents.ts',
      description:
        'Ops API: list, show, declare, confirm, dismiss and resolve processor incidents; the incident report',
      // Resolving writes the incident report within the request (bounded, lambdas/incidents/report-writer.ts).
      timeoutSeconds: 29,
      memoryMb: 512,
      uses: { tables: ['main', 'health'], buckets: ['reports'] },
    },
  },
  routes: [
    { method: 'GET', path: '/ops/v1/incidents', function: incidents, auth: 'ops' },
    { method: 'POST', path: '/ops/v1/incidents', function: incidents, auth: 'ops' },
    { method: 'GET', path: '/ops/v1/incidents/{id}', function: incidents, auth: 'ops' },
    // One resource for the actions (POST confirm|dismiss|resolve, GET report): the stack is close to
    // CloudFormation's 500 resources, and each API resource, method and permission counts.
    { method: 'POST', path: '/ops/v1/incidents/{id}/{action}', function: incidents, auth: 'ops' },
    { method: 'GET', path: '/ops/v1/incidents/{id}/{action}', function: incidents, auth: 'ops' },
  ],
};
