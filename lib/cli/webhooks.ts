/**
 * `paystep webhooks …`: processor events that did not take effect, for ops (not part of the
 * merchant API). `list --status parked|failed` shows them, `replay EVENT_ID` queues one again.
 */
import { Option, type Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { listStoredWebhookEvents, replayWebhookEvent } from '../../lambdas/webhooks/replay.ts';

export function registerWebhookCommands(program: Command, out: (s: string) => void): void {
  const webhooks = program.command('webhooks').description('processor webhook events (ops)');
  webhooks
    .command('list')
    .description('list stored processor events that are parked (retrying) or failed (retries exhausted)')
    .addOption(
      new Option('--status <status>', 'parked or failed').choices(['parked', 'failed']).makeOptionMandatory(),
    )
    .option('--processor <name>', 'processor', 'stripe')
    .option('--limit <n>', 'at most this many events', '100')
    .action(async (opts: { status: 'parked' | 'failed'; processor: string; limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new Error('--limit must be an integer between 1 and 1000');
      const dataDir = resolveDataDir(program.opts().dataDir);
      const events = await withRuntime(dataDir, () =>
        listStoredWebhookEvents(opts.status, opts.processor, limit),
      );
      out(JSON.stringify({ object: 'list', data: events }) + '\n');
    });
  webhooks
    .command('replay')
    .description('process a stored event again (one that is parked or failed; --force for a processed one)')
    .argument('<event-id>', 'the processor event id (evt_…)')
    .option('--processor <name>', 'processor', 'stripe')
    .option('--force', 'replay even if it was processed (what took effect does not repeat)')
    .action(async (eventId: string, opts: { processor: string; force?: boolean }) => {
      const dataDir = resolveDataDir(program.opts().dataDir);
      const r = await withRuntime(dataDir, () => replayWebhookEvent(eventId, opts.processor, opts.force));
      if (r.result === 'missing') throw new Error(`no stored ${opts.processor} event ${eventId}`);
      if (r.result === 'processed')
        throw new Error(`event ${eventId} was processed already; use --force to process it again`);
      out(JSON.stringify({ replayed: true, event: r.event }) + '\n');
    });
}
