/**
 * The flags of `npm run bench:checkout` (bench/checkout.ts): their help text and their parsing into
 * Options (a bad value throws, naming the flag).
 */
import { parseArgs } from 'node:util';

export type Mode = 'child' | 'plain' | 'inprocess';

export interface Options {
  concurrency: number[];
  duration: number;
  warmup: number;
  mode: Mode;
  handlerIterations: number;
  handler: boolean;
  load: boolean;
  timelineSample: number;
  cpuProf: boolean;
  unitCosts: number;
  waitIdle: number;
  settleTimeout: number;
  out?: string;
  keep: boolean;
}

export const USAGE = `usage: npm run bench:checkout -- [flags]

  --concurrency N[,N…]   closed-loop clients (default 32); a list runs one window per value
  --duration S           measured window in seconds (default 20)
  --warmup S             warmup before each window in seconds (default 3)
  --mode M               child (default) | plain | inprocess  (see bench/checkout.ts)
  --handler-iterations N payments-create invocations for the handler overhead (default 5000)
  --no-handler           skip the handler overhead measurement
  --handler-only         only the handler overhead measurement
  --timeline-sample N    payments whose timeline splits the latency (default 300)
  --cpu-prof             CPU-profile the runtime process (mode child) and summarise it
  --unit-costs N         time N single DynamoDB calls of each kind on the idle runtime (default 300; 0: skip)
  --wait-idle S          before each measurement, wait up to S seconds for other processes to go quiet
                         (a shared machine distorts the figures; each window reports the load it saw)
  --settle-timeout S     after a window, wait at most S seconds for workflows, streams and queues (default 300)
  --out FILE             JSON result file (default: os.tmpdir()/paystep-bench-checkout-<time>.json)
  --keep                 keep the runtime's data dir`;

export function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      concurrency: { type: 'string', default: '32' },
      duration: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      mode: { type: 'string', default: 'child' },
      'handler-iterations': { type: 'string', default: '5000' },
      'no-handler': { type: 'boolean', default: false },
      'handler-only': { type: 'boolean', default: false },
      'timeline-sample': { type: 'string', default: '300' },
      'cpu-prof': { type: 'boolean', default: false },
      'unit-costs': { type: 'string', default: '300' },
      'wait-idle': { type: 'string', default: '0' },
      'settle-timeout': { type: 'string', default: '300' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${v}"`);
    return n;
  };
  const mode = values.mode as Mode;
  if (!['child', 'plain', 'inprocess'].includes(mode))
    throw new Error(`--mode must be child, plain or inprocess`);
  if (values['cpu-prof'] && mode !== 'child') throw new Error('--cpu-prof needs --mode child');
  return {
    concurrency: values.concurrency.split(',').map((c) => Math.floor(num('concurrency', c, 1))),
    duration: num('duration', values.duration, 1),
    warmup: num('warmup', values.warmup, 0),
    mode,
    handlerIterations: Math.floor(num('handler-iterations', values['handler-iterations'], 10)),
    handler: !values['no-handler'],
    load: !values['handler-only'],
    timelineSample: Math.floor(num('timeline-sample', values['timeline-sample'], 0)),
    cpuProf: values['cpu-prof'],
    unitCosts: Math.floor(num('unit-costs', values['unit-costs'], 0)),
    waitIdle: num('wait-idle', values['wait-idle'], 0),
    settleTimeout: num('settle-timeout', values['settle-timeout'], 1),
    out: values.out,
    keep: values.keep,
  };
}
