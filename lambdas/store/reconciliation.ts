/**
 * Reconciliation state in DynamoDB (table `main`).
 *
 *   pk PROCREF#<processor>#<reference>  sk PROCREF     a processor payment reference → payment
 *       { payment_id, merchant_id, currency, captured_on, settled: {<line id>: "<payout>|<date>|<type>|<gross>"},
 *         settled_payout?, settled_on? }
 *       gsi1pk SETTLEDUE#<processor>#<captured_on>  gsi1sk <reference>   while no payout paid it (sparse)
 *   pk RECONEXC#<merchant|platform>  sk <exception id>  an exception (open or resolved), with first_seen
 *       gsi1pk RECONEXC#OPEN  gsi1sk <merchant>#<exception id>               while open (sparse)
 *   pk RECONRUN#<processor>#<payout>  sk RUN            the latest reconciliation of a payout
 *       gsi1pk RECONRUNS#<processor>  gsi1sk <payout date>#<payout>
 *
 * The reference index is kept by the ledger's stream consumer (lambdas/ledger/stream.ts) from the
 * payments' stream: no payment code knows about it. Every write here is idempotent.
 */
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { conditionalWrite } from './conditional.ts';
import { updateExpression } from './expressions.ts';
import { indexQuery, queryAll, queryPageOutputs } from './pages.ts';
import type { PriorSettlement, ReconException, SettlementType } from '../reconciliation/types.ts';

const table = () => config.tableName('main');
const refKey = (processor: string, ref: string) => ({ pk: `PROCREF#${processor}#${ref}`, sk: 'PROCREF' });

export interface ReferenceRecord {
  processor: string;
  reference: string;
  payment_id: string;
  merchant_id: string;
  currency: string;
  captured_on: string | null;
  settled_payout: string | null;
  prior: PriorSettlement[];
}

/** Links a processor reference to its payment; from the first capture on, it is due for settlement. */
export async function linkReference(x: {
  processor: string;
  reference: string;
  payment_id: string;
  merchant_id: string;
  currency: string;
  captured_on?: string;
}): Promise<void> {
  const fields = {
    kind: 'processor_reference',
    processor: x.processor,
    reference: x.reference,
    payment_id: x.payment_id,
    merchant_id: x.merchant_id,
    currency: x.currency,
  };
  // Captured at first sight (the usual case): linked and due for settlement in one write, while no
  // payout line was seen and no other capture day was recorded; otherwise the two steps below.
  if (x.captured_on) {
    const due = await conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: refKey(x.processor, x.reference),
        ...updateExpression(
          { ...fields, gsi1pk: `SETTLEDUE#${x.processor}#${x.captured_on}`, gsi1sk: x.reference },
          [],
          {
            setIfAbsent: { settled: {}, captured_on: x.captured_on },
            condition: {
              expression:
                'attribute_not_exists(settled_payout) AND attribute_not_exists(seen_payout) AND (attribute_not_exists(captured_on) OR captured_on = :first_capture)',
              values: { ':first_capture': x.captured_on },
            },
          },
        )!,
      }),
    );
    if (due) return;
  }
  const out = await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: refKey(x.processor, x.reference),
      ...updateExpression(fields, [], {
        setIfAbsent: { settled: {}, captured_on: x.captured_on || undefined },
      })!,
      ReturnValues: 'ALL_NEW',
    }),
  );
  const capturedOn = out.Attributes?.captured_on as string | undefined;
  if (!capturedOn || out.Attributes?.settled_payout || out.Attributes?.gsi1pk) return;
  // Due for settlement, unless a payout line was seen meanwhile.
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: refKey(x.processor, x.reference),
      ...updateExpression({ gsi1pk: `SETTLEDUE#${x.processor}#${capturedOn}`, gsi1sk: x.reference }, [], {
        condition: {
          expression: 'attribute_not_exists(settled_payout) AND attribute_not_exists(seen_payout)',
        },
      })!,
    }),
  );
}

