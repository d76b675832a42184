/**
 * Finding payments by what support is told (docs/console.md "Payments"): an order id, a customer
 * email, a processor reference, or a status and a date range, across merchants or for one, in
 * bounded reads whatever the number of payments. Table `main`:
 *
 *   pk SEARCH#order#<order id>       sk <created ms, 13 digits>#<pay id>   { payment_id, merchant_id }
 *   pk SEARCH#email#<email, lowercase>  sk <created ms, 13 digits>#<pay id>   same
 *
 * The lookup items are written by `createPayment` (lambdas/store/payments.ts) before the payment
 * itself (a put per key, idempotent: same key, same item), so a payment that exists always has
 * them, even when a crash cut its creation short and a retry found it stored; a lookup whose payment
 * was never stored is skipped when read. The order id and the email never change after creation.
 * Processor references use the reconciliation's reference index (`PROCREF#<processor>#<ref>`, kept
 * from the payments' stream by lambdas/ledger/stream.ts): one GetItem per processor. Payments
 * created before the lookups existed are found by id, by processor reference, and by status/date
 * (the merchant listing), not by order id or email.
 */
import { BatchGetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config, PROCESSOR_NAMES } from '../shared/config.ts';
import type { Payment, PaymentStatus } from '../domain/payment.ts';
import { queryPageOutputs } from './pages.ts';
import { getReferences } from './reconciliation.ts';
import { toPayment } from './payments.ts';

const table = () => config.tableName('main');
const ms13 = (ms: number) => String(ms).padStart(13, '0');

export type SearchKey = 'order' | 'email';

/** The stored form of a searched value: emails are compared without case, order ids exactly. */
export const searchValue = (kind: SearchKey, v: string) => (kind === 'email' ? v.trim().toLowerCase() : v);

/** The lookup items of a new payment (none when it has neither an order id nor an email). */
export function searchItems(p: Payment, createdMs: number): Record<string, unknown>[] {
  const keys: [SearchKey, string | null | undefined][] = [
    ['order', p.order_id],
    ['email', p.customer?.email],
  ];
  return keys
    .filter((k): k is [SearchKey, string] => typeof k[1] === 'string' && k[1].length > 0)
    .map(([kind, v]) => ({
      pk: `SEARCH#${kind}#${searchValue(kind, v)}`,
      sk: `${ms13(createdMs)}#${p.id}`,
      kind: 'payment_search',
      payment_id: p.id,
      merchant_id: p.merchant_id,
    }));
}

/** Writes a new payment's lookup items (idempotent). */
export async function putSearchItems(p: Payment, createdMs: number): Promise<void> {
  await Promise.all(
    searchItems(p, createdMs).map((Item) => clients.ddb().send(new PutCommand({ TableName: table(), Item }))),
  );
}

