/**
 * The ledger's invariant check over the whole table (`paystep ledger check`, tests): every entry
 * balances, and per merchant/processor/currency the receivable equals captured − refunded −
 * disputed − fees − paid out, with captured/refunded/disputed taken from the payments and
 * disputes themselves. Also returns the balances (the projection).
 */
import { scanFinanceItems, toEntry } from '../store/ledger.ts';
import {
  checkInvariants,
  project,
  SourceTotalsBuilder,
  type Balances,
  type InvariantReport,
  type LedgerEntry,
} from './domain.ts';

export async function ledgerCheck(): Promise<InvariantReport & { balances: Balances[] }> {
  const entries: LedgerEntry[] = [];
  const sources = new SourceTotalsBuilder();
  for await (const it of scanFinanceItems()) {
    if (it.kind === 'ledger_entry') entries.push(toEntry(it));
    else sources.add(it);
  }
  entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { ...checkInvariants(entries, sources.build()), balances: project(entries) };
}