function parsePrior(settled: unknown): PriorSettlement[] {
  if (!settled || typeof settled !== 'object') return [];
  return Object.entries(settled as Record<string, string>).map(([item_id, v]) => {
    const [payout_id, payout_date, type, gross] = String(v).split('|');
    return {
      item_id,
      payout_id: payout_id ?? '',
      payout_date: payout_date ?? '',
      type: (type ?? 'other') as SettlementType,
      gross: Number(gross),
    };
  });
}

/** Reference records for many references (BatchGet, 100 at a time), by reference. */
export async function getReferences(
  processor: string,
  refs: string[],
): Promise<Map<string, ReferenceRecord>> {
  const out = new Map<string, ReferenceRecord>();
  const unique = [...new Set(refs)];
  for (let i = 0; i < unique.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = unique
      .slice(i, i + 100)
      .map((r) => refKey(processor, r));
    for (let attempt = 0; keys && keys.length; attempt++) {
      const res = await clients
        .ddb()
        .send(new BatchGetCommand({ RequestItems: { [table()]: { Keys: keys, ConsistentRead: true } } }));
      for (const it of res.Responses?.[table()] ?? []) {
        out.set(String(it.reference), {
          processor,
          reference: String(it.reference),
          payment_id: String(it.payment_id),
          merchant_id: String(it.merchant_id),
          currency: String(it.currency),
          captured_on: (it.captured_on as string | undefined) ?? null,
          settled_payout: (it.settled_payout as string | undefined) ?? null,
          prior: parsePrior(it.settled),
        });
      }
      keys = res.UnprocessedKeys?.[table()]?.Keys as Record<string, unknown>[] | undefined;
      if (keys?.length) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
  return out;
}

/**
 * Records that a payout carried a line for the reference (its settlement history), and that the
 * reference is no longer due: a charge line was seen (`seen`), possibly settling it (`settled`).
 */
export async function recordSettlementLine(
  processor: string,
  reference: string,
  line: PriorSettlement,
  opts: { seen?: boolean; settled?: boolean },
): Promise<void> {
  const noLongerDue = Boolean(opts.seen || opts.settled);
  await conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: refKey(processor, reference),
      ...updateExpression({}, noLongerDue ? ['gsi1pk', 'gsi1sk'] : [], {
        setEntries: {
          settled: { [line.item_id]: `${line.payout_id}|${line.payout_date}|${line.type}|${line.gross}` },
        },
        setIfAbsent: {
          seen_payout: noLongerDue ? line.payout_id : undefined,
          settled_payout: opts.settled ? line.payout_id : undefined,
          settled_on: opts.settled ? line.payout_date : undefined,
        },
        condition: { expression: 'attribute_exists(pk)' },
      })!,
    }),
  );
}

/** References captured on `day` that no payout has paid yet. */
export async function dueReferences(processor: string, day: string): Promise<string[]> {
  const items = await queryAll(indexQuery(table(), `SETTLEDUE#${processor}#${day}`));
  return items.map((it) => String(it.gsi1sk)).sort();
}

// ---------------------------------------------------------------------------------------------
// Exceptions

export const PLATFORM = 'platform';

export interface StoredException extends ReconException {
  first_seen: string;
  last_seen: string;
  status: 'open' | 'resolved';
  resolved_on: string | null;
  resolution: string | null;
  /** Who resolved it by hand (absent when a run resolved it). */
  resolved_by?: string;
}

/** Whose an exception is: its merchant, or `platform` when no merchant can be named. */
export const exceptionOwner = (e: { merchant_id: string | null }) => e.merchant_id ?? PLATFORM;
const excOwner = exceptionOwner;

/**
 * Records an exception as open, seen on `day`. Its first sighting is kept; the other fields are
 * those of the latest sighting.
 */
