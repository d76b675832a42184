/**
 * Disputes at Adyen: the neutral `DisputeConnector` (../disputes.ts) on `@adyen/api-library`'s
 * Disputes API (`DisputeService/v30`: retrieveApplicableDefenseReasons, supplyDefenseDocument,
 * defendDispute, acceptDispute), through the same transport as the payments adapter (the local
 * simulator when `ADYEN_API_BASE` is set).
 *
 * - retrieve: Adyen has no API that reads a dispute; its state is what its notifications said
 *   (NOTIFICATION_OF_CHARGEBACK, CHARGEBACK, CHARGEBACK_REVERSED, SECOND_CHARGEBACK,
 *   REQUEST_FOR_INFORMATION, DISPUTE_DEFENSE_PERIOD_ENDED, …). `disputeState()` folds the stored
 *   dispute facts (lambdas/connectors/facts.ts) by meaning, so the result does not depend on the
 *   order they arrived in: a second chargeback or pre-arbitration loss beats everything, then an
 *   acceptance (DISPUTE_DEFENSE_PERIOD_ENDED `Accepted`), then a win (CHARGEBACK_REVERSED `Won`,
 *   PREARBITRATION_WON), then a defense period that lapsed undefended (`Expired`: a chargeback is
 *   lost, an inquiry closes), then a defense under review, then the open chargeback, then the
 *   inquiry.
 * - submitEvidence: the neutral evidence becomes defense documents (one PDF per document type,
 *   each field under its label) for the defense reason that fits it best among those Adyen says
 *   apply to the dispute; `submit: true` then defends with that reason. Only text fields: Adyen
 *   has no file ids paystep could pass on, so file fields are refused by the API (EvidenceSupport).
 * - accept: acceptDispute. An inquiry cannot be accepted at Adyen (it closes when its defense
 *   period ends): refused.
 * Adyen's Disputes API answers business refusals with HTTP 200 and `disputeServiceResult.success:
 * false`: a ProcessorRequestError (`adyen_dispute_refused`). A retry of a defense or an acceptance
 * that Adyen already applied ("already defended", "already closed (Accepted)") is success: the
 * outcome of the first call was unknown to paystep, not to Adyen.
 */
import { Client, DisputesAPI, EnvironmentEnum } from '@adyen/api-library';
import type { DisputeStatus } from '../../disputes/model.ts';
import {
  EVIDENCE_GROUPS,
  TEXT_EVIDENCE_FIELDS,
  type BalanceEffect,
  type DisputeConnector,
  type DisputeFacts,
  type Evidence,
  type EvidenceField,
  type EvidenceSupport,
} from '../disputes.ts';
import type { ConnectorFact, DisputeFact } from '../facts.ts';
import { ProcessorRequestError } from '../types.ts';
import { adyenIdempotencyKey } from './adapter.ts';
import { AdyenTransport, adyenError } from './transport.ts';

type DisputesApi = InstanceType<typeof DisputesAPI>['DisputesApi'];
// The library's index does not export the Disputes API's models: read them off its methods.
type DefenseReason = NonNullable<
  Awaited<ReturnType<DisputesApi['retrieveApplicableDefenseReasons']>>['defenseReasons']
>[number];
type ServiceResult = Awaited<ReturnType<DisputesApi['acceptDispute']>>['disputeServiceResult'];

const NAME = 'adyen';

/** Text fields only (see the module comment); Adyen's document limit is far above these. */
export const ADYEN_EVIDENCE_SUPPORT: EvidenceSupport = {
  fields: [...TEXT_EVIDENCE_FIELDS],
  fileFields: [],
  maxFieldLength: 20_000,
  maxTotalLength: 150_000,
  staging: true,
};

/** What the connector reads from paystep's records (it keeps no state of its own). */
export interface AdyenDisputeStateSource {
  /** The verified facts stored under the dispute's pspReference (any order). */
  facts(disputeReference: string): Promise<readonly ConnectorFact[]>;
  /** The paystep payment behind a payment pspReference, if paystep made it. */
  paymentId(paymentReference: string): Promise<string | undefined>;
}

