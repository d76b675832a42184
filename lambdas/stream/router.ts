/**
 * Consumer of the main table's stream (NEW_AND_OLD_IMAGES). Records of one item arrive in order;
 * each record is given to every consumer in lambdas/stream/consumers.ts. A failing record is
 * reported in `batchItemFailures`, so the stream retries from it (bisecting), then parks it on
 * the failure queue.
 *
 * Then, per batch, the approval rollups (lambdas/analytics/stream.ts): the records before the
 * first failed one (the prefix the stream will not deliver again) are summed into one conditional
 * UpdateItem per rollup item, exactly once per shard (the shard id comes with the event:
 * `shardId`, as in Lambda's tumbling-window events, which the stack turns on for this mapping, and
 * as the local stream delivery sets it). A failing rollup write fails the whole batch.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { consumers } from './consumers.ts';
import { maintainRollups } from '../analytics/stream.ts';

const processor = new BatchProcessor(EventType.DynamoDBStreams);

async function processRecord(record: DynamoDBRecord): Promise<void> {
  const img = (x: unknown) => (x ? unmarshall(x as Record<string, AttributeValue>) : undefined);
  const change = {
    eventName: record.eventName as 'INSERT' | 'MODIFY' | 'REMOVE',
    oldImage: img(record.dynamodb?.OldImage),
    newImage: img(record.dynamodb?.NewImage),
    sequenceNumber: record.dynamodb?.SequenceNumber ?? '',
    record,
  };
  for (const c of consumers) await c.handle(change);
}

/** The stream event, with the shard it comes from (tumbling-window events and the local stream). */
export type ShardStreamEvent = DynamoDBStreamEvent & { shardId?: string };

export async function handler(
  event: ShardStreamEvent,
  context: Context,
): Promise<DynamoDBBatchResponse & { state: Record<string, never> }> {
  // A tumbling window's last invocation may carry no records; its answer must carry `state`.
  if (!event.Records?.length) return { batchItemFailures: [], state: {} };
  if (!event.shardId)
    throw new Error('stream event without shardId: the rollups cannot be kept exactly once');
  const res = await processPartialResponse(event, processRecord, processor, { context });
  const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
  const firstFailed = event.Records.findIndex((r) => failed.has(r.dynamodb?.SequenceNumber ?? ''));
  await maintainRollups(event.shardId, firstFailed < 0 ? event.Records : event.Records.slice(0, firstFailed));
  return { ...res, state: {} };
}
