/**
 * `paystep analytics --merchant ID [--from D] [--to D] [--group-by LIST] [--json]`: approval
 * analytics, the same figures as GET /v1/analytics/payments, as a table (or JSON with --json).
 * `paystep analytics rebuild [--merchant ID]`: counts in the rollups the payments written before
 * rollups existed (lambdas/analytics/rebuild.ts); progress on stderr, the JSON result on stdout.
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { formatTable } from './table.ts';
import { UsageError } from './args.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { parseAnalyticsQuery, paymentAnalytics } from '../../lambdas/analytics/service.ts';
import { rebuildRollups, type RebuildResult } from '../../lambdas/analytics/rebuild.ts';
import { allMerchants, getMerchant } from '../../lambdas/store/merchants.ts';
import { formatAmount } from '../../lambdas/domain/money.ts';

export function registerAnalyticsCommands(program: Command, out: (s: string) => void): void {
  const analytics = program
    .command('analytics')
    .description('approval analytics of a merchant: approval rate, declines, cascades, volume by group')
    // Not `requiredOption`: `analytics rebuild` runs without it (this command parses it for both).
    .option('--merchant <id>', 'the merchant (mch_…); required')
    .option('--from <day>', 'first day, yyyy-mm-dd (UTC; default: 6 days before --to)')
    .option('--to <day>', 'last day, yyyy-mm-dd (UTC; default: today)')
    .option(
      '--group-by <list>',
      'processor, payment_method, card_brand, issuer_country, customer_country, channel',
    )
    .option('--json', 'print JSON instead of a table')
    .action(
      async (opts: { merchant?: string; from?: string; to?: string; groupBy?: string; json?: boolean }) => {
        const merchant = opts.merchant;
        if (!merchant) throw new UsageError("required option '--merchant <id>' not specified");
        const r = await withRuntime(resolveDataDir(program.opts().dataDir), async () => {
          if (!(await getMerchant(merchant))) throw new UsageError(`no merchant '${merchant}'`);
          try {
            const q = parseAnalyticsQuery({
              ...(opts.from ? { from: opts.from } : {}),
              ...(opts.to ? { to: opts.to } : {}),
              ...(opts.groupBy ? { group_by: opts.groupBy } : {}),
            });
            return await paymentAnalytics(merchant, q);
          } catch (err) {
            if (err instanceof ApiError && err.status < 500)
              throw new UsageError(`--${(err.param ?? '').replace('_', '-')}: ${err.message}`);
            throw err;
          }
        });
        if (opts.json) return out(JSON.stringify(r) + '\n');
        const rows = [
          [
            'dimension',
            'value',
            'payments',
            'attempts',
            'approved',
            'declined',
            'approval',
            'cascades',
            'volume',
            'top decline',
          ],
          ...r.groups.map((g) => {
            const top = Object.entries(g.decline_reasons).sort(
              (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1),
            )[0];
            return [
              g.dimension,
              g.value,
              String(g.payments),
              String(g.attempts),
              String(g.approved),
              String(g.declined),
              g.approval_rate === null ? '-' : `${(g.approval_rate * 100).toFixed(1)}%`,
              String(g.cascades_recovered),
              Object.entries(g.volume)
                .map(([c, v]) => formatAmount(v, c))
                .join(' ') || '-',
              top ? `${top[0]} (${top[1]})` : '-',
            ];
          }),
        ];
        out(`${r.from} to ${r.to}: ${r.payments} payments\n`);
        out(formatTable(rows));
      },
    );

  analytics
    .command('rebuild')
    .description(
      'count in the approval rollups the payments written before rollups existed (safe while payments flow)',
    )
    .option('--merchant <id>', 'only this merchant (default: every merchant)')
    .action(async (opts: { merchant?: string }) => {
      // `--merchant` after `rebuild` is parsed by the parent command.
      const only = opts.merchant ?? (analytics.opts() as { merchant?: string }).merchant;
      const results = await withRuntime(
        resolveDataDir(program.opts().dataDir),
        async () => {
          if (only && !(await getMerchant(only))) throw new UsageError(`no merchant '${only}'`);
          const ids: string[] = [];
          if (only) ids.push(only);
          else for await (const m of allMerchants()) ids.push(m.id);
          const out: RebuildResult[] = [];
          for (const id of ids) {
            const r = await rebuildRollups(id, (n) => process.stderr.write(`${id}: ${n} payments marked\n`));
            process.stderr.write(`${id}: ${r.marked} of ${r.unmarked} uncounted payments marked\n`);
            out.push(r);
          }
          return out;
        },
        { settle: true },
      );
      out(
        JSON.stringify({
          merchants: results,
          marked: results.reduce((a, r) => a + r.marked, 0),
        }) + '\n',
      );
    });
}