export interface AdyenDisputeOptions {
  apiKey: string;
  merchantAccount: string;
  environment?: 'test' | 'live';
  liveEndpointUrlPrefix?: string;
  /** Another API origin (the simulator); unset: Adyen. */
  apiBase?: string;
  timeoutMs?: number;
  state: AdyenDisputeStateSource;
}

// --- Reading the facts -----------------------------------------------------------------------------

/**
 * Scheme reason codes → paystep's reasons (the rest: `general`). Visa 10.x fraud, 11.x
 * authorisation, 12.x processing errors, 13.x consumer disputes; Mastercard 48xx; Amex.
 */
const REASONS: Readonly<Record<string, string>> = {
  '10.1': 'fraudulent',
  '10.2': 'fraudulent',
  '10.3': 'fraudulent',
  '10.4': 'fraudulent',
  '10.5': 'fraudulent',
  '12.6.1': 'duplicate',
  '12.6': 'duplicate',
  '13.1': 'product_not_received',
  '13.2': 'subscription_canceled',
  '13.3': 'product_unacceptable',
  '13.5': 'product_unacceptable',
  '13.6': 'credit_not_processed',
  '13.7': 'credit_not_processed',
  '4837': 'fraudulent',
  '4840': 'fraudulent',
  '4849': 'fraudulent',
  '4863': 'fraudulent',
  '4870': 'fraudulent',
  '4871': 'fraudulent',
  '4834': 'duplicate',
  '4841': 'subscription_canceled',
  '4853': 'product_unacceptable',
  '4855': 'product_not_received',
  '4860': 'credit_not_processed',
  F24: 'fraudulent',
  F29: 'fraudulent',
  C08: 'product_not_received',
  C31: 'product_unacceptable',
  P08: 'duplicate',
};

export const adyenReason = (code: string | undefined): string => (code && REASONS[code]) || 'general';

const secondsOf = (iso: string | undefined): number | null => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : null;
};

const CHARGEBACK_EVENTS: readonly DisputeFact['event'][] = [
  'notification_of_chargeback',
  'chargeback',
  'chargeback_reversed',
  'second_chargeback',
  'prearbitration_won',
  'prearbitration_lost',
];

/** What paystep itself did at Adyen (Adyen sends no notification for a defense). */
export interface LocalActions {
  defended?: boolean;
  accepted?: boolean;
  evidence?: Evidence;
}

/**
 * A dispute's state from its facts, whatever order they arrived in (see the module comment).
 * undefined when no fact is about this dispute.
 */
