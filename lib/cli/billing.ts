/**
 * Billing commands (docs/billing.md), through the same stores as the API; JSON on stdout:
 *
 *   paystep subscriptions list --merchant M [--customer C] [--status S] [--limit N]
 *   paystep subscriptions show ID            the subscription with its timeline
 *   paystep invoices list --merchant M [--subscription S] [--customer C] [--status S] [--limit N]
 *   paystep invoices show ID                 the invoice with its attempts and timeline
 *   paystep dunning-policy show --merchant M the merchant's dunning policy in force
 *   paystep dunning-policy set --merchant M [--max-attempts N] [--window-days N]
 *                              [--final-action cancel|unpaid] [--reset]
 *
 * An unknown id or merchant exits 1 naming it; a malformed option exits 2.
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { CommandFailed, integer, oneOf } from './args.ts';
import { INVOICE_STATUSES, SUBSCRIPTION_STATUSES } from '../../lambdas/domain/subscription.ts';
import { presentInvoice, presentSubscription } from '../../lambdas/billing/model.ts';
import { getMerchant } from '../../lambdas/store/merchants.ts';
import { showDunningPolicy, updateDunningPolicy } from '../../lambdas/billing/dunning-policy.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { UsageError } from './args.ts';
import { getInvoice, invoiceTimeline, listInvoices } from '../../lambdas/store/invoices.ts';
import {
  getSubscription,
  listSubscriptions,
  subscriptionTimeline,
} from '../../lambdas/store/subscriptions.ts';

type Out = (s: string) => void;

export function registerBillingCommands(program: Command, out: Out): void {
  const run = <T>(work: () => Promise<T>) => withRuntime(resolveDataDir(program.opts().dataDir), work);
  const merchant = async (id: string) => {
    if (!(await getMerchant(id))) throw new CommandFailed(`no merchant '${id}'`);
  };
  const limit = integer('--limit', 1, 100);

  const subs = program.command('subscriptions').description('subscriptions (docs/billing.md)');
  subs
    .command('list')
    .description("a merchant's subscriptions, newest first")
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .option('--customer <id>', 'only this customer’s (cus_…)')
    .option('--status <status>', 'only in this status', oneOf('status', SUBSCRIPTION_STATUSES))
    .option('--limit <n>', 'at most this many (1–100, default 100)', limit)
    .action(async (o: { merchant: string; customer?: string; status?: string; limit?: number }) => {
      const page = await run(async () => {
        await merchant(o.merchant);
        return listSubscriptions(o.merchant, {
          limit: o.limit ?? 100,
          customer: o.customer,
          status: o.status,
        });
      });
      out(JSON.stringify(page.data.map(presentSubscription)) + '\n');
    });
  subs
    .command('show')
    .description('one subscription with its timeline')
    .argument('<id>', 'sub_…')
    .action(async (id: string) => {
      const shown = await run(async () => {
        const s = await getSubscription(id);
        if (!s) throw new CommandFailed(`no subscription '${id}'`);
        return {
          ...presentSubscription(s),
          merchant: s.merchant_id,
          timeline: await subscriptionTimeline(id),
        };
      });
      out(JSON.stringify(shown) + '\n');
    });

  const invoices = program.command('invoices').description('invoices (docs/billing.md)');
  invoices
    .command('list')
    .description("a merchant's invoices, newest first")
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .option('--subscription <id>', 'only this subscription’s (sub_…)')
    .option('--customer <id>', 'only this customer’s (cus_…)')
    .option('--status <status>', 'only in this status', oneOf('status', INVOICE_STATUSES))
    .option('--limit <n>', 'at most this many (1–100, default 100)', limit)
    .action(
      async (o: {
        merchant: string;
        subscription?: string;
        customer?: string;
        status?: string;
        limit?: number;
      }) => {
        const page = await run(async () => {
          await merchant(o.merchant);
          return listInvoices(o.merchant, {
            limit: o.limit ?? 100,
            subscription: o.subscription,
            customer: o.customer,
            status: o.status,
          });
        });
        out(JSON.stringify(page.data.map(presentInvoice)) + '\n');
      },
    );
  invoices
    .command('show')
    .description('one invoice with its attempts and timeline')
    .argument('<id>', 'in_…')
    .action(async (id: string) => {
      const shown = await run(async () => {
        const inv = await getInvoice(id);
        if (!inv) throw new CommandFailed(`no invoice '${id}'`);
        return { ...presentInvoice(inv), merchant: inv.merchant_id, timeline: await invoiceTimeline(id) };
      });
      out(JSON.stringify(shown) + '\n');
    });

  const policy = program
    .command('dunning-policy')
    .description("a merchant's dunning policy: attempts, window, final action (docs/billing.md)");
  policy
    .command('show')
    .description('the policy in force (the merchant’s own fields over the defaults)')
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .action(async (o: { merchant: string }) => {
      const shown = await run(async () => {
        await merchant(o.merchant);
        return showDunningPolicy(o.merchant);
      });
      out(JSON.stringify(shown) + '\n');
    });
  policy
    .command('set')
    .description('changes the fields given; prints the policy now in force')
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .option(
      '--max-attempts <n>',
      'attempts per invoice, the first charge included (1–20)',
      integer('--max-attempts', 1, 20),
    )
    .option(
      '--window-days <n>',
      'days after the first failure when retrying stops (1–60)',
      integer('--window-days', 1, 60),
    )
    .option(
      '--final-action <action>',
      'when retrying stops: cancel the subscription, or keep it unpaid',
      oneOf('final-action', ['cancel', 'unpaid'] as const),
    )
    .option('--reset', 'every field back to paystep’s default (before the others are applied)')
    .action(
      async (o: {
        merchant: string;
        maxAttempts?: number;
        windowDays?: number;
        finalAction?: string;
        reset?: boolean;
      }) => {
        const changes: Record<string, unknown> = o.reset
          ? { max_attempts: null, window_days: null, final_action: null }
          : {};
        if (o.maxAttempts !== undefined) changes.max_attempts = o.maxAttempts;
        if (o.windowDays !== undefined) changes.window_days = o.windowDays;
        if (o.finalAction !== undefined) changes.final_action = o.finalAction;
        if (!Object.keys(changes).length)
          throw new UsageError(
            'nothing to set: give --max-attempts, --window-days, --final-action or --reset',
          );
        const shown = await run(async () => {
          await merchant(o.merchant);
          try {
            return await updateDunningPolicy(o.merchant, changes);
          } catch (err) {
            if (err instanceof ApiError && err.status < 500) throw new UsageError(err.message);
            throw err;
          }
        });
        out(JSON.stringify(shown) + '\n');
      },
    );
}
