/**
 * `paystep webhooks …`: processor events that did not take effect, for ops (not part of the
 * merchant API). `list --status parked|failed` shows them, `replay EVENT_ID` queues one again.
 */
import { Option, type Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { CommandFailed, integer, oneOf, processorName } from './args.ts';
import { listStoredWebhookEvents, replayWebhookEvent } from '../../lambdas/webhooks/replay.ts';

const STATUSES = ['parked', 'failed'] as const;

export function registerWebhookCommands(program: Command, out: (s: string) => void): void {
  const webhooks = program.command('webhooks').description('processor webhook events (ops)');
  webhooks
    .command('list')
    .description('list stored processor events that are parked (retrying) or failed (retries exhausted)')
    .addOption(
      new Option('--status <status>', STATUSES.join(' | '))
        .argParser(oneOf('status', STATUSES))
        .makeOptionMandatory(),
    )
    .option('--processor <name>', 'processor', processorName, 'stripe')
    .option('--limit <n>', 'at most this many events (1–1000)', integer('--limit', 1, 1000), 100)
    .action(async (opts: { status: 'parked' | 'failed'; processor: string; limit: number }) => {
      const dataDir = resolveDataDir(program.opts().dataDir);
      const events = await withRuntime(dataDir, () =>
        listStoredWebhookEvents(opts.status, opts.processor, opts.limit),
      );
      out(JSON.stringify({ object: 'list', data: events }) + '\n');
    });
  webhooks
    .command('replay')
    .description('process a stored event again (one that is parked or failed; --force for a processed one)')
    .argument('<event-id>', 'the processor event id (evt_…)')
    .option('--processor <name>', 'processor', processorName, 'stripe')
    .option('--force', 'replay even if it was processed (what took effect does not repeat)')
    .action(async (eventId: string, opts: { processor: string; force?: boolean }) => {
      const dataDir = resolveDataDir(program.opts().dataDir);
      const r = await withRuntime(dataDir, () => replayWebhookEvent(eventId, opts.processor, opts.force));
      if (r.result === 'missing') throw new CommandFailed(`no stored ${opts.processor} event '${eventId}'`);
      if (r.result === 'processed')
        throw new CommandFailed(`event ${eventId} was processed already; use --force to process it again`);
      out(JSON.stringify({ replayed: true, event: r.event }) + '\n');
    });
}
