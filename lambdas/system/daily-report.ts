/**
 * Scheduled (daily): the system report, `system/daily/<yyyy-mm-dd>/summary.json` in the reports
 * bucket: number of items per kind and status in the main table. Streams the table with a
 * paginated Scan (memory stays flat); re-running a day overwrites that day's report.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { scanPages } from '../store/pages.ts';

export async function handler(event: { date?: string } = {}) {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(event.date ?? '')
    ? event.date!
    : new Date().toISOString().slice(0, 10);
  const counts: Record<string, Record<string, number>> = {};
  let scanned = 0;
  for await (const it of scanPages({
    TableName: config.tableName('main'),
    ProjectionExpression: 'kind, #s',
    ExpressionAttributeNames: { '#s': 'status' },
  })) {
    const kind = String(it.kind ?? 'unknown');
    const status = String(it.status ?? 'none');
    counts[kind] ??= {};
    counts[kind][status] = (counts[kind][status] ?? 0) + 1;
    scanned++;
  }
  const key = `system/daily/${date}/summary.json`;
  const body = {
    object: 'system_report',
    date,
    generated_at: new Date().toISOString(),
    items: scanned,
    counts,
  };
  await clients.s3().send(
    new PutObjectCommand({
      Bucket: config.bucketName('reports'),
      Key: key,
      Body: JSON.stringify(body, null, 2) + '\n',
      ContentType: 'application/json',
    }),
  );
  return { key, items: scanned };
}
