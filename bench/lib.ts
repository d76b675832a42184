/**
 * Shared helpers of the benchmarks (bench/*.ts, run with `npm run bench -- <name>`): latency
 * statistics, tables, progress lines, machine description, process CPU, and a summary of V8 CPU
 * profiles (`node --cpu-prof`) by component.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT_URL = `${pathToFileURL(ROOT).href}/`;

// ---------------------------------------------------------------------------------------------
// Statistics

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  min: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    min: sorted.length ? sorted[0]! : NaN,
  };
}

export const round = (v: number, digits = 1): number =>
  Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v;

export function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v < 1) return `${v.toFixed(3)} ms`;
  if (v < 10) return `${v.toFixed(2)} ms`;
  return `${v.toFixed(1)} ms`;
}

// ---------------------------------------------------------------------------------------------
// Output

/** A plain text table; the first row is the header. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths: number[] = [];
  for (const r of cells) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r));
  return out.join('\n');
}

/** A progress line on stderr: rewritten in place on a terminal, one line per update otherwise. */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private last = '';

  update(text: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[2K${text}`);
    else process.stderr.write(`${text}\n`);
    this.last = text;
  }

  done(): void {
    if (this.tty && this.last) process.stderr.write('\n');
    this.last = '';
  }
}

export function bar(fraction: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
}

export const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** A numeric flag's value in [min, max] (a whole number when `whole`); throws a message naming it. */
export function numberFlag(name: string, value: string, min: number, max: number, whole = false): number {
  const n = Number(value);
  if (!(whole ? Number.isInteger(n) : Number.isFinite(n)) || n < min || n > max)
    throw new Error(
      `--${name}: '${value}' is not a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`,
    );
  return n;
}

// ---------------------------------------------------------------------------------------------
// Machine and processes

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  hypervisor: string | null;
  kernel: string;
  node: string;
  v8: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let hypervisor: string | null = null;
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpuModel;
    if (/^flags\s*:.*\bhypervisor\b/m.test(info)) hypervisor = 'yes';
  } catch {
    // not Linux
  }
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const h = /^Hypervisor vendor:\s*(.+)$/m.exec(out)?.[1]?.trim();
    if (h) hypervisor = h;
  } catch {
    // no lscpu
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    hypervisor,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    v8: process.versions.v8,
  };
}

/**
 * CPU seconds (user, system) used so far by a process, all its threads, from /proc (Linux); with
 * `tid`, by one thread only (`tid = pid`: the main thread, i.e. the event loop).
 */
export function processCpuSeconds(pid: number, tid?: number): { user: number; system: number } | undefined {
  try {
    const stat = fs.readFileSync(
      tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`,
      'utf8',
    );
    // The command name may contain spaces: fields start after the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = 100; // USER_HZ; Linux reports /proc/<pid>/stat in 1/100 s on every common platform
    return { user: Number(fields[11]) / hz, system: Number(fields[12]) / hz };
  } catch {
    return undefined;
  }
}

/** The commit measured and how many files differ from it (read-only git calls). */
export function gitInfo(): { commit: string; dirtyFiles: number } | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return {
      commit: git('rev-parse', '--short', 'HEAD').trim(),
      dirtyFiles: git('status', '--porcelain').split('\n').filter(Boolean).length,
    };
  } catch {
    return undefined;
  }
}

/**
 * Waits (up to `maxSeconds`) until other processes use less than `maxCores` of the machine, so a
 * shared machine does not distort the next measurement; returns the last load seen (cores).
 */
export async function waitForIdleMachine(
  maxSeconds: number,
  ownPids: number[],
  maxCores = 0.15,
): Promise<number | undefined> {
  const end = Date.now() + maxSeconds * 1000;
  let other: number | undefined;
  do {
    const m0 = machineCpuSeconds();
    const own0 = ownPids.map((p) => processCpuSeconds(p));
    await new Promise((r) => setTimeout(r, 1000));
    const m1 = machineCpuSeconds();
    const own1 = ownPids.map((p) => processCpuSeconds(p));
    if (!m0 || !m1) return undefined;
    let own = 0;
    ownPids.forEach((_, i) => (own += cpuDelta(own0[i], own1[i])?.total ?? 0));
    other = Math.max(0, (m1.busy - m0.busy - own) / ((m1.total - m0.total) / os.availableParallelism()));
    if (other < maxCores) return round(other, 2);
  } while (Date.now() < end);
  return round(other ?? 0, 2);
}

/** Busy and total CPU seconds of the whole machine so far, from /proc/stat (Linux). */
export function machineCpuSeconds(): { busy: number; total: number } | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal (guest is inside user)
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return undefined;
  }
}

export function cpuDelta(
  before: { user: number; system: number } | undefined,
  after: { user: number; system: number } | undefined,
): { user: number; system: number; total: number } | undefined {
  if (!before || !after) return undefined;
  const user = after.user - before.user;
  const system = after.system - before.system;
  return { user: round(user, 2), system: round(system, 2), total: round(user + system, 2) };
}