/** Payments by id, in the order asked; missing ones are left out. */
export async function getPayments(ids: string[]): Promise<Payment[]> {
  const found = new Map<string, Payment>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = unique
      .slice(i, i + 100)
      .map((id) => ({ pk: `PAYMENT#${id}`, sk: 'PAYMENT' }));
    for (let attempt = 0; keys && keys.length; attempt++) {
      const res = await clients
        .ddb()
        .send(new BatchGetCommand({ RequestItems: { [table()]: { Keys: keys } } }));
      for (const it of res.Responses?.[table()] ?? []) found.set(String(it.id), toPayment(it));
      keys = res.UnprocessedKeys?.[table()]?.Keys as Record<string, unknown>[] | undefined;
      if (keys?.length) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
  return ids.flatMap((id) => found.get(id) ?? []);
}

export interface SearchPage {
  data: Payment[];
  /** Where the next page starts (pass as `before`); absent on the last page. */
  next?: string;
}

/**
 * Payments with this order id or email, newest first, `limit` at a time (`before`: the `next` of
 * the previous page). `merchantId` limits them to one merchant.
 */
export async function findByKey(
  kind: SearchKey,
  value: string,
  o: { merchantId?: string; limit: number; before?: string },
): Promise<SearchPage> {
  const found: { sk: string; id: string }[] = [];
  for await (const page of queryPageOutputs({
    TableName: table(),
    KeyConditionExpression: o.before ? 'pk = :pk AND sk < :before' : 'pk = :pk',
    FilterExpression: o.merchantId ? 'merchant_id = :m' : undefined,
    ExpressionAttributeValues: {
      ':pk': `SEARCH#${kind}#${searchValue(kind, value)}`,
      ...(o.before ? { ':before': o.before } : {}),
      ...(o.merchantId ? { ':m': o.merchantId } : {}),
    },
    ScanIndexForward: false,
    Limit: o.limit + 1,
  })) {
    for (const it of page.Items ?? []) found.push({ sk: String(it.sk), id: String(it.payment_id) });
    if (found.length > o.limit) break;
  }
  const shown = found.slice(0, o.limit);
  return {
    data: await getPayments(shown.map((f) => f.id)),
    next: found.length > o.limit ? shown.at(-1)!.sk : undefined,
  };
}

/** The payments behind a processor reference, at whichever processor issued it. */
export async function findByProcessorReference(reference: string, merchantId?: string): Promise<Payment[]> {
  const records = await Promise.all(PROCESSOR_NAMES.map((p) => getReferences(p, [reference])));
  const ids = records
    .flatMap((m) => [...m.values()])
    .filter((r) => !merchantId || r.merchant_id === merchantId)
    .map((r) => r.payment_id);
  return getPayments(ids);
}

export interface ListOptions {
  /** The merchants to list (one for a merchant-limited operator, else every merchant). */
  merchantIds: string[];
  status?: PaymentStatus;
  /** Created at or after (epoch ms). */
  fromMs?: number;
  /** Created before (epoch ms). */
  toMs?: number;
  limit: number;
  /** The `next` of the previous page: `<created ms, 13 digits>#<pay id>`. */
  before?: string;
  /** Query pages read per merchant per request, so a rare status cannot make one request read everything. */
  maxPagesPerMerchant?: number;
}

/**
 * Payments of several merchants, newest first: each merchant's listing index (gsi1, newest first)
 * is read from the same point and the lists are merged. When a merchant's read stops at its page
 * budget before its list ends (a filter that matches little), the page ends there too, so nothing
 * newer than `next` is ever skipped: the next page continues from it. The index reads return only
 * each entry's sort key and id (the filter still reads the status): a rare status reads hundreds
 * of entries, and whole payments (their timelines) would be most of the bytes; the shown page's
 * payments are then read by id (one BatchGetItem).
 */
export async function listAcrossMerchants(o: ListOptions): Promise<SearchPage> {
  const maxPages = o.maxPagesPerMerchant ?? 4;
  const lo = o.fromMs !== undefined ? ms13(o.fromMs) : undefined;
  let hi = o.toMs !== undefined ? ms13(o.toMs) : undefined;
  if (o.before && (!hi || o.before < hi)) hi = o.before;
  const rows: { sk: string; id: string }[] = [];
  // The lowest sort key a stopped (not exhausted) merchant listing has reached: rows below it may
  // be incomplete.
  let frontier: string | undefined;
  await Promise.all(
    o.merchantIds.map(async (merchantId) => {
      const values: Record<string, unknown> = { ':pk': `MERCHANT#${merchantId}#PAYMENTS` };
      let cond = 'gsi1pk = :pk';
      if (lo) {
        cond += hi ? ' AND gsi1sk BETWEEN :lo AND :hi' : ' AND gsi1sk >= :lo';
        values[':lo'] = lo;
      } else if (hi) cond += ' AND gsi1sk < :hi';
      if (hi) values[':hi'] = hi;
      if (o.status) values[':status'] = o.status;
      let pages = 0;
      let kept = 0;
      for await (const page of queryPageOutputs({
        TableName: table(),
        IndexName: 'gsi1',
        KeyConditionExpression: cond,
        FilterExpression: o.status ? '#status = :status' : undefined,
        ExpressionAttributeNames: { '#id': 'id', ...(o.status ? { '#status': 'status' } : {}) },
        ExpressionAttributeValues: values,
        ProjectionExpression: 'gsi1sk, #id',
        ScanIndexForward: false,
        Limit: Math.max(o.limit + 1, 25),
      })) {
        pages++;
        for (const it of page.Items ?? []) {
          const sk = String(it.gsi1sk);
          if (hi && sk >= hi) continue; // BETWEEN is inclusive at the top
          rows.push({ sk, id: String(it.id) });
          kept++;
        }
        const last = page.LastEvaluatedKey;
        if (!last || kept > o.limit) break;
        if (pages >= maxPages) {
          const reached = String(last.gsi1sk);
          if (!frontier || reached > frontier) frontier = reached;
          break;
        }
      }
    }),
  );
  rows.sort((a, b) => (a.sk < b.sk ? 1 : a.sk > b.sk ? -1 : 0));
  const complete = frontier ? rows.filter((r) => r.sk >= frontier!) : rows;
  const page = complete.slice(0, o.limit);
  let next: string | undefined;
  if (complete.length > o.limit) next = page.at(-1)!.sk;
  else if (frontier) next = frontier;
  return { data: await getPayments(page.map((r) => r.id)), next };
}
