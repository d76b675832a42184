/**
 * The `paystep` command for people (ops, finance, developers). It works on the same data dir as
 * `npm start`: when a runtime is running there, commands talk to its services; otherwise the
 * command starts the runtime in-process (without the HTTP gateway and schedules), does its work
 * and stops it again.
 *
 * Conventions: the result (JSON, or a report's content) goes to stdout and nothing else does;
 * logs, progress and errors go to stderr. Exit codes: 0 done, 1 the command failed or found a
 * failure (ledger check, status with nothing running, a failed reconciliation), 2 a usage error
 * (unknown command or option, missing required option, a value that is not allowed). Errors are
 * one line, `paystep: …`, without a stack trace (PAYSTEP_LOG_LEVEL=debug adds it).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Command, CommanderError, Help, type Option } from 'commander';
import { readRuntimeInfo, resolveDataDir, withRuntime } from './context.ts';
import { CommandFailed, integer, oneOf, UsageError } from './args.ts';
import { createMerchant, setMerchantProcessors, validMerchantName } from '../../lambdas/store/merchants.ts';
import { config } from '../../lambdas/shared/config.ts';
import { getPayment } from '../../lambdas/store/payments.ts';
import { requestRefund } from '../../lambdas/refunds/service.ts';
import { readIdempotencyKey } from '../../lambdas/store/idempotency.ts';
import type { RefundReason } from '../../lambdas/store/refunds.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { sweep } from '../../lambdas/sweeper/run.ts';
import { registerWebhookCommands } from './webhooks.ts';
import { registerFinanceCommands } from './finance.ts';
import { registerExecutionCommands } from './executions.ts';
import { registerSimulatorCommands } from './simulator.ts';
import { registerRoutingCommands } from './routing.ts';
import { registerIncidentCommands } from './incidents.ts';
import { registerOpsCommands } from './ops.ts';
import { registerOperatorCommands } from './operators.ts';
import { registerProcessorCommands } from './processors.ts';
import { registerAnalyticsCommands } from './analytics.ts';
import { registerBillingCommands } from './billing.ts';

export { UsageError };

const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('paystep')
    .description('paystep: payment operations on one machine or on AWS')
    .option('-d, --data-dir <dir>', 'data dir of the local runtime (default: $PAYSTEP_DATA_DIR or .paystep)')
    .configureOutput({
      // Help is a result (stdout, even while main() sends other stdout writes to stderr).
      writeOut: (str) => out(str),
      // commander's own errors ("error: required option '--name <name>' not specified") read like ours.
      outputError: (str, write) => write(`paystep: ${str.replace(/^error: /, '')}`),
    })
    .configureHelp({
      optionDescription(this: Help, option: Option) {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `${text} (required)` : text;
      },
    })
    .showHelpAfterError('(paystep --help, or paystep <command> --help, for usage)')
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

  merchant
    .command('update <id>')
    .description(
      "set a merchant's processor order: payments that name no processor go to its first enabled entry",
    )
    .requiredOption(
      '--processors <list>',
      'comma-separated, among the enabled processors (PAYSTEP_PROCESSORS), e.g. adyen,stripe',
    )
    .action(async (id: string, opts: { processors: string }) => {
      const processors = [
        ...new Set(
          opts.processors
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        ),
      ];
      if (!processors.length) throw new UsageError('--processors must name at least one processor');
      const dataDir = resolveDataDir(program.opts().dataDir);
      const updated = await withRuntime(dataDir, async () => {
        // The runtime's configuration: the processors it enables.
        const enabled: string[] = config.processors();
        const unknown = processors.find((p) => !enabled.includes(p));
        if (unknown)
          throw new UsageError(
            `--processors: "${unknown}" is not an enabled processor (enabled: ${enabled.join(', ')})`,
          );
        return setMerchantProcessors(id, processors);
      });
      if (!updated) throw new UsageError(`no merchant ${id}`);
      out(JSON.stringify(updated) + '\n');
    });

  const refund = program.command('refund').description('refunds (ops)');
  refund
    .command('create')
    .description('refund a captured payment, fully or partially (same rules as POST /v1/refunds)')
    .requiredOption('--payment <id>', 'payment id (pay_…)')
    .option(
      '--amount <minor units>',
      'amount to refund (default: everything still refundable)',
      integer('--amount', 1, 999_999_999_999),
    )
    .option('--reason <reason>', REFUND_REASONS.join(' | '), oneOf('refund reason', REFUND_REASONS))
    .option(
      '--idempotency-key <key>',
      'makes the refund safe to retry: the same key and options resume the same refund, never a second (default: a new key, printed on stderr)',
    )
    .action(
      async (opts: { payment: string; amount?: number; reason?: RefundReason; idempotencyKey?: string }) => {
        const dataDir = resolveDataDir(program.opts().dataDir);
        if (opts.idempotencyKey !== undefined)
          try {
            // The same checks as the API's header (printable, ≤ 255, never a card number: it is stored).
            readIdempotencyKey({ 'idempotency-key': opts.idempotencyKey }, true);
          } catch (err) {
            if (err instanceof ApiError) throw new UsageError(`--idempotency-key: ${err.message}`);
            throw err;
          }
        const key = opts.idempotencyKey ?? `cli-${randomUUID()}`;
        if (!opts.idempotencyKey)
          process.stderr.write(`paystep: idempotency key ${key} (retry with --idempotency-key ${key})\n`);
        const result = await withRuntime(dataDir, async () => {
          const payment = await getPayment(opts.payment);
          if (!payment) throw new UsageError(`no payment ${opts.payment}`);
          const body: Record<string, unknown> = { payment: payment.id };
          if (opts.amount !== undefined) body.amount = opts.amount;
          if (opts.reason !== undefined) body.reason = opts.reason;
          // The same idempotent request as POST /v1/refunds: a retry after a crash resumes it.
          return requestRefund({
            merchantId: payment.merchant_id,
            idempotencyKey: key,
            body,
            channel: 'cli',
          });
        });
        const { status, body } = result.response;
        if (status >= 400) {
          const err = (body as { error?: { code?: string; message?: string } }).error;
          throw new CommandFailed(
            `${err?.code ?? 'refund_failed'}: ${err?.message ?? 'the refund was refused'}`,
          );
        }
        out(JSON.stringify(body) + '\n');
      },
    );

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
    .description(
      'show whether a local runtime is running on the data dir, and its endpoints (exit 1 if none)',
    )
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
      if (!info)
        throw new CommandFailed(
          `no paystep runtime is running on ${path.resolve(dataDir)} (start one with npm start)`,
        );
    });

  registerWebhookCommands(program, out);
  registerFinanceCommands(program, out);
  registerExecutionCommands(program, out);
  registerSimulatorCommands(program, out);
  registerRoutingCommands(program, out);
  registerIncidentCommands(program, out);
  registerOpsCommands(program, out);
  registerOperatorCommands(program, out);
  registerProcessorCommands(program, out);
  registerAnalyticsCommands(program, out);
  registerBillingCommands(program, out);

  return program;
}

/** `--help` and `--version` exit 0; every other commander error means the command line is wrong (2). */
const COMMANDER_OK = new Set(['commander.helpDisplayed', 'commander.version']);

