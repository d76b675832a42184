/**
 * `paystep processors`: each processor's status (operational, degraded, down, incident), circuit
 * breaker, running incident and health over the last five minutes, as GET /v1/processors shows
 * them. JSON by default; `--table` for a terminal.
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { formatTable } from './table.ts';
import { processorStatuses } from '../../lambdas/processors/health.ts';

const pct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 1000) / 10}%`);

export function registerProcessorCommands(program: Command, out: (s: string) => void): void {
  program
    .command('processors')
    .description('status, circuit breaker, incident and recent health of each processor')
    .option('--table', 'print a table instead of JSON')
    .action(async (opts: { table?: boolean }) => {
      const data = await withRuntime(resolveDataDir(program.opts().dataDir), () => processorStatuses());
      if (!opts.table) return out(JSON.stringify({ object: 'list', data }) + '\n');
      const rows = [
        [
          'processor',
          'enabled',
          'status',
          'breaker',
          'incident',
          'attempts',
          'errors',
          'timeouts',
          'approval',
          'p95 ms',
        ],
        ...data.map((p) => [
          p.name,
          p.enabled ? 'yes' : 'no',
          p.status,
          p.breaker.state,
          p.incident ? `${p.incident.id} (${p.incident.status})` : '-',
          String(p.health.attempts),
          pct(p.health.technical_error_rate),
          pct(p.health.timeout_rate),
          pct(p.health.approval_rate),
          p.health.p95_latency_ms === null ? '-' : String(p.health.p95_latency_ms),
        ]),
      ];
      out(formatTable(rows));
    });
}
