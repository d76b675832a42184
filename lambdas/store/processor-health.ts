/**
 * Processor health counts and breaker state (docs/routing.md "Processor health"). Items (table
 * `health`, apart from `main` so that one write per payment attempt does not feed main's stream):
 *   pk HEALTH#<processor>     sk <minute, epoch seconds>  { approved, declined, error, timeout, l0…l14, expires_at }
 *   pk BREAKER#<processor>    sk BREAKER                 { breaker: BreakerState, version }
 * Counts are atomic ADDs to the attempt's minute, so any number of Lambdas record at once; a
 * window is the sum of its minutes. Minutes expire after a day (TTL). The breaker is written with
 * optimistic concurrency (version), so two recorders cannot both trip it.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import {
  emptyCounts,
  latencyBucket,
  LATENCY_BOUNDS_MS,
  mergeCounts,
  type BreakerState,
  type HealthCounts,
  type HealthOutcome,
} from '../domain/processor-health.ts';
import { conditionalWrite } from './conditional.ts';

const table = () => config.tableName('health');
const RETENTION_SECONDS = 86_400;
const minuteOf = (ms: number) => Math.floor(ms / 60_000) * 60;

export async function addHealthAttempt(
  processor: string,
  outcome: HealthOutcome,
  latencyMs: number,
  atMs: number,
): Promise<void> {
  const minute = minuteOf(atMs);
  const bucket = `l${latencyBucket(Math.max(0, latencyMs))}`;
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `HEALTH#${processor}`, sk: String(minute) },
      UpdateExpression: 'ADD #o :one, #b :one SET kind = :kind, expires_at = :exp',
      ExpressionAttributeNames: { '#o': outcome, '#b': bucket },
      ExpressionAttributeValues: { ':one': 1, ':kind': 'health', ':exp': minute + RETENTION_SECONDS },
    }),
  );
}

/** The counts of the minutes from `sinceMs` to now. */
export async function healthWindow(processor: string, sinceMs: number): Promise<HealthCounts> {
  const r = await clients.ddb().send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'pk = :pk AND sk >= :since',
      ExpressionAttributeValues: { ':pk': `HEALTH#${processor}`, ':since': String(minuteOf(sinceMs)) },
    }),
  );
  return mergeCounts(
    ...(r.Items ?? []).map((item) => {
      const c = emptyCounts();
      for (const k of ['approved', 'declined', 'error', 'timeout'] as const) c[k] = Number(item[k] ?? 0);
      c.latency = LATENCY_BOUNDS_MS.map((_, i) => Number(item[`l${i}`] ?? 0));
      return c;
    }),
  );
}

/**
 * The counts of the minutes from `fromMs`'s minute up to (not including) `toMs`'s minute, so windows
 * that follow one another share no minute (the incident report's before / during / after). Minutes
 * older than a day have expired (TTL).
 */
export async function healthBetween(processor: string, fromMs: number, toMs: number): Promise<HealthCounts> {
  const from = minuteOf(fromMs);
  const to = minuteOf(toMs);
  if (to <= from) return emptyCounts();
  const r = await clients.ddb().send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :last',
      ExpressionAttributeValues: {
        ':pk': `HEALTH#${processor}`,
        ':from': String(from),
        ':last': String(to - 60),
      },
    }),
  );
  return countsOf(r.Items ?? []);
}

const countsOf = (items: Record<string, unknown>[]): HealthCounts =>
  mergeCounts(
    ...items.map((item) => {
      const c = emptyCounts();
      for (const k of ['approved', 'declined', 'error', 'timeout'] as const) c[k] = Number(item[k] ?? 0);
      c.latency = LATENCY_BOUNDS_MS.map((_, i) => Number(item[`l${i}`] ?? 0));
      return c;
    }),
  );

export interface StoredBreaker {
  breaker: BreakerState;
  version: number;
}

export async function getBreaker(processor: string): Promise<StoredBreaker | undefined> {
  const r = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: { pk: `BREAKER#${processor}`, sk: 'BREAKER' } }));
  return r.Item ? { breaker: r.Item.breaker as BreakerState, version: r.Item.version as number } : undefined;
}

/** Writes the breaker if nobody wrote since `expectedVersion` (0: never written). */
export async function putBreaker(
  processor: string,
  breaker: BreakerState,
  expectedVersion: number,
): Promise<boolean> {
  return conditionalWrite(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `BREAKER#${processor}`,
        sk: 'BREAKER',
        kind: 'breaker',
        breaker,
        version: expectedVersion + 1,
      },
      ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
      ...(expectedVersion === 0 ? {} : { ExpressionAttributeValues: { ':v': expectedVersion } }),
    }),
  );
}
