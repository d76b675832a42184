/**
 * The V8 flags the runtime's process runs with: `npm start` (package.json's start script names
 * them; test/unit/node-flags.test.ts keeps the two equal) and the benchmarks' runtime processes
 * (bench/runtime-process.ts, bench/checkout/target.ts), so what is measured is what ships.
 *
 * `--max-semi-space-size=2` (MB; V8's default grows it to 16 on 64-bit): the young generation of
 * both isolates (the main thread's and the storage engine's worker, lib/local/dynamodb-worker.ts)
 * stays small. The runtime allocates fast and keeps little (its heap after a full GC is flat at
 * ~53 MB, docs/performance.md "Memory and disk"), so V8 otherwise grew semi-spaces it only
 * reserved: 473 → 325 MB of RSS at 1,000 payments in the soak, for more scavenges (about 3 % more
 * CPU a payment in the checkout bench).
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** `execArgv` plus the runtime's flags (those already there are not repeated). */
export function withRuntimeFlags(execArgv: readonly string[]): string[] {
  const names = new Set(RUNTIME_NODE_FLAGS.map((f) => f.split('=')[0]));
  return [...execArgv.filter((a) => !names.has(a.split('=')[0])), ...RUNTIME_NODE_FLAGS];
}
