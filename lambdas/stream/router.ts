/**
 * Consumer of the main table's stream (NEW_AND_OLD_IMAGES): turns item changes into work on
 * queues. Records of one item arrive in order; a failing record is reported in
 * `batchItemFailures` so the stream retries from it (bisecting), then parks it on the failure queue.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';

const processor = new BatchProcessor(EventType.DynamoDBStreams);

async function processRecord(record: DynamoDBRecord): Promise<void> {
  const img = record.dynamodb?.NewImage;
  if (!img) return;
  const item = unmarshall(img as Record<string, AttributeValue>);
  if (item.kind === 'ping' && record.eventName === 'INSERT') {
    await clients.sqs().send(
      new SendMessageCommand({
        QueueUrl: config.queueUrl('reports'),
        MessageBody: JSON.stringify({ type: 'ping.recorded', ping_id: item.id }),
      }),
    );
  }
}

export async function handler(event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context });
}
