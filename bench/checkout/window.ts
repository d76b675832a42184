/**
 * One measured window of the checkout bench per concurrency: warmup, the closed loop for
 * `--duration` seconds, then waiting for the workflows, streams and queues to finish, and the
 * figures of the window: throughput, latency, workflow completion, stream backlog, calls and bytes
 * per payment, server CPU and event loop, the machine's other load, and the latency split along each
 * sampled payment's timeline.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  bar,
  cpuDelta,
  fileLines,
  fmtMs,
  log,
  machineCpuSeconds,
  processCpuSeconds,
  Progress,
  round,
  summarize,
  summarizeCpuProfile,
  tmpFile,
  waitForIdleMachine,
  type LatencySummary,
  type ProfileSummary,
} from '../lib.ts';
import { type Sample, postJson, now, closedLoop } from './client.ts';
import type { Options } from './options.ts';
import type { Counter, ServerStats } from './probes.ts';
import { roundSummary } from './summaries.ts';
import { type Target, startTarget, listExecutions } from './target.ts';
import type { UnitCost } from './unit-costs.ts';

export interface RunResult {
  concurrency: number;
  durationS: number;
  requests: number;
  /** Requests answered within the window, per second. */
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  httpStatus: Record<string, number>;
  paymentStatus: Record<string, number>;
  errors: Record<string, number>;
  workflows: {
    payments: number;
    succeeded: number;
    failed: number;
    running: number;
    succeededInWindow: number;
    /** SUCCEEDED workflows of the window's payments that ended within the window, per second. */
    completedPerSecond: number;
    /** How long after the window the last workflow ended, ms. */
    lastEndAfterWindowMs: number;
    durationMs: LatencySummary;
  };
  /**
   * The table stream: records captured and not yet delivered when the window ended (a backlog
   * that grows means the stream consumers do not keep up), and records parked on the failure queue.
   */
  stream?: {
    backlogAtWindowEnd: number;
    deliveredInWindow: number;
    recordsPerPayment: number;
    failedInWindow: number;
  };
  /**
   * Payments/s whose whole work kept up: the workflow rate, capped by the rate at which the table
   * stream delivered the records payments produce (stream records delivered in the window ÷
   * records per payment ÷ window). Below `completedPerSecond` when the stream falls behind.
   */
  sustainedPerSecond?: number;
  /** How long after the window the runtime had nothing left to do (null: not within --settle-timeout). */
  settledAfterWindowMs: number | null;
  /** Request latency split along timeline events (sampled payments), ms. */
  phases?: { phase: string; p50: number; p90: number; p99: number; mean: number }[];
  processorLatencyMs?: LatencySummary;
  perPayment?: Record<string, number>;
  /** AWS calls per payment by calling function and command. */
  awsCallsByFunction?: Record<string, number>;
  server?: {
    cpuSeconds: { user: number; system: number; total: number } | undefined;
    cpuMsPerPayment: number | undefined;
    /** CPU of the event-loop thread alone (everything but LevelDB's and libuv's threads). */
    mainThreadCpuMsPerPayment: number | undefined;
    /**
     * Payments/s the event loop could carry with a core to itself (1000 / main-thread CPU ms per
     * payment): the ceiling of the single-threaded runtime, and robust to other load on the machine.
     */
    capacityPerSecond: number | undefined;
    eventLoopUtilization?: number;
    loopDelayMs?: ServerStats['loopDelay'];
    gcMsPerPayment?: number;
    sdkMeanMs?: Record<string, number>;
    dynaliteMeanMs?: Record<string, number>;
    memoryMb?: ServerStats['memoryMb'];
  };
  loadGeneratorCpuSeconds: number;
  /**
   * Cores busy on the whole machine during the window, and how many of them were neither the
   * runtime nor the load generator (other processes on a shared machine distort the figures).
   */
  machineLoad?: { busyCores: number; runtimeCores: number; generatorCores: number; otherCores: number };
}

