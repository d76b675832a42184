/**
 * Processor incidents (docs/routing.md "Incidents"). Items (table `main`):
 *   pk INCIDENT#<id>        sk INCIDENT   the incident; gsi1pk INCIDENTS, gsi1sk <opened_at>#<id> (newest first)
 *   pk PROCESSOR#<name>     sk INCIDENT   { incident_id }: the processor's one running incident
 * A processor never has two running incidents: the pointer is claimed with a conditional put
 * (absent, or pointing at an incident that is closed or missing — what a crash between two writes
 * leaves), and whoever loses gets the running one. Every status change is a conditional update on
 * the transition table (lambdas/domain/incidents.ts); closing one then releases the pointer.
 * (No transactions: the local DynamoDB has none, and none is needed with this order of writes.)
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import {
  ACTION_TO,
  ACTIVE_INCIDENT_STATUSES,
  incidentSources,
  type Incident,
  type IncidentEntry,
  type IncidentStatus,
} from '../domain/incidents.ts';
import { conditionalUpdate, conditionalWrite } from './conditional.ts';
import { withoutInternal } from './items.ts';
import { statusIn } from './expressions.ts';
import { indexQuery, queryPages } from './pages.ts';

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `INCIDENT#${id}`, sk: 'INCIDENT' });
const pointer = (processor: string) => ({ pk: `PROCESSOR#${processor}`, sk: 'INCIDENT' });

const fromItem = (item: Record<string, unknown>): Incident =>
  withoutInternal(item, []) as unknown as Incident;

export async function getIncident(id: string): Promise<Incident | undefined> {
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: key(id) }));
  return r.Item ? fromItem(r.Item) : undefined;
}

const isRunning = (i: Incident | undefined): i is Incident =>
  !!i && ACTIVE_INCIDENT_STATUSES.includes(i.status);

async function pointerOf(processor: string): Promise<string | undefined> {
  const r = await clients.ddb().send(new GetCommand({ TableName: table(), Key: pointer(processor) }));
  return r.Item?.incident_id as string | undefined;
}

/** The processor's running incident (suspected or open), if any. */
export async function runningIncident(processor: string): Promise<Incident | undefined> {
  const id = await pointerOf(processor);
  const i = id ? await getIncident(id) : undefined;
  return isRunning(i) ? i : undefined;
}

/** Points the processor at `id`, if it has no running incident (a stale pointer is replaced). */
async function claimPointer(processor: string, id: string): Promise<boolean> {
  const stale = await pointerOf(processor);
  if (stale && isRunning(await getIncident(stale))) return false;
  return conditionalWrite(
    new PutCommand({
      TableName: table(),
      Item: { ...pointer(processor), kind: 'incident-pointer', incident_id: id },
      ConditionExpression: stale ? 'incident_id = :stale' : 'attribute_not_exists(pk)',
      ...(stale ? { ExpressionAttributeValues: { ':stale': stale } } : {}),
    }),
  );
}

/**
 * Opens `incident` unless the processor has a running one; returns the incident in force and
 * whether it is the new one. An incident left running without its pointer (a crash between the
 * two writes) is adopted rather than doubled.
 */
export async function openIncident(incident: Incident): Promise<{ incident: Incident; created: boolean }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const running = await runningIncident(incident.processor);
    if (running) return { incident: running, created: false };
    // An orphan is recent (left by a crash between two writes of one opening): the newest 20
    // incidents of all processors are enough, however long the history.
    const orphan = (await listIncidents({ limit: 20 })).find(
      (i) => i.processor === incident.processor && isRunning(i),
    );
    const candidate = orphan ?? incident;
    if (!orphan)
      await conditionalWrite(
        new PutCommand({
          TableName: table(),
          Item: {
            ...key(incident.id),
            kind: 'incident',
            gsi1pk: 'INCIDENTS',
            gsi1sk: `${String(incident.opened_at).padStart(15, '0')}#${incident.id}`,
            ...incident,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    if (await claimPointer(incident.processor, candidate.id))
      return { incident: candidate, created: !orphan };
    // Someone else opened one meanwhile: ours was never in force.
    if (!orphan) await clients.ddb().send(new DeleteCommand({ TableName: table(), Key: key(incident.id) }));
  }
  throw new Error(`could not open an incident for ${incident.processor}: the running incident kept changing`);
}

/**
 * Moves the incident to `to` if the transition table allows it from its current status and
 * appends the entry; a closing status then releases the processor's pointer. Undefined when the
 * incident is not in a status that allows it (read it again to say why).
 */
export async function moveIncident(
  id: string,
  processor: string,
  to: Exclude<IncidentStatus, 'suspected'>,
  entry: Omit<IncidentEntry, 'event'>,
): Promise<Incident | undefined> {
  const from = statusIn(incidentSources(to));
  const item = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      UpdateExpression: `SET #status = :to, timeline = list_append(timeline, :entry), ${
        to === 'open' ? 'confirmed_at' : 'closed_at'
      } = :at`,
      ConditionExpression: from.expression,
      ExpressionAttributeNames: { '#status': 'status', ...from.names },
      ExpressionAttributeValues: {
        ':to': to,
        ':at': entry.at,
        ':entry': [{ ...entry, event: ACTION_TO[to] }],
        ...from.values,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  if (!item) return undefined;
  if (to === 'resolved' || to === 'dismissed')
    await conditionalWrite(
      new DeleteCommand({
        TableName: table(),
        Key: pointer(processor),
        ConditionExpression: 'incident_id = :id',
        ExpressionAttributeValues: { ':id': id },
      }),
    );
  return fromItem(item);
}

/** Incidents, newest first; `processor` and `status` filter. */
export async function listIncidents(
  opts: { processor?: string; status?: IncidentStatus; limit?: number } = {},
): Promise<Incident[]> {
  const out: Incident[] = [];
  const limit = opts.limit ?? 100;
  for await (const item of queryPages({ ...indexQuery(table(), 'INCIDENTS'), ScanIndexForward: false })) {
    const i = fromItem(item);
    if (opts.processor && i.processor !== opts.processor) continue;
    if (opts.status && i.status !== opts.status) continue;
    out.push(i);
    if (out.length >= limit) break;
  }
  return out;
}
