/**
 * Processor health figures and the circuit breaker (lambdas/domain/processor-health.ts,
 * docs/routing.md): declines are healthy, technical failures open it, probes close it, a failed
 * probe reopens it for longer.
 */
import fc from 'fast-check';
import {
  addAttempt,
  admit,
  closedBreaker,
  DEFAULT_BREAKER_POLICY as policy,
  emptyCounts,
  figures,
  mergeCounts,
  observe,
  type BreakerState,
  type HealthCounts,
  type HealthOutcome,
} from '../../lambdas/domain/processor-health.ts';

const counts = (...xs: [HealthOutcome, number][]): HealthCounts =>
  xs.reduce((c, [o, ms]) => addAttempt(c, o, ms), emptyCounts());

test('figures: rates, approval among decisions, p95 from the histogram', () => {
  const c = counts(
    ...Array.from({ length: 18 }, (): [HealthOutcome, number] => ['approved', 120]),
    ['declined', 90],
    ['timeout', 12_000],
  );
  expect(figures(c)).toEqual({
    attempts: 20,
    technical_error_rate: 0,
    timeout_rate: 0.05,
    approval_rate: 0.9474,
    p95_latency_ms: 200,
  });
  expect(figures(emptyCounts())).toEqual({
    attempts: 0,
    technical_error_rate: 0,
    timeout_rate: 0,
    approval_rate: null,
    p95_latency_ms: null,
  });
});

test('counts merge like one window', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.constantFrom<HealthOutcome>('approved', 'declined', 'error', 'timeout'), fc.nat(30_000)),
      ),
      (xs) => {
        const half = Math.floor(xs.length / 2);
        expect(mergeCounts(counts(...xs.slice(0, half)), counts(...xs.slice(half)))).toEqual(counts(...xs));
      },
    ),
  );
});

function run(outcomes: HealthOutcome[], start: BreakerState = closedBreaker(0)) {
  let s = start;
  let window = emptyCounts();
  const changes: string[] = [];
  outcomes.forEach((o, i) => {
    window = addAttempt(window, o, 100);
    const r = observe(s, o, window, i);
    s = r.state;
    if (r.change) changes.push(`${r.change.from}→${r.change.to}: ${r.change.reason}`);
  });
  return { s, changes };
}

test('declines never open it; five technical failures in a row do', () => {
  expect(run(Array(50).fill('declined')).s.state).toBe('closed');
  const r = run(['approved', 'error', 'timeout', 'error', 'error', 'error']);
  expect(r.s.state).toBe('open');
  expect(r.changes).toEqual(['closed→open: 5 technical failures in a row']);
});

test('a failure rate over the window opens it once the window holds enough attempts', () => {
  const r = run([
    'error',
    'approved',
    'error',
    'approved',
    'error',
    'approved',
    'error',
    'approved',
    'error',
    'declined',
  ]);
  expect(r.changes).toEqual(['closed→open: 50 % of the last 10 attempts failed technically']);
});

test('open refuses until the cooldown, then probes; probes close it or reopen it for longer', () => {
  const opened = run(Array(5).fill('error')).s;
  expect(admit(opened, opened.since + 1_000)).toMatchObject({
    allowed: false,
    reason: expect.stringContaining('circuit breaker open'),
  });
  const t = opened.since + policy.cooldownMs;
  let a = admit(opened, t);
  expect(a).toMatchObject({ allowed: true, change: { from: 'open', to: 'half_open' } });
  a = admit(admit(a.state, t).state, t);
  expect(a.allowed).toBe(true);
  expect(admit(a.state, t)).toMatchObject({
    allowed: false,
    reason: expect.stringContaining('probes are under way'),
  });

  let s = a.state;
  for (let i = 0; i < policy.probes; i++) {
    const r = observe(s, 'approved', emptyCounts(), t + i);
    s = r.state;
    if (i === policy.probes - 1)
      expect(r.change).toEqual({ from: 'half_open', to: 'closed', reason: '3 probes in a row succeeded' });
  }
  expect(s.state).toBe('closed');

  const failed = observe(admit(opened, t).state, 'timeout', emptyCounts(), t + 5);
  expect(failed.state).toMatchObject({ state: 'open', cooldownMs: 60_000 });
  let long = failed.state;
  for (let i = 0; i < 10; i++)
    long = observe(
      admit(long, long.since + long.cooldownMs).state,
      'error',
      emptyCounts(),
      long.since + long.cooldownMs,
    ).state;
  expect(long.cooldownMs).toBe(policy.maxCooldownMs);
});
