/**
 * Disputes: the chargeback lifecycle as dispute notifications, and the Disputes API
 * (`/ca/services/DisputeService/v30/…`, what `@adyen/api-library`'s DisputesApi calls).
 *
 * A dispute has its own pspReference (the same on every event of the dispute; originalReference
 * is the payment's) and carries in `additionalData`: `disputeStatus`, `defensePeriodEndsAt`
 * (ISO 8601 with offset), `defendable`, `autoDefended`, `chargebackReasonCode` and
 * `chargebackSchemeCode` (chargebacks) or `rfiReasonCode` and `rfiSchemeCode` (inquiries), `arn`,
 * `paymentMethodVariant`.
 *
 * - Chargeback (holder name `CHARGEBACK…`, or `POST /_sim/payments/{psp}/dispute`), once the
 *   payment is captured: NOTIFICATION_OF_CHARGEBACK (Undefended), then CHARGEBACK (funds debited;
 *   a `Chargeback` settlement row). Defense: `retrieveApplicableDefenseReasons`,
 *   `supplyDefenseDocument`, `defendDispute` (status Pending; the outcome comes from
 *   `CHARGEBACK:won|lost`, or else from a defense document that contains paystep's test evidence
 *   strings `winning_evidence` / `losing_evidence` (as Stripe's test mode reads them), after
 *   `delays.disputeDecision`, or from `/_sim/disputes/{psp}/close`).
 *   Won: CHARGEBACK_REVERSED (Won). Lost: CHARGEBACK_REVERSED (Pending) then SECOND_CHARGEBACK
 *   (Lost): funds returned, then debited again, as the schemes' second cycle does.
 *   `acceptDispute`, or the defense period ending undefended: DISPUTE_DEFENSE_PERIOD_ENDED
 *   (Accepted / Expired).
 * - Inquiry (holder name `RFI`): REQUEST_FOR_INFORMATION, no funds move; closing it `lost`
 *   escalates to a chargeback (NOTIFICATION_OF_CHARGEBACK + CHARGEBACK, same dispute reference);
 *   closing it `won` ends it without a notification.
 */
import {
  C,
  isoWithOffset,
  type AdyenDelays,
  type Amount,
  type Json,
  type Payment,
  type SimContext,
} from './model.ts';
import type { Settlement } from './settlement.ts';

export type DisputeStage =
  'inquiry' | 'notified' | 'charged' | 'defended' | 'won' | 'lost' | 'accepted' | 'expired' | 'closed';

export interface Dispute {
  pspReference: string;
  paymentPspReference: string;
  merchantAccount: string;
  kind: 'chargeback' | 'rfi';
  reasonCode: string;
  schemeCode: string;
  amount: Amount;
  stage: DisputeStage;
  disputeStatus: string;
  defensePeriodEndsAt: number;
  defenseReasonCode?: string;
  documents: string[];
  /** The outcome a defense gets (test value `CHARGEBACK:won|lost`). */
  outcome?: 'won' | 'lost';
  /** The outcome the defense documents ask for (paystep's test strings `winning_evidence` / `losing_evidence`). */
  evidenceOutcome?: 'won' | 'lost';
  arn: string;
  createdAt: number;
}

/** Default reason codes: Visa 10.4 (fraud, card-absent), Mastercard 4837, Amex F29. */
const DEFAULT_REASON: Record<string, string> = { visa: '10.4', mc: '4837', amex: 'F29' };

/** The simulator's defense reasons and document types (Adyen's vary per scheme and reason). */
const DEFENSE_REASONS = [
  { code: 'SupplyDefenseMaterial', documents: [['DefenseMaterial', 'Required']] },
  {
    code: 'GoodsOrServicesProvided',
    documents: [
      ['ProofOfDelivery', 'Required'],
      ['TermsAndConditions', 'Optional'],
    ],
  },
  { code: 'AdditionalInformation', documents: [['AdditionalInformation', 'Optional']] },
] as const;

const ACTIVE: readonly DisputeStage[] = ['inquiry', 'notified', 'charged', 'defended'];

