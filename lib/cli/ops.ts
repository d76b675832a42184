/**
 * `paystep ops key …`: the keys of the ops API (/ops/…; docs/api.md "Ops API",
 * docs/decisions/0005-ops-keys.md).
 *   create --name N    prints {name, key, key_prefix, created}: the key is shown only this once
 *   list               the keys' names and prefixes (never a key)
 *   revoke --name N    the key stops working once the authorizer's caches expire (about two minutes at most)
 */
import type { Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { UsageError } from './args.ts';
import { createOpsKey, listOpsKeys, OpsKeyError, revokeOpsKey } from '../../lambdas/store/ops-keys.ts';

export function registerOpsCommands(program: Command, out: (s: string) => void): void {
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await withRuntime(resolveDataDir(program.opts().dataDir), work);
    } catch (err) {
      if (err instanceof OpsKeyError) throw new UsageError(err.message);
      throw err;
    }
  };
  const key = program
    .command('ops')
    .description('platform operations (ops API credentials)')
    .command('key')
    .description('ops keys: the credentials of the ops API, never a merchant API key');
  key
    .command('create')
    .description('create an ops key and print it (shown only once); its name signs what it does')
    .requiredOption('--name <name>', 'who or what holds it (a-z 0-9 . _ @ -), e.g. alice or console')
    .action(async (opts: { name: string }) => {
      const r = await run(() => createOpsKey(opts.name));
      out(JSON.stringify({ object: 'ops_key', ...r.opsKey, key: r.key }) + '\n');
    });
  key
    .command('list')
    .description('the ops keys (names and prefixes, never the keys)')
    .action(async () => {
      const data = await run(() => listOpsKeys());
      out(JSON.stringify({ object: 'list', data: data.map((k) => ({ object: 'ops_key', ...k })) }) + '\n');
    });
  key
    .command('revoke')
    .description('revoke an ops key')
    .requiredOption('--name <name>', 'the key to revoke')
    .action(async (opts: { name: string }) => {
      if (!(await run(() => revokeOpsKey(opts.name))))
        throw new UsageError(`no ops key named '${opts.name}'`);
      out(JSON.stringify({ object: 'ops_key', name: opts.name, revoked: true }) + '\n');
    });
}
