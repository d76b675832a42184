/**
 * `paystep operator …`: the people who sign in to the ops console (docs/console.md).
 *   create --name N --role support|finance|admin [--merchant M] [--refund-limit MINOR]
 *                        prints the operator with its login `key` (shown only this once)
 *   list                 the operators (never a key)
 *   disable --name N     the key stops signing in; open sessions end at their next request
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { integer, oneOf, UsageError } from './args.ts';
import { ROLES, type Operator, type Role } from '../../lambdas/console/model.ts';
import { getMerchant } from '../../lambdas/store/merchants.ts';
import {
  createOperator,
  disableOperator,
  listOperators,
  MAX_REFUND_LIMIT,
  OperatorError,
} from '../../lambdas/store/operators.ts';

const shown = (op: Operator) => ({ object: 'operator', ...op });

export function registerOperatorCommands(program: Command, out: (s: string) => void): void {
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await withRuntime(resolveDataDir(program.opts().dataDir), work);
    } catch (err) {
      if (err instanceof OperatorError) throw new UsageError(err.message);
      throw err;
    }
  };
  const operator = program
    .command('operator')
    .description('ops console operators: people who sign in at /console with a role');
  operator
    .command('create')
    .description('create an operator and print its login key (shown only once)')
    .requiredOption('--name <name>', 'who signs in (a-z 0-9 . _ @ -), e.g. alice')
    .requiredOption('--role <role>', ROLES.join(' | '), oneOf('role', ROLES))
    .option('--merchant <id>', "limit every screen to this merchant's objects")
    .option(
      '--refund-limit <minor units>',
      'largest refund a support operator may issue (default 10000, i.e. 100.00)',
      integer('--refund-limit', 0, MAX_REFUND_LIMIT),
    )
    .action(async (opts: { name: string; role: Role; merchant?: string; refundLimit?: number }) => {
      const r = await run(async () => {
        if (opts.merchant !== undefined && !(await getMerchant(opts.merchant)))
          throw new UsageError(`unknown merchant '${opts.merchant}'`);
        return createOperator({
          name: opts.name,
          role: opts.role,
          ...(opts.merchant !== undefined ? { merchant_id: opts.merchant } : {}),
          ...(opts.refundLimit !== undefined ? { refund_limit: opts.refundLimit } : {}),
        });
      });
      out(JSON.stringify({ ...shown(r.operator), key: r.key }) + '\n');
    });
  operator
    .command('list')
    .description('the operators (never their keys)')
    .action(async () => {
      const data = await run(() => listOperators());
      out(JSON.stringify({ object: 'list', data: data.map(shown) }) + '\n');
    });
  operator
    .command('disable')
    .description('disable an operator: it can no longer sign in, and its open sessions end')
    .requiredOption('--name <name>', 'the operator to disable')
    .action(async (opts: { name: string }) => {
      const op = await run(() => disableOperator(opts.name));
      if (!op) throw new UsageError(`no operator named '${opts.name}'`);
      out(JSON.stringify(shown(op)) + '\n');
    });
}
