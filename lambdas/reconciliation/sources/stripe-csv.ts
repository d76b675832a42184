/**
 * Moved: Stripe's itemized payout reconciliation report is read and written by the Stripe
 * connector (lambdas/connectors/stripe/settlement.ts). This re-export is kept only for the Stripe
 * simulator (lib/local/processors/stripe-simulator.ts), which renders the report; remove it once
 * the simulator imports the connector's module directly. Nothing in reconciliation uses it.
 */
export { renderStripeItemizedCsv, type StripeItemizedRow } from '../../connectors/stripe/settlement.ts';
