/** The Stripe simulator's fault settings (docs/simulators.md, "Faults"). */
import type { StripeFaults } from './types.ts';

export class StripeFaultController {
  private state: StripeFaults = {};
  private matcher: RegExp | undefined;
  /** Called after every change of the settings (the simulator opens or closes its API door). */
  onChange?: () => void;

  /** `downRate` 1 without `match`: the API address refuses connections rather than dropping them. */
  refusesConnections(): boolean {
    return this.state.downRate === 1 && !this.state.match;
  }

  /** Merges `faults` into the current ones (counts replace counts) and returns the result. */
  set(faults: StripeFaults): StripeFaults {
    const next: StripeFaults = { ...this.state };
    for (const k of [
      'latencyMs',
      'failNext',
      'timeoutNext',
      'rateLimitNext',
      'failStoredNext',
      'declineNext',
    ] as const) {
      const v = faults[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new TypeError(`${k} must be a number ≥ 0`);
      next[k] = k === 'latencyMs' ? v : Math.floor(v);
    }
    for (const k of ['failRate', 'downRate', 'timeoutRate'] as const) {
      const r = faults[k];
      if (r === undefined) continue;
      if (typeof r !== 'number' || !(r >= 0 && r <= 1)) throw new TypeError(`${k} must be a number in 0..1`);
      next[k] = r;
    }
    if (faults.match !== undefined) {
      if (typeof faults.match !== 'string') throw new TypeError('match must be a regular expression string');
      this.matcher = faults.match ? new RegExp(faults.match) : undefined;
      next.match = faults.match || undefined;
    }
    for (const k of Object.keys(faults)) {
      if (
        ![
          'latencyMs',
          'failRate',
          'failNext',
          'timeoutNext',
          'rateLimitNext',
          'failStoredNext',
          'declineNext',
          'downRate',
          'timeoutRate',
          'match',
        ].includes(k)
      ) {
        throw new TypeError(`unknown fault: ${k}`);
      }
    }
    this.state = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined && v !== 0));
    this.onChange?.();
    return this.get();
  }

  reset(): void {
    this.state = {};
    this.matcher = undefined;
    this.onChange?.();
  }

  get(): StripeFaults {
    return { ...this.state };
  }

  /**
   * @internal Whether the next confirmation is declined as a processing error (`declineNext`),
   * consuming one: what a processor's failing acquirer connection looks like to the merchant.
   */
  takeDecline(): boolean {
    const n = this.state.declineNext ?? 0;
    if (n <= 0) return false;
    if (n === 1) delete this.state.declineNext;
    else this.state.declineNext = n - 1;
    return true;
  }

  /** @internal Decides the fault for one request and consumes a count. */
  take(request: string): {
    latencyMs: number;
    fault?: 'rate_limit' | 'fail' | 'fail_stored' | 'timeout' | 'down';
  } {
    if (this.matcher && !this.matcher.test(request)) return { latencyMs: 0 };
    const s = this.state;
    const latencyMs = s.latencyMs ?? 0;
    const consume = (k: 'failNext' | 'timeoutNext' | 'rateLimitNext' | 'failStoredNext') => {
      const n = s[k] ?? 0;
      if (n <= 0) return false;
      if (n === 1) delete s[k];
      else s[k] = n - 1;
      return true;
    };
    if (consume('rateLimitNext')) return { latencyMs, fault: 'rate_limit' };
    if (consume('failNext')) return { latencyMs, fault: 'fail' };
    if (consume('failStoredNext')) return { latencyMs, fault: 'fail_stored' };
    if (consume('timeoutNext')) return { latencyMs, fault: 'timeout' };
    if (s.downRate && Math.random() < s.downRate) return { latencyMs, fault: 'down' };
    if (s.failRate && Math.random() < s.failRate) return { latencyMs, fault: 'fail' };
    if (s.timeoutRate && Math.random() < s.timeoutRate) return { latencyMs, fault: 'timeout' };
    return { latencyMs };
  }
}
