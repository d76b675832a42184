/**
 * `npm run bench:checkout` — checkout throughput and latency on the local runtime.
 *
 * 1. Load: a closed loop of `--concurrency` clients, each sending POST /v1/payments
 *    (pm_card_visa, automatic capture, a new Idempotency-Key every time) and the next request as
 *    soon as the answer arrives, for `--warmup` then `--duration` seconds. The full path runs:
 *    gateway → authorizer → payments-create → Step Functions (screen, route, authorize) → Stripe
 *    simulator (no latency, no faults) → DynamoDB (dynalite behind the stream-capturing proxy) →
 *    stream → stream router. After the window every workflow is waited for; "completed/s" counts
 *    the window's payments whose workflow SUCCEEDED before the window ended, so it only matches
 *    the API rate if the workflows keep up.
 * 2. Where the time goes: per payment DynamoDB calls (SDK and raw dynalite), Lambda invocations,
 *    stream records, journal lines and bytes, server CPU ms, event-loop utilisation, and the
 *    latency of each request split along its timeline events (sampled).
 * 3. Handler overhead: payments-create's own time per request in-process, with the AWS clients
 *    mocked (aws-sdk-client-mock: `send` answers at once) and, separately, with the real SDK
 *    middleware stack over a zero-latency fake transport.
 *
 * Modes (`--mode`): `child` (default, reported): the runtime runs in its own process (this file,
 * `--role server`, i.e. startRuntime plus counters) so the load generator never shares its event
 * loop; `plain`: `node lib/local/main.ts` as shipped, without counters; `inprocess`: runtime and
 * load generator in one process (what a test does; the generator's own CPU is charged to it).
 *
 * Results: a table on stdout, progress on stderr, JSON in os.tmpdir() (path printed).
 *
 * This file is the entry (and the `--role` dispatch of the processes it forks); the parts live in
 * bench/checkout/: options.ts (flags), target.ts (the runtime under test), probes.ts (its counters),
 * client.ts (the load generator), window.ts (one measured window), unit-costs.ts, handler.ts
 * (handler overhead) and report.ts (the tables).
 */
import fs from 'node:fs';
import { gitInfo, log, machineInfo, tmpFile, waitForIdleMachine } from './lib.ts';
import { type HandlerResult, handlerRole } from './checkout/handler.ts';
import { type Options, USAGE, parseOptions } from './checkout/options.ts';
import { printLoad, printUnitCosts, printProfile, printHandler } from './checkout/report.ts';
import { serverRole, forkRole } from './checkout/target.ts';
import { runLoad } from './checkout/window.ts';

export async function main(argv: string[]): Promise<number> {
  const role = argv[0] === '--role' ? argv[1] : undefined;
  if (role === 'server') return serverRole(argv.slice(2));
  if (role === 'handler') return handlerRole(argv.slice(2));

  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    console.error(`bench checkout: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!opts) return 0;

  const machine = machineInfo();
  const result: Record<string, unknown> = {
    bench: 'checkout',
    at: new Date().toISOString(),
    machine,
    git: gitInfo(),
    options: opts,
  };
  const outFile = opts.out ?? tmpFile('paystep-bench-checkout', 'json');
  log(
    `machine: ${machine.cpus} × ${machine.cpuModel}${machine.hypervisor ? ` (${machine.hypervisor} VM)` : ''}, ` +
      `${machine.memoryGiB} GiB, Node ${machine.node}`,
  );

  if (opts.load) {
    const load = await runLoad(opts);
    result.mode = opts.mode;
    result.runs = load.runs;
    if (load.profiles.length) result.profiles = load.profiles;
    if (load.unitCosts) result.unitCosts = load.unitCosts;
    printLoad(load.runs, opts);
    if (load.unitCosts) printUnitCosts(load.unitCosts, load.runs);
    for (const p of load.profiles) printProfile(p);
  }
  if (opts.handler) {
    if (opts.waitIdle > 0) await waitForIdleMachine(opts.waitIdle, [process.pid]);
    log(`handler overhead: ${opts.handlerIterations} invocations of payments-create per variant…`);
    const h = await forkRole<HandlerResult>(['--role', 'handler', String(opts.handlerIterations)], {});
    result.handler = h;
    printHandler(h);
  }
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nresults: ${outFile}`);
  return 0;
}

// bench/soak.ts drives the runtime with the same client and measures the data dir the same way.
export { postJson } from './checkout/client.ts';
export { dirBytes } from './checkout/window.ts';