function machineLoad(
  before: { busy: number; total: number } | undefined,
  after: { busy: number; total: number } | undefined,
  rtBefore: { user: number; system: number } | undefined,
  rtAfter: { user: number; system: number } | undefined,
  gen: NodeJS.CpuUsage,
  opts: Options,
): RunResult['machineLoad'] {
  if (!before || !after) return undefined;
  const secs = opts.duration;
  const busy = (after.busy - before.busy) / secs;
  // In mode inprocess one process is both: its CPU is reported as the runtime's.
  const own = (gen.user + gen.system) / 1e6 / secs;
  const runtime = opts.mode === 'inprocess' ? own : (cpuDelta(rtBefore, rtAfter)?.total ?? 0) / secs;
  const generator = opts.mode === 'inprocess' ? 0 : own;
  return {
    busyCores: round(busy, 2),
    runtimeCores: round(runtime, 2),
    generatorCores: round(generator, 2),
    otherCores: round(Math.max(0, busy - runtime - generator), 2),
  };
}

export async function runLoad(
  opts: Options,
): Promise<{ runs: RunResult[]; profiles: ProfileSummary[]; unitCosts?: UnitCost[] }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-data-'));
  log(`starting the runtime (mode ${opts.mode}, data ${dataDir})…`);
  const target = await startTarget(opts.mode, dataDir);
  // Zero processor latency, no faults (the default; said explicitly).
  if (target.endpoints.stripe) await fetch(`${target.endpoints.stripe}/_sim/faults`, { method: 'DELETE' });
  const runs: RunResult[] = [];
  const profiles: ProfileSummary[] = [];
  let unitCosts: UnitCost[] | undefined;
  try {
    for (const c of opts.concurrency) {
      const { run, profile } = await runWindow(target, c, opts);
      runs.push(run);
      if (profile) profiles.push(profile);
    }
    if (target.unitCosts && opts.unitCosts > 0) {
      if (opts.waitIdle > 0) await waitForIdleMachine(opts.waitIdle, [process.pid, target.pid]);
      log('measuring single DynamoDB calls on the idle runtime…');
      unitCosts = await target.unitCosts(opts.unitCosts);
    }
  } finally {
    log('stopping the runtime…');
    await target.stop();
    if (!opts.keep) fs.rmSync(dataDir, { recursive: true, force: true });
    else log(`data kept in ${dataDir}`);
  }
  return { runs, profiles, unitCosts };
}

function journals(dataDir: string): Record<string, { lines: number; bytes: number }> {
  const out: Record<string, { lines: number; bytes: number }> = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) out[path.relative(dataDir, p)] = fileLines(p);
    }
  };
  walk(dataDir);
  return out;
}

export function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
    }
  } catch {
    // missing
  }
  return n;
}

