/**
 * The V8 flags the runtime's process runs with: `npm start` (package.json's start script names
 * them; test/unit/node-flags.test.ts keeps the two equal) and the benchmarks' runtime processes
 * (bench/runtime-process.ts, bench/checkout/target.ts), so what is measured is what ships.
 *
 * `--max-semi-space-size=4` (MB; V8's default grows it to 16 on 64-bit): the young generation of
 * both isolates (the main thread's and the storage engine's worker, lib/local/dynamodb-worker.ts)
 * stays small. The runtime allocates fast and keeps little (its heap after a full GC is flat at
 * ~53 MB, docs/performance.md "Memory and disk"), so V8 otherwise grows semi-spaces it only
 * reserves. Measured (soak RSS at 1,000 payments; checkout bench GC per payment): default 473 MB,
 * 2.4 ms; 4 MB 358 MB, 4.5–5.4 ms; 2 MB 325 MB, 10–11.5 ms (a quarter more CPU a payment).
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** `execArgv` plus the runtime's flags (those already there are not repeated). */
export function withRuntimeFlags(execArgv: readonly string[]): string[] {
  const names = new Set(RUNTIME_NODE_FLAGS.map((f) => f.split('=')[0]));
  return [...execArgv.filter((a) => !names.has(a.split('=')[0])), ...RUNTIME_NODE_FLAGS];
}
