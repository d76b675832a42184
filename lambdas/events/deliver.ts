/**
 * Consumer of the `merchant-events` queue: fans new events out to the merchant's webhook endpoints
 * and makes delivery attempts (first attempts, retries with backoff, manual redeliveries); see
 * delivery.ts. Partial batch responses: a message whose processing failed (not a failed delivery,
 * which is recorded and retried on its own schedule) comes back alone.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../shared/logger.ts';
import { attemptFromMessage, fanOut, type DeliveryMessage } from './delivery.ts';

const processor = new BatchProcessor(EventType.SQS);

async function processRecord(record: SQSRecord): Promise<void> {
  let msg: DeliveryMessage;
  try {
    msg = JSON.parse(record.body) as DeliveryMessage;
  } catch {
    logger.error('dropping a malformed merchant-events message', { messageId: record.messageId });
    return;
  }
  if (msg.type === 'event.created') await fanOut(msg.event_id, msg.event, msg.stored_ms);
  else if (msg.type === 'delivery.attempt') await attemptFromMessage(msg);
  else logger.warn('ignoring unknown message type', { type: (msg as { type?: unknown }).type });
}

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context });
}
