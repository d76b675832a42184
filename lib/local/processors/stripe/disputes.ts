/** Disputes: created from the dispute test cards, evidence, acceptance and decisions. */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import { invalid, refused } from './errors.ts';
import type { Reader } from './form.ts';
import {
  DISPUTE_ANSWERABLE,
  DISPUTE_CLOSED,
  DISPUTE_EVIDENCE_FIELDS,
  DISPUTE_FEE,
  EXPANDABLE,
  clone,
  type DisputeOutcome,
  type RequestContext,
} from './model.ts';
import type { DisputeMarker, DisputeSettings, StripeObject, StripeSimulatorOptions } from './types.ts';
import { StripeRefunds } from './refunds.ts';

export abstract class StripeDisputes extends StripeRefunds {
  constructor(options: StripeSimulatorOptions = {}) {
    super(options);
    this.configureDisputes(options.disputes);
  }

  /** Charges made with a `pm_card_createDispute*` card: where the dispute issue will create disputes. */
  disputeMarkers(): DisputeMarker[] {
    const out: DisputeMarker[] = [];
    for (const [id, info] of this.store.activeSim) {
      const ch = info.dispute ? this.store.lookup(id) : undefined;
      if (info.dispute && ch?.object === 'charge') {
        out.push({ charge: id, payment_intent: ch.payment_intent as string, ...info.dispute });
      }
    }
    return out;
  }

  // --- disputes --------------------------------------------------------------------------------
  //
  // A `pm_card_createDispute*` charge is disputed `createDelayMs` after it is captured: a chargeback
  // (`needs_response`, funds withdrawn with a 15.00 dispute fee: `charge.dispute.created` +
  // `charge.dispute.funds_withdrawn`) or, for `pm_card_createDisputeInquiry`, an inquiry
  // (`warning_needs_response`, nothing withdrawn). Evidence submitted with one of Stripe's test strings
  // in `uncategorized_text` (docs.stripe.com/testing#evidence) decides it `decisionDelayMs` later:
  // `winning_evidence` → won (funds and fee reinstated: `charge.dispute.funds_reinstated`), for an
  // inquiry warning_closed; `losing_evidence` → lost, for an inquiry warning_closed;
  // `escalate_inquiry_evidence` → the inquiry becomes a chargeback (`needs_response`, funds withdrawn).
  // Other evidence stays `under_review` until `closeDispute()`.

  /** The dispute settings now in force (changeable at run time, for tests and demos). */
  configureDisputes(settings: Partial<DisputeSettings> = {}): DisputeSettings {
    for (const [k, v] of Object.entries(settings)) {
      if (!(k in this.disputeSettings)) throw new TypeError(`unknown dispute setting: ${k}`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new TypeError(`${k} must be a number ≥ 0`);
    }
    Object.assign(this.disputeSettings, settings);
    return { ...this.disputeSettings };
  }

  dispute(id: string): StripeObject | undefined {
    const d = this.get('dispute', id);
    return d ? clone(d) : undefined;
  }

  /** Every dispute, oldest first; `charge` or `payment_intent` narrows it to one payment. */
  disputes(filter: { charge?: string; payment_intent?: string } = {}): StripeObject[] {
    return [...this.store.objectsOf('dispute')]
      .filter(
        (o) =>
          (!filter.charge || o.charge === filter.charge) &&
          (!filter.payment_intent || o.payment_intent === filter.payment_intent),
      )
      .sort((a, b) => (a.created as number) - (b.created as number))
      .map(clone);
  }

  /** Creates the pending dispute of a `pm_card_createDispute*` charge now (instead of after the delay). */
  createDisputeNow(chargeId: string): StripeObject | undefined {
    const key = `dispute-create:${chargeId}`;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
    return this.createDispute(chargeId);
  }

  /**
   * The issuer's decision, as a test or the simulator console decides it: `won` or `lost` (an inquiry
   * closes as warning_closed either way). From any open status; a closed dispute throws.
   */
  closeDispute(id: string, outcome: 'won' | 'lost'): StripeObject {
    const d = this.get('dispute', id);
    if (!d) throw new Error(`no such dispute: ${id}`);
    if (DISPUTE_CLOSED.includes(d.status as string))
      throw new Error(`dispute ${id} is already ${String(d.status)}`);
    return this.decideDispute(id, outcome)!;
  }

  protected scheduleDisputeTimer(key: string, at: number, fn: () => void): void {
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing);
    if (!this.running) return; // start() schedules it
    const t = setTimeout(
      () => {
        this.timers.delete(key);
        try {
          fn();
        } catch (err) {
          this.log.error({ err, key }, 'stripe simulator: dispute timer failed');
        }
      },
      Math.max(0, at - this.now()),
    );
    t.unref();
    this.timers.set(key, t);
  }

