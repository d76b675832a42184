/**
 * Payouts (finance): automatic daily payouts per currency, the itemized payout reconciliation
 * report, `GET /v1/payouts`, `/v1/balance_transactions`, `/v1/balance`, and the refund and dispute
 * lists.
 */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import {
  renderStripeItemizedCsv,
  type StripeItemizedRow,
} from '../../../../lambdas/connectors/stripe/settlement.ts';
import type { Reader } from './form.ts';
import { EXPANDABLE, clone } from './model.ts';
import type { StripeObject } from './types.ts';
import { StripeCore } from './core.ts';

export abstract class StripePayouts extends StripeCore {
  // --- payouts ---------------------------------------------------------------------------------

  /**
   * Pays out the balance as an automatic payout would: every balance transaction not paid out yet
   * and available (`available_on` passed; with `includePending`, all of them), one payout per
   * currency whose total is positive (a negative balance stays for the next one). Returns them.
   */
  createPayout(opts: { includePending?: boolean; currency?: string } = {}): StripeObject[] {
    const ctx = this.internalContext();
    const now = this.seconds();
    const byCurrency = new Map<string, StripeObject[]>();
    // Only the balance transactions not paid out yet are read (the storage tags them).
    for (const o of this.store.objectsOf('balance_transaction', { unpaidOnly: true })) {
      if (o.type === 'payout' || this.simOf(o.id)?.payout) continue;
      if (!opts.includePending && (o.available_on as number) > now) continue;
      if (opts.currency && o.currency !== opts.currency) continue;
      const list = byCurrency.get(o.currency as string) ?? [];
      list.push(o);
      byCurrency.set(o.currency as string, list);
    }
    const out: StripeObject[] = [];
    for (const currency of [...byCurrency.keys()].sort()) {
      const txns = byCurrency.get(currency)!;
      const amount = txns.reduce((sum, t) => sum + (t.net as number), 0);
      if (amount <= 0) continue;
      const id = `po_${randomBase62(24)}`;
      const txn: StripeObject = {
        id: `txn_${randomBase62(24)}`,
        object: 'balance_transaction',
        amount: -amount,
        available_on: now,
        balance_type: 'payments',
        created: now,
        currency,
        description: 'STRIPE PAYOUT',
        exchange_rate: null,
        fee: 0,
        fee_details: [],
        net: -amount,
        reporting_category: 'payout',
        source: id,
        status: 'available',
        type: 'payout',
      };
      this.save('balance_transaction', txn, { payout: id });
      // The payout's balance transactions (its own last), for its lists and report.
      const paid = [...txns.map((t) => t.id), txn.id];
      const payout: StripeObject = {
        id,
        object: 'payout',
        amount,
        application_fee: null,
        application_fee_amount: null,
        arrival_date: Math.floor(now / 86_400) * 86_400,
        automatic: true,
        balance_transaction: txn.id,
        created: now,
        currency,
        description: 'STRIPE PAYOUT',
        destination: 'ba_simulator',
        failure_balance_transaction: null,
        failure_code: null,
        failure_message: null,
        livemode: false,
        metadata: {},
        method: 'standard',
        original_payout: null,
        payout_method: null,
        reconciliation_status: 'completed',
        reversed_by: null,
        source_type: 'card',
        statement_descriptor: null,
        status: 'paid',
        // The ACH trace number of a paid payout (test mode: a made-up 15-digit number).
        trace_id: { status: 'supported', value: String(10 ** 14 + Math.floor(Math.random() * 9 * 10 ** 14)) },
        type: 'bank_account',
      };
      this.save('payout', payout, { txns: paid });
      for (const t of txns) {
        t.status = 'available';
        this.save('balance_transaction', t, { payout: id });
      }
      this.emit(ctx, 'payout.created', payout);
      this.emit(ctx, 'payout.paid', payout);
      out.push(clone(payout));
    }
    this.dispatch(ctx.events);
    return out;
  }

  /** Every payout, newest first. */
  payouts(): StripeObject[] {
    return [...this.store.objectsOf('payout')].reverse().map(clone);
  }

  /**
   * A payout's balance transactions in the order first stored (its own last): from the list kept
   * with it, or (a payout stored before that list existed) by reading every balance transaction.
   */
  protected payoutTransactions(payoutId: string): StripeObject[] {
    const ids = this.simOf(payoutId)?.txns;
    if (ids) return ids.map((id) => this.get('balance_transaction', id)).filter((t) => t !== undefined);
    return [...this.store.objectsOf('balance_transaction')].filter(
      (t) => this.simOf(t.id)?.payout === payoutId,
    );
  }

