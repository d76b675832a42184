/**
 * The console's audit log (docs/console.md): one entry per operator action, who, when, what, to
 * what, before/after and the note. Entries are never changed or deleted.
 *
 * Items (table `main`):
 *   pk AUDIT#<id>                    sk AUDIT          the entry;  gsi1pk AUDIT  gsi1sk <ms 13 digits>#<id>  (all, newest first)
 *   pk AUDITBY#<operator id>         sk <ms>#<id>      { id }  an operator's entries
 *   pk AUDITON#<target kind>#<id>    sk <ms>#<id>      { id }  the entries about one object
 *
 * Listings are cursor pages (lambdas/store/pages.ts `cursorPage`), newest first; the cursor is the
 * `<ms>#<id>` of the last entry shown, so the next page is found without reading it again.
 */
import { BatchGetCommand, PutCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { newId } from '../shared/ids.ts';
import type { AuditDraft, AuditEntry } from '../console/types.ts';
import { cursorPage } from './pages.ts';

const table = () => config.tableName('main');
const entryKey = (id: string) => ({ pk: `AUDIT#${id}`, sk: 'AUDIT' });
const byOperator = (operatorId: string) => `AUDITBY#${operatorId}`;
const onTarget = (kind: string, id: string) => `AUDITON#${kind}#${id}`;
const sortOf = (at: number, id: string) => `${String(at).padStart(13, '0')}#${id}`;

/** A cursor: where a page ended. */
export const AUDIT_CURSOR = /^\d{13}#aud_[0-9A-Za-z]{1,40}$/;
/** The longest note, before/after (as JSON) an entry keeps; longer ones are cut, marked `…`. */
export const MAX_NOTE = 2000;
export const MAX_SNAPSHOT = 20_000;

function bounded(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > MAX_SNAPSHOT ? { truncated: `${text.slice(0, MAX_SNAPSHOT)}…` } : value;
}

/** Writes the entry; returns it. */
export async function writeAudit(
  draft: AuditDraft,
  operator: AuditEntry['operator'],
  at = Date.now(),
): Promise<AuditEntry> {
  const id = newId('aud');
  const entry: AuditEntry = {
    id,
    at,
    operator: { id: operator.id, name: operator.name, role: operator.role },
    action: draft.action,
    target: { kind: draft.target.kind, id: draft.target.id },
    ...(draft.merchant_id !== undefined ? { merchant_id: draft.merchant_id } : {}),
    ...(draft.before !== undefined ? { before: bounded(draft.before) } : {}),
    ...(draft.after !== undefined ? { after: bounded(draft.after) } : {}),
    ...(draft.note !== undefined
      ? { note: draft.note.length > MAX_NOTE ? `${draft.note.slice(0, MAX_NOTE)}…` : draft.note }
      : {}),
  };
  const sk = sortOf(at, id);
  const put = (Item: Record<string, unknown>) =>
    clients.ddb().send(new PutCommand({ TableName: table(), Item }));
  // The references first, the entry last (no transactions in the local DynamoDB): a crash between
  // leaves references to nothing, which listings skip, never an entry missing from a listing.
  await Promise.all([
    put({ pk: byOperator(operator.id), sk, kind: 'audit_ref', id }),
    put({ pk: onTarget(entry.target.kind, entry.target.id), sk, kind: 'audit_ref', id }),
  ]);
  await put({ ...entryKey(id), kind: 'audit', gsi1pk: 'AUDIT', gsi1sk: sk, ...entry });
  return entry;
}

function toEntry(it: Record<string, unknown>): AuditEntry {
  const { pk: _pk, sk: _sk, kind: _kind, gsi1pk: _g, gsi1sk: _s, ...entry } = it;
  return entry as unknown as AuditEntry;
}

export interface AuditFilter {
  operatorId?: string;
  target?: { kind: string; id: string };
  limit: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface AuditPage {
  data: AuditEntry[];
  /** Cursor of the next page; absent on the last. */
  next?: string;
}

/** A page of entries, newest first, optionally of one operator or about one object. */
export async function listAudit(f: AuditFilter): Promise<AuditPage> {
  if (f.after !== undefined && !AUDIT_CURSOR.test(f.after)) return { data: [] };
  const limit = Math.max(1, Math.min(f.limit, 200));
  if (f.operatorId || f.target) {
    const pk = f.operatorId ? byOperator(f.operatorId) : onTarget(f.target!.kind, f.target!.id);
    const refs = await cursorPage(
      { TableName: table(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk } },
      {
        limit,
        after: f.after ? { pk, sk: f.after } : undefined,
        map: (it) => ({ id: it.id as string, sk: it.sk as string }),
      },
    );
    const entries = await getEntries(refs.data.map((r) => r.id));
    // Both filters: the operator's entries about that object.
    const data = f.target
      ? entries.filter((e) => e.target.kind === f.target!.kind && e.target.id === f.target!.id)
      : entries;
    const last = refs.data.at(-1);
    return { data, ...(refs.hasMore && last ? { next: last.sk } : {}) };
  }
  const page = await cursorPage(
    {
      TableName: table(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': 'AUDIT' },
    },
    {
      limit,
      after: f.after ? { ...entryKey(f.after.slice(14)), gsi1pk: 'AUDIT', gsi1sk: f.after } : undefined,
      map: toEntry,
    },
  );
  const last = page.data.at(-1);
  return { data: page.data, ...(page.hasMore && last ? { next: sortOf(last.at, last.id) } : {}) };
}

/** The entries of these ids, in the order given (BatchGet, 100 at a time). */
async function getEntries(ids: string[]): Promise<AuditEntry[]> {
  const found = new Map<string, AuditEntry>();
  for (let i = 0; i < ids.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = ids.slice(i, i + 100).map(entryKey);
    while (keys?.length) {
      const out: BatchGetCommandOutput = await clients
        .ddb()
        .send(new BatchGetCommand({ RequestItems: { [table()]: { Keys: keys } } }));
      for (const it of out.Responses?.[table()] ?? []) found.set(it.id as string, toEntry(it));
      keys = out.UnprocessedKeys?.[table()]?.Keys;
    }
  }
  return ids.map((id) => found.get(id)).filter((e): e is AuditEntry => e !== undefined);
}
