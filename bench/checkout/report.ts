/**
 * The checkout bench's tables on stdout: throughput and latency per window against the goal, calls
 * and CPU per payment, single-call costs, CPU profile summaries and the handler overhead.
 */
import { fmtMs, round, table, type ProfileSummary } from '../lib.ts';
import type { HandlerResult } from './handler.ts';
import type { Options } from './options.ts';
import type { UnitCost } from './unit-costs.ts';
import type { RunResult } from './window.ts';

const GOAL = { paymentsPerSecond: 200, p99Ms: 250, handlerP99Ms: 5 };

export function printLoad(runs: RunResult[], opts: Options): void {
  console.log(
    `\nCheckout through the local runtime (mode ${opts.mode}, ${opts.duration} s windows after ${opts.warmup} s warmup)\n`,
  );
  console.log(
    table([
      [
        'concurrency',
        'req/s',
        'completed/s',
        'sustained/s',
        'p50',
        'p90',
        'p99',
        'max',
        'captured',
        'processing',
        'errors',
        'wf p50',
        'wf p99',
        'CPU ms/pay',
        'ceiling/s',
        'other load',
      ],
      ...runs.map((r) => [
        r.concurrency,
        r.requestsPerSecond,
        r.workflows.completedPerSecond,
        r.sustainedPerSecond ?? '-',
        fmtMs(r.latencyMs.p50),
        fmtMs(r.latencyMs.p90),
        fmtMs(r.latencyMs.p99),
        fmtMs(r.latencyMs.max),
        r.paymentStatus.captured ?? 0,
        r.paymentStatus.processing ?? 0,
        Object.values(r.errors).reduce((a, b) => a + b, 0),
        fmtMs(r.workflows.durationMs.p50),
        fmtMs(r.workflows.durationMs.p99),
        r.server?.cpuMsPerPayment ?? '-',
        r.server?.capacityPerSecond ?? '-',
        r.machineLoad ? `${r.machineLoad.otherCores} cores` : '-',
      ]),
    ]),
  );
  for (const r of runs) {
    console.log(`\n— concurrency ${r.concurrency}`);
    const errs = Object.entries(r.errors);
    if (errs.length) console.log(`errors: ${errs.map(([k, v]) => `${k} × ${v}`).join(', ')}`);
    console.log(
      `workflows: ${r.workflows.succeeded}/${r.workflows.payments} SUCCEEDED (${r.workflows.succeededInWindow} within the window), ` +
        `${r.workflows.failed} failed, ${r.workflows.running} still running; last ended ${r.workflows.lastEndAfterWindowMs} ms after the window`,
    );
    if (r.stream)
      console.log(
        `table stream: ${r.stream.recordsPerPayment} records per payment, ${r.stream.deliveredInWindow} delivered in the window, ` +
          `${r.stream.backlogAtWindowEnd} not yet delivered when it ended, ` +
          `${r.stream.failedInWindow} parked on the failure queue; runtime idle ` +
          (r.settledAfterWindowMs === null
            ? `not within ${opts.settleTimeout} s`
            : `${r.settledAfterWindowMs} ms`) +
          ' after the window',
      );
    const s = r.server;
    if (s)
      console.log(
        `runtime process: ${s.cpuSeconds?.total ?? '?'} CPU s (${s.cpuSeconds?.user ?? '?'} user, ${s.cpuSeconds?.system ?? '?'} sys) = ` +
          `${s.cpuMsPerPayment ?? '?'} CPU ms per payment (event-loop thread ${s.mainThreadCpuMsPerPayment ?? '?'} ms: ` +
          `ceiling ${s.capacityPerSecond ?? '?'} payments/s on a core of its own)` +
          (s.eventLoopUtilization !== undefined ? `; event loop utilisation ${s.eventLoopUtilization}` : '') +
          (s.loopDelayMs ? `, loop delay p50 ${s.loopDelayMs.p50} ms p99 ${s.loopDelayMs.p99} ms` : '') +
          (s.gcMsPerPayment !== undefined ? `; GC ${s.gcMsPerPayment} ms per payment` : '') +
          `; load generator ${r.loadGeneratorCpuSeconds} CPU s`,
      );
    if (r.machineLoad)
      console.log(
        `machine during the window: ${r.machineLoad.busyCores} cores busy = runtime ${r.machineLoad.runtimeCores} + ` +
          `load generator ${r.machineLoad.generatorCores} + other processes ${r.machineLoad.otherCores}` +
          (r.machineLoad.otherCores > 0.2 ? '  ← the machine was shared: figures are pessimistic' : ''),
      );
    if (r.phases) {
      console.log('\nlatency split (sampled payments, ms):');
      console.log(
        table([
          ['phase', 'p50', 'p90', 'p99', 'mean'],
          ...r.phases.map((p) => [p.phase, p.p50, p.p90, p.p99, p.mean]),
        ]),
      );
      if (r.processorLatencyMs)
        console.log(
          `processor call (attempt latency_ms): p50 ${r.processorLatencyMs.p50} ms, p99 ${r.processorLatencyMs.p99} ms`,
        );
    }
    if (r.awsCallsByFunction && Object.keys(r.awsCallsByFunction).length) {
      const fns = new Map<string, { calls: number; detail: string[] }>();
      for (const [k, v] of Object.entries(r.awsCallsByFunction).sort((a, b) => b[1] - a[1])) {
        const [fn, cmd] = k.split(' ');
        const f = fns.get(fn!) ?? { calls: 0, detail: [] };
        f.calls += v;
        f.detail.push(`${cmd} ${v}`);
        fns.set(fn!, f);
      }
      console.log('\nAWS calls per payment, by function:');
      console.log(
        table([
          ['function', 'invocations', 'AWS calls', 'of which'],
          ...[...fns]
            .sort((a, b) => b[1].calls - a[1].calls)
            .map(([fn, f]) => [
              fn,
              r.perPayment?.[`lambda ${fn}`] ?? '',
              round(f.calls, 2),
              f.detail.join(', '),
            ]),
        ]),
      );
    }
    if (r.perPayment) {
      console.log('\nper payment:');
      console.log(
        table([
          ['what', 'per payment', 'mean ms'],
          ...Object.entries(r.perPayment).map(([k, v]) => {
            const name = k.replace(/^(sdk|dynalite) /, '');
            const mean = k.startsWith('sdk ')
              ? r.server?.sdkMeanMs?.[name]
              : k.startsWith('dynalite ')
                ? r.server?.dynaliteMeanMs?.[name]
                : undefined;
            return [k, v, mean ?? ''];
          }),
        ]),
      );
    }
  }
  const rate = (r: RunResult) => r.sustainedPerSecond ?? r.workflows.completedPerSecond;
  const best = runs.reduce((a, b) => (rate(b) > rate(a) ? b : a));
  console.log(
    `\ngoal: ≥ ${GOAL.paymentsPerSecond} payments/s with p99 < ${GOAL.p99Ms} ms — best: ${rate(best)} sustained payments/s ` +
      `(${round((100 * rate(best)) / GOAL.paymentsPerSecond, 0)} % of goal) at concurrency ${best.concurrency}, ` +
      `p99 ${fmtMs(best.latencyMs.p99)}`,
  );
}