export class Disputes {
  private readonly ctx: SimContext;
  private readonly settlement: Settlement;

  constructor(ctx: SimContext, settlement: Settlement) {
    this.ctx = ctx;
    this.settlement = settlement;
    ctx.timers.on<{ psp: string }>('dispute-open', ({ psp }) => {
      const payment = this.payment(psp);
      const d = payment?.magic.dispute;
      const disputable = payment ? payment.capturedValue - payment.refundedValue : 0;
      if (payment && d && disputable > 0 && !this.ofPayment(psp).length) this.open(psp, d);
    });
    ctx.timers.on<{ psp: string }>('dispute-charge', ({ psp }) => {
      const d = this.get(psp);
      if (d?.stage === 'notified') this.charge(d);
    });
    ctx.timers.on<{ psp: string }>('dispute-decide', ({ psp }) => {
      const d = this.get(psp);
      const outcome = d?.outcome ?? d?.evidenceOutcome;
      if (d?.stage === 'defended' && outcome) this.close(psp, outcome);
    });
    ctx.timers.on<{ psp: string }>('dispute-expire', ({ psp }) => {
      const d = this.get(psp);
      if (!d || (d.stage !== 'notified' && d.stage !== 'charged' && d.stage !== 'inquiry')) return;
      if (d.stage === 'notified') this.charge(d);
      this.end(d, 'expired', 'Expired');
    });
  }

  /**
   * Changes the dispute delays from now on (simulated ms; like the Stripe simulator's
   * `configureDisputes`), e.g. a longer `disputeDecision` so a test sees the defense under review.
   */
  configure(
    delays: Partial<Pick<AdyenDelays, 'dispute' | 'chargeback' | 'disputeDecision' | 'defensePeriod'>>,
  ): void {
    for (const [k, v] of Object.entries(delays)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new TypeError(`${k} must be a non-negative number of milliseconds`);
      this.ctx.delays[k as keyof typeof delays] = v;
    }
  }

  get(psp: string): Dispute | undefined {
    return this.ctx.store.get<Dispute>(C.dispute, psp);
  }

  ofPayment(paymentPsp: string): Dispute[] {
    return this.ctx.store.all<Dispute>(C.dispute).filter((d) => d.paymentPspReference === paymentPsp);
  }

  /** A capture succeeded: a payment with a dispute test value is disputed later. */
  captured(payment: Payment): void {
    if (payment.magic.dispute && !this.ofPayment(payment.pspReference).length)
      this.ctx.timers.after('dispute-open', this.ctx.delays.dispute, { psp: payment.pspReference });
  }

  /** Opens a dispute on a captured payment now. */
  open(
    paymentPsp: string,
    spec: { kind: 'chargeback' | 'rfi'; reasonCode?: string; outcome?: 'won' | 'lost' },
  ): Dispute {
    const payment = this.payment(paymentPsp);
    if (!payment) throw new Error(`no payment ${paymentPsp}`);
    const disputable = payment.capturedValue - payment.refundedValue;
    if (disputable <= 0) throw new Error(`payment ${paymentPsp} has no captured amount to dispute`);
    const now = this.ctx.now();
    const d: Dispute = {
      pspReference: this.ctx.newPsp(),
      paymentPspReference: paymentPsp,
      merchantAccount: payment.merchantAccount,
      kind: spec.kind,
      reasonCode: spec.reasonCode ?? DEFAULT_REASON[payment.card.brand] ?? '4837',
      schemeCode: payment.card.brand,
      amount: { value: disputable, currency: payment.amount.currency },
      stage: spec.kind === 'rfi' ? 'inquiry' : 'notified',
      disputeStatus: 'Undefended',
      defensePeriodEndsAt: now + this.ctx.delays.defensePeriod,
      documents: [],
      ...(spec.outcome ? { outcome: spec.outcome } : {}),
      arn: `7${String(now).padStart(15, '0')}${Math.floor(Math.random() * 1e7)
        .toString()
        .padStart(7, '0')}`,
      createdAt: now,
    };
    this.save(d);
    this.notify(d, spec.kind === 'rfi' ? 'REQUEST_FOR_INFORMATION' : 'NOTIFICATION_OF_CHARGEBACK');
    if (spec.kind === 'chargeback')
      this.ctx.timers.after('dispute-charge', this.ctx.delays.chargeback, { psp: d.pspReference });
    this.ctx.timers.after('dispute-expire', this.ctx.delays.defensePeriod, { psp: d.pspReference });
    return d;
  }

