/**
 * Fault controls with the vocabulary every paystep simulator uses (issue #8:
 * `paystep simulator fault --processor <p> --mode <mode> [--rate R] [--latency-ms N]`):
 *
 * - `none`: no fault (the default; `reset()` and `DELETE /_sim/faults` return here);
 * - `down`: the processor is unreachable. At `rate` 1 (no `match`, no `count`) its API address
 *   refuses connections (`refusesConnections()`: the simulator closes its API door), which the
 *   caller can tell apart: nothing was sent, so paystep may fail over. Otherwise each affected
 *   connection is dropped without an answer, before the request is processed (nothing happens at
 *   the processor, but the caller cannot know that: a retry with the same key is safe);
 * - `slow`: the request is processed normally after `latencyMs` (default 2000 ms);
 * - `error`: the processor answers 500 before processing (nothing happens; a retry is safe);
 * - `timeout-after-processing`: the request is processed (and its idempotent result stored), then
 *   never answered; with `latencyMs` the answer comes after that long instead (after the client's
 *   own timeout, when it is shorter). The caller cannot know the outcome: the case idempotency keys
 *   and the sweeper exist for.
 *
 * `rate` (0..1, default 1) is the probability that a matching request is affected; `count`, when
 * set, limits the fault to the next N affected requests (then the mode returns to `none`);
 * `match`, a regular expression over `METHOD /path`, limits it to some requests.
 * Nothing here knows a processor: the simulator turns a decision into its own wire format.
 */

export const FAULT_MODES = ['none', 'down', 'slow', 'error', 'timeout-after-processing'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export interface FaultSettings {
  mode: FaultMode;
  rate: number;
  latencyMs?: number;
  count?: number;
  match?: string;
}

export type FaultDecision =
  | { kind: 'none' }
  | { kind: 'down' }
  | { kind: 'error' }
  | { kind: 'slow'; latencyMs: number }
  | { kind: 'timeout-after-processing'; answerAfterMs?: number };

export const DEFAULT_SLOW_MS = 2000;

export class FaultError extends Error {}

export class FaultController {
  private settings: FaultSettings = { mode: 'none', rate: 1 };
  private matcher?: RegExp;
  private readonly random: () => number;
  /** Requests affected so far, per mode (for stats). */
  readonly affected: Record<FaultMode, number> = {
    none: 0,
    down: 0,
    slow: 0,
    error: 0,
    'timeout-after-processing': 0,
  };

  /** Called after every change of the settings (the simulator opens or closes its API door). */
  onChange?: () => void;

  constructor(random: () => number = Math.random) {
    this.random = random;
  }

  /** `down` for every request: the API address refuses connections rather than dropping them. */
  refusesConnections(): boolean {
    const s = this.settings;
    return s.mode === 'down' && s.rate === 1 && !s.match && s.count === undefined;
  }

  /**
   * Replaces the settings (fields not given take their defaults) and returns them. Throws
   * FaultError on an unknown mode or field or an out-of-range value.
   */
  set(input: unknown): FaultSettings {
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw new FaultError('faults must be an object');
    const f = input as Record<string, unknown>;
    for (const k of Object.keys(f))
      if (!['mode', 'rate', 'latencyMs', 'count', 'match'].includes(k))
        throw new FaultError(`unknown fault field ${k} (mode, rate, latencyMs, count, match)`);
    const mode = f.mode ?? 'none';
    if (typeof mode !== 'string' || !(FAULT_MODES as readonly string[]).includes(mode))
      throw new FaultError(`mode must be one of ${FAULT_MODES.join(', ')}`);
    const next: FaultSettings = { mode: mode as FaultMode, rate: 1 };
    if (f.rate !== undefined) {
      if (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1))
        throw new FaultError('rate must be a number from 0 to 1');
      next.rate = f.rate;
    }
    if (f.latencyMs !== undefined) {
      if (typeof f.latencyMs !== 'number' || !(f.latencyMs >= 0) || !Number.isFinite(f.latencyMs))
        throw new FaultError('latencyMs must be a non-negative number');
      next.latencyMs = f.latencyMs;
    }
    if (f.count !== undefined) {
      if (typeof f.count !== 'number' || !Number.isInteger(f.count) || f.count < 1)
        throw new FaultError('count must be a positive integer');
      next.count = f.count;
    }
    let matcher: RegExp | undefined;
    if (f.match !== undefined && f.match !== '') {
      if (typeof f.match !== 'string') throw new FaultError('match must be a regular expression string');
      try {
        matcher = new RegExp(f.match);
      } catch {
        throw new FaultError('match is not a valid regular expression');
      }
      next.match = f.match;
    }
    this.settings = next;
    this.matcher = matcher;
    this.onChange?.();
    return this.get();
  }

  reset(): FaultSettings {
    return this.set({ mode: 'none' });
  }

  get(): FaultSettings {
    return { ...this.settings };
  }

  /** Decides the fault for one request (`METHOD /path`), consuming `count`. */
  take(endpoint: string): FaultDecision {
    const s = this.settings;
    if (s.mode === 'none') return { kind: 'none' };
    if (this.matcher && !this.matcher.test(endpoint)) return { kind: 'none' };
    if (s.rate < 1 && !(this.random() < s.rate)) return { kind: 'none' };
    if (s.count !== undefined) {
      if (s.count <= 1) {
        this.settings = { mode: 'none', rate: 1 };
        this.matcher = undefined;
      } else this.settings = { ...s, count: s.count - 1 };
    }
    this.affected[s.mode]++;
    switch (s.mode) {
      case 'down':
        return { kind: 'down' };
      case 'error':
        return { kind: 'error' };
      case 'slow':
        return { kind: 'slow', latencyMs: s.latencyMs ?? DEFAULT_SLOW_MS };
      case 'timeout-after-processing':
        return s.latencyMs
          ? { kind: 'timeout-after-processing', answerAfterMs: s.latencyMs }
          : { kind: s.mode };
    }
  }
}
