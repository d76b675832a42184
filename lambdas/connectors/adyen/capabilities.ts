/**
 * Adyen's capabilities as this connector uses them (lambdas/connectors/capabilities.ts).
 * Currencies: paystep's table less those whose Adyen exponent is not confirmed here (amounts.ts
 * refuses them rather than guess), so routing never sends Adyen a payment it would refuse.
 */
import type { Capabilities } from '../capabilities.ts';
import { SUPPORTED_CURRENCIES } from '../../domain/money.ts';
import { adyenTakesCurrency } from './amounts.ts';

export const ADYEN_CAPABILITIES: Capabilities = {
  processor: 'adyen',
  currencies: new Set(SUPPORTED_CURRENCIES.filter(adyenTakesCurrency)),
  paymentMethodTypes: ['card'],
  manualCapture: true,
  partialCapture: true,
  // Adyen takes several partial captures against one authorisation.
  multipleCaptures: true,
  threeDSecure: true,
  // Captures and cancels answer `received`; CAPTURE / CANCELLATION notifications say how they ended.
  modifications: 'asynchronous',
  refunds: 'asynchronous',
  // No API to read a payment: its state is folded from verified notifications.
  paymentState: 'webhooks',
  // The Settlement details report per batch (no payouts API).
  settlement: 'report_file',
  // A defense reason with supporting documents (Disputes API).
  disputeEvidence: 'documents',
};
