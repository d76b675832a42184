/**
 * Billing commands (docs/billing.md), through the same stores as the API; JSON on stdout:
 *
 *   paystep subscriptions list --merchant M [--customer C] [--status S] [--limit N]
 *   paystep subscriptions show ID            the subscription with its timeline
 *   paystep invoices list --merchant M [--subscription S] [--customer C] [--status S] [--limit N]
 *   paystep invoices show ID                 the invoice with its attempts and timeline
 *
 * An unknown id or merchant exits 1 naming it; a malformed option exits 2.
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { CommandFailed, integer, oneOf } from './args.ts';
import { INVOICE_STATUSES, SUBSCRIPTION_STATUSES } from '../../lambdas/domain/subscription.ts';
import { presentInvoice, presentSubscription } from '../../lambdas/billing/model.ts';
import { getMerchant } from '../../lambdas/store/merchants.ts';
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
}