export async function openException(e: ReconException, day: string): Promise<void> {
  const owner = excOwner(e);
  const fields = {
    last_seen: day,
    gsi1pk: 'RECONEXC#OPEN',
    gsi1sk: `${owner}#${e.id}`,
    ...e,
    kind: 'reconciliation_exception',
    status: 'open',
  };
  await clients.ddb().send(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `RECONEXC#${owner}`, sk: e.id },
      ...updateExpression(fields, ['resolved_on', 'resolution', 'resolved_by'], {
        setIfAbsent: { first_seen: day },
      })!,
    }),
  );
}

/**
 * Marks an open exception resolved (false, writing nothing, if it does not exist or is resolved
 * already): the guarded open → resolved change, by a run (`by` absent) or by a person.
 */
export async function resolveException(
  owner: string,
  id: string,
  day: string,
  resolution: string,
  by?: string,
): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `RECONEXC#${owner}`, sk: id },
      UpdateExpression: `SET #s = :r, resolved_on = :d, resolution = :why${by ? ', resolved_by = :by' : ''} REMOVE gsi1pk, gsi1sk`,
      ConditionExpression: '#s = :o',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':r': 'resolved',
        ':o': 'open',
        ':d': day,
        ':why': resolution,
        ...(by ? { ':by': by } : {}),
      },
    }),
  );
}

/** One exception of an owner (open or resolved), or undefined. */
export async function getException(owner: string, id: string): Promise<StoredException | undefined> {
  const out = await clients
    .ddb()
    .send(
      new GetCommand({ TableName: table(), Key: { pk: `RECONEXC#${owner}`, sk: id }, ConsistentRead: true }),
    );
  return out.Item ? toStored(out.Item) : undefined;
}

const toStored = (it: Record<string, unknown>): StoredException => {
  const { pk: _pk, sk: _sk, kind: _k, gsi1pk: _g, gsi1sk: _gs, ...rest } = it;
  return { resolved_on: null, resolution: null, ...rest } as unknown as StoredException;
};

/** Open exceptions, of one owner (merchant id or 'platform') or of all; sorted by owner then id. */
export async function openExceptions(owner?: string): Promise<StoredException[]> {
  const items = await queryAll({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: owner ? 'gsi1pk = :pk AND begins_with(gsi1sk, :o)' : 'gsi1pk = :pk',
    ExpressionAttributeValues: { ':pk': 'RECONEXC#OPEN', ...(owner ? { ':o': `${owner}#` } : {}) },
  });
  return items.map(toStored);
}

/**
 * At most `max` open exceptions (of one owner, if given), in the listing's order (owner, then id),
 * and whether there are more: a bounded read for a page view, whatever the backlog.
 */
export async function someOpenExceptions(
  max: number,
  owner?: string,
): Promise<{ data: StoredException[]; more: boolean }> {
  const items: Record<string, unknown>[] = [];
  for await (const page of queryPageOutputs({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: owner ? 'gsi1pk = :pk AND begins_with(gsi1sk, :o)' : 'gsi1pk = :pk',
    ExpressionAttributeValues: { ':pk': 'RECONEXC#OPEN', ...(owner ? { ':o': `${owner}#` } : {}) },
    Limit: max + 1,
  })) {
    items.push(...(page.Items ?? []));
    if (items.length > max) break;
  }
  return { data: items.slice(0, max).map(toStored), more: items.length > max };
}

/**
 * How many exceptions are open (of one owner, if given), counted by DynamoDB on the open
 * exceptions' index (`Select: COUNT`: no item is returned), at most `cap` (then `capped`).
 */
export async function countOpenExceptions(
  cap: number,
  owner?: string,
): Promise<{ count: number; capped: boolean }> {
  let n = 0;
  for await (const page of queryPageOutputs({
    TableName: table(),
    IndexName: 'gsi1',
    KeyConditionExpression: owner ? 'gsi1pk = :pk AND begins_with(gsi1sk, :o)' : 'gsi1pk = :pk',
    ExpressionAttributeValues: { ':pk': 'RECONEXC#OPEN', ...(owner ? { ':o': `${owner}#` } : {}) },
    Select: 'COUNT',
    Limit: cap + 1,
  })) {
    n += page.Count ?? 0;
    if (n > cap) break;
  }
  return { count: Math.min(n, cap), capped: n > cap };
}

