/**
 * Applying what the processor says about a dispute (a webhook event, or the dispute object an API
 * call returned), and everything that follows from it:
 *
 * 1. the dispute item is created or updated under an optimistic lock, if `decide()` lets the change
 *    win (no duplicate, stale or backwards change ever overwrites a newer state);
 * 2. the payment is brought in line with the dispute (`syncPayment`: guarded transitions only);
 * 3. the dispute workflow is started (execution name = dispute id) while the dispute is open;
 * 4. a status change resumes the workflow if it waits on a task token.
 *
 * Steps 2–4 are idempotent and run again on every delivery, duplicates included: a delivery that
 * crashed half-way is completed by its redelivery.
 */
import {
  InvalidToken,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
  ExecutionAlreadyExists,
} from '@aws-sdk/client-sfn';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { disputeChanged } from '../shared/metrics.ts';
import { annotate, getPayment, transition, TransitionRejected } from '../store/payments.ts';
import type { PaymentDispute } from '../domain/payment.ts';
import {
  addDisputeTimelineEntry,
  annotateDispute,
  clearTaskToken,
  createDispute,
  DisputeConflict,
  getDispute,
  getTaskToken,
  putLink,
  unmarkForSweep,
  updateDispute,
  type DisputeRecord,
} from '../store/disputes.ts';
import {
  decide,
  financeTotals,
  isClosed,
  finalStatus,
  mergeBalance,
  paymentStep,
  remindAt,
  stableJson,
  summarize,
  type DisputeFacts,
} from './model.ts';

export interface DisputeBinding {
  disputeId: string;
  paymentId: string;
  merchantId: string;
  processor: string;
}

export interface ChangeSource {
  /** The processor's event (`charge.dispute.created`, `CHARGEBACK`, …), or `api.evidence` / `api.accept` for an API call's response. */
  eventType: string;
  /** Epoch seconds. */
  eventCreated: number;
  fingerprint: string;
}

export interface ApplyResult {
  outcome: 'applied' | 'ignored';
  dispute?: DisputeRecord;
  created: boolean;
  statusChanged: boolean;
  why?: string;
}

const executionArnFor = (disputeId: string) =>
  `${config.stateMachineArn('dispute').replace(':stateMachine:', ':execution:')}:${disputeId}`;

