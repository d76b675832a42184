/**
 * The Stripe simulator's fault fields on the framework's shared fault controls
 * (lib/local/processors/stripe/faults.ts over ../framework/faults.ts): each field decides as a
 * framework control in the shared vocabulary, Stripe's extras are rendered by the simulator, and
 * the public fields (`POST /_sim/faults`, `paystep simulator fault`) read as before.
 */
import { StripeFaultController } from '../../lib/local/processors/stripe/faults.ts';

/** A random source that answers the given values in turn (then 0.99: no rate hits). */
const randoms = (...values: number[]) => {
  const queue = [...values];
  return () => queue.shift() ?? 0.99;
};

describe('Stripe fault fields on the framework fault controls', () => {
  test('a count is taken before a rate, in Stripe order; get() shows what remains', () => {
    const f = new StripeFaultController(randoms());
    f.set({ failNext: 2, rateLimitNext: 1, failStoredNext: 1, timeoutNext: 1, failRate: 1 });
    expect(f.get()).toEqual({
      failNext: 2,
      rateLimitNext: 1,
      failStoredNext: 1,
      timeoutNext: 1,
      failRate: 1,
    });
    const taken = Array.from({ length: 7 }, () => f.take('POST /v1/payment_intents').fault);
    expect(taken).toEqual([
      'rate_limit',
      'error',
      'error',
      'fail_stored',
      'timeout-after-processing',
      'error', // failRate 1 from here on
      'error',
    ]);
    expect(f.get()).toEqual({ failRate: 1 });
    expect(f.affected()).toMatchObject({ error: 6, 'timeout-after-processing': 1 });
  });

  test('rates decide with the random source, down before error before timeout', () => {
    const f = new StripeFaultController(randoms(0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9));
    f.set({ downRate: 0.5, failRate: 0.5, timeoutRate: 0.5 });
    expect(f.take('GET /v1/balance').fault).toBe('down');
    expect(f.take('GET /v1/balance').fault).toBe('error');
    expect(f.take('GET /v1/balance').fault).toBe('timeout-after-processing');
    expect(f.take('GET /v1/balance').fault).toBeUndefined();
  });

  test('set merges: other fields keep their values, a count replaces the count, 0 clears a field', () => {
    const f = new StripeFaultController();
    f.set({ latencyMs: 50, failNext: 3 });
    f.set({ failNext: 1, downRate: 0.25 });
    expect(f.get()).toEqual({ latencyMs: 50, failNext: 1, downRate: 0.25 });
    f.set({ latencyMs: 0, downRate: 0 });
    expect(f.get()).toEqual({ failNext: 1 });
    f.reset();
    expect(f.get()).toEqual({});
  });

  test('match limits every field, latency included; declineNext is a payment outcome, not a request fault', () => {
    const f = new StripeFaultController();
    f.set({ match: '^POST /v1/refunds', failNext: 1, latencyMs: 30, declineNext: 2 });
    expect(f.take('POST /v1/payment_intents')).toEqual({ latencyMs: 0 });
    expect(f.take('POST /v1/refunds')).toEqual({ latencyMs: 30, fault: 'error' });
    expect(f.take('POST /v1/refunds')).toEqual({ latencyMs: 30 });
    expect(f.get()).toEqual({ match: '^POST /v1/refunds', latencyMs: 30, declineNext: 2 });
    expect([f.takeDecline(), f.takeDecline(), f.takeDecline()]).toEqual([true, true, false]);
  });

  test('downRate 1 without match closes the API door; with match or below 1 it drops connections', () => {
    const f = new StripeFaultController();
    const changes: boolean[] = [];
    f.onChange = () => changes.push(f.refusesConnections());
    f.set({ downRate: 1 });
    f.set({ match: 'refunds' });
    f.set({ match: '' });
    f.set({ downRate: 0.5 });
    f.reset();
    expect(changes).toEqual([true, false, true, false, false]);
  });

  test('bad fields are refused by name, nothing changes', () => {
    const f = new StripeFaultController();
    f.set({ failNext: 1 });
    expect(() => f.set({ downRate: 2 })).toThrow(/downRate must be a number in 0..1/);
    expect(() => f.set({ latencyMs: -1 })).toThrow(/latencyMs must be a number ≥ 0/);
    expect(() => f.set({ mode: 'down' } as never)).toThrow(/unknown fault: mode/);
    expect(() => f.set({ match: '(' })).toThrow(SyntaxError);
    expect(f.get()).toEqual({ failNext: 1 });
  });
});
