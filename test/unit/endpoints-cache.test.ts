/**
 * The per-container cache of a merchant's webhook endpoints (lambdas/store/endpoints-cache.ts): a
 * read serves again only events stored before it began (so it sees every endpoint such an event
 * could be sent to), never a message without its storing time; a failed read is not remembered;
 * creating or deleting an endpoint here forgets the merchant.
 */
import { jest } from '@jest/globals';
import { cachedEndpoints, forgetEndpoints } from '../../lambdas/store/endpoints-cache.ts';

describe('webhook endpoints cache', () => {
  beforeEach(() => forgetEndpoints());
  afterEach(() => jest.useRealTimers());

  test('a read serves the events stored before it began, and only those', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    let reads = 0;
    const load = async () => ++reads;
    expect(await cachedEndpoints('mch_a', 1_999_990, load)).toBe(1); // read at 2_000_000
    jest.setSystemTime(2_000_050);
    expect(await cachedEndpoints('mch_a', 1_999_999, load)).toBe(1); // stored before the read
    expect(await cachedEndpoints('mch_a', 2_000_000, load)).toBe(1); // stored as the read began
    expect(await cachedEndpoints('mch_b', 1_999_999, load)).toBe(2); // another merchant
    expect(await cachedEndpoints('mch_a', 2_000_001, load)).toBe(3); // stored after: read again
    expect(await cachedEndpoints('mch_a', 2_000_040, load)).toBe(3); // before that read (2_000_050)
    expect(await cachedEndpoints('mch_a', undefined, load)).toBe(4); // no storing time: read
  });

  test('an endpoint created or deleted here forgets its merchant only', async () => {
    let reads = 0;
    const load = async () => ++reads;
    await cachedEndpoints('mch_a', 0, load);
    await cachedEndpoints('mch_b', 0, load);
    forgetEndpoints('mch_a');
    expect(await cachedEndpoints('mch_a', 0, load)).toBe(3);
    expect(await cachedEndpoints('mch_b', 0, load)).toBe(2);
  });

  test('a failed read is not remembered', async () => {
    await expect(cachedEndpoints('mch_a', 0, () => Promise.reject(new Error('throttled')))).rejects.toThrow(
      'throttled',
    );
    expect(await cachedEndpoints('mch_a', 0, async () => 'read again')).toBe('read again');
  });
});
