/**
 * `paystep incident …`: incident mode for ops (docs/routing.md "Incidents").
 *   declare --processor P --reason TEXT   opens one (or confirms the processor's suspected one)
 *   confirm|dismiss|resolve ID [--note]   moves it, as the transition table allows
 *   list [--processor P] [--status S]     newest first
 *   show ID                               one, with its timeline
 *   report ID [--rebuild]                 the incident report of a resolved incident (JSON; the
 *                                         CSV's bucket key is in it as `csv`)
 * Each prints the incident (or the list) as JSON on stdout; a refused change exits 2 saying why.
 */
import { Option, type Command } from 'commander';
import { resolveDataDir, withRuntime } from './context.ts';
import { integer, oneOf, UsageError } from './args.ts';
import { INCIDENT_STATUSES, type IncidentStatus } from '../../lambdas/domain/incidents.ts';
import { knownProcessors } from '../../lambdas/connectors/capabilities.ts';
import {
  confirmIncident,
  declareIncident,
  dismissIncident,
  IncidentError,
  incidentReport,
  listIncidents,
  resolveIncident,
  showIncident,
} from '../../lambdas/incidents/service.ts';

export function registerIncidentCommands(program: Command, out: (s: string) => void): void {
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await withRuntime(resolveDataDir(program.opts().dataDir), work);
    } catch (err) {
      if (err instanceof IncidentError) throw new UsageError(err.message);
      throw err;
    }
  };
  const incident = program
    .command('incident')
    .description('processor incidents: declare, confirm, resolve (ops)');
  incident
    .command('declare')
    .description('declare an incident: new payments route around the processor until it is resolved')
    .addOption(
      new Option('--processor <name>', 'the processor in trouble')
        .argParser(oneOf('processor', knownProcessors()))
        .makeOptionMandatory(),
    )
    .requiredOption('--reason <text>', 'what is wrong, for the timeline and the report')
    .action(async (opts: { processor: string; reason: string }) => {
      const r = await run(() => declareIncident(opts.processor, opts.reason, 'cli'));
      if (!r.created)
        process.stderr.write(
          `paystep: ${opts.processor} already had incident ${r.incident.id} (${r.incident.status})\n`,
        );
      out(JSON.stringify(r.incident) + '\n');
    });
  for (const [name, fn, what, done] of [
    [
      'confirm',
      confirmIncident,
      'confirm a suspected incident (the breaker opened it): it takes effect',
      'confirmed',
    ],
    ['dismiss', dismissIncident, 'dismiss a suspected incident: a false alarm', 'dismissed'],
    ['resolve', resolveIncident, 'resolve an open incident: the processor is back', 'resolved'],
  ] as const)
    incident
      .command(name)
      .description(what)
      .argument('<id>', 'the incident (inc_…)')
      .option('--note <text>', 'a note for the timeline')
      .action(async (id: string, opts: { note?: string }) => {
        out(JSON.stringify(await run(() => fn(id, 'cli', opts.note?.trim() || done))) + '\n');
      });
  incident
    .command('list')
    .description('incidents, newest first')
    .option('--processor <name>', 'only this processor', oneOf('processor', knownProcessors()))
    .option('--status <status>', INCIDENT_STATUSES.join(' | '), oneOf('status', INCIDENT_STATUSES))
    .option('--limit <n>', 'at most this many (1–1000)', integer('--limit', 1, 1000), 100)
    .action(async (opts: { processor?: string; status?: IncidentStatus; limit: number }) => {
      const data = await run(() => listIncidents(opts));
      out(JSON.stringify({ object: 'list', data }) + '\n');
    });
  incident
    .command('show')
    .description('one incident with its timeline')
    .argument('<id>', 'the incident (inc_…)')
    .action(async (id: string) => {
      out(JSON.stringify(await run(() => showIncident(id))) + '\n');
    });
  incident
    .command('report')
    .description('the incident report of a resolved incident (written when it was resolved): JSON on stdout')
    .argument('<id>', 'the incident (inc_…)')
    .option('--rebuild', 'build it again from what is stored now, and write it again to the bucket')
    .action(async (id: string, opts: { rebuild?: boolean }) => {
      out(JSON.stringify(await run(() => incidentReport(id, { rebuild: !!opts.rebuild })), null, 2) + '\n');
    });
}
