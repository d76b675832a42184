/** Refunds: `POST /v1/refunds`, and the asynchronous outcomes of the refund test cards. */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import { invalid, noSuch, refused } from './errors.ts';
import type { Reader } from './form.ts';
import { formatMoney } from './money.ts';
import { clone, type RequestContext, type SimInfo } from './model.ts';
import { TEST_PAYMENT_METHODS } from './test-cards.ts';
import type { StripeObject } from './types.ts';
import { StripePayouts } from './payouts.ts';

export abstract class StripeRefunds extends StripePayouts {
  /** Applies every scheduled asynchronous refund change now (pending → succeeded, succeeded → failed). */
  settleAsyncRefunds(): StripeObject[] {
    const changed: StripeObject[] = [];
    for (const [id, info] of [...this.store.activeSim]) {
      if (info.transition) {
        const r = this.applyTransition(id);
        if (r) changed.push(r);
      }
    }
    return changed;
  }

  protected createRefund(p: Reader, ctx: RequestContext): StripeObject {
    p.allow([
      'payment_intent',
      'charge',
      'amount',
      'reason',
      'metadata',
      'expand',
      'instructions_email',
      'refund_application_fee',
      'reverse_transfer',
    ]);
    const piId = p.string('payment_intent');
    const chId = p.string('charge');
    const requested = p.positiveInteger('amount');
    const reason = p.oneOf('reason', ['duplicate', 'fraudulent', 'requested_by_customer']);
    const metadata = p.metadata() ?? {};
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, ['charge', 'payment_intent', 'balance_transaction']);
    if (piId && chId)
      throw invalid('You may only specify one of these parameters: charge, payment_intent.', 'charge');
    if (!piId && !chId) {
      throw invalid(
        'One of the following params should be provided for this request: payment_intent or charge.',
        undefined,
        'parameter_missing',
      );
    }
    let ch: StripeObject | undefined;
    let pi: StripeObject | undefined;
    if (piId) {
      pi = this.get('payment_intent', piId);
      if (!pi) throw noSuch('payment_intent', piId, 'payment_intent');
      ch = pi.latest_charge ? this.get('charge', pi.latest_charge as string) : undefined;
      if (!ch || ch.status !== 'succeeded') {
        throw refused('This PaymentIntent does not have a successful charge to refund.', 'payment_intent');
      }
    } else {
      ch = this.get('charge', chId as string);
      if (!ch) throw noSuch('charge', chId as string, 'charge');
      pi = ch.payment_intent ? this.get('payment_intent', ch.payment_intent as string) : undefined;
      if (ch.status !== 'succeeded')
        throw refused(`Charge ${ch.id} has not succeeded; it cannot be refunded.`, 'charge');
    }
    const currency = ch.currency as string;
    if (ch.refunded)
      throw refused(`Charge ${ch.id} has already been refunded.`, undefined, 'charge_already_refunded');
    if (!ch.captured) {
      throw refused(
        `Charge ${ch.id} has not been captured, so it cannot be refunded. Cancel the PaymentIntent instead to release the authorization.`,
      );
    }
    // amount_refunded includes the remainder a partial capture released: what is left is the rest.
    const remaining = (ch.amount as number) - (ch.amount_refunded as number);
    const amount = requested ?? remaining;
    if (amount > remaining) {
      throw refused(
        `Refund amount (${formatMoney(amount, currency)}) is greater than unrefunded amount on charge (${formatMoney(remaining, currency)})`,
        'amount',
      );
    }
    const info = this.simOf(ch.id) ?? {};
    const behavior = info.testCard ? TEST_PAYMENT_METHODS[info.testCard]?.behavior : undefined;
    const asyncKind = behavior?.kind === 'succeed' ? behavior.refund : undefined;
    const id = `re_${randomBase62(24)}`;
    const txn = this.balanceTransaction(id, 'refund', -amount, currency, null);
    const refund: StripeObject = {
      id,
      object: 'refund',
      amount,
      balance_transaction: txn.id,
      charge: ch.id,
      created: this.seconds(),
      currency,
      customer: null,
      customer_account: null,
      destination_details: {
        card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
        type: 'card',
      },
      metadata,
      payment_intent: pi?.id ?? null,
      payment_method: ch.payment_method,
      ...(asyncKind === 'pending' ? { pending_reason: 'processing' } : {}),
      reason: reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: asyncKind === 'pending' ? 'pending' : 'succeeded',
      transfer_reversal: null,
    };
    const refunded = (ch.amount_refunded as number) + amount;
    Object.assign(ch, { amount_refunded: refunded, refunded: refunded >= (ch.amount as number) });
    this.counters.refunds++;
    const sim: SimInfo = asyncKind
      ? {
          transition: {
            to: asyncKind === 'pending' ? 'succeeded' : 'failed',
            at: this.now() + this.asyncRefundDelayMs,
          },
        }
      : {};
    this.save('refund', refund, sim);
    this.save('charge', ch);
    this.emit(ctx, 'refund.created', refund);
    this.emit(ctx, 'charge.refunded', ch);
    if (sim.transition) this.scheduleTransition(id, sim.transition.at);
    return this.expanded(refund, expand);
  }

  // --- asynchronous refunds --------------------------------------------------------------------

  protected scheduleTransition(id: string, at: number): void {
    const existing = this.timers.get(id);
    if (existing) clearTimeout(existing);
    if (!this.running) return;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        this.applyTransition(id);
      },
      Math.max(0, at - this.now()),
    );
    t.unref();
    this.timers.set(id, t);
  }

  protected applyTransition(id: string): StripeObject | undefined {
    const info = this.simOf(id);
    const refund = this.get('refund', id);
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
    if (!info?.transition || !refund) return undefined;
    const ctx = this.internalContext();
    const ch = this.get('charge', refund.charge as string) as StripeObject;
    if (info.transition.to === 'succeeded') {
      refund.status = 'succeeded';
      delete refund.pending_reason;
    } else {
      const amount = refund.amount as number;
      const txn = this.balanceTransaction(id, 'refund_failure', amount, refund.currency as string, null);
      Object.assign(refund, {
        status: 'failed',
        failure_reason: 'expired_or_canceled_card',
        failure_balance_transaction: txn.id,
      });
      const refunded = Math.max(0, (ch.amount_refunded as number) - amount);
      Object.assign(ch, { amount_refunded: refunded, refunded: false });
      this.save('charge', ch);
    }
    this.save('refund', refund, {});
    this.emit(ctx, 'refund.updated', refund);
    this.emit(ctx, 'charge.refund.updated', refund);
    if (refund.status === 'failed') this.emit(ctx, 'refund.failed', refund);
    this.dispatch(ctx.events);
    return clone(refund);
  }
}