  /** Reschedules pending dispute creations and decisions (after a restart). */
  protected resumeDisputeTimers(): void {
    for (const [id, info] of [...this.store.activeSim]) {
      if (info.disputeAt !== undefined && !info.disputeId)
        this.scheduleDisputeTimer(`dispute-create:${id}`, info.disputeAt, () => this.createDispute(id));
      if (info.disputeDecision)
        this.scheduleDisputeTimer(`dispute-decision:${id}`, info.disputeDecision.at, () =>
          this.decideDispute(id),
        );
    }
  }

  /** A captured `pm_card_createDispute*` charge: its dispute comes after the configured delay. */
  protected scheduleDisputeCreation(ch: StripeObject): void {
    const info = this.simOf(ch.id);
    if (!info?.dispute || info.disputeId || info.disputeAt !== undefined) return;
    const at = this.now() + this.disputeSettings.createDelayMs;
    this.save('charge', ch, { disputeAt: at });
    this.scheduleDisputeTimer(`dispute-create:${ch.id}`, at, () => this.createDispute(ch.id));
  }

  protected createDispute(chargeId: string): StripeObject | undefined {
    const ch = this.get('charge', chargeId);
    const info = this.simOf(chargeId);
    if (!ch || !info?.dispute || info.disputeId) return undefined;
    const ctx = this.internalContext();
    const { reason, inquiry } = info.dispute;
    const created = this.seconds();
    const card = (ch.payment_method_details as { card?: { brand?: string } } | null)?.card;
    const brand = card?.brand ?? 'visa';
    const networkReasonCode = inquiry ? null : reason === 'product_not_received' ? '13.1' : '10.4';
    const dispute: StripeObject = {
      id: `dp_${randomBase62(24)}`,
      object: 'dispute',
      amount: (ch.amount_captured as number) || (ch.amount as number),
      balance_transactions: [],
      charge: ch.id,
      created,
      currency: ch.currency,
      enhanced_eligibility_types: [],
      evidence: Object.fromEntries([
        ...DISPUTE_EVIDENCE_FIELDS.map((f) => [f, null]),
        ['enhanced_evidence', {}],
      ]),
      evidence_details: {
        due_by: created + this.disputeSettings.responseWindowSeconds,
        enhanced_eligibility: {},
        has_evidence: false,
        past_due: false,
        submission_count: 0,
        submission_method: 'not_submitted',
      },
      intended_submission_method: null,
      is_charge_refundable: inquiry,
      livemode: false,
      metadata: {},
      network_reason_code: networkReasonCode,
      payment_intent: ch.payment_intent ?? null,
      payment_method_details: {
        card: {
          brand,
          case_type: inquiry ? 'inquiry' : 'chargeback',
          network: brand,
          network_reason_code: networkReasonCode,
        },
        type: 'card',
      },
      reason,
      status: inquiry ? 'warning_needs_response' : 'needs_response',
    };
    if (!inquiry) this.withdrawDisputedFunds(dispute);
    this.save('dispute', dispute, {});
    ch.disputed = true;
    this.save('charge', ch, { disputeId: dispute.id, disputeAt: undefined });
    this.emit(ctx, 'charge.dispute.created', dispute);
    if (!inquiry) this.emit(ctx, 'charge.dispute.funds_withdrawn', dispute);
    this.dispatch(ctx.events);
    return clone(dispute);
  }

