/**
 * Reconciliation workflow, "Read and split the settlement data": reads the source (a file in the
 * settlements bucket, or a payout from the processor's API), normalizes it into SettlementItems,
 * and writes them as chunks to `s3://<settlements>/work/<run>/chunk-NNNN.jsonl`, every line of one
 * payment reference in the same chunk (so duplicates and refund totals are decided within a chunk).
 * The run id is derived from the content: the same data is the same run. Payout headers come from
 * the API, or from the file itself when it states them (Adyen's Settlement details report).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { logger } from '../shared/logger.ts';
import { taskHandler } from '../shared/task-input.ts';
import { getStream, putFile, TempFile } from '../reports/storage.ts';
import { sourcesOf } from './sources/index.ts';
import type { PayoutHeader, SettlementItem } from './types.ts';
import { PaystepError } from '../shared/errors.ts';

export type ReconciliationSource =
  { kind: 'file'; key: string; format?: string } | { kind: 'api'; payout_id: string };

export interface ReconciliationInput {
  processor: string;
  source: ReconciliationSource;
  /** The day the reconciliation speaks for (ages, missing settlements); default: the latest payout date. */
  as_of?: string;
  settlement_delay_days?: number;
  /** Lines per chunk (default 5000). */
  chunk_items?: number;
}

export interface Prepared {
  run_id: string;
  processor: string;
  source: ReconciliationSource;
  as_of: string;
  settlement_delay_days: number | null;
  payouts: PayoutHeader[];
  chunks: string[];
  items: number;
}

/** The task input contract (lambdas/shared/task-input.ts): what `handler` accepts. */
const SourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), key: z.string().min(1), format: z.string().min(1).optional() }),
  z.object({ kind: z.literal('api'), payout_id: z.string().min(1) }),
]);
export const ReconciliationInputSchema: z.ZodType<ReconciliationInput> = z.looseObject({
  processor: z.string().min(1),
  source: SourceSchema,
  as_of: z.string().optional(),
  settlement_delay_days: z.number().int().nonnegative().optional(),
  chunk_items: z.number().int().optional(),
});
/** What "Read and split the settlement data" hands on (the input of the later steps). */
export const PreparedSchema = z.looseObject({
  run_id: z.string().min(1),
  processor: z.string().min(1),
  source: SourceSchema,
  as_of: z.string().min(1),
  settlement_delay_days: z.number().int().nonnegative().nullable(),
  payouts: z.array(
    z.looseObject({
      processor: z.string(),
      payout_id: z.string().min(1),
      payout_date: z.string(),
      currency: z.string(),
      amount: z.number().nullable(),
      status: z.string().optional(),
    }),
  ),
  chunks: z.array(z.string().min(1)),
  items: z.number().int().nonnegative(),
});

/** A settlement line with its position in the source. */
export interface IndexedItem extends SettlementItem {
  index: number;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export class ReconciliationInputError extends PaystepError {
  override name = 'ReconciliationInputError';
}

async function* itemsOf(input: ReconciliationInput, headers: Map<string, PayoutHeader>) {
  const sources = sourcesOf(input.processor);
  const src = input.source;
  if (src.kind === 'file') {
    const format = sources.files[src.format ?? sources.defaultFormat];
    if (!format)
      throw new ReconciliationInputError(`unknown file format ${src.format} for ${input.processor}`);
    // A file that states its payouts (Adyen's MerchantPayout lines) gives its headers here.
    yield* format.read(await getStream('settlements', src.key), {
      name: src.key,
      payout: (h) => headers.set(h.payout_id, h),
    });
    return;
  }
  if (!sources.api) throw new ReconciliationInputError(`${input.processor} has no payout API`);
  const header = await sources.api.payout(src.payout_id);
  if (!header) throw new ReconciliationInputError(`${input.processor} does not know payout ${src.payout_id}`);
  headers.set(header.payout_id, header);
  yield* sources.api.items(header);
}

export async function prepare(input: ReconciliationInput): Promise<Prepared> {
  if (input.as_of !== undefined && !DAY.test(input.as_of))
    throw new ReconciliationInputError('as_of must be a yyyy-mm-dd date');
  const headers = new Map<string, PayoutHeader>();
  const seen = new Map<string, { date: string; currency: string }>();
  const digest = createHash('sha256').update(`${input.processor}\n`);
  const all = new TempFile('recon-items');
  let count = 0;
  try {
    for await (const batch of itemsOf(input, headers)) {
      let text = '';
      for (const it of batch) {
        const line = JSON.stringify({ ...it, index: count++ });
        text += line + '\n';
        if (!seen.has(it.payout_id)) seen.set(it.payout_id, { date: it.payout_date, currency: it.currency });
      }
      digest.update(text);
      await all.write(text);
    }
    await all.close();

    // Payout amounts: from the file when it states them (Adyen), else from the API when the
    // source is a file (unknown → total not checked).
    const api = sourcesOf(input.processor).api;
    for (const [id, s] of [...seen].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (headers.has(id)) continue;
      let h: PayoutHeader | undefined;
      try {
        h = await api?.payout(id);
      } catch (err) {
        logger.warn('payout amount unavailable; its total is not checked', {
          payout: id,
          error: (err as Error).message,
        });
      }
      headers.set(
        id,
        h ?? {
          processor: input.processor,
          payout_id: id,
          payout_date: s.date,
          currency: s.currency,
          amount: null,
        },
      );
    }
    const payouts = [...headers.values()].sort((a, b) =>
      `${a.payout_date}|${a.payout_id}` < `${b.payout_date}|${b.payout_id}` ? -1 : 1,
    );
    const runId = `${input.processor}-${digest.digest('hex').slice(0, 24)}`;
    const asOf = input.as_of ?? payouts.at(-1)?.payout_date ?? new Date().toISOString().slice(0, 10);

    // Split by payment reference.
    const per = Math.max(1, input.chunk_items ?? 5000);
    const n = Math.max(1, Math.ceil(count / per));
    const files = Array.from({ length: n }, () => new TempFile('recon-chunk'));
    try {
      const rl = readline.createInterface({ input: fs.createReadStream(all.path), crlfDelay: Infinity });
      for await (const line of rl) {
        if (!line) continue;
        const it = JSON.parse(line) as IndexedItem;
        const k = it.reference ?? it.item_id;
        await files[crc32(k) % n]!.write(line + '\n');
      }
      const chunks: string[] = [];
      for (let i = 0; i < n; i++) {
        const f = await files[i]!.close();
        const key = `work/${runId}/chunk-${String(i + 1).padStart(4, '0')}.jsonl`;
        await putFile('settlements', key, f.path, 'application/x-ndjson');
        chunks.push(key);
      }
      return {
        run_id: runId,
        processor: input.processor,
        source: input.source,
        as_of: asOf,
        settlement_delay_days: input.settlement_delay_days ?? null,
        payouts,
        chunks,
        items: count,
      };
    } finally {
      for (const f of files) f.remove();
    }
  } finally {
    all.remove();
  }
}

export const handler = taskHandler('reconciliation-prepare', ReconciliationInputSchema, prepare);