/** Every exception (open and resolved) of an owner. */
export async function exceptionsOf(owner: string): Promise<StoredException[]> {
  const items = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': `RECONEXC#${owner}` },
    ConsistentRead: true,
  });
  return items.map(toStored);
}

// ---------------------------------------------------------------------------------------------
// Runs

export interface ReconRun {
  processor: string;
  payout_id: string;
  payout_date: string;
  currency: string;
  amount: number | null;
  status: 'reconciled' | 'reconciled_with_exceptions';
  items: number;
  matched: number;
  exceptions: Record<string, number>;
  source: string;
  as_of: string;
  reports: string[];
  execution: string | null;
}

export async function putRun(r: ReconRun): Promise<void> {
  await clients.ddb().send(
    new PutCommand({
      TableName: table(),
      Item: {
        pk: `RECONRUN#${r.processor}#${r.payout_id}`,
        sk: 'RUN',
        kind: 'reconciliation_run',
        ...r,
        gsi1pk: `RECONRUNS#${r.processor}`,
        gsi1sk: `${r.payout_date}#${r.payout_id}`,
      },
    }),
  );
}

const toRun = (it: Record<string, unknown>): ReconRun => {
  const { pk: _pk, sk: _sk, kind: _k, gsi1pk: _g, gsi1sk: _gs, ...rest } = it;
  return rest as unknown as ReconRun;
};

export async function getRun(processor: string, payoutId: string): Promise<ReconRun | undefined> {
  const out = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: { pk: `RECONRUN#${processor}#${payoutId}`, sk: 'RUN' },
      ConsistentRead: true,
    }),
  );
  return out.Item ? toRun(out.Item) : undefined;
}

/** Reconciled payouts of a processor, newest first. */
export async function listRuns(processor: string, limit = 100): Promise<ReconRun[]> {
  const out = await clients.ddb().send(
    new QueryCommand({
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': `RECONRUNS#${processor}` },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return (out.Items ?? []).map(toRun);
}

// ---------------------------------------------------------------------------------------------
// Payments, as matching needs them

export interface PaymentAmounts {
  id: string;
  merchant_id: string;
  currency: string;
  status: string;
  amount_captured: number;
  amount_refunded: number;
}

/** Amounts and status of many payments (BatchGet, 100 at a time, consistent reads), by id. */
export async function getPaymentAmounts(ids: string[]): Promise<Map<string, PaymentAmounts>> {
  const out = new Map<string, PaymentAmounts>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = unique
      .slice(i, i + 100)
      .map((id) => ({ pk: `PAYMENT#${id}`, sk: 'PAYMENT' }));
    for (let attempt = 0; keys && keys.length; attempt++) {
      const res = await clients.ddb().send(
        new BatchGetCommand({
          RequestItems: {
            [table()]: {
              Keys: keys,
              ConsistentRead: true,
              ProjectionExpression: 'id, merchant_id, currency, #s, amount_captured, amount_refunded',
              ExpressionAttributeNames: { '#s': 'status' },
            },
          },
        }),
      );
      for (const it of res.Responses?.[table()] ?? [])
        out.set(String(it.id), {
          id: String(it.id),
          merchant_id: String(it.merchant_id),
          currency: String(it.currency),
          status: String(it.status),
          amount_captured: Number(it.amount_captured ?? 0),
          amount_refunded: Number(it.amount_refunded ?? 0),
        });
      keys = res.UnprocessedKeys?.[table()]?.Keys as Record<string, unknown>[] | undefined;
      if (keys?.length) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
  return out;
}
