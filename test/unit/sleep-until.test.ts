/**
 * The local Step Functions' Wait sleeps until its deadline even when that is longer than
 * `setTimeout` can hold (2^31 − 1 ms): a monthly billing period (30 days) used to fire after 1 ms,
 * so a monthly subscription renewed, and was charged, continuously under `npm start`.
 */
import { jest } from '@jest/globals';
import { MAX_TIMER_MS, sleepUntil } from '../../lib/local/stepfunctions.ts';

const DAY = 86_400_000;

describe('sleepUntil', () => {
  beforeEach(() => jest.useFakeTimers({ now: Date.UTC(2026, 0, 1) }));
  afterEach(() => jest.useRealTimers());

  test('a 30-day wait does not end before its 30 days', async () => {
    expect(30 * DAY).toBeGreaterThan(MAX_TIMER_MS);
    let ended = false;
    const done = sleepUntil(Date.now() + 30 * DAY, new AbortController().signal).then(() => (ended = true));
    await jest.advanceTimersByTimeAsync(1);
    expect(ended).toBe(false);
    await jest.advanceTimersByTimeAsync(29 * DAY);
    expect(ended).toBe(false);
    await jest.advanceTimersByTimeAsync(DAY);
    await done;
    expect(ended).toBe(true);
  });

  test('aborting ends a long wait at once; a past deadline ends at once', async () => {
    const ctl = new AbortController();
    let ended = false;
    const done = sleepUntil(Date.now() + 365 * DAY, ctl.signal).then(() => (ended = true));
    await jest.advanceTimersByTimeAsync(DAY);
    expect(ended).toBe(false);
    ctl.abort();
    await done;
    expect(ended).toBe(true);
    await sleepUntil(Date.now() - 1, new AbortController().signal);
    expect(jest.getTimerCount()).toBe(0);
  });
});
