/**
 * Checkout API modifications (v72): `POST /payments/{pspReference}/captures|cancels|refunds|
 * reversals`. Each request is validated, answered at once with `status: "received"` and a new
 * modification pspReference, and decided `delays.modification` later, in request order, as
 * Adyen's accounting rules do; the outcome arrives as a notification:
 *
 * - capture → CAPTURE (success false when the payment is not authorised, was cancelled, is
 *   captured already, or the amount exceeds the authorised amount). A partial capture releases
 *   the rest (unless `multiplePartialCaptures`). Holder name `capture failed`: CAPTURE true, then
 *   CAPTURE_FAILED.
 * - cancel → CANCELLATION (success false once captured).
 * - refund → REFUND (success false, reason `Insufficient balance on payment`, when the refunds
 *   would exceed the captured amount). Holder name `refund failed`: REFUND true, then REFUND_FAILED.
 * - reversal → CANCEL_OR_REFUND (`additionalData["modification.action"]`: cancel or refund).
 *
 * Automatic captures (immediate or `captureDelayHours`) send no CAPTURE notification unless
 * `notifyAutomaticCaptures` (Adyen's default: only AUTHORISATION).
 */
import {
  C,
  errors,
  type Amount,
  type Json,
  type Modification,
  type ModificationType,
  type Payment,
  type SimContext,
} from './model.ts';
import type { Disputes } from './disputes.ts';
import type { Settlement } from './settlement.ts';

export interface ModificationsOptions {
  multiplePartialCaptures?: boolean;
  notifyAutomaticCaptures?: boolean;
}

const EVENT: Record<ModificationType, string> = {
  capture: 'CAPTURE',
  cancel: 'CANCELLATION',
  refund: 'REFUND',
  reversal: 'CANCEL_OR_REFUND',
};

export class Modifications {
  private readonly ctx: SimContext;
  private readonly settlement: Settlement;
  private readonly disputes: Disputes;
  private readonly opts: ModificationsOptions;

  constructor(ctx: SimContext, settlement: Settlement, disputes: Disputes, opts: ModificationsOptions = {}) {
    this.ctx = ctx;
    this.settlement = settlement;
    this.disputes = disputes;
    this.opts = opts;
    ctx.timers.on<{ psp: string }>('modification-outcome', ({ psp }) => this.decide(psp));
    ctx.timers.on<{ psp: string }>('modification-failure', ({ psp }) => this.failLater(psp));
    ctx.timers.on<{ psp: string }>('delayed-capture', ({ psp }) => {
      const payment = this.payment(psp);
      if (payment) this.automaticCapture(payment);
    });
  }

  get(psp: string): Modification | undefined {
    return this.ctx.store.get<Modification>(C.modification, psp);
  }

  /** Every modification of a payment, oldest first. */
  of(paymentPsp: string): Modification[] {
    return this.ctx.store
      .all<Modification>(C.modification)
      .filter((m) => m.paymentPspReference === paymentPsp);
  }

  /** A modification request; returns the `received` response. */
  request(type: ModificationType, paymentPsp: string, body: Json): Json {
    const { ctx } = this;
    const payment = this.payment(paymentPsp);
    if (!payment) throw errors.noOriginal();
    const merchantAccount = typeof body.merchantAccount === 'string' ? body.merchantAccount : '';
    if (!merchantAccount) throw errors.required('merchantAccount');
    if (merchantAccount !== payment.merchantAccount) throw errors.invalidMerchant();
    let amount: Amount | undefined;
    if (type === 'capture' || type === 'refund') {
      const a = body.amount as Partial<Amount> | undefined;
      if (!a || typeof a !== 'object' || a.value === undefined) throw errors.noAmount();
      if (typeof a.value !== 'number' || !Number.isInteger(a.value) || a.value <= 0)
        throw errors.invalidAmount();
      if (a.currency !== payment.amount.currency) throw errors.invalidAmount();
      amount = { value: a.value, currency: a.currency };
    }
    const reference = typeof body.reference === 'string' && body.reference ? body.reference : undefined;
    const mod: Modification = {
      pspReference: ctx.newPsp(),
      paymentPspReference: payment.pspReference,
      type,
      merchantAccount,
      ...(amount ? { amount } : {}),
      ...(reference ? { reference } : {}),
      status: 'received',
      createdAt: ctx.now(),
    };
    ctx.store.put(C.modification, mod.pspReference, mod);
    ctx.timers.after('modification-outcome', ctx.delays.modification, { psp: mod.pspReference });
    const out: Json = {
      merchantAccount,
      paymentPspReference: payment.pspReference,
      pspReference: mod.pspReference,
      ...(reference ? { reference } : {}),
      status: 'received',
    };
    if (amount) out.amount = amount;
    if (type === 'refund' && typeof body.merchantRefundReason === 'string')
      out.merchantRefundReason = body.merchantRefundReason;
    return out;
  }

  /** The capture of an automatically captured payment (at authorisation, or after the delay). */
  automaticCapture(payment: Payment): void {
    if (payment.cancelled || payment.capturedValue > 0 || payment.status !== 'authorised') return;
    const mod: Modification = {
      pspReference: this.ctx.newPsp(),
      paymentPspReference: payment.pspReference,
      type: 'capture',
      merchantAccount: payment.merchantAccount,
      amount: payment.amount,
      status: 'succeeded',
      createdAt: this.ctx.now(),
    };
    this.ctx.store.put(C.modification, mod.pspReference, mod);
    this.captured(payment, mod, this.opts.notifyAutomaticCaptures === true);
  }

  // ----------------------------------------------------------------------------------------------

  private payment(psp: string): Payment | undefined {
    return this.ctx.store.get<Payment>(C.payment, psp);
  }

