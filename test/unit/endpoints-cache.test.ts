/**
 * The per-container cache of a merchant's webhook endpoints (lambdas/store/endpoints-cache.ts,
 * on lambdas/store/container-cache.ts): one read per merchant within ENDPOINTS_CACHE_MS, a read
 * again after it or once an endpoint of the merchant was created or deleted here, and a failed
 * read never remembered.
 */
import { jest } from '@jest/globals';
import { cachedEndpoints, ENDPOINTS_CACHE_MS, forgetEndpoints } from '../../lambdas/store/endpoints-cache.ts';

describe('webhook endpoints cache', () => {
  beforeEach(() => forgetEndpoints());
  afterEach(() => jest.useRealTimers());

  test('one read per merchant within the TTL, a read again after it', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    let reads = 0;
    const load = async () => ++reads;
    expect(await cachedEndpoints('mch_a', load)).toBe(1);
    expect(await cachedEndpoints('mch_a', load)).toBe(1);
    expect(await cachedEndpoints('mch_b', load)).toBe(2);
    jest.setSystemTime(2_000_000 + ENDPOINTS_CACHE_MS - 1);
    expect(await cachedEndpoints('mch_a', load)).toBe(1);
    jest.setSystemTime(2_000_000 + ENDPOINTS_CACHE_MS);
    expect(await cachedEndpoints('mch_a', load)).toBe(3);
  });

  test('a clock that went back reads again', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    let reads = 0;
    const load = async () => ++reads;
    await cachedEndpoints('mch_a', load);
    jest.setSystemTime(1_999_000);
    expect(await cachedEndpoints('mch_a', load)).toBe(2);
  });

  test('an endpoint created or deleted here forgets its merchant only', async () => {
    let reads = 0;
    const load = async () => ++reads;
    await cachedEndpoints('mch_a', load);
    await cachedEndpoints('mch_b', load);
    forgetEndpoints('mch_a');
    expect(await cachedEndpoints('mch_a', load)).toBe(3);
    expect(await cachedEndpoints('mch_b', load)).toBe(2);
  });

  test('a failed read is not remembered', async () => {
    await expect(cachedEndpoints('mch_a', () => Promise.reject(new Error('throttled')))).rejects.toThrow(
      'throttled',
    );
    expect(await cachedEndpoints('mch_a', async () => 'read again')).toBe('read again');
  });
});