export function printUnitCosts(costs: UnitCost[], runs: RunResult[]): void {
  console.log(
    '\nOne DynamoDB call on the idle runtime (sequential; CPU of the whole runtime process, stream delivery included)\n',
  );
  console.log(
    table([
      ['call', 'wall p50', 'wall p99', 'CPU ms/call'],
      ...costs.map((c) => [c.op, fmtMs(c.wallMs.p50), fmtMs(c.wallMs.p99), c.cpuMs]),
    ]),
  );
  const [get, put, update] = costs;
  for (const r of runs) {
    const pp = r.perPayment ?? {};
    if (!get || !put || !update || r.server?.cpuMsPerPayment === undefined) continue;
    const gets = pp['sdk DynamoDB.GetItem'] ?? 0;
    const puts = pp['sdk DynamoDB.PutItem'] ?? 0;
    const updates = pp['sdk DynamoDB.UpdateItem'] ?? 0;
    const explained = gets * get.cpuMs + puts * put.cpuMs + updates * update.cpuMs;
    console.log(
      `c=${r.concurrency}: ${gets} GetItem + ${puts} PutItem + ${updates} UpdateItem per payment ≈ ${round(explained, 1)} CPU ms ` +
        `of the ${r.server.cpuMsPerPayment} CPU ms a payment costs (${round((100 * explained) / r.server.cpuMsPerPayment, 0)} %)`,
    );
  }
}

export function printProfile(p: ProfileSummary): void {
  console.log(
    `\nCPU profile of the runtime process, ${p.label ?? ''} (${p.file}, ${p.totalMs} ms of samples, idle excluded)\n`,
  );
  console.log(
    table([
      ['component (self time)', 'ms', '%'],
      ...p.components.slice(0, 20).map((c) => [c.component, c.ms, c.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['component (inclusive)', 'ms', '%'],
      ...p.inclusive.slice(0, 25).map((c) => [c.component, c.ms, c.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['function (self time)', 'where', 'ms', '%'],
      ...p.functions.map((f) => [f.fn, f.where, f.ms, f.share]),
    ]),
  );
  console.log('');
  console.log(
    table([
      ['function (inclusive, project and packages)', 'where', 'ms', '%'],
      ...p.inclusiveFunctions.map((f) => [f.fn, f.where, f.ms, f.share]),
    ]),
  );
}

export function printHandler(h: HandlerResult): void {
  console.log('\npayments-create in-process (sequential invocations)\n');
  console.log(
    table([
      ['variant', 'p50', 'p90', 'p99', 'max', 'CPU µs/req', 'AWS calls/req', 'other load'],
      ...h.variants.map((v) => [
        v.variant,
        fmtMs(v.latencyMs.p50),
        fmtMs(v.latencyMs.p90),
        fmtMs(v.latencyMs.p99),
        fmtMs(v.latencyMs.max),
        v.cpuUsPerRequest,
        v.sdkCallsPerRequest,
        v.otherCores !== undefined ? `${v.otherCores} cores` : '-',
      ]),
    ]),
  );
  const own = h.variants[0];
  if (own)
    console.log(
      `goal: handler overhead p99 < ${GOAL.handlerP99Ms} ms — ${fmtMs(own.latencyMs.p99)} (${own.latencyMs.p99 < GOAL.handlerP99Ms ? 'met' : 'not met'})`,
    );
}
