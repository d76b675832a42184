/**
 * The ledger in DynamoDB (table `main`). Entries are written once and never updated.
 *
 *   pk LEDGER#<entry id>  sk ENTRY            the entry (kind 'ledger_entry'); put only if absent
 *     gsi1pk LEDGER#<merchant>#<yyyy-mm-dd>  gsi1sk <occurred_at>#<entry id>   a merchant's day
 *     gsi2pk LEDGER#PAYMENT#<payment>  gsi2sk <occurred_at>#<entry id>   a payment's entries (when it
 *       has one; entries recorded before this key existed are not on it)
 *   pk FINDAY#<yyyy-mm-dd>  sk MERCHANT#<id>  a merchant had money movements or payments that day
 *
 * Balances are not stored: they are a projection of the entries (lambdas/ledger/domain.ts).
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { PaystepError } from '../shared/errors.ts';
import { putIfAbsent } from './conditional.ts';
import { indexQuery, queryPages, scanPages } from './pages.ts';
import { entryProblems, type LedgerEntry } from '../ledger/domain.ts';

const table = () => config.tableName('main');

export class UnbalancedEntryError extends PaystepError {
  override name = 'UnbalancedEntryError';
}

const ENTRY_FIELDS = [
  'id',
  'type',
  'merchant_id',
  'processor',
  'currency',
  'amount',
  'postings',
  'payment_id',
  'source_id',
  'processor_reference',
  'occurred_at',
] as const;

export function toEntry(item: Record<string, unknown>): LedgerEntry {
  const out: Record<string, unknown> = {};
  for (const k of ENTRY_FIELDS) out[k] = item[k] ?? null;
  return out as unknown as LedgerEntry;
}

/**
 * Records an entry unless one with its id exists. Returns whether it was new. An entry that does
 * not balance is refused (it is a bug, never data to keep).
 */
export async function recordEntry(e: LedgerEntry): Promise<boolean> {
  const problems = entryProblems(e);
  if (problems.length) throw new UnbalancedEntryError(`ledger entry ${e.id}: ${problems.join('; ')}`);
  const day = e.occurred_at.slice(0, 10);
  const recorded = await putIfAbsent(table(), {
    pk: `LEDGER#${e.id}`,
    sk: 'ENTRY',
    kind: 'ledger_entry',
    ...e,
    gsi1pk: `LEDGER#${e.merchant_id}#${day}`,
    gsi1sk: `${e.occurred_at}#${e.id}`,
    ...(e.payment_id ? { gsi2pk: `LEDGER#PAYMENT#${e.payment_id}`, gsi2sk: `${e.occurred_at}#${e.id}` } : {}),
  });
  if (!recorded) return false;
  await markActivity(day, e.merchant_id);
  return true;
}

/**
 * What this container has marked (`<day>#<merchant>`), per DynamoDB client (a host that points the
 * clients elsewhere, `resetClients`, starts afresh): the item is never changed or removed once put,
 * so marking it again is a write with no effect. Bounded: cleared when it grows large (a cleared
 * entry is only marked once more).
 */
const markedBy = new WeakMap<object, Set<string>>();
const MAX_MARKED = 10_000;

/** Notes that a merchant had activity on a day (which merchants the daily reports cover). */
export async function markActivity(day: string, merchantId: string): Promise<void> {
  const k = `${day}#${merchantId}`;
  const ddb = clients.ddb();
  let marked = markedBy.get(ddb);
  if (!marked) markedBy.set(ddb, (marked = new Set()));
  if (marked.has(k)) return;
  await ddb.send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `FINDAY#${day}`,
        sk: `MERCHANT#${merchantId}`,
        kind: 'finance_day',
        merchant_id: merchantId,
      },
    }),
  );
  if (marked.size >= MAX_MARKED) marked.clear();
  marked.add(k);
}

/** Merchants with activity on a day, sorted. */
export async function activeMerchants(day: string): Promise<string[]> {
  const out: string[] = [];
  for await (const it of queryPages({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': `FINDAY#${day}` },
  }))
    out.push(String(it.merchant_id));
  return out.sort();
}

/** A merchant's entries of one day (UTC), in time order (then id). Streams pages. */
export async function* entriesOfDay(merchantId: string, day: string): AsyncGenerator<LedgerEntry> {
  for await (const it of queryPages(indexQuery(table(), `LEDGER#${merchantId}#${day}`))) yield toEntry(it);
}

/** A payment's entries (its captures, refunds, disputes and fees), in time order. */
export async function entriesOfPayment(paymentId: string): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for await (const it of queryPages(indexQuery(table(), `LEDGER#PAYMENT#${paymentId}`, 'gsi2')))
    out.push(toEntry(it));
  return out;
}

/**
 * Every ledger entry, payment and dispute (what the invariant check reads), by a paginated Scan.
 * Items come in table order.
 */
export function scanFinanceItems(): AsyncGenerator<Record<string, unknown>> {
  return scanPages({
    TableName: table(),
    FilterExpression: 'kind IN (:e, :p, :d)',
    ExpressionAttributeValues: { ':e': 'ledger_entry', ':p': 'payment', ':d': 'dispute' },
  });
}

/** Every ledger entry (Scan), e.g. for `paystep ledger balances`. */
export async function* scanEntries(): AsyncGenerator<LedgerEntry> {
  for await (const it of scanFinanceItems()) if (it.kind === 'ledger_entry') yield toEntry(it);
}