  private save(payment: Payment, mod?: Modification): void {
    this.ctx.store.put(C.payment, payment.pspReference, payment);
    if (mod) this.ctx.store.put(C.modification, mod.pspReference, mod);
  }

  private decide(modPsp: string): void {
    const mod = this.get(modPsp);
    const payment = mod && this.payment(mod.paymentPspReference);
    if (!mod || !payment || mod.status !== 'received') return;
    let reason: string | undefined;
    let type = mod.type;
    if (type === 'reversal') {
      if (payment.capturedValue > 0) {
        mod.action = 'refund';
        mod.amount = {
          value: payment.capturedValue - payment.refundedValue,
          currency: payment.amount.currency,
        };
        type = 'refund';
      } else {
        mod.action = 'cancel';
        type = 'cancel';
      }
    }
    if (type === 'capture') reason = this.captureRefusal(payment, mod.amount!.value);
    else if (type === 'cancel') reason = this.cancelRefusal(payment);
    else if (payment.status !== 'authorised') reason = 'Original transaction not authorised';
    else if (mod.amount!.value <= 0 || mod.amount!.value > payment.capturedValue - payment.refundedValue)
      reason = 'Insufficient balance on payment';

    if (reason) {
      mod.status = 'failed';
      mod.reason = reason;
      this.save(payment, mod);
      this.notifyModification(payment, mod, false);
      return;
    }
    mod.status = 'succeeded';
    if (type === 'capture') {
      this.captured(payment, mod, true);
      return;
    }
    if (type === 'cancel') {
      payment.cancelled = true;
      payment.authorisedValue = 0;
      for (const t of this.ctx.timers.list<{ psp: string }>('delayed-capture'))
        if (t.data.psp === payment.pspReference) this.ctx.timers.cancel(t.id);
      this.save(payment, mod);
      this.notifyModification(payment, mod, true);
      return;
    }
    payment.refundedValue += mod.amount!.value;
    this.save(payment, mod);
    this.settlement.record('Refunded', payment, mod);
    this.notifyModification(payment, mod, true);
    if (payment.magic.refundFails)
      this.ctx.timers.after('modification-failure', this.ctx.delays.modificationFailure, {
        psp: mod.pspReference,
      });
  }

  private captureRefusal(payment: Payment, value: number): string | undefined {
    if (payment.status !== 'authorised') return 'Original transaction not authorised';
    if (payment.cancelled) return 'Transaction already cancelled';
    if (payment.captureMode === 'immediate' || (payment.captures > 0 && !this.opts.multiplePartialCaptures))
      return 'Transaction already captured';
    if (value > payment.authorisedValue - payment.capturedValue)
      return 'Amount exceeds the authorised amount';
    return undefined;
  }

  private cancelRefusal(payment: Payment): string | undefined {
    if (payment.status !== 'authorised') return 'Original transaction not authorised';
    if (payment.cancelled) return 'Transaction already cancelled';
    if (payment.capturedValue > 0) return 'Transaction already captured';
    return undefined;
  }

  /** A capture succeeded: amounts, settlement, dispute test values, `capture failed`. */
  private captured(payment: Payment, mod: Modification, notify: boolean): void {
    const value = mod.amount!.value;
    payment.capturedValue += value;
    payment.captures++;
    if (!this.opts.multiplePartialCaptures) payment.authorisedValue = payment.capturedValue;
    for (const t of this.ctx.timers.list<{ psp: string }>('delayed-capture'))
      if (t.data.psp === payment.pspReference) this.ctx.timers.cancel(t.id);
    this.save(payment, mod);
    this.settlement.record('Settled', payment, mod);
    if (notify) this.notifyModification(payment, mod, true);
    if (payment.magic.captureFails)
      this.ctx.timers.after('modification-failure', this.ctx.delays.modificationFailure, {
        psp: mod.pspReference,
      });
    else this.disputes.captured(payment);
  }

  /** `capture failed` / `refund failed`: the succeeded modification fails at the scheme. */
  private failLater(modPsp: string): void {
    const mod = this.get(modPsp);
    const payment = mod && this.payment(mod.paymentPspReference);
    if (!mod || !payment || mod.status !== 'succeeded') return;
    const value = mod.amount!.value;
    mod.status = 'failed';
    const refund = mod.type === 'refund' || mod.action === 'refund';
    if (refund) {
      payment.refundedValue -= value;
      mod.reason = 'Refund failed';
    } else {
      payment.capturedValue -= value;
      mod.reason = 'Capture failed';
    }
    this.save(payment, mod);
    this.settlement.reverse(refund ? 'Refunded' : 'Settled', payment, mod);
    this.ctx.notify({
      eventCode: refund ? 'REFUND_FAILED' : 'CAPTURE_FAILED',
      success: true,
      pspReference: mod.pspReference,
      originalReference: payment.pspReference,
      merchantAccountCode: payment.merchantAccount,
      merchantReference: mod.reference ?? payment.merchantReference,
      amount: mod.amount!,
      paymentMethod: payment.card.brand,
      reason: mod.reason,
    });
  }

  private notifyModification(payment: Payment, mod: Modification, success: boolean): void {
    this.ctx.notify({
      eventCode: EVENT[mod.type],
      success,
      pspReference: mod.pspReference,
      originalReference: payment.pspReference,
      merchantAccountCode: payment.merchantAccount,
      merchantReference: mod.reference ?? payment.merchantReference,
      amount: mod.amount ?? payment.amount,
      paymentMethod: payment.card.brand,
      reason: success ? '' : (mod.reason ?? ''),
      ...(mod.action ? { additionalData: { 'modification.action': mod.action } } : {}),
    });
  }
}