export function tmpFile(prefix: string, ext: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(os.tmpdir(), `${prefix}-${stamp}.${ext}`);
}

/** Lines and bytes of a file (0 if missing): journals grow by one line per record. */
export function fileLines(file: string): { lines: number; bytes: number } {
  try {
    const buf = fs.readFileSync(file);
    let lines = 0;
    for (const b of buf) if (b === 10) lines++;
    return { lines, bytes: buf.length };
  } catch {
    return { lines: 0, bytes: 0 };
  }
}

// ---------------------------------------------------------------------------------------------
// CPU profiles

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  label?: string;
  totalMs: number;
  /** Self time by component (see `component`), descending. */
  components: { component: string; ms: number; share: number }[];
  /** Self time by function, descending. */
  functions: { fn: string; where: string; component: string; ms: number; share: number }[];
  /** Time spent under (inclusive) frames of each component. */
  inclusive: { component: string; ms: number; share: number }[];
  /** Time spent under (inclusive) functions of the project and of packages (not node internals). */
  inclusiveFunctions: { fn: string; where: string; component: string; ms: number; share: number }[];
}

/** Which part of the system a stack frame belongs to. */
export function component(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle';
    if (fn === '(program)') return 'V8/native (program)';
    return `native ${fn || '(anonymous)'}`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) {
    const pkg = nm[1]!;
    if (
      /^(dynalite|levelup|leveldown|classic-level|abstract-level|abstract-leveldown|level-|memdown|encoding-down|deferred-leveldown|lazy|big\.js|async|once)/.test(
        pkg,
      )
    )
      return `dynalite (${pkg})`;
    if (pkg.startsWith('@aws-sdk/') || pkg.startsWith('@smithy/') || pkg.startsWith('@aws-crypto/'))
      return `AWS SDK (${pkg})`;
    return pkg;
  }
  if (url.startsWith(ROOT_URL)) return url.slice(ROOT_URL.length);
  if (url.startsWith('node:')) {
    if (
      /^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net|dns|url|js_stream|tls)|internal\/deps\/undici)/.test(
        url,
      )
    )
      return 'node: http/net/streams';
    if (/^node:(fs|internal\/fs)/.test(url)) return 'node: fs';
    if (/^node:(internal\/crypto|crypto)/.test(url)) return 'node: crypto';
    if (/^node:(internal\/timers|timers)/.test(url)) return 'node: timers';
    return 'node: other internals';
  }
  return url;
}

/** Aggregates a .cpuprofile: self time by component and by function, inclusive time per project file. */
export function summarizeCpuProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  let totalUs = 0;
  const comp = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; component: string; us: number }>();
  const incl = new Map<string, number>();
  const inclFns = new Map<string, { fn: string; where: string; component: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    totalUs += us;
    const c = component(url, functionName);
    comp.set(c, (comp.get(c) ?? 0) + us);
    const where = url ? `${c}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { fn: functionName || '(anonymous)', where, component: c, us: 0 };
    f.us += us;
    fns.set(key, f);
    // Inclusive per component: each component counted once per sample stack.
    const seen = new Set<string>();
    const seenFns = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!cf.url) continue;
      const cc = component(cf.url, cf.functionName);
      if (cc.startsWith('bench/')) continue; // the benchmark's own counters wrap what they count
      if (!seen.has(cc)) {
        seen.add(cc);
        incl.set(cc, (incl.get(cc) ?? 0) + us);
      }
      if (cf.url.startsWith('node:')) continue;
      const w = `${cc}:${cf.lineNumber + 1}`;
      const k = `${cf.functionName}@${w}`;
      if (seenFns.has(k)) continue;
      seenFns.add(k);
      const f = inclFns.get(k) ?? { fn: cf.functionName || '(anonymous)', where: w, component: cc, us: 0 };
      f.us += us;
      inclFns.set(k, f);
    }
  }
  const share = (us: number) => round((100 * us) / totalUs, 1);
  return {
    file,
    totalMs: round(totalUs / 1000, 0),
    components: [...comp]
      .sort((a, b) => b[1] - a[1])
      .map(([component, us]) => ({ component, ms: round(us / 1000, 0), share: share(us) })),
    functions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({
        fn: f.fn,
        where: f.where,
        component: f.component,
        ms: round(f.us / 1000, 0),
        share: share(f.us),
      })),
    inclusive: [...incl]
      .sort((a, b) => b[1] - a[1])
      .map(([component, us]) => ({ component, ms: round(us / 1000, 0), share: share(us) })),
    inclusiveFunctions: [...inclFns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top * 2)
      .map((f) => ({
        fn: f.fn,
        where: f.where,
        component: f.component,
        ms: round(f.us / 1000, 0),
        share: share(f.us),
      })),
  };
}
