/**
 * Processor health and the circuit breaker (docs/routing.md "Processor health"). Pure: callers
 * keep the counts (per processor and minute, mergeable, so many Lambdas can add to them with
 * atomic counters) and the breaker state, and ask these functions what they mean.
 *
 * Declines are answers, not failures: a processor that declines is healthy. Technical failures
 * (errors, timeouts) open the breaker; an open breaker lets probes through after a cooldown.
 */

/** How an attempt at a processor ended, for health. */
export type HealthOutcome = 'approved' | 'declined' | 'error' | 'timeout';

/** Upper bounds (ms) of the latency histogram's buckets; the last is open-ended. */
export const LATENCY_BOUNDS_MS = [
  25,
  50,
  100,
  200,
  300,
  500,
  750,
  1_000,
  1_500,
  2_000,
  3_000,
  5_000,
  10_000,
  20_000,
  Infinity,
] as const;

export interface HealthCounts {
  approved: number;
  declined: number;
  error: number;
  timeout: number;
  /** Attempts per latency bucket (LATENCY_BOUNDS_MS). */
  latency: number[];
}

export const emptyCounts = (): HealthCounts => ({
  approved: 0,
  declined: 0,
  error: 0,
  timeout: 0,
  latency: LATENCY_BOUNDS_MS.map(() => 0),
});

/** The latency bucket an attempt falls in. */
export const latencyBucket = (ms: number): number => LATENCY_BOUNDS_MS.findIndex((b) => ms <= b);

export function addAttempt(c: HealthCounts, outcome: HealthOutcome, latencyMs: number): HealthCounts {
  const latency = [...c.latency];
  latency[latencyBucket(Math.max(0, latencyMs))]! += 1;
  return { ...c, [outcome]: c[outcome] + 1, latency };
}

export function mergeCounts(...all: HealthCounts[]): HealthCounts {
  const out = emptyCounts();
  for (const c of all) {
    out.approved += c.approved;
    out.declined += c.declined;
    out.error += c.error;
    out.timeout += c.timeout;
    c.latency.forEach((n, i) => (out.latency[i]! += n));
  }
  return out;
}

export interface HealthFigures {
  attempts: number;
  /** Errors / attempts (0 when there were none). */
  technical_error_rate: number;
  timeout_rate: number;
  /** Approved / attempts that reached a decision (approved + declined); null without any. */
  approval_rate: number | null;
  /** The upper bound of the bucket holding the 95th percentile; null without attempts. */
  p95_latency_ms: number | null;
}

const rate = (n: number, d: number) => (d ? Math.round((n / d) * 10_000) / 10_000 : 0);

export function figures(c: HealthCounts): HealthFigures {
  const attempts = c.approved + c.declined + c.error + c.timeout;
  let p95: number | null = null;
  if (attempts) {
    const rank = Math.ceil(attempts * 0.95);
    let seen = 0;
    for (let i = 0; i < c.latency.length; i++) {
      seen += c.latency[i]!;
      if (seen >= rank) {
        const bound = LATENCY_BOUNDS_MS[i]!;
        p95 = Number.isFinite(bound) ? bound : LATENCY_BOUNDS_MS.at(-2)!;
        break;
      }
    }
  }
  const decided = c.approved + c.declined;
  return {
    attempts,
    technical_error_rate: rate(c.error, attempts),
    timeout_rate: rate(c.timeout, attempts),
    approval_rate: decided ? rate(c.approved, decided) : null,
    p95_latency_ms: p95,
  };
}

// ---------------------------------------------------------------------------------------------
// The circuit breaker

export interface BreakerPolicy {
  /** Attempts the window must hold before its failure rate can open the breaker. */
  minAttempts: number;
  /** (errors + timeouts) / attempts at which it opens. */
  failureRate: number;
  /** Technical failures in a row that open it whatever the window says. */
  consecutiveFailures: number;
  /** How long it stays open before letting probes through. */
  cooldownMs: number;
  /** The longest cooldown, after repeated failed probes (each failure doubles it). */
  maxCooldownMs: number;
  /** Probes let through while half-open, and successes in a row that close it. */
  probes: number;
}

export const DEFAULT_BREAKER_POLICY: BreakerPolicy = {
  minAttempts: 10,
  failureRate: 0.5,
  consecutiveFailures: 5,
  cooldownMs: 30_000,
  maxCooldownMs: 300_000,
  probes: 3,
};