  /** The issuer's decision (also `POST /_sim/disputes/{psp}/close`). */
  close(psp: string, outcome: 'won' | 'lost'): Dispute {
    const d = this.get(psp);
    if (!d) throw new Error(`no dispute ${psp}`);
    if (!ACTIVE.includes(d.stage)) throw new Error(`dispute ${psp} is already closed (${d.stage})`);
    if (d.stage === 'inquiry') {
      if (outcome === 'won') {
        d.stage = 'closed';
        d.disputeStatus = 'Closed';
        this.save(d);
        return d;
      }
      d.kind = 'chargeback';
      d.stage = 'notified';
      this.save(d);
      this.notify(d, 'NOTIFICATION_OF_CHARGEBACK');
      this.charge(d);
      return d;
    }
    if (d.stage === 'notified') this.charge(d);
    const payment = this.payment(d.paymentPspReference)!;
    d.disputeStatus = outcome === 'won' ? 'Won' : 'Pending';
    this.save(d);
    this.settlement.record('ChargebackReversed', payment, { pspReference: d.pspReference, amount: d.amount });
    this.notify(d, 'CHARGEBACK_REVERSED');
    if (outcome === 'lost') {
      d.disputeStatus = 'Lost';
      this.settlement.record('SecondChargeback', payment, { pspReference: d.pspReference, amount: d.amount });
      this.notify(d, 'SECOND_CHARGEBACK');
    }
    d.stage = outcome;
    this.save(d);
    return d;
  }

  // --- Disputes API --------------------------------------------------------------------------

  /** POST …/retrieveApplicableDefenseReasons */
  defenseReasons(body: Json): Json {
    const d = this.forRequest(body);
    if (typeof d === 'string') return result(d);
    return {
      defenseReasons: DEFENSE_REASONS.map((r) => ({
        defenseReasonCode: r.code,
        satisfied: r.documents.every(([code, level]) => level !== 'Required' || d.documents.includes(code)),
        defenseDocumentTypes: r.documents.map(([code, level]) => ({
          defenseDocumentTypeCode: code,
          available: d.documents.includes(code),
          requirementLevel: level,
        })),
      })),
      disputeServiceResult: { success: true },
    };
  }

  /** POST …/supplyDefenseDocument */
  supplyDocuments(body: Json): Json {
    const d = this.forRequest(body, true);
    if (typeof d === 'string') return result(d);
    const docs = Array.isArray(body.defenseDocuments) ? body.defenseDocuments : [];
    if (!docs.length) return result('defenseDocuments is empty');
    for (const doc of docs) {
      const code = (doc as Json | null)?.defenseDocumentTypeCode;
      const content = (doc as Json | null)?.content;
      if (typeof code !== 'string' || typeof content !== 'string' || !content)
        return result('each defense document needs defenseDocumentTypeCode and content');
      if (!d.documents.includes(code)) d.documents.push(code);
      const text = Buffer.from(content, 'base64').toString('latin1');
      if (text.includes('winning_evidence')) d.evidenceOutcome = 'won';
      else if (text.includes('losing_evidence')) d.evidenceOutcome = 'lost';
    }
    this.save(d);
    return result();
  }

  /** POST …/deleteDisputeDefenseDocument */
  deleteDocument(body: Json): Json {
    const d = this.forRequest(body, true);
    if (typeof d === 'string') return result(d);
    const code = body.defenseDocumentType;
    if (typeof code !== 'string' || !d.documents.includes(code)) return result('Defense document not found');
    d.documents = d.documents.filter((c) => c !== code);
    this.save(d);
    return result();
  }