export function disputeState(
  reference: string,
  facts: readonly ConnectorFact[],
  local: LocalActions = {},
): DisputeFacts | undefined {
  const mine = facts.filter((f): f is DisputeFact => f.kind === 'dispute' && f.reference === reference);
  if (!mine.length) return undefined;
  const byTime = [...mine].sort((a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id));
  const has = (e: DisputeFact['event'], status?: string) =>
    mine.some((f) => f.event === e && (status === undefined || f.processorStatus === status));
  /** Whether it is (or became) a chargeback, not only an inquiry. */
  const chargeback = mine.some((f) => CHARGEBACK_EVENTS.includes(f.event));
  const responded =
    local.defended === true ||
    mine.some((f) => f.processorStatus === 'Pending' || f.processorStatus === 'Responded');

  let status: DisputeStatus | null;
  if (has('second_chargeback') || has('prearbitration_lost')) status = 'lost';
  else if (has('defense_period_ended', 'Accepted') || (local.accepted && chargeback)) status = 'accepted';
  else if (has('prearbitration_won') || has('chargeback_reversed', 'Won')) status = 'won';
  // The defense period lapsed undefended (Expired, or still Undefended): a chargeback is lost, an
  // inquiry closes. (With another status, e.g. a defense pending, the lapse decides nothing.)
  else if (has('defense_period_ended', 'Expired') || has('defense_period_ended', 'Undefended'))
    status = chargeback ? 'lost' : 'warning_closed';
  else if (has('chargeback_reversed')) status = 'under_review';
  else if (chargeback) status = responded ? 'under_review' : 'needs_response';
  else if (has('request_for_information') || has('information_supplied'))
    status = responded || has('information_supplied') ? 'warning_under_review' : 'warning_needs_response';
  else status = null; // a fraud notice only: not a dispute paystep models

  const withAmount = byTime.find((f) => f.amount);
  const latest = byTime[byTime.length - 1]!;
  const due = [...byTime].reverse().find((f) => f.evidenceDueBy);
  const code = [...byTime].reverse().find((f) => f.reasonCode)?.reasonCode;
  const statusOf = [...byTime].reverse().find((f) => f.processorStatus);
  const balance: BalanceEffect[] = byTime
    .filter((f) => f.money !== 'none' && f.success && f.amount)
    .map((f) => {
      const sign = f.money === 'withdrawn' ? -1 : 1;
      return {
        id: f.id,
        amount: sign * f.amount!.value,
        fee: 0,
        net: sign * f.amount!.value,
        currency: f.amount!.currency,
        reporting_category: f.money === 'withdrawn' ? 'dispute' : 'dispute_reversal',
        created: secondsOf(f.at) ?? 0,
      };
    });
  const evidence = local.evidence ?? {};
  const merchantRef = mine.find((f) => f.merchantReference?.startsWith('pay_'))?.merchantReference ?? null;
  return {
    processor: NAME,
    processor_reference: reference,
    payment_reference: mine[0]!.paymentReference,
    charge: null,
    paystep_payment_id: merchantRef,
    amount: withAmount?.amount?.value ?? 0,
    currency: withAmount?.amount?.currency ?? '',
    reason: adyenReason(code),
    status,
    processor_status: local.accepted
      ? 'Accepted'
      : local.defended
        ? 'Pending'
        : (statusOf?.processorStatus ?? latest.raw_event),
    evidence_due_by: secondsOf(due?.evidenceDueBy),
    network_reason_code: code ?? null,
    evidence,
    has_evidence: Object.keys(evidence).length > 0,
    submission_count: local.defended ? 1 : 0,
    balance_transactions: balance,
    processor_updated: secondsOf(latest.at) ?? 0,
    processor_created: secondsOf(byTime[0]!.at) ?? 0,
  };
}

// --- Evidence → defense documents --------------------------------------------------------------------

