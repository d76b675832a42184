/**
 * Scheduled (hourly): starts the reconciliation of
 * - every paid payout of the last `lookback_days` (default 14) that has no reconciliation yet,
 *   from the processor's API (execution `<processor>-<payout>`, so a payout runs once), and
 * - every file dropped under `s3://<settlements>/incoming/<processor>/` (the drop prefix; the
 *   workflow moves it to `processed/` when done).
 */
import { createHash } from 'node:crypto';
import { logger } from '../shared/logger.ts';
import { listObjects } from '../reports/storage.ts';
import { getRun } from '../store/reconciliation.ts';
import { SOURCES } from './sources/index.ts';
import { startReconciliation } from './start.ts';

export interface SyncEvent {
  processor?: string;
  lookback_days?: number;
  /** Only the API (`api`) or only the drop prefix (`files`); default both. */
  only?: 'api' | 'files';
}

export async function sync(event: SyncEvent = {}) {
  const processors = event.processor ? [event.processor] : Object.keys(SOURCES);
  const started: string[] = [];
  const skipped: string[] = [];
  for (const processor of processors) {
    const api = SOURCES[processor]?.api;
    if (api && event.only !== 'files') {
      const since = Math.floor(Date.now() / 1000) - (event.lookback_days ?? 14) * 86_400;
      for (const p of await api.payouts(since)) {
        if (await getRun(processor, p.payout_id)) {
          skipped.push(p.payout_id);
          continue;
        }
        const r = await startReconciliation(
          { processor, source: { kind: 'api', payout_id: p.payout_id } },
          `${processor}-${p.payout_id}`,
        );
        if (r.started) started.push(r.executionArn);
      }
    }
    if (event.only !== 'api') {
      for await (const o of listObjects('settlements', `incoming/${processor}/`)) {
        const tag = createHash('sha256')
          .update(`${o.key}|${o.size}|${o.lastModified}`)
          .digest('hex')
          .slice(0, 20);
        const r = await startReconciliation(
          { processor, source: { kind: 'file', key: o.key } },
          `${processor}-drop-${tag}`,
        );
        if (r.started) started.push(r.executionArn);
      }
    }
  }
  if (started.length) logger.info('reconciliations started', { count: started.length });
  return { started, skipped };
}

/** EventBridge's S3 "Object Created" event (the settlements bucket's drop prefix). */
interface ObjectCreatedEvent {
  'detail-type': 'Object Created';
  detail: { bucket: { name: string }; object: { key: string; size?: number } };
}

const isObjectCreated = (e: unknown): e is ObjectCreatedEvent =>
  (e as ObjectCreatedEvent)?.['detail-type'] === 'Object Created' &&
  typeof (e as ObjectCreatedEvent).detail?.object?.key === 'string';

/** A file dropped under incoming/<processor>/: its reconciliation starts now (same run id as the sync's). */
async function onDrop(e: ObjectCreatedEvent) {
  const key = e.detail.object.key;
  const m = /^incoming\/([a-z0-9-]+)\/[^/]+/.exec(key);
  if (!m || !SOURCES[m[1]!]) {
    logger.warn('ignoring a dropped file outside incoming/<processor>/', { key });
    return { started: [], skipped: [key] };
  }
  // The scheduled sync lists the same file and computes the same execution name: whichever runs first wins.
  for await (const o of listObjects('settlements', key)) {
    if (o.key !== key) continue;
    const tag = createHash('sha256')
      .update(`${o.key}|${o.size}|${o.lastModified}`)
      .digest('hex')
      .slice(0, 20);
    const r = await startReconciliation(
      { processor: m[1]!, source: { kind: 'file', key } },
      `${m[1]}-drop-${tag}`,
    );
    return { started: r.started ? [r.executionArn] : [], skipped: r.started ? [] : [key] };
  }
  return { started: [], skipped: [key] };
}

export async function handler(event: SyncEvent | ObjectCreatedEvent = {}) {
  if (isObjectCreated(event)) return onDrop(event);
  return sync(event);
}
