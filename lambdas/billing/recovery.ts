/**
 * Recovery analytics (docs/billing.md "Recovery"): what dunning won back. Pure: the caller passes
 * the invoices. An invoice is *failed* once an attempt was declined; it is then *recovered* when
 * paid, *lost* when uncollectible (or void after a failure), *in dunning* while open. Recovered
 * revenue is broken down by the attempt that paid, by the first decline code, and by whole days
 * from the first failure to the payment.
 */
import type { Invoice } from './model.ts';

export interface Bucket {
  invoices: number;
  amount: number;
}

export interface RecoveryReport {
  object: 'recovery_report';
  currency: string;
  failed: Bucket;
  recovered: Bucket;
  lost: Bucket;
  in_dunning: Bucket;
  /** Recovered ÷ (recovered + lost) among decided invoices, 0–1, or null when none is decided. */
  recovery_rate: number | null;
  by_attempt: Record<string, Bucket>;
  by_decline_code: Record<string, Bucket & { failed: number }>;
  by_days_since_first_failure: Record<string, Bucket>;
}

const empty = (): Bucket => ({ invoices: 0, amount: 0 });
const add = (b: Bucket, amount: number) => {
  b.invoices += 1;
  b.amount += amount;
};

/** One report per currency (amounts in different currencies are never added). */
export function recoveryReport(invoices: readonly Invoice[]): RecoveryReport[] {
  const byCurrency = new Map<string, RecoveryReport>();
  for (const inv of invoices) {
    if (!inv.failed_attempts) continue;
    let r = byCurrency.get(inv.currency);
    if (!r) {
      r = {
        object: 'recovery_report',
        currency: inv.currency,
        failed: empty(),
        recovered: empty(),
        lost: empty(),
        in_dunning: empty(),
        recovery_rate: null,
        by_attempt: {},
        by_decline_code: {},
        by_days_since_first_failure: {},
      };
      byCurrency.set(inv.currency, r);
    }
    add(r.failed, inv.amount_due);
    const code = inv.attempts.find((a) => a.outcome === 'failed')?.code ?? 'unknown';
    const perCode = (r.by_decline_code[code] ??= { ...empty(), failed: 0 });
    perCode.failed += 1;
    if (inv.status === 'paid') {
      add(r.recovered, inv.amount_paid);
      add(perCode, inv.amount_paid);
      add((r.by_attempt[String(inv.attempt_count)] ??= empty()), inv.amount_paid);
      const days = Math.max(
        0,
        Math.floor(((inv.paid_at ?? inv.updated) - (inv.first_failed_at ?? inv.created)) / 86_400),
      );
      add((r.by_days_since_first_failure[String(days)] ??= empty()), inv.amount_paid);
    } else if (inv.status === 'open') add(r.in_dunning, inv.amount_due);
    else add(r.lost, inv.amount_due);
  }
  for (const r of byCurrency.values()) {
    const decided = r.recovered.invoices + r.lost.invoices;
    r.recovery_rate = decided ? Math.round((r.recovered.invoices / decided) * 10_000) / 10_000 : null;
  }
  return [...byCurrency.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}