/** Labels of the neutral fields in the documents. */
const label = (f: EvidenceField) => f.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** Which document types take which evidence groups (by the type code's words). */
const GROUP_DOCUMENTS: Readonly<Record<string, RegExp>> = {
  delivery: /deliver|shipping|service|goods|proof/i,
  policy: /terms|policy|conditions|cancel|refund/i,
  customer: /communication|invoice|receipt|identif|cardholder|authori/i,
  duplicate: /duplicate|separate|refund/i,
};

/** Which defense reasons fit which evidence (by the reason code's words), best first. */
const GROUP_REASONS: readonly [string, RegExp][] = [
  ['delivery', /GoodsOrServicesProvided|ServicesProvided|MerchandiseReceived|Delivered/i],
  ['duplicate', /Duplicate|SeparateTransactions/i],
  ['policy', /Cancel|Refund|Terms/i],
  ['customer', /Cardholder|Authori[sz]ed|Identif/i],
];

/** The defense reason that fits the evidence best among those that apply. */
export function chooseDefenseReason(
  reasons: readonly DefenseReason[],
  evidence: Evidence,
): DefenseReason | undefined {
  const groups = new Set(Object.keys(evidence).map((f) => EVIDENCE_GROUPS[f as EvidenceField]));
  for (const [group, re] of GROUP_REASONS) {
    if (!groups.has(group as never)) continue;
    const r = reasons.find((x) => re.test(x.defenseReasonCode));
    if (r) return r;
  }
  return (
    reasons.find((r) => /SupplyDefenseMaterial/i.test(r.defenseReasonCode)) ??
    reasons.find((r) => /AdditionalInformation/i.test(r.defenseReasonCode)) ??
    reasons[0]
  );
}

/**
 * The documents for a defense reason: each field goes to the document type its group fits, the
 * rest to the first required type (else the first type); a required type left empty gets all of
 * the evidence. Each document is a PDF of its fields, in the schema's order.
 */
export function defenseDocuments(
  reason: DefenseReason,
  evidence: Evidence,
): { defenseDocumentTypeCode: string; contentType: string; content: string }[] {
  const types = reason.defenseDocumentTypes ?? [];
  if (!types.length) return [];
  const catchAll = types.find((t) => t.requirementLevel === 'Required') ?? types[0]!;
  const fields = TEXT_EVIDENCE_FIELDS.filter((f) => evidence[f]);
  const byType = new Map<string, EvidenceField[]>();
  for (const f of fields) {
    const re = GROUP_DOCUMENTS[EVIDENCE_GROUPS[f]];
    const t = (re && types.find((x) => re.test(x.defenseDocumentTypeCode))) || catchAll;
    byType.set(t.defenseDocumentTypeCode, [...(byType.get(t.defenseDocumentTypeCode) ?? []), f]);
  }
  for (const t of types)
    if (t.requirementLevel === 'Required' && !byType.has(t.defenseDocumentTypeCode))
      byType.set(t.defenseDocumentTypeCode, [...fields]);
  return [...byType].map(([code, fs]) => ({
    defenseDocumentTypeCode: code,
    contentType: 'application/pdf',
    content: textPdf(
      fs.flatMap((f) => [`${label(f)}:`, ...evidence[f]!.split(/\r?\n/).map((l) => `  ${l}`), '']),
    ).toString('base64'),
  }));
}

/**
 * A plain PDF (Helvetica, A4, 60 lines a page, long lines wrapped) of text lines. Characters
 * outside printable ASCII become `?`: the documents carry evidence, not typography.
 */
export function textPdf(lines: readonly string[]): Buffer {
  const wrapped: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/[^\x20-\x7e]/g, '?');
    if (!line) wrapped.push('');
    for (let i = 0; i < line.length; i += 95) wrapped.push(line.slice(i, i + 95));
  }
  const pages: string[][] = [];
  for (let i = 0; i < Math.max(wrapped.length, 1); i += 60) pages.push(wrapped.slice(i, i + 60));
  const esc = (s: string) => s.replace(/[\\()]/g, (c) => `\\${c}`);
  const objects: string[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${4 + 2 * i} 0 R`).join(' ')}] /Count ${pages.length} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  pages.forEach((page, i) => {
    const stream = `BT /F1 10 Tf 12 TL 40 800 Td ${page.map((l) => `(${esc(l)}) Tj T*`).join(' ')} ET`;
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents ${5 + 2 * i} 0 R >>`,
      `<< /Length ${Buffer.byteLength(stream)} >>\nstream\n${stream}\nendstream`,
    );
  });
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out);
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

// --- The connector ---------------------------------------------------------------------------------

/** A refusal Adyen's Disputes API states in its answer (HTTP 200). */
export class AdyenDisputeRefused extends ProcessorRequestError {
  constructor(operation: string, message: string) {
    super(NAME, `Adyen ${operation} refused: ${message}`, 'adyen_dispute_refused');
  }
}

const ALREADY_DEFENDED = /already defended/i;
const ALREADY_ACCEPTED = /already closed \(Accepted\)|already accepted/i;

export class AdyenDisputeConnector implements DisputeConnector {
  readonly processor = NAME;
  readonly evidence = ADYEN_EVIDENCE_SUPPORT;
  private readonly api: DisputesApi;
  private readonly merchantAccount: string;
  private readonly state: AdyenDisputeStateSource;

