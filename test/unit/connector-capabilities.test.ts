/**
 * Declared capabilities: read without loading a processor SDK, the same processors as the
 * configuration knows, and what routing asks of them (cannotTake) in words.
 */
import { PROCESSOR_NAMES } from '../../lambdas/shared/config.ts';
import {
  capabilities,
  cannotTake,
  knownProcessors,
  pinnedProcessor,
} from '../../lambdas/connectors/capabilities.ts';
import { toAdyenAmount } from '../../lambdas/connectors/adyen/amounts.ts';
import { SUPPORTED_CURRENCIES } from '../../lambdas/domain/money.ts';

test('every configurable processor declares its capabilities, and only those', () => {
  expect(knownProcessors().sort()).toEqual([...PROCESSOR_NAMES].sort());
  for (const p of PROCESSOR_NAMES) expect(capabilities(p)?.processor).toBe(p);
  expect(capabilities('paypal')).toBeUndefined();
});

test("Adyen declares exactly the currencies its connector can express, Stripe all of paystep's", () => {
  expect(capabilities('stripe')!.currencies.size).toBe(SUPPORTED_CURRENCIES.length);
  for (const c of SUPPORTED_CURRENCIES) {
    let expressible = true;
    try {
      toAdyenAmount(100_000, c);
    } catch {
      expressible = false;
    }
    expect([c, capabilities('adyen')!.currencies.has(c)]).toEqual([c, expressible]);
  }
  expect(capabilities('adyen')!.currencies.has('eur')).toBe(true);
  expect(capabilities('adyen')!.currencies.has('bif')).toBe(false);
});

test('cannotTake says why in words, or nothing', () => {
  expect(cannotTake('adyen', { currency: 'EUR', captureMethod: 'manual' })).toBeUndefined();
  expect(cannotTake('adyen', { currency: 'bif' })).toBe('adyen does not take BIF');
  expect(cannotTake('stripe', { currency: 'bif' })).toBeUndefined();
  expect(cannotTake('paypal', { currency: 'usd' })).toBe('paypal is not a processor paystep knows');
});

test('the modification and state models differ as the processors do', () => {
  expect(capabilities('stripe')).toMatchObject({
    modifications: 'synchronous',
    paymentState: 'api',
    settlement: 'payouts_api',
  });
  expect(capabilities('adyen')).toMatchObject({
    modifications: 'asynchronous',
    paymentState: 'webhooks',
    settlement: 'report_file',
  });
});

test('live tokens pin the route; paystep test ids go anywhere (decision 0004)', () => {
  expect(pinnedProcessor('pm_card_visa')).toBeUndefined();
  expect(pinnedProcessor('pm_card_visa_chargeDeclinedInsufficientFunds')).toBeUndefined();
  expect(pinnedProcessor('pm_1QxYzLiveToken')).toBe('stripe');
  expect(pinnedProcessor('adyen:8415718415718415')).toBe('adyen');
  expect(cannotTake('adyen', { currency: 'usd', paymentMethod: 'pm_1QxYzLiveToken' })).toBe(
    'adyen cannot charge a payment method token of stripe',
  );
  expect(cannotTake('stripe', { currency: 'usd', paymentMethod: 'adyen:8415718415718415' })).toBe(
    'stripe cannot charge a payment method token of adyen',
  );
  expect(cannotTake('adyen', { currency: 'usd', paymentMethod: 'pm_card_visa' })).toBeUndefined();
});