  /** POST …/defendDispute */
  defend(body: Json): Json {
    const d = this.forRequest(body, true);
    if (typeof d === 'string') return result(d);
    const reason = DEFENSE_REASONS.find((r) => r.code === body.defenseReasonCode);
    if (!reason) return result('Invalid defense reason code');
    if (d.stage === 'notified') this.charge(d);
    d.stage = d.stage === 'inquiry' ? 'inquiry' : 'defended';
    d.disputeStatus = d.kind === 'rfi' ? 'Responded' : 'Pending';
    d.defenseReasonCode = reason.code;
    this.save(d);
    if ((d.outcome ?? d.evidenceOutcome) && d.kind === 'chargeback')
      this.ctx.timers.after('dispute-decide', this.ctx.delays.disputeDecision, { psp: d.pspReference });
    return result();
  }

  /** POST …/acceptDispute */
  accept(body: Json): Json {
    const d = this.forRequest(body, true);
    if (typeof d === 'string') return result(d);
    if (d.kind !== 'chargeback') return result('Only chargebacks can be accepted');
    if (d.stage === 'notified') this.charge(d);
    this.end(d, 'accepted', 'Accepted');
    return result();
  }

  // ----------------------------------------------------------------------------------------------

  private payment(psp: string): Payment | undefined {
    return this.ctx.store.get<Payment>(C.payment, psp);
  }

  private save(d: Dispute): void {
    this.ctx.store.put(C.dispute, d.pspReference, d);
  }

  private forRequest(body: Json, mustBeOpen = false): Dispute | string {
    const psp = body.disputePspReference;
    const merchant = body.merchantAccountCode;
    const d = typeof psp === 'string' ? this.get(psp) : undefined;
    if (!d || d.merchantAccount !== merchant) return 'Could not find dispute';
    if (mustBeOpen && !ACTIVE.includes(d.stage)) return `Dispute is already closed (${d.disputeStatus})`;
    if (mustBeOpen && d.stage === 'defended') return 'Dispute is already defended';
    return d;
  }

  /** The funds are debited: CHARGEBACK and a Chargeback settlement row. */
  private charge(d: Dispute): void {
    d.stage = 'charged';
    this.save(d);
    const payment = this.payment(d.paymentPspReference)!;
    this.settlement.record('Chargeback', payment, { pspReference: d.pspReference, amount: d.amount });
    this.notify(d, 'CHARGEBACK');
  }

  private end(d: Dispute, stage: 'accepted' | 'expired', status: string): void {
    d.stage = stage;
    d.disputeStatus = status;
    this.save(d);
    this.notify(d, 'DISPUTE_DEFENSE_PERIOD_ENDED');
  }

  private notify(d: Dispute, eventCode: string): void {
    const payment = this.payment(d.paymentPspReference)!;
    const rfi = eventCode === 'REQUEST_FOR_INFORMATION';
    this.ctx.notify({
      eventCode,
      success: true,
      pspReference: d.pspReference,
      originalReference: d.paymentPspReference,
      merchantAccountCode: d.merchantAccount,
      merchantReference: payment.merchantReference,
      amount: d.amount,
      paymentMethod: payment.card.brand,
      reason: rfi ? 'Request for information' : `Chargeback reason ${d.reasonCode}`,
      additionalData: {
        disputeStatus: d.disputeStatus,
        defensePeriodEndsAt: isoWithOffset(d.defensePeriodEndsAt),
        defendable: 'true',
        autoDefended: 'false',
        arn: d.arn,
        paymentMethodVariant: payment.card.variant,
        ...(rfi
          ? { rfiReasonCode: d.reasonCode, rfiSchemeCode: d.schemeCode }
          : { chargebackReasonCode: d.reasonCode, chargebackSchemeCode: d.schemeCode }),
        ...(payment.shopperReference ? { shopperReference: payment.shopperReference } : {}),
      },
    });
  }
}

function result(errorMessage?: string): Json {
  return { disputeServiceResult: errorMessage ? { success: false, errorMessage } : { success: true } };
}