/** The message of anything thrown, on one line, with no stack. */
function messageOf(err: unknown): string {
  if (err instanceof ApiError) return `${err.message}${err.param ? ` (${err.param})` : ''}`;
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/**
 * Runs the CLI and returns its exit code. While it runs, anything else that writes to stdout
 * (a library, a handler's logger) is sent to stderr, so that stdout carries the result only.
 */
export async function main(argv: string[]): Promise<number> {
  const stdout = process.stdout;
  const write = stdout.write.bind(stdout);
  stdout.write = process.stderr.write.bind(process.stderr) as typeof stdout.write;
  const onRejection = (reason: unknown) => process.stderr.write(`paystep: ${messageOf(reason)}\n`);
  process.on('unhandledRejection', onRejection);
  // A reader that stops early (`paystep … | head -1`) ends the output, not the command with a stack.
  let closed = false;
  const ignoreClosed = () => {
    closed = true; // EPIPE (the reader left), or the stream failed: nothing more can be shown
  };
  if (!stdout.listeners('error').length) stdout.on('error', ignoreClosed);
  if (!process.stderr.listeners('error').length) process.stderr.on('error', ignoreClosed);
  const program = buildProgram((s) => {
    if (!closed && !stdout.destroyed) write(s);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // commander printed the help or its message already
    if (err instanceof CommanderError) return COMMANDER_OK.has(err.code) ? 0 : 2;
    process.stderr.write(`paystep: ${messageOf(err)}\n`);
    if (/^(debug|trace)$/.test(process.env.PAYSTEP_LOG_LEVEL ?? '') && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    stdout.write = write;
    process.off('unhandledRejection', onRejection);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('lib/cli/main.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
