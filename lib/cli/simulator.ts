/**
 * `paystep simulator fault`: sets or shows the faults of a processor simulator of the running
 * runtime (`npm start`), in the vocabulary every simulator shares (docs/simulators.md):
 * `--mode none|down|slow|error|timeout-after-processing`, `--rate 0..1`, `--latency-ms N`.
 *
 * It needs a running runtime: one started in-process for the command would stop, and take its
 * faults with it, as soon as the command ends. The Adyen simulator takes the vocabulary as is; the
 * Stripe simulator has its own fault fields, onto which the mode is mapped (`down` → `downRate`,
 * `error` → `failRate`, `slow` → `latencyMs`, `timeout-after-processing` → `timeoutRate`).
 * Setting a mode replaces every fault the simulator had.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { readRuntimeInfo, resolveDataDir } from './context.ts';
import { CommandFailed, integer, oneOf, UsageError } from './args.ts';
import { DEFAULT_SLOW_MS, FAULT_MODES, type FaultMode } from '../local/processors/framework/faults.ts';
import type { StripeFaults } from '../local/processors/stripe-simulator.ts';

const SIMULATORS = ['stripe', 'adyen'] as const;
type Simulator = (typeof SIMULATORS)[number];

/** What the command prints: the shared vocabulary, and for Stripe its own fields as set. */
export interface SimulatorFaults {
  processor: Simulator;
  mode: FaultMode;
  rate: number;
  latencyMs?: number;
  /** Adyen: the next N affected requests only; `match`: only requests matching `METHOD /path`. */
  count?: number;
  match?: string;
  /** Stripe: the simulator's own fault fields (`GET /_sim/faults`). */
  stripe?: StripeFaults;
}

/** A probability: a decimal number from 0 to 1. */
function rate(value: string): number {
  const n = /^(\d+(\.\d*)?|\.\d+)$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 1)) throw new UsageError(`--rate: '${value}' is not a number from 0 to 1`);
  return n;
}

/** The Stripe simulator's fields for a mode (every other field reset: the mode replaces them). */
function stripeFields(mode: FaultMode, r: number, latencyMs: number | undefined): StripeFaults {
  const cleared: Required<StripeFaults> = {
    latencyMs: 0,
    failRate: 0,
    failNext: 0,
    timeoutNext: 0,
    rateLimitNext: 0,
    failStoredNext: 0,
    declineNext: 0,
    downRate: 0,
    timeoutRate: 0,
    match: '',
  };
  switch (mode) {
    case 'none':
      return cleared;
    case 'down':
      return { ...cleared, downRate: r };
    case 'error':
      return { ...cleared, failRate: r };
    case 'slow':
      return { ...cleared, latencyMs: latencyMs ?? DEFAULT_SLOW_MS };
    case 'timeout-after-processing':
      return { ...cleared, timeoutRate: r };
  }
}

/** The Stripe simulator's fields read in the shared vocabulary (the first that applies). */
function stripeView(f: StripeFaults): SimulatorFaults {
  const base = { processor: 'stripe' as const, ...(f.match ? { match: f.match } : {}), stripe: f };
  const latency = f.latencyMs ? { latencyMs: f.latencyMs } : {};
  if (f.downRate) return { ...base, mode: 'down', rate: f.downRate, ...latency };
  if (f.failRate) return { ...base, mode: 'error', rate: f.failRate, ...latency };
  if (f.timeoutRate) return { ...base, mode: 'timeout-after-processing', rate: f.timeoutRate, ...latency };
  if (f.latencyMs) return { ...base, mode: 'slow', rate: 1, latencyMs: f.latencyMs };
  return { ...base, mode: 'none', rate: 1 };
}

async function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new CommandFailed(`the simulator at ${url} did not answer (${(err as Error).message})`);
  }
  const text = await res.text();
  if (!res.ok) throw new CommandFailed(`the simulator refused the faults (${res.status}): ${text.trim()}`);
  return JSON.parse(text) as unknown;
}

export function registerSimulatorCommands(program: Command, out: (s: string) => void): void {
  const simulator = program
    .command('simulator')
    .description('test controls of the processor simulators of the running runtime (docs/simulators.md)');
  simulator
    .command('fault')
    .description(
      'set a processor simulator’s faults (down, slow, error, timeout-after-processing, none) while npm start runs; without --mode, print them',
    )
    .requiredOption('--processor <name>', SIMULATORS.join(' | '), oneOf('processor', SIMULATORS))
    .option('--mode <mode>', FAULT_MODES.join(' | '), oneOf('fault mode', FAULT_MODES))
    .option('--rate <0..1>', 'probability that a request is affected (default 1)', rate)
    .option(
      '--latency-ms <ms>',
      `slow: added latency (default ${DEFAULT_SLOW_MS}); timeout-after-processing (adyen): answer after this long`,
      integer('--latency-ms', 0, 600_000),
    )
    .action(async (opts: { processor: Simulator; mode?: FaultMode; rate?: number; latencyMs?: number }) => {
      const { processor, mode } = opts;
      if (!mode && (opts.rate !== undefined || opts.latencyMs !== undefined))
        throw new UsageError('--rate and --latency-ms need --mode');
      if (mode === 'none' && (opts.rate !== undefined || opts.latencyMs !== undefined))
        throw new UsageError('--mode none takes no --rate or --latency-ms');
      if (opts.latencyMs !== undefined && mode !== 'slow' && mode !== 'timeout-after-processing')
        throw new UsageError(
          `--latency-ms applies to --mode slow or timeout-after-processing, not '${mode}'`,
        );
      if (processor === 'stripe' && mode === 'slow' && opts.rate !== undefined && opts.rate !== 1)
        throw new UsageError(
          `--rate '${opts.rate}' with --mode slow: the stripe simulator slows every request`,
        );
      if (processor === 'stripe' && mode === 'timeout-after-processing' && opts.latencyMs !== undefined)
        throw new UsageError(
          '--latency-ms with --mode timeout-after-processing: the stripe simulator never answers then',
        );

      const dataDir = resolveDataDir(program.opts().dataDir);
      const info = readRuntimeInfo(dataDir);
      if (!info)
        throw new CommandFailed(
          `no paystep runtime is running on ${path.resolve(dataDir)} (start one with npm start: faults live in its simulators)`,
        );
      const base = (info.endpoints as Partial<Record<string, string>>)[processor];
      if (!base) throw new CommandFailed(`${processor} simulator is not running in this runtime`);
      const url = `${base}/_sim/faults`;

      let result: SimulatorFaults;
      if (processor === 'stripe') {
        const f = mode
          ? await call(url, 'POST', stripeFields(mode, opts.rate ?? 1, opts.latencyMs))
          : await call(url, 'GET');
        result = stripeView(f as StripeFaults);
      } else {
        const body: Record<string, unknown> = { mode, rate: opts.rate ?? 1 };
        if (opts.latencyMs !== undefined) body.latencyMs = opts.latencyMs;
        const f = mode ? await call(url, 'POST', body) : await call(url, 'GET');
        result = { processor, ...(f as Omit<SimulatorFaults, 'processor'>) };
      }
      out(JSON.stringify(result) + '\n');
    });
}