  /** The payout's itemized payout reconciliation report (Stripe's CSV columns, amounts in major units). */
  payoutItemizedCsv(payoutId: string): string {
    const payout = this.get('payout', payoutId);
    if (!payout) throw new Error(`no such payout: ${payoutId}`);
    const utc = (s: unknown) =>
      typeof s === 'number' ? new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ') : null;
    const rows: StripeItemizedRow[] = [];
    for (const t of this.payoutTransactions(payoutId)) {
      if (t.type === 'payout') continue;
      const source = this.store.lookup(t.source as string);
      const charge =
        source?.object === 'charge'
          ? source
          : this.store.lookup((source?.charge as string | undefined) ?? '');
      const pi = this.store.lookup((source?.payment_intent as string | undefined) ?? '');
      const card = (
        charge?.payment_method_details as { card?: { brand?: string; country?: string } } | undefined
      )?.card;
      rows.push({
        automatic_payout_id: payoutId,
        automatic_payout_effective_at: utc(payout.arrival_date),
        balance_transaction_id: t.id,
        created_utc: utc(t.created),
        available_on_utc: utc(t.available_on),
        currency: t.currency as string,
        reporting_category: t.reporting_category as string,
        source_id: (t.source as string | null) ?? null,
        description: (t.description as string | null) ?? null,
        charge_id: charge?.id ?? null,
        payment_intent_id: pi?.id ?? null,
        card_brand: card?.brand ?? null,
        card_country: card?.country ?? null,
        'payment_metadata[merchant_id]':
          (pi?.metadata as Record<string, string> | undefined)?.merchant_id ?? null,
        gross_minor: t.amount as number,
        fee_minor: t.fee as number,
        net_minor: t.net as number,
      });
    }
    return renderStripeItemizedCsv(rows);
  }

  /** `GET /v1/refunds` and `GET /v1/disputes`: newest first, by `charge` or `payment_intent`. */
  protected listByPayment(p: Reader, kind: 'refund' | 'dispute'): StripeObject {
    p.allow(['limit', 'starting_after', 'ending_before', 'created', 'charge', 'payment_intent', 'expand']);
    const charge = p.string('charge');
    const paymentIntent = p.string('payment_intent');
    const created = this.createdFilter(p);
    const list = [...this.store.objectsOf(kind)]
      .filter(
        (o) =>
          (!charge || o.charge === charge) &&
          (!paymentIntent || o.payment_intent === paymentIntent) &&
          created(o),
      )
      .reverse();
    return this.listOf(p, list, `/v1/${kind}s`, EXPANDABLE[kind]);
  }

  /**
   * `GET /v1/balance`: per currency, the net of the balance transactions not yet available
   * (`pending`) and of those available and not paid out (`available`; a payout's own transaction
   * takes its funds out).
   */
  protected balance(p: Reader): StripeObject {
    p.allow(['expand']);
    p.expand();
    const sums = { available: new Map<string, number>(), pending: new Map<string, number>() };
    for (const o of this.store.objectsOf('balance_transaction')) {
      const bucket = o.status === 'pending' ? sums.pending : sums.available;
      const currency = o.currency as string;
      bucket.set(currency, (bucket.get(currency) ?? 0) + (o.net as number));
      // A currency with funds in either bucket is listed in both, as Stripe lists it.
      for (const b of [sums.available, sums.pending]) if (!b.has(currency)) b.set(currency, 0);
    }
    const rows = (m: Map<string, number>) =>
      [...m.keys()].sort().map((currency) => ({
        amount: m.get(currency) as number,
        currency,
        source_types: { card: m.get(currency) as number },
      }));
    // A new account's balance: zero in its default currency.
    if (sums.available.size === 0) for (const b of [sums.available, sums.pending]) b.set('usd', 0);
    return {
      object: 'balance',
      available: rows(sums.available),
      livemode: false,
      pending: rows(sums.pending),
    } as unknown as StripeObject;
  }

  protected listPayouts(p: Reader): StripeObject {
    p.allow(['limit', 'starting_after', 'ending_before', 'created', 'status', 'expand', 'arrival_date']);
    const status = p.string('status');
    const created = this.createdFilter(p);
    const list = [...this.store.objectsOf('payout')]
      .filter((o) => (!status || o.status === status) && created(o))
      .reverse();
    return this.listOf(p, list, '/v1/payouts', EXPANDABLE.payout);
  }

  protected listBalanceTransactions(p: Reader): StripeObject {
    p.allow([
      'limit',
      'starting_after',
      'ending_before',
      'created',
      'payout',
      'type',
      'currency',
      'source',
      'expand',
    ]);
    const payout = p.string('payout');
    if (payout) this.mustGet('payout', payout, 'payout', 404);
    const type = p.string('type');
    const currency = p.string('currency');
    const source = p.string('source');
    const created = this.createdFilter(p);
    const all = payout ? this.payoutTransactions(payout) : [...this.store.objectsOf('balance_transaction')];
    const list = all
      .filter(
        (o) =>
          (!type || o.type === type) &&
          (!currency || o.currency === currency) &&
          (!source || o.source === source) &&
          created(o),
      )
      .reverse();
    return this.listOf(p, list, '/v1/balance_transactions', EXPANDABLE.balance_transaction);
  }
}