/** Step 1: the dispute item. */
export async function applyFacts(
  b: DisputeBinding,
  facts: DisputeFacts,
  src: ChangeSource,
): Promise<ApplyResult> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const stored = await getDispute(b.disputeId);
    const status = finalStatus(facts.status, stored?.accepted_by_merchant ?? false);
    if (!status)
      return { outcome: 'ignored', created: false, statusChanged: false, why: 'unmodelled_status' };
    const balanceIds = facts.balance_transactions.map((t) => t.id);
    const decision = decide(
      stored && {
        status: stored.status,
        processor_updated: stored.processor_updated,
        applied_events: stored.applied_events ?? [],
        balance_ids: (stored.balance_transactions ?? []).map((t) => t.id),
      },
      { status, eventCreated: src.eventCreated, fingerprint: src.fingerprint, balance_ids: balanceIds },
    );
    const now = Math.floor(Date.now() / 1000);
    if (decision.kind === 'ignore')
      return { outcome: 'ignored', dispute: stored, created: false, statusChanged: false, why: decision.why };

    const balance = mergeBalance(stored?.balance_transactions ?? [], facts.balance_transactions);
    const finance = { balance_transactions: balance, ...financeTotals(balance) };

    if (decision.kind === 'create') {
      const record: DisputeRecord = {
        id: b.disputeId,
        object: 'dispute',
        merchant_id: b.merchantId,
        payment_id: b.paymentId,
        processor: b.processor,
        processor_reference: facts.processor_reference,
        charge: facts.charge,
        // The disputed payment's processor reference (the stored field keeps its first, Stripe, name).
        payment_intent: facts.payment_reference,
        amount: facts.amount,
        currency: facts.currency,
        reason: facts.reason,
        status,
        processor_status: facts.processor_status,
        network_reason_code: facts.network_reason_code,
        evidence_due_by: facts.evidence_due_by,
        remind_at: remindAt(facts.evidence_due_by, now),
        evidence: facts.evidence,
        has_evidence: facts.has_evidence,
        submission_count: facts.submission_count,
        evidence_submitted_at: facts.submission_count > 0 ? now : null,
        ...finance,
        payment_status_before: null,
        accepted_by_merchant: false,
        execution_arn: executionArnFor(b.disputeId),
        workflow_started: false,
        status_seq: 1,
        processor_updated: src.eventCreated,
        applied_events: [src.fingerprint],
        created: now,
        updated: now,
        closed_at: isClosed(status) ? now : null,
        version: 1,
      };
      if (!(await createDispute(record))) continue; // created concurrently: decide again
      return { outcome: 'applied', dispute: record, created: true, statusChanged: true };
    }

    const s = stored!;
    const set: Partial<DisputeRecord> =
      decision.kind === 'finance_only'
        ? { ...finance, applied_events: [...s.applied_events, src.fingerprint], updated: now }
        : {
            ...finance,
            status,
            processor_status: facts.processor_status,
            amount: facts.amount,
            currency: facts.currency,
            reason: facts.reason,
            network_reason_code: facts.network_reason_code ?? s.network_reason_code,
            evidence_due_by: facts.evidence_due_by ?? s.evidence_due_by,
            remind_at:
              facts.evidence_due_by && facts.evidence_due_by !== s.evidence_due_by
                ? remindAt(facts.evidence_due_by, now)
                : s.remind_at,
            evidence: Object.keys(facts.evidence).length ? facts.evidence : s.evidence,
            has_evidence: facts.has_evidence || s.has_evidence,
            submission_count: Math.max(facts.submission_count, s.submission_count),
            evidence_submitted_at:
              facts.submission_count > s.submission_count ? now : (s.evidence_submitted_at ?? null),
            processor_updated: Math.max(src.eventCreated, s.processor_updated),
            applied_events: [...s.applied_events, src.fingerprint],
            status_seq: decision.statusChanged ? s.status_seq + 1 : s.status_seq,
            closed_at: decision.statusChanged && isClosed(status) ? now : s.closed_at,
            updated: now,
          };
    if (decision.kind === 'update' && !decision.statusChanged && !changes(s, set))
      return { outcome: 'ignored', dispute: s, created: false, statusChanged: false, why: 'no_change' };
    try {
      const written = await updateDispute(s.id, s.version, set);
      return {
        outcome: 'applied',
        dispute: written,
        created: false,
        statusChanged: decision.kind === 'update' && decision.statusChanged,
      };
    } catch (err) {
      if (err instanceof DisputeConflict) continue;
      throw err;
    }
  }
  throw new DisputeConflict(`dispute ${b.disputeId}: too many concurrent changes`);
}

/** Fields a processor change writes; bookkeeping (`updated`, `applied_events`, …) does not count. */
const SUBSTANTIVE: (keyof DisputeRecord)[] = [
  'status',
  'processor_status',
  'amount',
  'currency',
  'reason',
  'network_reason_code',
  'evidence_due_by',
  'remind_at',
  'evidence',
  'has_evidence',
  'submission_count',
  'balance_transactions',
];

/** Whether writing `set` would change anything that matters on `stored`. */
function changes(stored: DisputeRecord, set: Partial<DisputeRecord>): boolean {
  return SUBSTANTIVE.some((k) => k in set && stableJson(set[k] ?? null) !== stableJson(stored[k] ?? null));
}

/** What the payment shows of its dispute. */
export function disputeSummary(d: DisputeRecord): PaymentDispute {
  return {
    id: d.id,
    status: d.status,
    reason: d.reason,
    amount: d.amount,
    currency: d.currency,
    evidence_due_by: d.evidence_due_by ?? null,
  };
}

/**
 * Step 2: moves the payment until it agrees with the dispute (each move a guarded transition).
 * Re-reads both after every write, so concurrent callers converge on the dispute's latest status.
 */
