/**
 * The ops console (docs/console.md, docs/decisions/0006-console-stack.md): one function serving
 * server-rendered pages to operators signed in with their own key and session cookie, so its
 * routes have no API authorizer (`auth: 'none'`): the console checks its session itself, and an
 * API key means nothing to it. Its `uses` are what its screens' services need: the payment, refund,
 * review, dispute, incident, routing, billing, reconciliation, report and ledger services, and the
 * Step Functions API for every workflow (list, describe, history, stop, start again).
 */
import type { TopologyFragment } from '../topology.ts';
import { CONSOLE_ASSETS } from '../../lambdas/console/assets.ts';

const fn = 'console';

export const consoleArea: TopologyFragment = {
  functions: {
    [fn]: {
      entry: 'lambdas/console/handler.ts',
      description:
        'Ops console: pages for operators (sign-in, home, payments, workflows, finance, audit log)',
      // A page reads several stores in parallel; resolving an incident writes its report within the request.
      timeoutSeconds: 29,
      memoryMb: 1024,
      assets: Object.values(CONSOLE_ASSETS),
      uses: {
        tables: ['main', 'health'],
        buckets: ['reports', 'settlements'],
        // ledger-checks: the ledger page requests a run of the invariant check in the background.
        queues: ['webhooks', 'ledger-checks'],
        stateMachines: ['payment', 'refund', 'dispute', 'reconciliation', 'billing', 'ping'],
        // The pepper hashes operator keys and session tokens; the processor keys are those of the
        // services the screens call (dispute evidence and acceptance, a payment's reconcile).
        secrets: ['api-key-pepper', 'stripe-secret-key', 'adyen-api-key'],
      },
    },
  },
  routes: [
    { method: 'GET', path: '/console', function: fn, auth: 'none' },
    { method: 'GET', path: '/console/{proxy+}', function: fn, auth: 'none' },
    { method: 'POST', path: '/console/{proxy+}', function: fn, auth: 'none' },
  ],
  config: {
    'console-secure-cookies': {
      description:
        "Whether the console's cookies are Secure (sent over HTTPS only): on in AWS, off for the local runtime on http://localhost",
      env: 'PAYSTEP_CONSOLE_SECURE_COOKIES',
      context: 'consoleSecureCookies',
      awsDefault: 'on',
      localDefault: 'off',
    },
  },
};
