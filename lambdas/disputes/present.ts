/** The public shape of a dispute (docs/api.md). Internal attributes never leave the API. */
import type { DisputeRecord } from '../store/disputes.ts';
import { explainDispute, isInquiry } from './model.ts';

export function presentDispute(d: DisputeRecord) {
  return {
    id: d.id,
    object: 'dispute',
    payment: d.payment_id,
    amount: d.amount,
    currency: d.currency,
    reason: d.reason,
    status: d.status,
    is_inquiry: isInquiry(d.status),
    evidence_due_by: d.evidence_due_by,
    evidence: d.evidence ?? {},
    evidence_details: {
      has_evidence: d.has_evidence,
      submission_count: d.submission_count,
      submitted_at: d.evidence_submitted_at,
    },
    explanation: explainDispute(d),
    processor: d.processor,
    processor_reference: d.processor_reference,
    network_reason_code: d.network_reason_code,
    funds_withdrawn_amount: d.funds_withdrawn_amount,
    funds_reinstated_amount: d.funds_reinstated_amount,
    dispute_fee: d.dispute_fee,
    dispute_fee_returned: d.dispute_fee_returned,
    balance_transactions: (d.balance_transactions ?? []).map((t) => ({
      id: t.id,
      amount: t.amount,
      fee: t.fee,
      net: t.net,
      currency: t.currency,
      reporting_category: t.reporting_category,
      created: t.created,
    })),
    reminded_at: d.reminded_at ?? null,
    escalations: d.escalations ?? [],
    created: d.created,
    updated: d.updated,
    closed_at: d.closed_at,
  };
}
