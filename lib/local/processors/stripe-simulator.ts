/**
 * The Stripe simulator's public entry point: the simulator is split by resource under
 * lib/local/processors/stripe/ (docs/simulators.md, "Code layout"); this module keeps the import
 * path the runtime, the CLI and the tests use.
 */
export { StripeSimulator } from './stripe/simulator.ts';
export { StripeFaultController } from './stripe/faults.ts';
export { parseStripeForm } from './stripe/form.ts';
export { TEST_PAYMENT_METHODS, type TestCard } from './stripe/test-cards.ts';
export type {
  DisputeMarker,
  DisputeSettings,
  StripeEvent,
  StripeEventType,
  StripeFaults,
  StripeObject,
  StripeSimulatorOptions,
  StripeSimulatorStats,
} from './stripe/types.ts';