async function runWindow(
  target: Target,
  concurrency: number,
  opts: Options,
): Promise<{ run: RunResult; profile?: ProfileSummary }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const progress = new Progress();
  try {
    // Warmup: JIT, caches (authorizer, Stripe adapter, secrets), dynalite, sockets.
    if (opts.warmup > 0) {
      let n = 0;
      const t0 = now();
      const until = t0 + opts.warmup * 1000;
      const timer = setInterval(
        () => progress.update(`c=${concurrency} warmup ${bar((now() - t0) / (until - t0))} ${n} requests`),
        1000,
      );
      await closedLoop(target, agent, concurrency, until, () => n++);
      clearInterval(timer);
      progress.done();
    }
    await target.settle(120_000);
    if (opts.waitIdle > 0) {
      progress.update(`c=${concurrency} waiting up to ${opts.waitIdle} s for other processes to go quiet…`);
      const other = await waitForIdleMachine(opts.waitIdle, [process.pid, target.pid]);
      progress.update(`c=${concurrency} other processes use ${other ?? '?'} cores`);
      progress.done();
    }

    const before = await target.stats(true);
    const journalsBefore = journals(target.dataDir);
    const dynamoBytesBefore = dirBytes(path.join(target.dataDir, 'dynamodb'));
    const stripeBefore = await stripeStats(target);
    const cpuBefore = processCpuSeconds(target.pid);
    const mainBefore = processCpuSeconds(target.pid, target.pid);
    const machineBefore = machineCpuSeconds();
    const genCpuBefore = process.cpuUsage();
    const profiling = opts.cpuProf && target.profileStart && target.profileStop;
    if (profiling) await target.profileStart!();

    const samples: Sample[] = [];
    const start = now();
    const end = start + opts.duration * 1000;
    let lastCount = 0;
    let errors = 0;
    const timer = setInterval(() => {
      const inWindow = samples.filter((s) => s.end <= end);
      const recent = inWindow.slice(lastCount);
      lastCount = inWindow.length;
      const lat = summarize(recent.map((s) => s.end - s.start));
      progress.update(
        `c=${concurrency} ${bar((now() - start) / (end - start))} ${Math.min(opts.duration, Math.round((now() - start) / 1000))}/${opts.duration} s  ` +
          `${recent.length} req/s  p50 ${fmtMs(lat.p50)}  p99 ${fmtMs(lat.p99)}  errors ${errors}`,
      );
    }, 1000);
    await closedLoop(target, agent, concurrency, end, (s) => {
      if (s.error) errors++;
      samples.push(s);
    });
    clearInterval(timer);
    progress.done();
    const genCpu = process.cpuUsage(genCpuBefore);
    const machineEnd = machineCpuSeconds();
    const cpuWindowEnd = processCpuSeconds(target.pid);
    const atWindowEnd = await target.stats();

    progress.update(`c=${concurrency} waiting for the workflows, streams and queues to finish…`);
    const settleStart = now();
    let settledMs: number | null = null;
    // The guard's timer is cleared once the runtime settles: left pending, it kept the bench's
    // process alive for the whole settle timeout after its report.
    let guard: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        target.settle(opts.settleTimeout * 1000),
        new Promise((_, reject) => {
          guard = setTimeout(() => reject(new Error('timeout')), opts.settleTimeout * 1000 + 1000);
        }),
      ]);
      settledMs = round(now() - settleStart, 0);
    } catch (err) {
      log(
        `\nc=${concurrency}: the runtime did not settle within ${opts.settleTimeout} s (${(err as Error).message})`,
      );
    } finally {
      clearTimeout(guard);
    }
    progress.done();
    let profile: ProfileSummary | undefined;
    if (profiling) {
      const file = await target.profileStop!(tmpFile(`paystep-bench-checkout-c${concurrency}`, 'cpuprofile'));
      profile = { ...summarizeCpuProfile(file), label: `concurrency ${concurrency}, window + settle` };
    }
    const after = await target.stats();
    const cpuAfter = processCpuSeconds(target.pid);
    const mainAfter = processCpuSeconds(target.pid, target.pid);
    const journalsAfter = journals(target.dataDir);
    const dynamoBytesAfter = dirBytes(path.join(target.dataDir, 'dynamodb'));
    const stripeAfter = await stripeStats(target);

    const answered = samples.filter((s) => s.end <= end);
    const count = (f: (s: Sample) => string | undefined) => {
      const m: Record<string, number> = {};
      for (const s of samples) {
        const k = f(s);
        if (k !== undefined) m[k] = (m[k] ?? 0) + 1;
      }
      return m;
    };
    const payments = samples.filter((s) => s.id);
    const ids = new Set(payments.map((s) => s.id!));
    const execs = (await listExecutions(target.endpoints)).filter((e) => ids.has(e.name));
    const succeeded = execs.filter((e) => e.status === 'SUCCEEDED');
    const inWindow = succeeded.filter((e) => e.stop !== undefined && e.stop <= end);
    const lastStop = Math.max(...execs.map((e) => e.stop ?? 0));

    const n = payments.length;
    const per = (v: number) => round(v / n, 2);
    const perPayment: Record<string, number> = {};
    const byFunction: Record<string, number> = {};
    const cpu = cpuDelta(cpuBefore, cpuAfter);
    const mainCpu = cpuDelta(mainBefore, mainAfter);
    if (before && after) {
      for (const [k, v] of Object.entries(after.sdk)) {
        const d = v.count - (before.sdk[k]?.count ?? 0);
        if (d) perPayment[`sdk ${k}`] = per(d);
      }
      if (after.dynalite && before.dynalite)
        for (const [k, v] of Object.entries(after.dynalite)) {
          const d = v.count - (before.dynalite[k]?.count ?? 0);
          if (d) perPayment[`dynalite ${k}`] = per(d);
        }
      for (const [k, v] of Object.entries(after.lambdas)) {
        const d = v - (before.lambdas[k] ?? 0);
        if (d) perPayment[`lambda ${k}`] = per(d);
      }
      for (const [k, v] of Object.entries(after.sdkByFunction ?? {})) {
        const d = v.count - (before.sdkByFunction?.[k]?.count ?? 0);
        if (d) byFunction[k] = per(d);
      }
      perPayment['stream records'] = per(after.streams.captured - before.streams.captured);
      perPayment['stream records parked on the failure queue'] = per(
        after.streams.failed - before.streams.failed,
      );
      perPayment['stream batches'] = per(after.streams.batches - before.streams.batches);
    }
    for (const [k, v] of Object.entries(journalsAfter)) {
      const b = journalsBefore[k] ?? { lines: 0, bytes: 0 };
      if (v.lines - b.lines) {
        perPayment[`journal lines ${k}`] = per(v.lines - b.lines);
        perPayment[`journal bytes ${k}`] = per(v.bytes - b.bytes);
      }
    }
    perPayment['dynalite bytes on disk (growth)'] = per(dynamoBytesAfter - dynamoBytesBefore);
    if (stripeBefore && stripeAfter)
      perPayment['stripe requests'] = per(stripeAfter.requests - stripeBefore.requests);

    const meanMs = (
      a: Record<string, Counter> | null | undefined,
      b: Record<string, Counter> | null | undefined,
    ) => {
      if (!a || !b) return undefined;
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(a)) {
        const c = v.count - (b[k]?.count ?? 0);
        if (c > 0) out[k] = round((v.ms - (b[k]?.ms ?? 0)) / c, 2);
      }
      return out;
    };

    const result: RunResult = {
      concurrency,
      durationS: opts.duration,
      requests: answered.length,
      requestsPerSecond: round(answered.length / opts.duration, 1),
      latencyMs: roundSummary(summarize(samples.map((s) => s.end - s.start))),
      httpStatus: count((s) => String(s.status)),
      paymentStatus: count((s) => s.paymentStatus),
      errors: count((s) => s.error),
      workflows: {
        payments: n,
        succeeded: succeeded.length,
        failed: execs.filter((e) => e.status !== 'SUCCEEDED' && e.status !== 'RUNNING').length,
        running: execs.filter((e) => e.status === 'RUNNING').length,
        succeededInWindow: inWindow.length,
        completedPerSecond: round(inWindow.length / opts.duration, 1),
        lastEndAfterWindowMs: round(Math.max(0, lastStop - end), 0),
        durationMs: roundSummary(summarize(execs.filter((e) => e.stop).map((e) => e.stop! - e.start))),
      },
      stream:
        atWindowEnd && before && after
          ? {
              backlogAtWindowEnd: atWindowEnd.streams.pending,
              deliveredInWindow: atWindowEnd.streams.delivered - before.streams.delivered,
              recordsPerPayment: per(after.streams.captured - before.streams.captured),
              failedInWindow: after.streams.failed - before.streams.failed,
            }
          : undefined,
      settledAfterWindowMs: settledMs,
      sustainedPerSecond: undefined,
      perPayment,
      awsCallsByFunction: byFunction,
      server: {
        cpuSeconds: cpu,
        cpuMsPerPayment: cpu ? round((cpu.total * 1000) / n, 2) : undefined,
        mainThreadCpuMsPerPayment: mainCpu ? round((mainCpu.total * 1000) / n, 2) : undefined,
        capacityPerSecond: mainCpu && opts.mode !== 'inprocess' ? round(n / mainCpu.total, 1) : undefined,
        eventLoopUtilization:
          before && atWindowEnd
            ? round(
                (atWindowEnd.elu.active - before.elu.active) /
                  (atWindowEnd.elu.active - before.elu.active + atWindowEnd.elu.idle - before.elu.idle),
                3,
              )
            : undefined,
        loopDelayMs: atWindowEnd?.loopDelay,
        gcMsPerPayment: before && after ? round((after.gc.ms - before.gc.ms) / n, 2) : undefined,
        sdkMeanMs: meanMs(atWindowEnd?.sdk, before?.sdk),
        dynaliteMeanMs: meanMs(atWindowEnd?.dynalite, before?.dynalite),
        memoryMb: after?.memoryMb,
      },
      loadGeneratorCpuSeconds: round((genCpu.user + genCpu.system) / 1e6, 2),
      machineLoad: machineLoad(machineBefore, machineEnd, cpuBefore, cpuWindowEnd, genCpu, opts),
    };
    if (result.stream && result.stream.recordsPerPayment > 0)
      result.sustainedPerSecond = round(
        Math.min(
          result.workflows.completedPerSecond,
          result.stream.deliveredInWindow / result.stream.recordsPerPayment / opts.duration,
        ),
        1,
      );
    if (opts.timelineSample > 0 && payments.length) {
      const split = await splitLatency(target, agent, payments, opts.timelineSample);
      result.phases = split.phases;
      result.processorLatencyMs = split.processor;
    }
    return { run: result, profile };
  } finally {
    agent.destroy();
  }
}