export interface BreakerState {
  state: 'closed' | 'open' | 'half_open';
  /** When it entered that state (epoch ms). */
  since: number;
  /** The cooldown in force (grows while probes fail). */
  cooldownMs: number;
  consecutiveFailures: number;
  /** While half-open: probes admitted and successes so far. */
  probesAdmitted: number;
  probeSuccesses: number;
  /** Why it last opened, in words. */
  reason?: string;
}

export const closedBreaker = (now: number, policy = DEFAULT_BREAKER_POLICY): BreakerState => ({
  state: 'closed',
  since: now,
  cooldownMs: policy.cooldownMs,
  consecutiveFailures: 0,
  probesAdmitted: 0,
  probeSuccesses: 0,
});

export interface BreakerChange {
  from: BreakerState['state'];
  to: BreakerState['state'];
  reason: string;
}

const technical = (o: HealthOutcome) => o === 'error' || o === 'timeout';

function open(s: BreakerState, now: number, cooldownMs: number, reason: string): BreakerState {
  return { ...s, state: 'open', since: now, cooldownMs, probesAdmitted: 0, probeSuccesses: 0, reason };
}

/**
 * May a payment try this processor now? An open breaker whose cooldown has passed turns
 * half-open and admits up to `probes` payments; the state to keep is returned with the answer.
 */
export function admit(
  s: BreakerState,
  now: number,
  policy = DEFAULT_BREAKER_POLICY,
): { allowed: boolean; state: BreakerState; change?: BreakerChange; reason?: string } {
  if (s.state === 'closed') return { allowed: true, state: s };
  if (s.state === 'open') {
    if (now - s.since < s.cooldownMs)
      return {
        allowed: false,
        state: s,
        reason: `circuit breaker open since ${new Date(s.since).toISOString()} (${s.reason ?? 'failures'})`,
      };
    const half: BreakerState = { ...s, state: 'half_open', since: now, probesAdmitted: 1, probeSuccesses: 0 };
    return {
      allowed: true,
      state: half,
      change: { from: 'open', to: 'half_open', reason: `cooldown of ${s.cooldownMs / 1000} s over: probing` },
    };
  }
  if (s.probesAdmitted >= policy.probes)
    return { allowed: false, state: s, reason: 'circuit breaker half-open: its probes are under way' };
  return { allowed: true, state: { ...s, probesAdmitted: s.probesAdmitted + 1 } };
}

/**
 * The breaker after an attempt ended with `outcome`, given the window's counts (this attempt
 * included). Returns the new state and, when it changed, the change in words.
 */
export function observe(
  s: BreakerState,
  outcome: HealthOutcome,
  window: HealthCounts,
  now: number,
  policy = DEFAULT_BREAKER_POLICY,
): { state: BreakerState; change?: BreakerChange } {
  const failed = technical(outcome);
  const consecutiveFailures = failed ? s.consecutiveFailures + 1 : 0;
  const next = { ...s, consecutiveFailures };
  if (s.state === 'half_open') {
    if (failed) {
      const cooldownMs = Math.min(s.cooldownMs * 2, policy.maxCooldownMs);
      const reason = `a probe failed (${outcome}); open again for ${cooldownMs / 1000} s`;
      return {
        state: open(next, now, cooldownMs, reason),
        change: { from: 'half_open', to: 'open', reason },
      };
    }
    const probeSuccesses = s.probeSuccesses + 1;
    if (probeSuccesses >= policy.probes) {
      const reason = `${probeSuccesses} probes in a row succeeded`;
      return { state: closedBreaker(now, policy), change: { from: 'half_open', to: 'closed', reason } };
    }
    return { state: { ...next, probeSuccesses } };
  }
  if (s.state === 'open') return { state: next }; // a late answer from before it opened
  const f = figures(window);
  const failureRate = rate(window.error + window.timeout, f.attempts);
  let reason: string | undefined;
  if (consecutiveFailures >= policy.consecutiveFailures)
    reason = `${consecutiveFailures} technical failures in a row`;
  else if (f.attempts >= policy.minAttempts && failureRate >= policy.failureRate)
    reason = `${Math.round(failureRate * 100)} % of the last ${f.attempts} attempts failed technically`;
  if (!reason) return { state: next };
  return {
    state: open(next, now, policy.cooldownMs, reason),
    change: { from: 'closed', to: 'open', reason },
  };
}
