/**
 * Processor health in use (docs/routing.md "Processor health"): every attempt's outcome is
 * recorded, the circuit breaker follows it (and opens a `suspected` incident when it trips), and
 * routing asks whether a processor may be tried now. Shared by the payment workflow, GET
 * /v1/processors and `paystep processors`.
 */
import { capabilities, knownProcessors } from '../connectors/capabilities.ts';
import { holdsProcessor, type IncidentStatus } from '../domain/incidents.ts';
import {
  admit,
  closedBreaker,
  DEFAULT_BREAKER_POLICY,
  figures,
  observe,
  type BreakerChange,
  type BreakerState,
  type HealthFigures,
  type HealthOutcome,
} from '../domain/processor-health.ts';
import { config } from '../shared/config.ts';
import { suspectIncident } from '../incidents/service.ts';
import { runningIncident } from '../store/incidents.ts';
import { addHealthAttempt, getBreaker, healthWindow, putBreaker } from '../store/processor-health.ts';

/** The window health figures and the breaker's failure rate are computed over. */
export const HEALTH_WINDOW_MS = 5 * 60_000;
const policy = DEFAULT_BREAKER_POLICY;

/**
 * What this container last read of a processor's breaker and incident, for HOT_MS: the common case
 * (closed breaker, no incident) then costs routing and recording no read per payment. Anything
 * but that is read again every time, so probes and incidents are exact.
 */
const HOT_MS = 2_000;
const hot = new Map<string, { at: number; quiet: boolean }>();

async function quietNow(processor: string): Promise<boolean> {
  const now = Date.now(); // the cache's own clock, whatever time the caller reasons about
  const c = hot.get(processor);
  if (c && now - c.at < HOT_MS && now >= c.at) return c.quiet;
  const [stored, incident] = await Promise.all([getBreaker(processor), runningIncident(processor)]);
  const b = stored?.breaker;
  const quiet = !incident && (!b || (b.state === 'closed' && b.consecutiveFailures === 0));
  hot.set(processor, { at: now, quiet });
  return quiet;
}

/** Forgets what this container read (tests that change breakers or incidents directly). */
export const forgetHealthCache = (): void => hot.clear();

/** Reads, changes and writes the breaker with optimistic concurrency (a few tries). */
async function updateBreaker<T extends { state: BreakerState }>(
  processor: string,
  now: number,
  step: (s: BreakerState) => T | Promise<T>,
): Promise<T> {
  for (let i = 0; ; i++) {
    const stored = await getBreaker(processor);
    const current = stored?.breaker ?? closedBreaker(now, policy);
    const r = await step(current);
    if (r.state === current || JSON.stringify(r.state) === JSON.stringify(current)) return r;
    if (await putBreaker(processor, r.state, stored?.version ?? 0)) return r;
    if (i >= 4) return r; // contended: the next attempt will record again
  }
}

/**
 * Records one attempt at `processor`; returns the breaker change it caused, if any. A breaker
 * that opens opens a `suspected` incident for ops to confirm or dismiss.
 */
export async function recordAttempt(
  processor: string,
  outcome: HealthOutcome,
  latencyMs: number,
  now = Date.now(),
): Promise<BreakerChange | undefined> {
  await addHealthAttempt(processor, outcome, latencyMs, now);
  if (!config.circuitBreaker()) return undefined;
  // An answer from a quiet processor changes nothing in its breaker.
  if (outcome !== 'error' && outcome !== 'timeout' && (await quietNow(processor))) return undefined;
  hot.delete(processor);
  const r = await updateBreaker(processor, now, async (s) => {
    // A closed breaker counts only attempts since it closed, so old failures cannot reopen it.
    const window = await healthWindow(
      processor,
      Math.max(now - HEALTH_WINDOW_MS, s.state === 'closed' ? s.since : 0),
    );
    return observe(s, outcome, window, now, policy);
  });
  if (r.change?.to === 'open' && r.change.from === 'closed')
    await suspectIncident(processor, `circuit breaker opened: ${r.change.reason}`, now);
  return r.change;
}

/**
 * Whether a payment may try `processor` now, and if not why. An open incident refuses it (`hard`:
 * routing leaves it out). The breaker (half-open after its cooldown, letting a few probes through)
 * refuses softly: routing tries it after every other processor, so a payment nothing else can take
 * is not failed on the breaker's word alone.
 */
export async function admitProcessor(
  processor: string,
  now = Date.now(),
): Promise<{ allowed: boolean; reason?: string; hard?: boolean }> {
  if (await quietNow(processor)) return { allowed: true };
  const incident = await runningIncident(processor);
  if (incident && holdsProcessor(incident.status))
    return {
      allowed: false,
      hard: true,
      reason: `${processor} is in incident ${incident.id} (${incident.reason})`,
    };
  if (!config.circuitBreaker()) return { allowed: true };
  const r = await updateBreaker(processor, now, (s) => admit(s, now, policy));
  return r.allowed ? { allowed: true } : { allowed: false, hard: false, reason: `${processor}: ${r.reason}` };
}

export interface ProcessorStatus {
  object: 'processor';
  name: string;
  enabled: boolean;
  /** operational; degraded (breaker half-open or a suspected incident); down (breaker open); incident (open). */
  status: 'operational' | 'degraded' | 'down' | 'incident';
  breaker: { state: BreakerState['state']; since: number; reason: string | null };
  incident: { id: string; status: IncidentStatus; reason: string } | null;
  /** Over the last five minutes. */
  health: HealthFigures & { window_seconds: number };
  capabilities: {
    currencies: number;
    manual_capture: boolean;
    three_d_secure: boolean;
    modifications: string;
  };
}

export async function processorStatuses(now = Date.now()): Promise<ProcessorStatus[]> {
  const enabled: readonly string[] = config.processors();
  return Promise.all(
    knownProcessors().map(async (name): Promise<ProcessorStatus> => {
      const [stored, incident, window] = await Promise.all([
        getBreaker(name),
        runningIncident(name),
        healthWindow(name, now - HEALTH_WINDOW_MS),
      ]);
      const b = stored?.breaker ?? closedBreaker(0, policy);
      const status =
        incident?.status === 'open'
          ? 'incident'
          : b.state === 'open'
            ? 'down'
            : b.state === 'half_open' || incident
              ? 'degraded'
              : 'operational';
      const c = capabilities(name)!;
      return {
        object: 'processor',
        name,
        enabled: enabled.includes(name),
        status,
        breaker: { state: b.state, since: b.since, reason: b.reason ?? null },
        incident: incident ? { id: incident.id, status: incident.status, reason: incident.reason } : null,
        health: { ...figures(window), window_seconds: HEALTH_WINDOW_MS / 1000 },
        capabilities: {
          currencies: c.currencies.size,
          manual_capture: c.manualCapture,
          three_d_secure: c.threeDSecure,
          modifications: c.modifications,
        },
      };
    }),
  );
}
