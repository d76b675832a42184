/**
 * Invoices (docs/billing.md), table `main`: `INVOICE#<id>` with its timeline, listed per merchant
 * on gsi1. A period's invoice has a deterministic id (lambdas/billing/model.ts), so `createInvoice`
 * is the idempotent put keyed by subscription and period. Status writes go through
 * `transitionInvoice` (guarded by lambdas/domain/subscription.ts); a payment attempt is claimed by
 * its number (`claimAttempt`: attempt_count moves from n-1 to n once), so two callers never start
 * the same attempt twice.
 */
import type { Invoice, InvoiceAttempt } from '../billing/model.ts';
import { invoiceSources, type InvoiceStatus } from '../domain/subscription.ts';
import { config } from '../shared/config.ts';
import { queryPages } from './pages.ts';
import {
  addTimeline,
  fromItem,
  getMerchantObject,
  getObject,
  listObjects,
  putObject,
  timeline,
  updateObject,
  type TimelineEntry,
} from './billing-objects.ts';

export const createInvoice = (i: Invoice) => putObject('invoice', i);
export const getInvoice = (id: string) => getObject<Invoice>('invoice', id);
export const getMerchantInvoice = (merchantId: string, id: string) =>
  getMerchantObject<Invoice>('invoice', merchantId, id);

export function transitionInvoice(
  id: string,
  to: InvoiceStatus,
  set: Record<string, unknown> = {},
): Promise<Invoice | undefined> {
  return updateObject<Invoice>('invoice', id, {
    set: { ...set, status: to },
    fromStatuses: invoiceSources(to),
  });
}

/**
 * Records attempt `n` (and its payment) in one conditional write, if the invoice is still open
 * (or uncollectible: a late payment is welcome) at attempt n-1; undefined when another caller
 * claimed attempt n first (nothing written).
 */
export function claimAttempt(inv: Invoice, n: number, attempt: InvoiceAttempt): Promise<Invoice | undefined> {
  const attempts = [...inv.attempts.filter((a) => a.attempt < n), attempt];
  return updateObject<Invoice>('invoice', inv.id, {
    set: {
      attempt_count: n,
      attempts,
      payment: attempt.payment,
      payment_method_required: false,
      next_attempt_at: null,
    },
    fromStatuses: ['open', 'uncollectible'],
    condition: {
      expression: '#catt = :cprev',
      names: { '#catt': 'attempt_count' },
      values: { ':cprev': n - 1 },
    },
  });
}

/**
 * Changes fields of the attempt `n` entry (its outcome, what comes next); `read` is the invoice as
 * the caller has just read it (else it is read here). The write is conditional on the attempt count
 * read, so it never lands on an invoice that has moved to another attempt meanwhile.
 */
export async function updateAttempt(
  id: string,
  n: number,
  patch: Partial<InvoiceAttempt>,
  set: Record<string, unknown> = {},
  read?: Invoice,
) {
  const inv = read ?? (await getInvoice(id));
  if (!inv) return undefined;
  const attempts = inv.attempts.map((a) => (a.attempt === n ? { ...a, ...patch } : a));
  return updateObject<Invoice>('invoice', id, {
    set: { ...set, attempts },
    condition: {
      expression: '#catt = :cn',
      names: { '#catt': 'attempt_count' },
      values: { ':cn': inv.attempt_count },
    },
  });
}

/** Changes fields other than the status while the invoice is in one of `whileIn`. */
export const updateInvoice = (
  id: string,
  set: Record<string, unknown>,
  whileIn?: InvoiceStatus[],
  add?: Record<string, unknown>,
) => updateObject<Invoice>('invoice', id, { set, fromStatuses: whileIn, add });

export interface InvoiceFilters {
  limit: number;
  startingAfter?: string;
  subscription?: string;
  customer?: string;
  status?: string;
}

export const listInvoices = (merchantId: string, f: InvoiceFilters) =>
  listObjects<Invoice>('invoice', merchantId, {
    limit: f.limit,
    startingAfter: f.startingAfter,
    equals: { subscription: f.subscription, customer: f.customer, status: f.status },
  });

/** The merchant's invoices, newest first, at most `max` (`truncated` when there were more). */
export async function merchantInvoices(
  merchantId: string,
  max: number,
): Promise<{ invoices: Invoice[]; truncated: boolean }> {
  const invoices: Invoice[] = [];
  for await (const it of queryPages({
    TableName: config.tableName('main'),
    IndexName: 'gsi1',
    KeyConditionExpression: 'gsi1pk = :pk',
    ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}#INVOICES` },
    ScanIndexForward: false,
  })) {
    if (invoices.length === max) return { invoices, truncated: true };
    invoices.push(fromItem<Invoice>(it));
  }
  return { invoices, truncated: false };
}

export const addInvoiceEvent = (id: string, entry: Omit<TimelineEntry, 'at'>) =>
  addTimeline('invoice', id, entry);
export const invoiceTimeline = (id: string) => timeline('invoice', id);
