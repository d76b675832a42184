/**
 * `paystep routing …`: a merchant's routing configuration (docs/routing.md), through the same
 * service as GET/PUT /v1/routing and POST /v1/routing/simulate.
 *   show --merchant ID [--version N]       the configuration in force, or one version
 *   set --merchant ID FILE                 a new version from a JSON file (`-`: stdin)
 *   simulate --merchant ID --amount N --currency C [facts…] [--config FILE]
 * A configuration that does not validate is a usage error (exit 2) naming every field.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { integer, UsageError } from './args.ts';
import { ApiError } from '../../lambdas/shared/errors.ts';
import { getMerchant } from '../../lambdas/store/merchants.ts';
import { getRouting, setRouting, simulateRoute, SimulateBody } from '../../lambdas/routing/service.ts';
import { parse } from '../../lambdas/payments/validation.ts';

/** A JSON file (or stdin for `-`), or a usage error naming it. */
function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`'${file}' is not JSON: ${(err as Error).message}`);
  }
}

/** Runs `work` for an existing merchant; a 400 from the service is the user's mistake (exit 2). */
async function forMerchant<T>(program: Command, merchantId: string, work: () => Promise<T>): Promise<T> {
  return withRuntime(resolveDataDir(program.opts().dataDir), async () => {
    if (!(await getMerchant(merchantId))) throw new UsageError(`no merchant '${merchantId}'`);
    try {
      return await work();
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) throw new UsageError(err.message);
      throw err;
    }
  });
}

export function registerRoutingCommands(program: Command, out: (s: string) => void): void {
  const routing = program
    .command('routing')
    .description("a merchant's routing configuration (docs/routing.md)");
  routing
    .command('show')
    .description('print the routing configuration in force (version 0: none; the merchant order applies)')
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .option('--version <n>', 'an earlier version', integer('--version', 1, 999_999_999))
    .action(async (opts: { merchant: string; version?: number }) => {
      const r = await forMerchant(program, opts.merchant, () => getRouting(opts.merchant, opts.version));
      out(JSON.stringify(r) + '\n');
    });
  routing
    .command('set')
    .description('make FILE (JSON, `-` for stdin) the routing configuration: a new version')
    .argument('<file>', 'the configuration, as PUT /v1/routing takes it')
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .action(async (file: string, opts: { merchant: string }) => {
      const raw = readJson(file);
      const { routing: r, created } = await forMerchant(program, opts.merchant, () =>
        setRouting(opts.merchant, raw, 'cli'),
      );
      if (!created)
        process.stderr.write(`paystep: unchanged: version ${r.version} is already this configuration\n`);
      out(JSON.stringify(r) + '\n');
    });
  routing
    .command('simulate')
    .description('print the processors a payment would try, in order, the rule that decided and why')
    .requiredOption('--merchant <id>', 'the merchant (mch_…)')
    .requiredOption(
      '--amount <minor>',
      'amount in minor units',
      integer('--amount', 1, Number.MAX_SAFE_INTEGER),
    )
    .requiredOption('--currency <code>', 'ISO 4217, e.g. eur')
    .option('--country <cc>', "customer's country (ISO 3166-1 alpha-2)")
    .option('--card-brand <brand>', 'visa, mastercard, amex, …')
    .option('--bin <digits>', "the card's first 6–8 digits")
    .option('--issuer-country <cc>', "the card issuer's country")
    .option('--channel <channel>', 'web, mobile, pos, moto, api, recurring')
    .option('--capture-method <method>', 'automatic or manual')
    .option('--payment-id <id>', 'the payment id a split hashes (default: a new one)')
    .option('--config <file>', 'try this configuration (JSON file) instead of the stored one')
    .action(
      async (opts: {
        merchant: string;
        amount: number;
        currency: string;
        country?: string;
        cardBrand?: string;
        bin?: string;
        issuerCountry?: string;
        channel?: string;
        captureMethod?: string;
        paymentId?: string;
        config?: string;
      }) => {
        const body = {
          amount: opts.amount,
          currency: opts.currency,
          ...(opts.paymentId ? { id: opts.paymentId } : {}),
          ...(opts.country ? { customer: { country: opts.country } } : {}),
          ...(opts.cardBrand ? { card_brand: opts.cardBrand } : {}),
          ...(opts.bin ? { bin: opts.bin } : {}),
          ...(opts.issuerCountry ? { issuer_country: opts.issuerCountry } : {}),
          ...(opts.channel ? { channel: opts.channel } : {}),
          ...(opts.captureMethod ? { capture_method: opts.captureMethod } : {}),
          ...(opts.config ? { config: readJson(opts.config) } : {}),
        };
        const r = await forMerchant(program, opts.merchant, () =>
          simulateRoute(opts.merchant, parse(SimulateBody, body)),
        );
        out(JSON.stringify(r) + '\n');
      },
    );
}
