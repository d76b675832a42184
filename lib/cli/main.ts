/**
 * The `paystep` command for people (ops, finance, developers). It works on the same data dir as
 * `npm start`: when a runtime is running there, commands talk to its services; otherwise the
 * command starts the runtime in-process (without the HTTP gateway and schedules), does its work
 * and stops it again.
 */
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { readRuntimeInfo, resolveDataDir, withRuntime } from './context.ts';
import { createMerchant, validMerchantName } from '../../lambdas/store/merchants.ts';
import { getPayment } from '../../lambdas/store/payments.ts';
import { createRefund, presentRefund } from '../../lambdas/refunds/service.ts';
import type { RefundReason } from '../../lambdas/store/refunds.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { sweep } from '../../lambdas/sweeper/run.ts';
import { registerWebhookCommands } from './webhooks.ts';
import { registerFinanceCommands } from './finance.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('paystep')
    .description('paystep: payment operations on one machine or on AWS')
    .option('-d, --data-dir <dir>', 'data dir of the local runtime (default: $PAYSTEP_DATA_DIR or .paystep)')
    .showHelpAfterError()
    .exitOverride();

  const merchant = program.command('merchant').description('manage merchants');
  merchant
    .command('create')
    .description('create a merchant and print its id and API key (the key is shown only once)')
    .requiredOption('--name <name>', 'display name of the merchant')
    .action(async (opts: { name: string }) => {
      if (!validMerchantName(opts.name)) throw new UsageError('--name must be 1 to 200 characters');
      const dataDir = resolveDataDir(program.opts().dataDir);
      const result = await withRuntime(dataDir, () => createMerchant(opts.name));
      out(
        JSON.stringify({ id: result.merchant.id, name: result.merchant.name, api_key: result.apiKey }) + '\n',
      );
    });

  const refund = program.command('refund').description('refunds (ops)');
  refund
    .command('create')
    .description('refund a captured payment, fully or partially (same rules as POST /v1/refunds)')
    .requiredOption('--payment <id>', 'payment id (pay_…)')
    .option('--amount <minor units>', 'amount to refund (default: everything still refundable)')
    .option('--reason <reason>', 'duplicate | fraudulent | requested_by_customer')
    .action(async (opts: { payment: string; amount?: string; reason?: string }) => {
      if (opts.amount !== undefined && !/^[1-9]\d{0,11}$/.test(opts.amount))
        throw new UsageError('--amount must be a positive integer number of minor units');
      if (
        opts.reason !== undefined &&
        !['duplicate', 'fraudulent', 'requested_by_customer'].includes(opts.reason)
      )
        throw new UsageError('--reason must be duplicate, fraudulent or requested_by_customer');
      const dataDir = resolveDataDir(program.opts().dataDir);
      const result = await withRuntime(dataDir, async () => {
        const payment = await getPayment(opts.payment);
        if (!payment) throw new UsageError(`no payment ${opts.payment}`);
        return createRefund({
          merchantId: payment.merchant_id,
          paymentId: payment.id,
          amount: opts.amount === undefined ? undefined : Number(opts.amount),
          reason: opts.reason as RefundReason | undefined,
          channel: 'cli',
        });
      });
      out(JSON.stringify(presentRefund(result)) + '\n');
    });

  program
    .command('sweep')
    .description(
      'run the sweeper now: re-check stuck payments and refunds with the processor, resume or escalate',
    )
    .action(async () => {
      const dataDir = resolveDataDir(program.opts().dataDir);
      const result = await withRuntime(dataDir, () => sweep());
      out(JSON.stringify(result, null, 2) + '\n');
    });

  program
    .command('status')
    .description('show whether a local runtime is running on the data dir, and its endpoints')
    .action(() => {
      const dataDir = resolveDataDir(program.opts().dataDir);
      const info = readRuntimeInfo(dataDir);
      out(
        JSON.stringify(
          info ? { running: true, ...info } : { running: false, dataDir: path.resolve(dataDir) },
          null,
          2,
        ) + '\n',
      );
    });

  registerWebhookCommands(program, out);
  registerFinanceCommands(program, out);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander already printed help or the error
    if (err instanceof ApiError) {
      process.stderr.write(`paystep: ${err.message}${err.param ? ` (${err.param})` : ''}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`paystep: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`paystep: ${(err as Error).message}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('lib/cli/main.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
