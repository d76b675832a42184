/**
 * The per-container cache of what routing reads of a merchant (lambdas/store/routing-cache.ts):
 * one read per merchant within ROUTING_CACHE_MS, a read again after it or once the merchant's
 * routing or processor order changed here, and a failed read never remembered.
 */
import { jest } from '@jest/globals';
import {
  cachedRoutingSettings,
  forgetRoutingSettings,
  ROUTING_CACHE_MS,
} from '../../lambdas/store/routing-cache.ts';

describe('routing settings cache', () => {
  beforeEach(() => forgetRoutingSettings());
  afterEach(() => jest.useRealTimers());

  test('one read per merchant within the TTL, a read again after it', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    let reads = 0;
    const load = async () => ++reads;
    expect(await cachedRoutingSettings('mch_a', load)).toBe(1);
    expect(await cachedRoutingSettings('mch_a', load)).toBe(1);
    expect(await cachedRoutingSettings('mch_b', load)).toBe(2);
    jest.setSystemTime(1_000_000 + ROUTING_CACHE_MS - 1);
    expect(await cachedRoutingSettings('mch_a', load)).toBe(1);
    jest.setSystemTime(1_000_000 + ROUTING_CACHE_MS);
    expect(await cachedRoutingSettings('mch_a', load)).toBe(3);
  });

  test('a change of the merchant forgets its entry only', async () => {
    let reads = 0;
    const load = async () => ++reads;
    await cachedRoutingSettings('mch_a', load);
    await cachedRoutingSettings('mch_b', load);
    forgetRoutingSettings('mch_a');
    expect(await cachedRoutingSettings('mch_a', load)).toBe(3);
    expect(await cachedRoutingSettings('mch_b', load)).toBe(2);
  });

  test('a failed read is not remembered', async () => {
    await expect(
      cachedRoutingSettings('mch_a', () => Promise.reject(new Error('throttled'))),
    ).rejects.toThrow('throttled');
    expect(await cachedRoutingSettings('mch_a', async () => 'read again')).toBe('read again');
  });
});