export async function syncPayment(disputeId: string): Promise<void> {
  for (let i = 0; i < 6; i++) {
    const d = await getDispute(disputeId);
    if (!d) return;
    const p = await getPayment(d.payment_id);
    if (!p) return;
    // The payment shows its dispute (docs/states.md): kept in line on every change.
    const summary = disputeSummary(d);
    if (stableJson(p.dispute ?? null) !== stableJson(summary)) await annotate(p.id, { dispute: summary });
    const step = paymentStep(d, p.status, p);
    if (!step) return;
    // Remembered before the move, so that a win can always restore it.
    if (step.remember) await annotateDispute(d.id, { payment_status_before: step.remember });
    const note =
      step.to === 'disputed'
        ? `dispute ${d.id} opened (${d.reason})`
        : step.to === 'charged_back'
          ? `dispute ${d.id} ${d.status}`
          : `dispute ${d.id} won: back to ${step.to}`;
    try {
      await transition(p.id, step.to, { from: [step.from], note });
    } catch (err) {
      if (!(err instanceof TransitionRejected)) throw err;
      // The payment moved meanwhile (a refund, a concurrent sync): look again.
    }
  }
  logger.warn('dispute: payment did not settle in line with its dispute', { disputeId });
}

/** Step 3: the workflow, started once (execution name = dispute id) while the dispute is open. */
export async function ensureWorkflow(d: DisputeRecord): Promise<void> {
  if (d.workflow_started || isClosed(d.status)) return;
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: config.stateMachineArn('dispute'),
        name: d.id,
        input: JSON.stringify({ dispute_id: d.id }),
      }),
    );
    await addDisputeTimelineEntry(d.payment_id, {
      event: 'workflow_started',
      dispute: d.id,
      execution_arn: d.execution_arn,
    });
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists)) throw err;
  }
  await annotateDispute(d.id, { workflow_started: true });
}

/**
 * Step 4: hands the dispute's new state to the workflow step waiting on a task token. No token:
 * the workflow is not waiting (it is in a Wait, or between steps) and reads the dispute when it
 * gets there; a waiting step that stored its token after this change re-checks by itself
 * (`status_seq`).
 */
export async function resumeWorkflow(d: DisputeRecord): Promise<boolean> {
  const token = await getTaskToken(d.id);
  if (!token) return false;
  try {
    await clients
      .sfn()
      .send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(summarize(d)) }));
  } catch (err) {
    if (!(err instanceof TaskTimedOut || err instanceof TaskDoesNotExist || err instanceof InvalidToken))
      throw err;
  }
  await clearTaskToken(d.id, token);
  return true;
}

/** Steps 1–4 plus the payment's timeline. */
export async function applyAndFollow(
  b: DisputeBinding,
  facts: DisputeFacts,
  src: ChangeSource,
): Promise<ApplyResult> {
  const before = await getDispute(b.disputeId);
  const r = await applyFacts(b, facts, src);
  const d = r.dispute ?? (await getDispute(b.disputeId));
  if (r.outcome === 'applied' && d) {
    // Counted once: by the write that created the dispute or changed its status.
    if (r.created) disputeChanged(d.processor, 'opened');
    else if (r.statusChanged) disputeChanged(d.processor, d.status);
    await putLink(d.payment_id, d.id);
    if (r.created)
      await addDisputeTimelineEntry(d.payment_id, {
        event: 'opened',
        dispute: d.id,
        status: d.status,
        reason: d.reason,
        amount: d.amount,
        currency: d.currency,
        evidence_due_by: d.evidence_due_by ?? undefined,
        processor_reference: d.processor_reference,
      });
    else if (r.statusChanged)
      await addDisputeTimelineEntry(d.payment_id, {
        event: 'status_changed',
        dispute: d.id,
        status: d.status,
        from: before?.status,
        source: src.eventType,
      });
    const known = new Set((before?.balance_transactions ?? []).map((t) => t.id));
    for (const t of d.balance_transactions)
      if (!known.has(t.id))
        await addDisputeTimelineEntry(d.payment_id, {
          event: t.amount < 0 ? 'funds_withdrawn' : 'funds_reinstated',
          dispute: d.id,
          amount: Math.abs(t.amount),
          fee: t.fee,
          currency: t.currency,
          balance_transaction: t.id,
        });
  }
  if (d) {
    if (r.statusChanged && isClosed(d.status) && d.escalations?.length) await unmarkForSweep(d.id);
    await syncPayment(d.id);
    await ensureWorkflow((await getDispute(d.id)) ?? d);
    if (r.statusChanged && !r.created) await resumeWorkflow((await getDispute(d.id)) ?? d);
  }
  logger.info('dispute change', {
    disputeId: b.disputeId,
    paymentId: b.paymentId,
    eventType: src.eventType,
    outcome: r.outcome,
    why: r.why,
    status: d?.status,
  });
  return r;
}
