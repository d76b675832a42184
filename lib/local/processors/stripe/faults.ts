/**
 * The Stripe simulator's fault settings (docs/simulators.md, "Faults"): Stripe's own fields
 * (`StripeFaults`: `latencyMs`, `failRate`, `failNext`, `timeoutNext`, `rateLimitNext`,
 * `failStoredNext`, `declineNext`, `downRate`, `timeoutRate`, `match`), kept as the simulator's
 * public API (`POST /_sim/faults`, `paystep simulator fault`, tests), decided by the framework's
 * shared fault controls (../framework/faults.ts). This is the thin layer between the two:
 *
 * - each field is one framework `FaultController` in the shared vocabulary, all with the same
 *   `match`: a rate is `rate` (`downRate` → `down`, `failRate` → `error`, `timeoutRate` →
 *   `timeout-after-processing`), a `…Next` count is `count` at rate 1 (`failNext` → `error`,
 *   `timeoutNext` → `timeout-after-processing`), `latencyMs` is `slow` for every matching request;
 * - Stripe's extras are decided the same way and rendered by the simulator in Stripe's wire format:
 *   `rateLimitNext` (a 429 `rate_limit` before executing) and `failStoredNext` (a 500 once executing,
 *   stored for the key, as Stripe does); `declineNext` is not a request fault but a payment outcome
 *   (the next confirmations are declined as processing errors), so it is a plain counter here;
 * - one request takes at most one fault, in this order: rateLimitNext, failNext, failStoredNext,
 *   timeoutNext, downRate, failRate, timeoutRate (a count before a rate); `latencyMs` is added to
 *   whichever it takes;
 * - `downRate` 1 without `match` is the framework's `refusesConnections()`: the simulator closes its
 *   API door (`onChange` → `SimHttpServer.refuse`), so connections are refused, not dropped.
 *
 * `set` merges (fields not given keep their values; a count replaces the remaining count; 0 clears
 * a field) and returns the settings; `get` shows what remains (counts as they are consumed).
 */
import { FaultController, type FaultMode } from '../framework/faults.ts';
import type { StripeFaults } from './types.ts';

/** What one request gets: Stripe's extras, or a fault of the shared vocabulary. */
export type StripeFault = 'rate_limit' | 'fail_stored' | 'down' | 'error' | 'timeout-after-processing';

type CountField = 'rateLimitNext' | 'failNext' | 'failStoredNext' | 'timeoutNext';
type RateField = 'downRate' | 'failRate' | 'timeoutRate';
type Slot = { field: CountField | RateField; kind: 'count' | 'rate'; mode: FaultMode; fault: StripeFault };

/** The fields as framework controllers, in the order a request takes them. */
const SLOTS: readonly Slot[] = [
  { field: 'rateLimitNext', kind: 'count', mode: 'error', fault: 'rate_limit' },
  { field: 'failNext', kind: 'count', mode: 'error', fault: 'error' },
  { field: 'failStoredNext', kind: 'count', mode: 'error', fault: 'fail_stored' },
  {
    field: 'timeoutNext',
    kind: 'count',
    mode: 'timeout-after-processing',
    fault: 'timeout-after-processing',
  },
  { field: 'downRate', kind: 'rate', mode: 'down', fault: 'down' },
  { field: 'failRate', kind: 'rate', mode: 'error', fault: 'error' },
  { field: 'timeoutRate', kind: 'rate', mode: 'timeout-after-processing', fault: 'timeout-after-processing' },
];

const FIELDS: readonly (keyof StripeFaults)[] = [
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
];

export class StripeFaultController {
  private readonly slots: Map<Slot['field'], FaultController>;
  /** `latencyMs`: the framework's `slow` for every matching request. */
  private readonly slow: FaultController;
  private declineNext = 0;
  private match: string | undefined;
  /** Called after every change of the settings (the simulator opens or closes its API door). */
  onChange?: () => void;

  constructor(random: () => number = Math.random) {
    this.slots = new Map(SLOTS.map((s) => [s.field, new FaultController(random)]));
    this.slow = new FaultController(random);
  }

  /** `downRate` 1 without `match`: the API address refuses connections rather than dropping them. */
  refusesConnections(): boolean {
    return this.slots.get('downRate')!.refusesConnections();
  }

  /** Merges `faults` into the current ones (counts replace counts) and returns the result. */
  set(faults: StripeFaults): StripeFaults {
    for (const k of Object.keys(faults))
      if (!(FIELDS as readonly string[]).includes(k)) throw new TypeError(`unknown fault: ${k}`);
    const next: StripeFaults = { ...this.get() };
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
      if (faults.match) new RegExp(faults.match); // a SyntaxError before anything changes
      next.match = faults.match || undefined;
    }
    this.apply(next);
    this.onChange?.();
    return this.get();
  }

  reset(): void {
    this.apply({});
    this.onChange?.();
  }

  get(): StripeFaults {
    const out: StripeFaults = {};
    const slow = this.slow.get();
    if (slow.mode !== 'none' && slow.latencyMs) out.latencyMs = slow.latencyMs;
    for (const s of SLOTS) {
      const f = this.slots.get(s.field)!.get();
      if (f.mode === 'none') continue;
      if (s.kind === 'count' && f.count) out[s.field as CountField] = f.count;
      if (s.kind === 'rate' && f.rate) out[s.field as RateField] = f.rate;
    }
    if (this.declineNext > 0) out.declineNext = this.declineNext;
    if (this.match) out.match = this.match;
    return out;
  }

  /**
   * @internal Whether the next confirmation is declined as a processing error (`declineNext`),
   * consuming one: what a processor's failing acquirer connection looks like to the merchant.
   */
  takeDecline(): boolean {
    if (this.declineNext <= 0) return false;
    this.declineNext--;
    return true;
  }

  /** @internal Decides the fault for one request (`METHOD /path`) and consumes a count. */
  take(request: string): { latencyMs: number; fault?: StripeFault } {
    const slow = this.slow.take(request);
    const latencyMs = slow.kind === 'slow' ? slow.latencyMs : 0;
    for (const s of SLOTS)
      if (this.slots.get(s.field)!.take(request).kind !== 'none') return { latencyMs, fault: s.fault };
    return { latencyMs };
  }

  /** Requests affected so far, by the shared vocabulary's modes (Stripe's extras count as `error`). */
  affected(): Record<FaultMode, number> {
    const out: Record<FaultMode, number> = { ...this.slow.affected };
    for (const c of this.slots.values())
      for (const [m, n] of Object.entries(c.affected)) out[m as FaultMode] += n;
    return out;
  }

  /** Replaces every controller's settings by the Stripe fields `f`. */
  private apply(f: StripeFaults): void {
    const match = f.match ? { match: f.match } : {};
    this.match = f.match || undefined;
    this.slow.set(f.latencyMs ? { mode: 'slow', latencyMs: f.latencyMs, ...match } : {});
    for (const s of SLOTS) {
      const v = f[s.field] ?? 0;
      this.slots
        .get(s.field)!
        .set(
          v <= 0
            ? {}
            : s.kind === 'count'
              ? { mode: s.mode, count: v, ...match }
              : { mode: s.mode, rate: v, ...match },
        );
    }
    this.declineNext = f.declineNext ?? 0;
  }
}