  constructor(options: AdyenDisputeOptions) {
    if (!options.apiKey) throw new Error('AdyenDisputeConnector: apiKey is required');
    if (!options.merchantAccount) throw new Error('AdyenDisputeConnector: merchantAccount is required');
    const live = options.environment === 'live';
    const timeout = options.timeoutMs ?? 10_000;
    const client = new Client(
      {
        apiKey: options.apiKey,
        environment: live ? EnvironmentEnum.LIVE : EnvironmentEnum.TEST,
        ...(options.liveEndpointUrlPrefix ? { liveEndpointUrlPrefix: options.liveEndpointUrlPrefix } : {}),
        applicationName: 'paystep',
        connectionTimeoutMillis: timeout,
      },
      options.apiBase ? new AdyenTransport({ baseUrl: options.apiBase, timeoutMs: timeout }) : undefined,
    );
    this.api = new DisputesAPI(client).DisputesApi;
    this.merchantAccount = options.merchantAccount;
    this.state = options.state;
  }

  async retrieve(reference: string, local?: LocalActions): Promise<DisputeFacts> {
    const s = disputeState(reference, await this.state.facts(reference), local);
    if (!s)
      throw new ProcessorRequestError(
        NAME,
        `Adyen has no API to read dispute ${reference} and no notification about it was stored`,
        'not_supported',
      );
    return s;
  }

  async submitEvidence(
    reference: string,
    evidence: Evidence,
    submit: boolean,
    idempotencyKey: string,
  ): Promise<DisputeFacts> {
    const before = await this.retrieve(reference);
    const ids = { disputePspReference: reference, merchantAccountCode: this.merchantAccount };
    const reasons = await this.call('defense reasons', () =>
      this.api.retrieveApplicableDefenseReasons(ids, this.opts(`${idempotencyKey}:reasons`)),
    );
    const reason = chooseDefenseReason(reasons.defenseReasons ?? [], evidence);
    if (!reason) throw new AdyenDisputeRefused('defense', 'no defense reason applies to this dispute');
    const documents = defenseDocuments(reason, evidence);
    if (documents.length)
      await this.call('supply defense document', () =>
        this.api.supplyDefenseDocument(
          { ...ids, defenseDocuments: documents },
          this.opts(`${idempotencyKey}:documents`),
        ),
      );
    if (!submit) return { ...before, evidence, has_evidence: true };
    await this.call(
      'defend dispute',
      () =>
        this.api.defendDispute(
          { ...ids, defenseReasonCode: reason.defenseReasonCode },
          this.opts(`${idempotencyKey}:defend`),
        ),
      ALREADY_DEFENDED,
    );
    return this.retrieve(reference, { defended: true, evidence });
  }

  async accept(reference: string, idempotencyKey: string): Promise<DisputeFacts> {
    const before = await this.retrieve(reference);
    if (before.status === 'warning_needs_response' || before.status === 'warning_under_review')
      throw new AdyenDisputeRefused(
        'accept dispute',
        'an inquiry (request for information) cannot be accepted at Adyen; it closes when its defense period ends',
      );
    await this.call(
      'accept dispute',
      () =>
        this.api.acceptDispute(
          { disputePspReference: reference, merchantAccountCode: this.merchantAccount },
          this.opts(`${idempotencyKey}:accept`),
        ),
      ALREADY_ACCEPTED,
    );
    return this.retrieve(reference, { accepted: true });
  }

  async paystepPaymentId(facts: DisputeFacts): Promise<string | undefined> {
    return (
      (facts.payment_reference ? await this.state.paymentId(facts.payment_reference) : undefined) ??
      facts.paystep_payment_id ??
      undefined
    );
  }

  private opts(key: string) {
    return { idempotencyKey: adyenIdempotencyKey(key) };
  }

  /** A Disputes API call: transport errors translated, a stated refusal thrown (unless `done` says it is already done). */
  private async call<T extends { disputeServiceResult?: ServiceResult }>(
    operation: string,
    fn: () => Promise<T>,
    done?: RegExp,
  ): Promise<T> {
    let r: T;
    try {
      r = await fn();
    } catch (err) {
      throw adyenError(err, operation);
    }
    const result = r.disputeServiceResult;
    if (result && result.success === false) {
      const message = result.errorMessage ?? 'no reason given';
      if (done?.test(message)) return r;
      throw new AdyenDisputeRefused(operation, message);
    }
    return r;
  }
}