  /** The chargeback's withdrawal: the disputed amount and the dispute fee leave the balance. */
  protected withdrawDisputedFunds(dispute: StripeObject): void {
    const txn = this.disputeBalanceTransaction(
      dispute,
      -(dispute.amount as number),
      DISPUTE_FEE,
      'dispute',
      `Chargeback withdrawal for ${String(dispute.charge)}`,
    );
    (dispute.balance_transactions as StripeObject[]).push(txn);
    dispute.is_charge_refundable = false;
  }

  protected disputeBalanceTransaction(
    dispute: StripeObject,
    amount: number,
    fee: number,
    category: 'dispute' | 'dispute_reversal',
    description: string,
  ): StripeObject {
    const created = this.seconds();
    const currency = dispute.currency as string;
    const txn: StripeObject = {
      id: `txn_${randomBase62(24)}`,
      object: 'balance_transaction',
      amount,
      available_on: created,
      balance_type: 'payments',
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee
        ? [{ amount: fee, application: null, currency, description: 'Dispute fee', type: 'stripe_fee' }]
        : [],
      net: amount - fee,
      reporting_category: category,
      source: dispute.id,
      status: 'available',
      type: 'adjustment',
    };
    this.save('balance_transaction', txn);
    return txn;
  }

  /** POST /v1/disputes/:id — evidence (staged, or submitted with `submit`, the default), metadata. */
  protected updateDispute(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['evidence', 'submit', 'metadata', 'expand', 'intended_submission_method']);
    const dispute = this.mustGet('dispute', id, 'dispute', 404);
    const evidence = p.object('evidence') ?? {};
    const staged: Record<string, string> = {};
    let total = 0;
    for (const [k, v] of Object.entries(evidence)) {
      if (!(DISPUTE_EVIDENCE_FIELDS as readonly string[]).includes(k))
        throw invalid(`Received unknown parameter: evidence[${k}]`, `evidence[${k}]`, 'parameter_unknown');
      if (typeof v !== 'string') throw invalid(`Invalid string: ${JSON.stringify(v)}`, `evidence[${k}]`);
      if (v.length > 20_000)
        throw invalid(`evidence[${k}] has a maximum character count of 20,000.`, `evidence[${k}]`);
      total += v.length;
      staged[k] = v;
    }
    if (total > 150_000)
      throw invalid('The combined character count of all evidence fields is limited to 150,000.', 'evidence');
    const submit = p.boolean('submit') ?? true;
    const metadata = p.metadata();
    p.oneOf('intended_submission_method', [
      'manual',
      'prefer_manual',
      'prefer_smart_disputes',
      'smart_disputes',
    ]);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, EXPANDABLE.dispute);
    if (!DISPUTE_ANSWERABLE.includes(dispute.status as string)) {
      throw refused(
        `This dispute has a status of ${String(dispute.status)}; evidence can only be updated while it needs a response.`,
      );
    }
    const merged = { ...(dispute.evidence as Record<string, unknown>), ...staged };
    const details = dispute.evidence_details as Record<string, unknown>;
    const hasEvidence = DISPUTE_EVIDENCE_FIELDS.some(
      (f) => typeof merged[f] === 'string' && merged[f] !== '',
    );
    Object.assign(dispute, {
      evidence: merged,
      evidence_details: {
        ...details,
        has_evidence: hasEvidence,
        ...(submit
          ? {
              submission_count: (details.submission_count as number) + 1,
              submission_method: 'manual',
              past_due: this.seconds() > (details.due_by as number),
            }
          : {}),
      },
      ...(metadata ? { metadata: { ...(dispute.metadata as object), ...metadata } } : {}),
    });
    let decision: { outcome: DisputeOutcome; at: number } | undefined;
    if (submit) {
      const inquiry = dispute.status === 'warning_needs_response';
      dispute.status = inquiry ? 'warning_under_review' : 'under_review';
      const text = typeof merged.uncategorized_text === 'string' ? merged.uncategorized_text : '';
      const outcome: DisputeOutcome | undefined = text.includes('winning_evidence')
        ? 'won'
        : text.includes('losing_evidence')
          ? 'lost'
          : inquiry && text.includes('escalate_inquiry_evidence')
            ? 'escalate'
            : undefined;
      if (outcome) decision = { outcome, at: this.now() + this.disputeSettings.decisionDelayMs };
    }
    this.save('dispute', dispute, decision ? { disputeDecision: decision } : {});
    this.emit(ctx, 'charge.dispute.updated', dispute);
    if (decision) {
      const at = decision.at;
      this.scheduleDisputeTimer(`dispute-decision:${id}`, at, () => this.decideDispute(id));
    }
    return this.expanded(dispute, expand);
  }

  /** POST /v1/disputes/:id/close — accepting: a chargeback is lost, an inquiry warning_closed. */
  protected closeDisputeEndpoint(p: Reader, ctx: RequestContext, id: string): StripeObject {
    p.allow(['expand']);
    const dispute = this.mustGet('dispute', id, 'dispute', 404);
    const expand = p.expand();
    if (expand.length) this.checkExpand(expand, EXPANDABLE.dispute);
    if (!DISPUTE_ANSWERABLE.includes(dispute.status as string)) {
      throw refused(
        `This dispute has a status of ${String(dispute.status)}; only a dispute that needs a response can be closed.`,
      );
    }
    dispute.status = dispute.status === 'warning_needs_response' ? 'warning_closed' : 'lost';
    this.save('dispute', dispute, { disputeDecision: undefined });
    this.emit(ctx, 'charge.dispute.closed', dispute);
    return this.expanded(dispute, expand);
  }

  /** Applies a decision: the scheduled one of the dispute, or `outcome`. */
  protected decideDispute(id: string, outcome?: DisputeOutcome): StripeObject | undefined {
    const dispute = this.get('dispute', id);
    const info = this.simOf(id);
    const decided = outcome ?? info?.disputeDecision?.outcome;
    const key = `dispute-decision:${id}`;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
    if (!dispute || !decided || DISPUTE_CLOSED.includes(dispute.status as string)) return undefined;
    const ctx = this.internalContext();
    const inquiry = (dispute.status as string).startsWith('warning_');
    if (decided === 'escalate') {
      if (!inquiry) return undefined;
      const created = this.seconds();
      const details = dispute.evidence_details as Record<string, unknown>;
      Object.assign(dispute, {
        status: 'needs_response',
        network_reason_code: '10.4',
        evidence_details: { ...details, due_by: created + this.disputeSettings.responseWindowSeconds },
        payment_method_details: {
          ...(dispute.payment_method_details as object),
          card: {
            ...(dispute.payment_method_details as { card: object }).card,
            case_type: 'chargeback',
            network_reason_code: '10.4',
          },
        },
      });
      this.withdrawDisputedFunds(dispute);
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.updated', dispute);
      this.emit(ctx, 'charge.dispute.funds_withdrawn', dispute);
    } else if (inquiry) {
      dispute.status = 'warning_closed';
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.closed', dispute);
    } else if (decided === 'won') {
      const txn = this.disputeBalanceTransaction(
        dispute,
        dispute.amount as number,
        -DISPUTE_FEE,
        'dispute_reversal',
        `Chargeback reversal for ${String(dispute.charge)}`,
      );
      (dispute.balance_transactions as StripeObject[]).push(txn);
      Object.assign(dispute, { status: 'won', is_charge_refundable: true });
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.funds_reinstated', dispute);
      this.emit(ctx, 'charge.dispute.closed', dispute);
    } else {
      dispute.status = 'lost';
      this.save('dispute', dispute, { disputeDecision: undefined });
      this.emit(ctx, 'charge.dispute.closed', dispute);
    }
    this.dispatch(ctx.events);
    return clone(dispute);
  }
}