async function stripeStats(target: Target): Promise<{ requests: number } | undefined> {
  if (!target.endpoints.stripe) return undefined;
  try {
    const r = await fetch(`${target.endpoints.stripe}/_sim/stats`);
    return (await r.json()) as { requests: number };
  } catch {
    return undefined;
  }
}

/**
 * Splits the latency of sampled requests along their timeline events (the `at` of each event is
 * taken just before the DynamoDB write that carries it; entries written together share a phase):
 *   request sent → `created` (payment put) → `started` + `risk` (screen step's write) → `routed`
 *   (route step's write) → `attempt` + captured (authorize step's write) → answer.
 */
async function splitLatency(
  target: Target,
  agent: http.Agent,
  payments: Sample[],
  sampleSize: number,
): Promise<{ phases: RunResult['phases']; processor: LatencySummary }> {
  const step = Math.max(1, Math.floor(payments.length / sampleSize));
  const picked = payments.filter((_, i) => i % step === 0).slice(0, sampleSize);
  const base = new URL(target.url);
  const names = [
    'gateway + authorizer + idempotency claim + payment put',
    'StartExecution + execution start + screen step',
    'route step',
    'authorize: read + Stripe call + captured transition',
    'captured → response (wait + idempotency complete + HTTP)',
  ];
  const phases: number[][] = names.map(() => []);
  const processor: number[] = [];
  type Ev = { at: string; type: string; event?: string; status?: string; latency_ms?: number };
  let i = 0;
  const worker = async () => {
    while (i < picked.length) {
      const s = picked[i++]!;
      const r = await postJson(agent, base, `/v1/payments/${s.id}/timeline`, {
        authorization: `Bearer ${target.key}`,
      });
      if (r.status !== 200) continue;
      const events = (JSON.parse(r.body) as { events: Ev[] }).events;
      const at = (f: (e: Ev) => boolean) => {
        const e = events.find(f);
        return e ? Date.parse(e.at) : undefined;
      };
      const marks = [
        s.start,
        at((e) => e.type === 'created'),
        at((e) => e.type === 'risk'),
        at((e) => e.type === 'workflow' && e.event === 'routed'),
        at((e) => e.type === 'status_changed' && e.status === 'captured'),
        s.end,
      ];
      if (marks.some((m) => m === undefined)) continue;
      for (let k = 0; k < names.length; k++) phases[k]!.push(marks[k + 1]! - marks[k]!);
      const attempt = events.find((e) => e.type === 'attempt');
      if (typeof attempt?.latency_ms === 'number') processor.push(attempt.latency_ms);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return {
    phases: names.map((phase, k) => {
      const s = summarize(phases[k]!);
      return {
        phase,
        p50: round(s.p50, 1),
        p90: round(s.p90, 1),
        p99: round(s.p99, 1),
        mean: round(s.mean, 1),
      };
    }),
    processor: roundSummary(summarize(processor)),
  };
}
