/**
 * Webhooks: processor events in (POST /webhooks/{processor}: verified by the processor's connector,
 * stored once; settled at once when they change nothing, else queued), processed from the `webhooks` queue (partial batch failures, parked events
 * retried with growing delays, then the dead-letter queue). See docs/webhooks.md.
 */
import type { TopologyFragment } from '../topology.ts';
import { MAX_RECEIVES } from '../../lambdas/webhooks/policy.ts';
import { disputeEventUses } from './disputes.ts';
import { ADYEN_LOCAL_HMAC_KEY } from './processors.ts';

export const webhooks: TopologyFragment = {
  functions: {
    'webhooks-receive': {
      entry: 'lambdas/webhooks/receive.ts',
      description:
        'POST /webhooks/{processor}: the connector verifies the request (Stripe signature, Adyen HMAC); an event that changes nothing settled at once, each other stored once with its facts and queued',
      memoryMb: 256,
      timeoutSeconds: 10,
      uses: {
        tables: ['main'],
        queues: ['webhooks'],
        // Every processor's webhook secrets: the connector of the path's processor reads its own.
        secrets: ['stripe-webhook-secret', 'adyen-hmac-key'],
      },
    },
    'webhooks-process': {
      entry: 'lambdas/webhooks/process.ts',
      description: 'webhooks queue consumer: applies processor events (payments, refunds, disputes)',
      timeoutSeconds: 30,
      uses: {
        tables: ['main'],
        // ChangeMessageVisibility (backoff of parked events) on its own queue.
        queues: ['webhooks'],
        stateMachines: ['payment', 'refund'],
        secrets: ['stripe-secret-key', 'adyen-api-key'],
      },
    },
  },
  // Processing applies dispute facts (lambdas/disputes/facts.ts, events.ts).
  grants: { 'webhooks-process': disputeEventUses },
  routes: [
    // One route for every processor: /webhooks/stripe and /webhooks/adyen, as configured at them.
    { method: 'POST', path: '/webhooks/{processor}', function: 'webhooks-receive', auth: 'none' },
  ],
  queues: {
    webhooks: {
      description: 'Processor events to apply (pointers to stored raw events)',
      consumer: 'webhooks-process',
      batchSize: 10,
      visibilityTimeoutSeconds: 60,
      maxReceiveCount: MAX_RECEIVES,
    },
  },
  secrets: {
    'stripe-webhook-secret': {
      description:
        'Stripe webhook signing secret(s) (whsec_…); several, comma-separated, while rotating (new first)',
      source: { provided: { localEnv: 'STRIPE_WEBHOOK_SECRET', localDefault: 'whsec_paystep_simulator' } },
      rotation:
        'Stripe rolls webhook signing secrets in its dashboard (with an overlap during which it signs with both); ' +
        'Secrets Manager cannot drive that. Roll it there, put "new,old" into this secret, drop "old" after the overlap.',
    },
    'adyen-hmac-key': {
      description:
        'HMAC key(s) of the Adyen webhook (hex, as the Customer Area shows it); two, comma-separated, while rotating (new first)',
      source: { provided: { localEnv: 'ADYEN_HMAC_KEY', localDefault: ADYEN_LOCAL_HMAC_KEY } },
      rotation:
        'Adyen generates HMAC keys in the Customer Area (Developers → Webhooks), which Secrets Manager cannot drive; ' +
        'generate the new key there, put "new,old" into this secret, save the webhook, drop "old" once it signs with the new one.',
    },
  },
};
