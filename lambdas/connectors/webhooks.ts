/**
 * Incoming webhooks, processor-neutral: what every connector provides so that one route
 * (`POST /webhooks/{processor}`, lambdas/webhooks/receive.ts) and one consumer
 * (lambdas/webhooks/process.ts) serve every processor.
 *
 * A connector's webhook part does three things, and nothing else of paystep sees its wire format:
 *
 * 1. `verify` the raw request (the body exactly as received, and its headers) with the
 *    processor's signature scheme, and split it into the events to store: each with a stable id
 *    (a redelivery has the same id, so it is stored once), the text to store, and the facts it
 *    states (../facts.ts);
 * 2. `acknowledge`: what to answer once every event is stored (Stripe: JSON; Adyen: `[accepted]`);
 * 3. `facts`: the facts of a stored event again, when the consumer processes (or replays) it —
 *    without the webhook secrets, which only the receiving function holds.
 *
 * `webhookFormat(name)` (no secrets, for the consumer) and `webhookReceiver(name)` (reads the
 * processor's webhook secrets through the secret cache, for the route) build them; both answer
 * undefined for a name that is not a processor. Whether the processor is enabled is the route's
 * decision (config.processors()).
 */
import type { ConnectorFact } from './facts.ts';
import { config } from '../shared/config.ts';
import { getSecret } from '../shared/secrets.ts';

/** The raw request, as received. */
export interface WebhookRequest {
  /** The body exactly as received (decoded from base64 if the gateway encoded it), never re-serialized. */
  body: string;
  /** A header's value by name (case-insensitive). */
  header(name: string): string | undefined;
}

/** One event of a verified request, to store once under `id`. */
export interface ReceivedEvent {
  id: string;
  /** The processor's event name (Stripe `type`, Adyen `eventCode`), for listings. */
  type: string;
  /** When the processor says it happened (epoch seconds). */
  created: number;
  live: boolean;
  /** What is stored (and given back to `facts` when it is processed). */
  stored: string;
  /** The facts it states (none: an event paystep does not use; stored and acknowledged all the same). */
  facts: ConnectorFact[];
}

export type WebhookVerdict =
  | { ok: true; events: ReceivedEvent[] }
  /** 400: the body is not the processor's webhook; 401: a signature does not verify. Nothing is stored. */
  | { ok: false; status: 400 | 401; code: string; message: string };

/** The 2xx answer the processor expects once the request's events are stored. */
export interface WebhookAck {
  contentType: string;
  body: string;
}

/** A connector's stored-event format: enough to process a stored event again. */
export interface WebhookFormat {
  readonly processor: string;
  /**
   * Whether the facts of an event the receiver settles at once (facts that change nothing,
   * lambdas/webhooks/facts.ts `settlePassively`) are stored all the same: true for a connector that
   * answers `retrieve` from stored facts (no read API: Adyen). False when nothing reads such facts
   * back (Stripe: paystep reads its API; the Stripe facts read back — refunds, disputes, capture
   * and cancel failures — are never settled at receipt, so they are always stored).
   */
  readonly storesSettledFacts: boolean;
  /** The facts a stored event states. Throws if `stored` is not what `verify` stored. */
  facts(stored: string): ConnectorFact[];
}

export interface WebhookReceiver extends WebhookFormat {
  verify(request: WebhookRequest, options?: { nowMs?: number }): WebhookVerdict;
  acknowledge(stored: readonly { id: string; duplicate: boolean }[]): WebhookAck;
}

const secretList = async (name: string) =>
  (await getSecret(name))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** The stored-event format of a processor's webhooks (no secrets needed), or undefined. */
export async function webhookFormat(name: string): Promise<WebhookFormat | undefined> {
  switch (name) {
    case 'stripe':
      return (await import('./stripe/webhooks.ts')).stripeWebhookFormat;
    case 'adyen':
      // Imported on first use: @adyen/api-library is slow to load.
      return (await import('./adyen/notifications.ts')).adyenWebhookFormat;
    default:
      return undefined;
  }
}

/** A processor's webhook receiver with its current secrets (Stripe signing secrets, Adyen HMAC keys), or undefined. */
export async function webhookReceiver(name: string): Promise<WebhookReceiver | undefined> {
  switch (name) {
    case 'stripe': {
      const { stripeWebhookReceiver } = await import('./stripe/webhooks.ts');
      return stripeWebhookReceiver(await secretList('stripe-webhook-secret'));
    }
    case 'adyen': {
      const { adyenWebhookReceiver } = await import('./adyen/notifications.ts');
      return adyenWebhookReceiver({
        hmacKeys: await secretList('adyen-hmac-key'),
        merchantAccounts: [config.adyen().merchantAccount],
      });
    }
    default:
      return undefined;
  }
}
