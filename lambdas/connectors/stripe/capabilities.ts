/**
 * Stripe's capabilities as this connector uses them (lambdas/connectors/capabilities.ts).
 * Currencies: Stripe's presentment currencies, which is paystep's own currency table
 * (lambdas/domain/money.ts follows Stripe's list and exponents).
 */
import type { Capabilities } from '../capabilities.ts';
import { SUPPORTED_CURRENCIES } from '../../domain/money.ts';

export const STRIPE_CAPABILITIES: Capabilities = {
  processor: 'stripe',
  currencies: new Set(SUPPORTED_CURRENCIES),
  paymentMethodTypes: ['card'],
  manualCapture: true,
  partialCapture: true,
  // One capture per PaymentIntent (multicapture is an opt-in feature the connector does not use).
  multipleCaptures: false,
  threeDSecure: true,
  modifications: 'synchronous',
  refunds: 'asynchronous',
  paymentState: 'api',
  settlement: 'payouts_api',
  disputeEvidence: 'fields',
};
