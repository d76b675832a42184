/**
 * Reports queue consumer: for `ping.recorded`, writes the ping report to the reports bucket
 * (`<merchant>/pings/<yyyy-mm-dd>/<ping>.json`), marks the ping reported and resumes the workflow
 * with its task token. Partial batch responses: one bad message never redelivers the others.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendTaskSuccessCommand, TaskTimedOut } from '@aws-sdk/client-sfn';
import type { SQSEvent, SQSRecord, Context, SQSBatchResponse } from 'aws-lambda';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { getPingItem, movePing } from '../store/pings.ts';

const processor = new BatchProcessor(EventType.SQS);

async function processRecord(record: SQSRecord): Promise<void> {
  const msg = JSON.parse(record.body) as { type: string; ping_id: string };
  if (msg.type !== 'ping.recorded') {
    logger.warn('ignoring unknown message type', { type: msg.type });
    return;
  }
  const ping = await getPingItem(msg.ping_id);
  if (!ping) throw new Error(`ping ${msg.ping_id} not found`);
  if (ping.status === 'complete') return; // already done: a redelivered message
  const day = new Date(ping.created * 1000).toISOString().slice(0, 10);
  const key = `${ping.merchant_id}/pings/${day}/${ping.id}.json`;
  const report = {
    id: ping.id,
    object: 'ping_report',
    merchant: ping.merchant_id,
    message: ping.message,
    recorded_at: ping.created,
    reported_at: Math.floor(Date.now() / 1000),
  };
  await clients.s3().send(
    new PutObjectCommand({
      Bucket: config.bucketName('reports'),
      Key: key,
      Body: JSON.stringify(report, null, 2) + '\n',
      ContentType: 'application/json',
    }),
  );
  await movePing(ping.id, 'reported', ['recorded'], key);
  try {
    await clients.sfn().send(
      new SendTaskSuccessCommand({
        taskToken: ping.task_token,
        output: JSON.stringify({ report_key: key }),
      }),
    );
  } catch (err) {
    if (!(err instanceof TaskTimedOut)) throw err; // already resumed by an earlier delivery
  }
}

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context });
}
