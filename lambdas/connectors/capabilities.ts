/**
 * What each processor can do, declared by its connector and read without loading its SDK, so that
 * routing (which processors may take a payment), validation (a routing config that sends a
 * currency to a processor that cannot take it) and the docs all read one table.
 *
 * Only what the connector implements and the processor documents is declared; nothing is guessed
 * (a refund window, for example, depends on the acquirer and the card scheme, so none is declared
 * and paystep lets the processor refuse a late refund, which comes back as a clean error).
 */
import { ADYEN_CAPABILITIES } from './adyen/capabilities.ts';
import { ADYEN_TEST_METHODS } from './adyen/test-methods.ts';
import { STRIPE_CAPABILITIES } from './stripe/capabilities.ts';

export type PaymentMethodType = 'card';

export interface Capabilities {
  processor: string;
  /** Lowercase ISO 4217 codes the connector charges in. */
  currencies: ReadonlySet<string>;
  paymentMethodTypes: readonly PaymentMethodType[];
  /** Authorize now, capture later (capture_method `manual`). */
  manualCapture: boolean;
  /** Capture less than authorized (the rest is released). */
  partialCapture: boolean;
  /** More than one capture against one authorization. */
  multipleCaptures: boolean;
  /** 3-D Secure: the payment may need the payer's authentication (requires_action). */
  threeDSecure: boolean;
  /**
   * How capture and cancel outcomes arrive: `synchronous` in the answer, `asynchronous` by a
   * later webhook (the answer only says the request was received).
   */
  modifications: 'synchronous' | 'asynchronous';
  /** Refunds always settle later (pending first) on both processors paystep knows. */
  refunds: 'asynchronous';
  /** Where a payment's current state is read: the processor's API, or its verified webhooks. */
  paymentState: 'api' | 'webhooks';
  /** Where payouts and their items come from. */
  settlement: 'payouts_api' | 'report_file';
  /** How dispute evidence is given: named text fields, or a defense reason with documents. */
  disputeEvidence: 'fields' | 'documents';
}

const ALL: Readonly<Record<string, Capabilities>> = {
  stripe: STRIPE_CAPABILITIES,
  adyen: ADYEN_CAPABILITIES,
};

/** The processors paystep has connectors for. */
export const knownProcessors = (): string[] => Object.keys(ALL);

/** A processor's capabilities; undefined for an unknown name. */
export const capabilities = (processor: string): Capabilities | undefined => ALL[processor];

/**
 * The processor a payment method can only be charged by, or undefined when any processor may take
 * it (decision 0004): paystep's test ids work on every connector; a live token is the processor's
 * own and pins the route (`adyen:<storedPaymentMethodId>` → adyen, any other `pm_…` → stripe).
 */
export function pinnedProcessor(paymentMethod: string): string | undefined {
  if (paymentMethod.startsWith('adyen:')) return 'adyen';
  if (Object.hasOwn(ADYEN_TEST_METHODS, paymentMethod)) return undefined;
  if (paymentMethod.startsWith('pm_')) return 'stripe';
  return undefined;
}

/** Why `processor` cannot take a payment of this kind, in words; undefined when it can. */
export function cannotTake(
  processor: string,
  p: {
    currency: string;
    captureMethod?: 'automatic' | 'manual';
    paymentMethodType?: PaymentMethodType;
    paymentMethod?: string;
  },
): string | undefined {
  const c = capabilities(processor);
  if (!c) return `${processor} is not a processor paystep knows`;
  const pin = p.paymentMethod ? pinnedProcessor(p.paymentMethod) : undefined;
  if (pin && pin !== processor) return `${processor} cannot charge a payment method token of ${pin}`;
  if (!c.currencies.has(p.currency.toLowerCase()))
    return `${processor} does not take ${p.currency.toUpperCase()}`;
  if (p.captureMethod === 'manual' && !c.manualCapture) return `${processor} cannot capture later`;
  if (p.paymentMethodType && !c.paymentMethodTypes.includes(p.paymentMethodType))
    return `${processor} does not take ${p.paymentMethodType} payments`;
  return undefined;
}
