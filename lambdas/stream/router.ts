/**
 * Consumer of the main table's stream (NEW_AND_OLD_IMAGES). Records of one item arrive in order;
 * each record is given to every consumer in lambdas/stream/consumers.ts. A failing record is
 * reported in `batchItemFailures`, so the stream retries from it (bisecting), then parks it on
 * the failure queue.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { consumers } from './consumers.ts';

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

export async function handler(event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context });
}
